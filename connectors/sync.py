"""The sync runner: one shop's orders from its platform into the pool, exactly once, until stopped.

For each (channel, shop) a :class:`SyncRunner` glues a Source (HTTP, paging, retries — see
``connectors.http``) and an Adapter (raw dict → ``NewOrder``) to ``db.ingest``:

1. It reads the shop's watermark (``sync_cursor``) and plans windows of modified time from
   *watermark − overlap* to *platform now − lag*, no longer than the platform allows
   (``max_window``; a Source may expose ``max_window`` and ``min_lag`` attributes). A first run
   starts ``initial_lookback`` ago. Every ``deep_every`` the overlap is ``deep_overlap`` instead:
   platforms show some changes minutes late (Taobao ~10 min in promotions), and re-reading that far
   back on every poll would spend the rate limit. :meth:`SyncRunner.reconcile` re-reads whole
   recent days (nightly, from ``run_forever``); none of these ever moves a watermark backwards.
2. It reads **all** pages of a window. Any exception from the Source (retries spent, truncated
   read, refused call) means the window was not read: the error is recorded on the cursor in plain
   words and the watermark does not move; the next run reads the window again.
3. Each raw row goes through the Adapter. A :class:`~connectors.base.Quarantine` — or *any* other
   exception from the Adapter, or an order ``db.ingest`` would refuse — becomes a quarantine row
   with the reason; the worker never stops on a payload.
4. Rows are ingested in batches; the last batch of a window carries the new watermark, so the
   watermark commits in the same transaction as the orders it covers. A batch the database
   refuses for its data is split order by order, and only the order that fails is quarantined.
5. A lease (``sync_lease``) makes one process per database the syncing one: each run takes or
   renews it; another process's runners skip their turn until it expires or is released.

``run_forever`` stops promptly when its stop event is set: between windows and batches, never
inside a transaction. Everything is logged through ``logging`` (the TUI owns the terminal).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from connectors.base import Adapter, Quarantine, Source, Window
from db.codes import ActorKind
from db.ingest import (
    DUPLICATE_WINDOW,
    CursorUpdate,
    IngestResult,
    Prepared,
    QuarantineItem,
    cursor_get,
    cursor_record_error,
    ingest,
    lease_acquire,
    lease_holder,
    lease_release,
    lease_take_over,
    prepare,
    quarantine_get,
    quarantine_mark_retried,
)
from db.sanitize import clean_text
from db.store import InvalidOrder, NewOrder, Store
from db.views import Actor

log = logging.getLogger(__name__)

#: The lease every runner of this database shares.
LEASE_NAME = "sync"
#: This process's name in the lease: host, pid and a random part (a restarted pid is a new holder).
PROCESS_HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def utc_now() -> datetime:
    """The default clock: aware UTC now."""
    return datetime.now(UTC)


@dataclass
class SyncReport:
    """What one :meth:`SyncRunner.run_once` did."""

    connector: str
    windows: int = 0  # windows fully read and committed
    pages: int = 0
    fetched: int = 0  # raw rows read
    result: IngestResult = field(default_factory=IngestResult)
    watermark: datetime | None = None  # where the watermark stands after this run
    error: str | None = None  # why the run stopped early (plain words)
    skipped: str | None = None  # why the run did nothing (another process holds the lease)

    @property
    def ok(self) -> bool:
        """True when the run neither failed nor was skipped."""
        return self.error is None and self.skipped is None


@dataclass(frozen=True)
class RetryOutcome:
    """What sending one quarantined payload through its adapter again did."""

    ok: bool
    reason: str | None = None  # why it failed again
    order_id: int | None = None


class SyncRunner:
    """Syncs one Source into the pool; see the module docstring."""

    def __init__(
        self,
        store: Store,
        source: Source,
        adapter: Adapter,
        *,
        overlap: timedelta = timedelta(minutes=5),
        lag: timedelta = timedelta(minutes=2),
        deep_overlap: timedelta = timedelta(minutes=15),
        deep_every: timedelta = timedelta(minutes=10),
        max_window: timedelta | None = None,
        clock: Callable[[], datetime] = utc_now,
        stream: str = "orders",
        batch_size: int = 500,
        initial_lookback: timedelta = timedelta(days=1),
        max_windows_per_run: int | None = 48,
        lease: str | None = LEASE_NAME,
        holder: str = PROCESS_HOLDER,
        lease_ttl: timedelta = timedelta(seconds=90),
        duplicate_window: timedelta = DUPLICATE_WINDOW,
        on_report: Callable[[SyncReport], None] | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.adapter = adapter
        self.overlap = overlap
        self.deep_overlap = max(deep_overlap, overlap)
        self.deep_every = deep_every
        self._last_deep: datetime | None = None
        self.lag = max(lag, getattr(source, "min_lag", None) or timedelta(0))
        self.max_window = max_window or getattr(source, "max_window", None)
        self.clock = clock
        self.stream = stream
        self.batch_size = batch_size
        self.initial_lookback = initial_lookback
        self.max_windows_per_run = max_windows_per_run
        self.lease = lease
        self.holder = holder
        self.lease_ttl = lease_ttl
        self._lease_fresh_until = 0.0  # time.monotonic() until which the lease needs no renewing
        self.duplicate_window = duplicate_window
        self.on_report = on_report
        self.connector = f"{source.channel}:{source.shop_code}"
        self.actor = Actor(ActorKind.CONNECTOR, self.connector)

    # -- planning ------------------------------------------------------------------------------

    def plan(self, watermark: datetime | None, now: datetime, *, overlap: timedelta | None = None,
             since: timedelta | None = None, limit: int | None = None) -> list[Window]:
        """The windows to read: from watermark − overlap (or now − lookback, or now − ``since``)
        to now − lag."""
        end = now - self.lag
        if since is not None:
            start = now - since
        elif watermark is not None:
            start = watermark - (self.overlap if overlap is None else overlap)
        else:
            start = now - self.initial_lookback
        if end <= start:
            return []
        if self.max_window is None:
            return [Window(start, end)]
        windows = []
        while start < end:
            nxt = min(start + self.max_window, end)
            windows.append(Window(start, nxt))
            start = nxt
        return windows if limit is None else windows[:limit]  # catch up over several runs

    # -- one run -------------------------------------------------------------------------------

    async def run_once(self, stop: asyncio.Event | None = None, *, since: timedelta | None = None) -> SyncReport:
        """Read every window due now and ingest it; never raises for a platform or payload failure.

        ``since``: re-read everything modified in that span before now (see :meth:`reconcile`).
        """
        report = SyncReport(self.connector)
        if not await self._hold_lease(report):
            return report
        cursor = await cursor_get(self.store, self.connector, self.stream)
        report.watermark = cursor.watermark if cursor is not None else None
        now = self.clock()
        overlap = self.overlap
        if self._last_deep is None or now - self._last_deep >= self.deep_every:
            overlap = self.deep_overlap
            self._last_deep = now
        # a reconcile reads its whole span; a catch-up reads at most max_windows_per_run windows a run
        limit = None if since is not None else self.max_windows_per_run
        for window in self.plan(report.watermark, now, overlap=overlap, since=since, limit=limit):
            if stop is not None and stop.is_set():
                break
            if report.windows and not await self._hold_lease(report):
                break
            try:
                await self._read_window(window, report, stop)
            except asyncio.CancelledError:
                raise
            except _Stopped:
                break
            except Exception as exc:  # noqa: BLE001 - a failed window is recorded, never fatal
                report.error = describe(exc)
                log.warning("%s: window %s – %s not read: %s", self.connector, window.start, window.end,
                            report.error)
                await self._record_error(report.error)
                break
            report.windows += 1
            report.watermark = window.end
        if report.result.changed_ids or report.result.quarantined:
            r = report.result
            log.info("%s: %d new, %d updated, %d unchanged, %d stale, %d quarantined", self.connector,
                     r.inserted, r.updated, r.unchanged, r.stale, r.quarantined)
        return report

    async def reconcile(self, span: timedelta = timedelta(days=2), stop: asyncio.Event | None = None) -> SyncReport:
        """Re-read everything modified in the last ``span`` (a nightly check that the pool holds what
        the platform holds: anything missed is ingested, anything unchanged skipped)."""
        return await self.run_once(stop, since=span)

    async def _hold_lease(self, report: SyncReport) -> bool:
        if self.lease is None:
            return True
        if time.monotonic() < self._lease_fresh_until:
            # renewed less than a third of its time ago: still ours (nobody takes a live holder's
            # lease), so no write transaction — one a second per shop held every agent's write up
            return True
        renewing = time.monotonic()
        try:
            held = await lease_acquire(self.store, self.lease, self.holder, self.lease_ttl, now=utc_now())
        except Exception as exc:  # noqa: BLE001 - the database is unreachable: try next time
            report.error = f"could not take the sync lease: {describe(exc)}"
            log.warning("%s: %s", self.connector, report.error)
            return False
        if not held:
            held = await self._take_over_from_dead_holder()
        if not held:
            report.skipped = "another process holds the sync lease"
        self._lease_fresh_until = renewing + self.lease_ttl.total_seconds() / 3 if held else 0.0
        return held

    async def _take_over_from_dead_holder(self) -> bool:
        """A holder on this host whose process is gone (killed, crashed) gives way at once,
        instead of making a restarted sync wait out its lease."""
        current = await lease_holder(self.store, self.lease, now=utc_now())
        if current is None:
            return False
        holder = current[0]
        host, _, rest = holder.partition(":")
        pid = rest.partition(":")[0]
        if host != socket.gethostname() or not pid.isdigit() or _alive(int(pid)):
            return False
        if await lease_take_over(self.store, self.lease, holder, self.holder, self.lease_ttl, now=utc_now()):
            log.warning("%s: took the sync lease over from %s (that process is gone)", self.connector, holder)
            return True
        # another runner of this process may just have taken it over: then it is ours already
        return await lease_acquire(self.store, self.lease, self.holder, self.lease_ttl, now=utc_now())

    async def _record_error(self, error: str) -> None:
        try:
            await cursor_record_error(self.store, self.connector, error, stream=self.stream, at=self.clock())
        except Exception:  # noqa: BLE001 - the database itself is failing; the log has it
            log.exception("%s: could not record the error", self.connector)

    async def _read_window(self, window: Window, report: SyncReport, stop: asyncio.Event | None) -> None:
        """Read, map and ingest one window. Batches are pipelined: while one batch is written (the
        database works in its own thread), the next pages are fetched and mapped; batches still
        commit one after the other, and the watermark only with the last."""
        orders: list[tuple[Prepared, Any]] = []
        quarantined: list[QuarantineItem] = []
        writing: asyncio.Task | None = None
        try:
            async for page in self.source.pages(window):
                report.pages += 1
                for i, raw in enumerate(page):
                    report.fetched += 1
                    self._map(raw, orders, quarantined)
                    if i % 50 == 49:
                        await asyncio.sleep(0)  # let the writing batch's next statement start
                if len(orders) + len(quarantined) >= self.batch_size:
                    if writing is not None:
                        await writing
                    if stop is not None and stop.is_set():
                        raise _Stopped  # between batches; the window is read again next time
                    writing = asyncio.ensure_future(self._ingest(orders, quarantined, None, report))
                    orders, quarantined = [], []
            if writing is not None:
                await writing
        finally:
            if writing is not None:
                if not writing.done():
                    await asyncio.wait([writing])  # never leave a transaction behind
                if not writing.cancelled():
                    writing.exception()  # retrieved: when the pages failed too, theirs is the error raised
        await self._ingest(orders, quarantined, CursorUpdate(self.connector, window.end, self.stream), report)

    def _map(self, raw: Any, orders: list[tuple[Prepared, Any]], quarantined: list[QuarantineItem]) -> None:
        """One raw row → an order, or a quarantine item with the reason. Never raises."""
        try:
            order = self.adapter.to_order(raw, shop_code=self.source.shop_code)
            if not isinstance(order, NewOrder):
                raise TypeError(f"the adapter returned {type(order).__name__}, not an order")
            prepared = prepare(order)  # checked and cleaned once, here, while the last batch is written
        except InvalidOrder as exc:
            quarantined.append(self._item(raw, str(exc), "invalid_order"))
        except Quarantine as exc:
            quarantined.append(self._item(raw, exc.reason, exc.code))
        except Exception as exc:  # noqa: BLE001 - an adapter bug or an unforeseen payload shape
            quarantined.append(self._item(raw, f"the {self.source.channel} adapter failed on this payload: "
                                               f"{describe(exc)}", "adapter_error"))
        else:
            orders.append((prepared, raw))

    def _item(self, raw: Any, reason: str, code: str) -> QuarantineItem:
        return QuarantineItem(self.connector, self.source.channel, self.source.shop_code, raw, reason, code,
                              external_id=self._external_id(raw))

    def _external_id(self, raw: Any) -> str | None:
        try:
            value = self.adapter.external_id(raw)
        except Exception:  # noqa: BLE001 - no id is fine: the payload is kept whole anyway
            return None
        return None if value is None else str(value)[:128]

    async def _ingest(self, orders: list[tuple[Prepared, Any]], quarantined: list[QuarantineItem],
                      cursor: CursorUpdate | None, report: SyncReport) -> None:
        try:
            result = await ingest(self.store, [o for o, _ in orders], actor=self.actor, cursor=cursor,
                                  quarantined=quarantined, at=self.clock(), duplicate_window=self.duplicate_window)
        except Exception as exc:
            if not is_data_error(exc):
                raise
            log.warning("%s: the database refused a batch (%s); storing it order by order", self.connector,
                        describe(exc))
            result = await self._isolate(orders, quarantined, cursor)
        report.result.add(result)

    async def _isolate(self, orders: list[tuple[Prepared, Any]], quarantined: list[QuarantineItem],
                       cursor: CursorUpdate | None) -> IngestResult:
        """Ingest one order at a time; quarantine the ones the database refuses, with its reason."""
        total = IngestResult()
        failed = list(quarantined)
        for order, raw in orders:
            try:
                total.add(await ingest(self.store, [order], actor=self.actor, at=self.clock(),
                                       duplicate_window=self.duplicate_window))
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                failed.append(self._item(raw, f"the pool could not store this order: {describe(exc)}", "store_error"))
        total.add(await ingest(self.store, [], actor=self.actor, cursor=cursor, quarantined=failed, at=self.clock()))
        return total

    # -- forever -------------------------------------------------------------------------------

    async def run_forever(
        self,
        interval: float | timedelta,
        stop: asyncio.Event,
        *,
        reconcile_every: timedelta | None = timedelta(hours=24),
        reconcile_span: timedelta = timedelta(days=2),
    ) -> None:
        """Run, wait ``interval``, run again ... until ``stop`` is set; then give the lease back.

        Every ``reconcile_every`` (first one after that long) a run is a :meth:`reconcile` instead.
        """
        seconds = interval.total_seconds() if isinstance(interval, timedelta) else float(interval)
        last_reconcile = self.clock()
        try:
            while not stop.is_set():
                since = None
                if reconcile_every is not None and self.clock() - last_reconcile >= reconcile_every:
                    since, last_reconcile = reconcile_span, self.clock()
                try:
                    report = await self.run_once(stop, since=since)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - e.g. the database went away: try again later
                    log.exception("%s: sync run failed", self.connector)
                    report = SyncReport(self.connector, error=describe(exc))
                if self.on_report is not None:
                    try:
                        self.on_report(report)
                    except Exception:  # noqa: BLE001 - a listener's bug must not stop syncing
                        log.exception("%s: report listener failed", self.connector)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=seconds)
                except TimeoutError:
                    pass
        finally:
            if self.lease is not None:
                self._lease_fresh_until = 0.0
                try:
                    await asyncio.shield(lease_release(self.store, self.lease, self.holder))
                except Exception:  # noqa: BLE001 - it expires by itself
                    log.warning("%s: could not release the sync lease", self.connector)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


async def run_all(runners: Sequence[SyncRunner], interval: float | timedelta, stop: asyncio.Event) -> None:
    """Run several runners side by side until ``stop`` is set (one task each)."""
    async with asyncio.TaskGroup() as group:
        for runner in runners:
            group.create_task(runner.run_forever(interval, stop), name=f"sync {runner.connector}")


async def retry_quarantined(store: Store, adapter: Adapter, quarantine_id: int, actor: Actor) -> RetryOutcome:
    """Send one quarantined payload through its adapter again (after a status map was fixed, say).

    Marked *retried* by ``actor``; if it maps now, its order is ingested by the connector and the
    entry is resolved; if not, the entry reopens with the new reason.
    """
    entry = await quarantine_get(store, quarantine_id)
    if entry is None:
        return RetryOutcome(False, "no such quarantined payload")
    if entry.state not in ("open", "retried"):
        return RetryOutcome(False, f"this payload is {entry.state}")
    await quarantine_mark_retried(store, quarantine_id, actor)
    connector = Actor(ActorKind.CONNECTOR, entry.connector)
    try:
        raw = json.loads(entry.payload)
    except ValueError:
        reason = "the stored payload is not JSON (a cut-short body?): it cannot be mapped again"
        return await _requarantine(store, entry, connector, reason)
    try:
        order = prepare(adapter.to_order(raw, shop_code=entry.shop_code))  # checked once, as _map does
    except InvalidOrder as exc:
        return await _requarantine(store, entry, connector, str(exc), "invalid_order", raw)
    except Quarantine as exc:
        return await _requarantine(store, entry, connector, exc.reason, exc.code, raw)
    except Exception as exc:  # noqa: BLE001
        return await _requarantine(store, entry, connector, f"the adapter failed: {describe(exc)}",
                                   "adapter_error", raw)
    result = await ingest(store, [order], actor=connector)
    order_id = result.changed_ids[0] if result.changed_ids else \
        await store.order_id_by_no(order.values["channel_order_id"])
    return RetryOutcome(True, order_id=order_id)


async def _requarantine(store: Store, entry: Any, actor: Actor, reason: str, code: str | None = None,
                        raw: Any = None) -> RetryOutcome:
    payload = entry.payload if raw is None else raw
    item = QuarantineItem(entry.connector, entry.channel, entry.shop_code, payload, reason, code or entry.code,
                          external_id=entry.external_id)
    await ingest(store, [], actor=actor, quarantined=[item])
    return RetryOutcome(False, reason)


class _Stopped(Exception):
    """The stop event was set between two batches of a window."""


def describe(exc: BaseException) -> str:
    """An exception in plain words for the cursor and the Connectors screen (no traceback)."""
    if isinstance(exc, _Stopped):
        return "stopped"
    message = str(exc) or type(exc).__name__
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        message = f"{type(exc.orig).__name__}: {exc.orig}"
    elif not isinstance(exc, (Quarantine,)) and type(exc).__module__ != "connectors.http":
        message = f"{type(exc).__name__}: {message}"
    return clean_text(message)[:500]


def is_data_error(exc: BaseException) -> bool:
    """True when the database refused the *data* (a bad value), not when it is unreachable or busy."""
    if isinstance(exc, (IntegrityError, DataError, sqlite3.IntegrityError, sqlite3.DataError)):
        return True  # SQLAlchemy's, or the sqlite3 driver's own (ingest writes to it directly)
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return True  # a value SQLAlchemy could not bind (a naive datetime, a wrong type)
    return isinstance(exc, (ValueError, TypeError, OverflowError))
