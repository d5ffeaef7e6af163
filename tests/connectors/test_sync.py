"""The sync runner over real HTTP: every order exactly once through 429s, 5xx, cut bodies and timeouts.

The server here is a deliberately small paging JSON API (stdlib ``http.server`` on a free port) with
a scripted list of faults; the platform emulators proper live in ``connectors/emulators``. The
Source and Adapter below are as small as a real one can be: paging through
``connectors.http.request_json`` with its row count checked inside the retried call.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import stamina
from sqlalchemy import func, select
from stamina.instrumentation import set_on_retry_hooks

from connectors.base import Quarantine, Window
from connectors.http import (
    PermanentError,
    RetryPolicy,
    TransientError,
    TruncatedRead,
    backoff_hook,
    parse_retry_after,
    request_json,
)
from connectors.sync import SyncRunner, retry_quarantined
from db.codes import ActorKind
from db.ingest import connector_statuses, cursor_get, lease_holder, quarantine_list
from db.models import Order, TimelineEvent
from db.privacy import FIELDS
from db.store import NewLine, NewOrder, Store
from db.views import Actor

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=3)
KEY = "tiny:s1"
ALICE = Actor(ActorKind.OPERATOR, "alice")


# -- a small platform ----------------------------------------------------------------------------


class Platform:
    """Ground truth plus a script of faults, one per call (None: answer normally)."""

    def __init__(self, n: int) -> None:
        self.orders = {
            f"T{i:04d}": {"tid": f"T{i:04d}", "status": "PAID", "modified": (T0 + timedelta(seconds=40 * i)).timestamp(),
                          "sku": f"SKU-{i % 7}", "qty": 1 + i % 3, "name": f"买家{i}"}
            for i in range(n)
        }
        self.faults: list[str | None] = []
        self.calls = 0
        self.lock = threading.Lock()

    def page(self, start: float, end: float, page: int, size: int) -> dict:
        with self.lock:
            rows = sorted((o for o in self.orders.values() if start <= o["modified"] < end),
                          key=lambda o: (o["modified"], o["tid"]))
        return {"total": len(rows), "page": page, "rows": [dict(r) for r in rows[(page - 1) * size: page * size]]}


class Handler(BaseHTTPRequestHandler):
    platform: Platform

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802
        platform = self.server.platform  # type: ignore[attr-defined]
        with platform.lock:
            platform.calls += 1
            fault = platform.faults.pop(0) if platform.faults else None
        if not self.path.startswith("/orders?"):
            return self._send(404, b'{"error":"no such method"}')
        q = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
        body = json.dumps(platform.page(float(q["start"]), float(q["end"]), int(q["page"]), int(q["size"])),
                          ensure_ascii=False).encode()
        if fault == "429":
            return self._send(429, b'{"error":"too many requests"}', {"Retry-After": "0.05"})
        if fault == "500":
            return self._send(500, b"oops")
        if fault == "slow":
            time.sleep(0.4)  # past the client's read timeout
        if fault == "cut":  # a complete HTTP answer whose JSON body is cut short
            return self._send(200, body[: len(body) // 2])
        if fault == "drop":  # promises the whole body, sends half, hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if fault == "short":  # a page with a row missing but the same total
            data = json.loads(body)
            data["rows"] = data["rows"][:-1]
            body = json.dumps(data).encode()
        self._send(200, body)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def platform() -> Iterator[tuple[Platform, str]]:
    p = Platform(240)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.platform = p  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield p, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def no_backoff_waits() -> Iterator[None]:
    """Retries happen, their waits do not (stamina's test mode)."""
    with stamina.set_testing(True, attempts=6, cap=True):
        yield


class TinySource:
    channel = "tiny"
    shop_code = "s1"
    max_window = timedelta(hours=1)

    def __init__(self, client: httpx.AsyncClient, url: str, size: int = 25) -> None:
        self.client, self.url, self.size = client, url, size

    async def _page(self, window: Window, page: int) -> dict:
        def check(body: dict) -> None:
            expected = max(0, min(self.size, body["total"] - (page - 1) * self.size))
            if len(body["rows"]) != expected:
                raise TruncatedRead(f"page {page} has {len(body['rows'])} rows, expected {expected}")

        return await request_json(
            self.client, "GET", self.url + "/orders", check=check, timeout=httpx.Timeout(0.2, connect=1.0),
            params={"start": window.start.timestamp(), "end": window.end.timestamp(), "page": page, "size": self.size},
        )

    async def pages(self, window: Window) -> AsyncIterator[list[dict]]:
        first = await self._page(window, 1)
        yield first["rows"]
        for page in range(2, math.ceil(first["total"] / self.size) + 1):
            yield (await self._page(window, page))["rows"]


class TinyAdapter:
    channel = "tiny"
    STATUS = {"PAID": "paid", "SENT": "shipped"}

    def external_id(self, raw: dict) -> str:
        return raw["tid"]

    def modified_at(self, raw: dict) -> datetime:
        return datetime.fromtimestamp(raw["modified"], UTC)

    def to_order(self, raw: dict, *, shop_code: str) -> NewOrder:
        if raw["status"] not in self.STATUS:
            raise Quarantine(f"unknown status {raw['status']!r}", code="unknown_status")
        return NewOrder(
            "tiny", shop_code, raw["tid"], self.modified_at(raw), status=self.STATUS[raw["status"]],
            raw_status=raw["status"], modified_at=self.modified_at(raw), receiver_name=raw["name"],
            lines=[NewLine(raw["sku"], quantity=raw["qty"] + raw.get("extra", 0))],  # a bug on odd payloads
        )


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def runner(store: Store, client: httpx.AsyncClient, url: str, clock: Clock, **kw) -> SyncRunner:
    return SyncRunner(store, TinySource(client, url), TinyAdapter(), clock=clock,
                      initial_lookback=timedelta(hours=4), lease_ttl=timedelta(minutes=5), **kw)


async def pool(store: Store) -> dict[str, str]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(Order.__table__.c.channel_order_id, Order.__table__.c.raw_status))
        return dict(rows.all())


async def created_events(store: Store) -> int:
    async with store.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(TimelineEvent.__table__)
                                   .where(TimelineEvent.__table__.c.kind == "created"))).scalar_one()


# -- the runner ----------------------------------------------------------------------------------


async def test_every_order_exactly_once_through_faults(store: Store, platform: tuple[Platform, str]) -> None:
    server, url = platform
    server.orders["T0007"]["status"] = "LOST_IN_TRANSLATION"
    server.orders["T0011"]["extra"] = "x"
    server.faults = ["429", None, "500", "cut", None, "drop", "short", None, "slow", "429", "500", None, "cut"]
    clock = Clock(NOW)
    async with httpx.AsyncClient() as client:
        sync = runner(store, client, url, clock)
        report = await sync.run_once()
        assert report.ok, report.error
        truth = {tid: o["status"] for tid, o in server.orders.items() if tid not in ("T0007", "T0011")}
        assert await pool(store) == truth  # every order, each with its own status: exactly the ground truth
        assert await created_events(store) == len(truth)  # and each created once
        assert report.result.inserted == len(truth) and report.windows == 4
        assert server.calls > report.pages  # the faults were met and retried
        quarantined = {q.external_id: q for q in await quarantine_list(store)}
        assert quarantined["T0007"].code == "unknown_status" and "LOST_IN_TRANSLATION" in quarantined["T0007"].reason
        assert quarantined["T0011"].code == "adapter_error" and "TypeError" in quarantined["T0011"].reason
        assert json.loads(quarantined["T0011"].payload)["extra"] == "x"  # kept raw
        assert (await cursor_get(store, KEY)).watermark == NOW - timedelta(minutes=2)

        clock.now += timedelta(minutes=1)
        again = await sync.run_once()
        assert again.ok and (again.result.inserted, again.result.updated) == (0, 0)

        # five orders change on the platform but become visible late, modified before the watermark
        # the last run left: the overlap re-reads them, and the next run applies exactly those
        for tid in ("T0001", "T0050", "T0100", "T0150", "T0200"):
            server.orders[tid].update(status="SENT", modified=(clock.now - timedelta(minutes=2, seconds=30)).timestamp())
        clock.now += timedelta(minutes=5)
        changed = await sync.run_once()
        assert (changed.result.updated, changed.result.inserted) == (5, 0)
        assert sum(1 for s in (await pool(store)).values() if s == "SENT") == 5
        assert await created_events(store) == len(truth)


async def test_a_reconcile_finds_a_change_that_showed_up_past_the_overlap(
    store: Store, platform: tuple[Platform, str]
) -> None:
    server, url = platform
    clock = Clock(NOW)
    async with httpx.AsyncClient() as client:
        sync = runner(store, client, url, clock)
        assert (await sync.run_once()).ok
        # a change the platform shows only now, stamped an hour before the watermark: far past the
        # overlap, so polling never sees it; the nightly reconcile re-reads the span and applies it
        server.orders["T0042"].update(status="SENT", modified=(NOW - timedelta(hours=1)).timestamp())
        clock.now += timedelta(minutes=3)
        polled = await sync.run_once()
        assert polled.ok and polled.result.updated == 0
        reconciled = await sync.reconcile(timedelta(hours=4))
        assert reconciled.ok and (reconciled.result.updated, reconciled.result.inserted) == (1, 0)
        assert (await pool(store))["T0042"] == "SENT"
        assert reconciled.result.unchanged == len(server.orders) - 1  # everything else skipped, not rewritten


async def test_a_read_that_stays_truncated_does_not_move_the_watermark(
    store: Store, platform: tuple[Platform, str]
) -> None:
    server, url = platform
    server.faults = ["cut"] * 6  # more than the retry budget for the first call
    async with httpx.AsyncClient() as client:
        sync = runner(store, client, url, Clock(NOW))
        report = await sync.run_once()
        assert not report.ok and "not complete JSON" in report.error
        assert await pool(store) == {}
        cursor = await cursor_get(store, KEY)
        assert cursor.watermark is None and cursor.consecutive_errors == 1
        (status,) = await connector_statuses(store, now=NOW)
        assert (status.state, status.errors_today) == ("failing", 1)

        report = await sync.run_once()  # the platform recovered
        assert report.ok and len(await pool(store)) == 240
        (status,) = await connector_statuses(store, now=NOW)
        assert status.state == "ok"


async def test_a_failing_window_keeps_the_earlier_ones(store: Store, platform: tuple[Platform, str]) -> None:
    server, url = platform
    async with httpx.AsyncClient() as client:
        sync = runner(store, client, url, Clock(NOW))
        first, second = sync.plan(None, NOW)[:2]

        def calls(window: Window) -> int:
            rows = sum(1 for o in server.orders.values()
                       if window.start.timestamp() <= o["modified"] < window.end.timestamp())
            return max(1, math.ceil(rows / 25))

        assert calls(second) > 1
        server.faults = [None] * (calls(first) + calls(second)) + ["500"] * 6
        report = await sync.run_once()
        assert report.windows == 2 and "HTTP 500" in report.error
        assert (await cursor_get(store, KEY)).watermark == second.end
        assert len(await pool(store)) == sum(1 for o in server.orders.values()
                                             if o["modified"] < second.end.timestamp())


async def test_a_batch_the_database_refuses_is_split_and_only_the_bad_order_quarantined(
    store: Store, platform: tuple[Platform, str]
) -> None:
    server, url = platform
    # The database itself refuses one row (a trigger, as a CHECK or a foreign key would).
    async with store.write() as conn:
        if store.dialect == "sqlite":
            await conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON orders WHEN new.channel_order_id = 'T0003' "
                "BEGIN SELECT RAISE(ABORT, 'refused by a rule'); END")
        else:
            await conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF new.channel_order_id = 'T0003' THEN "
                "RAISE integrity_constraint_violation USING MESSAGE = 'refused by a rule'; END IF; "
                "RETURN new; END $$ LANGUAGE plpgsql")
            await conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION refuse()")

    try:
        async with httpx.AsyncClient() as client:
            sync = SyncRunner(store, TinySource(client, url), TinyAdapter(), clock=Clock(NOW),
                              initial_lookback=timedelta(hours=4), batch_size=10)
            report = await sync.run_once()
    finally:
        if store.dialect != "sqlite":  # the PostgreSQL test database outlives this test
            async with store.write() as conn:
                await conn.exec_driver_sql("DROP TRIGGER refuse ON orders")
                await conn.exec_driver_sql("DROP FUNCTION refuse()")
    assert report.ok, report.error
    assert len(await pool(store)) == 239 and "T0003" not in await pool(store)
    (bad,) = await quarantine_list(store)
    assert (bad.external_id, bad.code) == ("T0003", "store_error")
    assert "refused by a rule" in bad.reason
    assert (await cursor_get(store, KEY)).watermark == NOW - timedelta(minutes=2)


async def test_a_time_no_database_can_store_is_quarantined_while_mapping(
    store: Store, platform: tuple[Platform, str]
) -> None:
    server, url = platform

    class FarFuture(TinyAdapter):
        def to_order(self, raw: dict, *, shop_code: str) -> NewOrder:
            order = super().to_order(raw, shop_code=shop_code)
            if raw["tid"] == "T0003":  # a zoned time past year 9999 in UTC
                from datetime import timezone
                order.created_at = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-8)))
            return order

    async with httpx.AsyncClient() as client:
        sync = SyncRunner(store, TinySource(client, url), FarFuture(), clock=Clock(NOW),
                          initial_lookback=timedelta(hours=4), batch_size=10)
        report = await sync.run_once()
    assert report.ok, report.error
    assert len(await pool(store)) == 239 and "T0003" not in await pool(store)
    (bad,) = await quarantine_list(store)
    assert (bad.external_id, bad.code) == ("T0003", "invalid_order")
    assert bad.reason.startswith("created_at is out of range")


async def test_only_one_process_syncs_a_database(store: Store, platform: tuple[Platform, str]) -> None:
    url = platform[1]
    async with httpx.AsyncClient() as client:
        mine = runner(store, client, url, Clock(NOW), holder="host-a:1")
        theirs = runner(store, client, url, Clock(NOW), holder="host-b:2")
        assert (await mine.run_once()).ok
        skipped = await theirs.run_once()
        assert skipped.skipped and skipped.fetched == 0

        # run_forever stops when asked, between runs, and gives the lease back
        stop = asyncio.Event()
        reports = []
        mine.on_report = lambda r: (reports.append(r), stop.set())
        await asyncio.wait_for(mine.run_forever(3600, stop), timeout=30)
        assert len(reports) == 1 and reports[0].ok
        assert await lease_holder(store, "sync") is None
        assert (await theirs.run_once()).ok


async def test_retrying_a_quarantined_payload_after_the_map_was_fixed(
    store: Store, platform: tuple[Platform, str]
) -> None:
    server, url = platform
    server.orders["T0005"]["status"] = "ON_THE_WAY"
    async with httpx.AsyncClient() as client:
        await runner(store, client, url, Clock(NOW)).run_once()
    (entry,) = await quarantine_list(store)

    failed = await retry_quarantined(store, TinyAdapter(), entry.id, ALICE)
    assert not failed.ok and "ON_THE_WAY" in failed.reason
    assert [q.state for q in await quarantine_list(store, state=None)] == ["open"]

    class Fixed(TinyAdapter):
        STATUS = {**TinyAdapter.STATUS, "ON_THE_WAY": "shipped"}

    done = await retry_quarantined(store, Fixed(), entry.id, ALICE)
    assert done.ok and (await store.order_card(done.order_id)).status == "shipped"
    assert [q.state for q in await quarantine_list(store, state=None)] == ["resolved"]


# -- the HTTP layer --------------------------------------------------------------------------------


async def test_retry_after_is_honoured(platform: tuple[Platform, str]) -> None:
    server, url = platform
    server.faults = ["429"]
    waits: list[float] = []
    set_on_retry_hooks([lambda details: waits.append(details.wait_for)])
    try:
        with stamina.set_testing(False):
            async with httpx.AsyncClient() as client:
                body = await request_json(client, "GET", url + "/orders",
                                          params={"start": 0, "end": 1, "page": 1, "size": 10})
    finally:
        set_on_retry_hooks(None)
    assert body["total"] == 0
    assert waits == [0.05]  # the platform's hint, not stamina's own backoff


def test_retry_decisions() -> None:
    decide = backoff_hook(RetryPolicy(max_retry_after=30))
    assert decide(TransientError("429", retry_after=2.5)) == 2.5
    assert decide(TransientError("429", retry_after=3600)) == 30  # capped
    assert decide(TransientError("500")) is True
    assert decide(TruncatedRead("cut")) is True
    assert decide(PermanentError("bad sign")) is False
    assert decide(ValueError("bug")) is False
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Sun, 01 Mar 2026 00:00:30 GMT", now=T0) == 30.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


async def test_refused_calls_are_not_retried(platform: tuple[Platform, str]) -> None:
    server, url = platform
    async with httpx.AsyncClient() as client:
        with pytest.raises(PermanentError, match="HTTP 404"):
            await request_json(client, "GET", url + "/nope")
    assert server.calls == 1


# -- the real emulators ----------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["taobao", "pdd", "douyin"])
async def test_the_pool_equals_a_platform_emulator_after_a_bad_day(
    store: Store, emulator, source_for, fast_retries, channel: str  # noqa: ANN001
) -> None:
    """Every fault at once (429s, 5xx, timeouts, cut bodies, rows shifting between pages, late
    changes, duplicates): after syncing, the pool holds exactly what the platform holds, order by
    order (per-order checksums over the canonical fields), each order created once."""
    from connectors.checksum import order_checksum
    from tests.connectors.conftest import BAD_DAY, LATE_MAX

    emu = emulator(channel, orders=80, days=1, faults=BAD_DAY)

    def clock() -> datetime:
        return datetime.fromtimestamp(emu.world.clock.now(), UTC)

    runners = [
        SyncRunner(store, *source_for(emu, shop), clock=clock, initial_lookback=timedelta(days=1, hours=1),
                   lease=None)
        for shop in emu.world.shops
    ]

    async def sync_all() -> None:
        for runner in runners:
            for _ in range(5):  # a window that failed is read again by the next run
                if (await runner.run_once()).ok:
                    break
            else:
                pytest.fail(f"{runner.connector} did not recover from the faults")

    await sync_all()
    # the platform's late changes become visible; rows stop moving; the runners' deep overlap re-reads
    quiet = {k: v for k, v in emu.world.faults.spec.rates.items() if k not in ("shift", "late")}
    emu.world.set_faults(",".join(f"{k}={v}" for k, v in quiet.items()))
    emu.world.advance(LATE_MAX.total_seconds() + 60)
    for runner in runners:  # the emulator's clock is frozen now: nothing is in flight, read up to now
        runner.lag = timedelta(0)
    await sync_all()

    truth = {e["id"]: e["checksum"] for e in emu.truth()}
    assert None not in truth.values()
    async with store.engine.connect() as conn:
        ids = [row[0] for row in await conn.execute(select(Order.__table__.c.id))]
    pool = {}
    for order_id in ids:
        card = await store.order_card(order_id, reveal=FIELDS)  # compared whole, never masked
        pool[card.channel_order_id] = order_checksum(card)
    assert pool == truth
    assert await created_events(store) == len(truth)
