"""Shared fixtures for connector tests: platform emulators on free ports, Sources wired to them,
the exactly-once scan, and Hypothesis strategies that mutate real platform payloads.

Every emulator here runs on 127.0.0.1, port 0 (a free port), with its clock frozen at ``NOW``
(``speed=0``): tests move time with ``emu.world.advance``. Retries keep happening but stamina's waits
are removed (``fast_retries``); the timeout fault answers after 0.5 s against a 0.25 s client timeout.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache

import httpx
import pytest
import stamina
from hypothesis import strategies as st

from connectors.base import Window
from connectors.checksum import order_checksum
from connectors.emulators import RunningEmulator, start_emulator
from connectors.emulators.core import Clock, World, make_platform
from connectors.platforms import make_adapter, make_source

#: The frozen emulator clock of these tests (the demo's fixed "now").
NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
#: A bad day on a platform: every fault on at once (fractions of calls).
BAD_DAY = "429=0.05,limit=0.03,500=0.05,timeout=0.02,truncate=0.04,shift=0.15,late=0.1,dup=0.15"
#: How far back a late change can hide (faults.py draws 1–10 minutes).
LATE_MAX = timedelta(minutes=10)
CLIENT_TIMEOUT = 0.25
SLOW_SECONDS = 0.5


@pytest.fixture(autouse=True)
def private_token_file(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rotated tokens go to a file of the test's own, never to the user's data directory."""
    monkeypatch.setenv("DESKAPP_TOKEN_FILE", str(tmp_path_factory.mktemp("tokens") / "tokens.json"))


@pytest.fixture
def fast_retries() -> Iterator[None]:
    """stamina retries as configured, but without waiting (Retry-After included)."""
    with stamina.set_testing(True, attempts=15):
        yield


@pytest.fixture
def emulator() -> Iterator[Callable[..., RunningEmulator]]:
    """A factory: ``emulator("pdd", orders=100, faults=BAD_DAY)`` starts one; all stop at teardown."""
    started: list[RunningEmulator] = []

    def start(channel: str, **options: object) -> RunningEmulator:
        options = {"now": NOW, "speed": 0, "orders": 120, "seed": 11, "slow_seconds": SLOW_SECONDS, **options}
        emu = start_emulator(channel, 0, **options)
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """One HTTP client for the test's Sources."""
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def source_for(http: httpx.AsyncClient) -> Callable:
    """``source_for(emu, shop, **overrides) -> (source, adapter)`` for the emulator's channel."""

    def make(emu: RunningEmulator, shop: str, **overrides: object):  # noqa: ANN202
        creds = emu.credentials(shop)
        secret = overrides.pop("app_secret", creds["app_secret"])
        # rate None: no client-side limit (JD's Source keeps 10/s by default) unless a test asks for one
        options = {"client": http, "timeout": CLIENT_TIMEOUT, "page_size": 10, "rate": None, **overrides}
        source = make_source(
            emu.channel, emu.url, shop_code=shop, app_key=creds["app_key"], app_secret=secret,
            access_token=creds["access_token"], refresh_token=creds["refresh_token"], **options,
        )
        return source, make_adapter(emu.channel)

    return make


async def collect(source, adapter, window: Window, into: dict) -> int:  # noqa: ANN001
    """Map every row of ``window`` and keep each order's newest version in ``into``; rows read."""
    rows = 0
    async for page in source.pages(window):
        for raw in page:
            rows += 1
            order = adapter.to_order(raw, shop_code=source.shop_code)
            held = into.get(order.channel_order_id)
            if held is None or held.modified_at <= order.modified_at:
                into[order.channel_order_id] = order
    return rows


@pytest.fixture
def full_scan(source_for: Callable) -> Callable:
    """The exactly-once check: read every shop of an emulator as a sync runner would, compare with truth.

    Phase 1 reads ``[now - days, now)`` with whatever faults the emulator has. Phase 2 — after the
    clock moved past every late change — turns off ``shift`` (an order bumped to "now" leaves any
    window that ends now) and re-reads from ``now - LATE_MAX``: the overlap a runner keeps so that
    late-visible changes are not lost. Returns (orders by id, truth by id, rows read).
    """

    async def scan(emu: RunningEmulator, *, days: float, **source_options: object) -> tuple[dict, dict, int]:
        got: dict = {}
        rows = 0
        start = NOW - timedelta(days=days, minutes=5)
        sources = [source_for(emu, shop, **source_options) for shop in emu.world.shops]
        for source, adapter in sources:
            rows += await collect(source, adapter, Window(start, NOW), got)
        spec = {k: v for k, v in emu.world.faults.spec.rates.items() if k not in ("shift", "late")}
        emu.world.set_faults(",".join(f"{k}={v}" for k, v in spec.items()))
        later = datetime.fromtimestamp(emu.world.advance(LATE_MAX.total_seconds() + 60), UTC)
        for source, adapter in sources:
            rows += await collect(source, adapter, Window(NOW - LATE_MAX, later), got)
        truth = emu.truth()
        assert all(entry["visible"] for entry in truth), "a late change is still hidden after the lag"
        return got, {entry["id"]: entry["checksum"] for entry in truth}, rows

    return scan


def checksums_of(orders: dict) -> dict[str, str]:
    """id → checksum of mapped orders."""
    return {oid: order_checksum(order) for oid, order in orders.items()}


# -- payload fuzzing ---------------------------------------------------------------------------------


@cache
def platform_samples(channel: str) -> tuple[dict, ...]:
    """Real payloads of a platform in many states: a small world's orders, rendered as the API would."""
    platform = make_platform(channel)
    world = World(platform, orders=40, seed=5, clock=Clock(NOW, 0), days=12)
    world.advance(3 * 86_400)
    return tuple(world.visible(order) for order in world.orders.values())


_ODD_TEXT = st.sampled_from(
    ["", " ", "0", "-1", "1e999", "NaN", "Infinity", "12.345", "-0.01", "2026-13-45 99:99:99", "2026-11-20 14:00:00",
     "１２３.４５", "\x1b]52;c;ZWNobyBwd25lZA==\x07", "[@click=app.quit]", "\u202e反转", "~AgAAAAB~", "138****1234",
     "9" * 40, "null", "true"]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    _ODD_TEXT,
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)


def _slots(value: object, out: list) -> list:
    """Every (container, key) in a JSON value, depth first, in a stable order."""
    if isinstance(value, dict):
        for key in list(value):
            out.append((value, key))
            _slots(value[key], out)
    elif isinstance(value, list):
        for index in range(len(value)):
            out.append((value, index))
            _slots(value[index], out)
    return out


@st.composite
def mutated(draw: st.DrawFn, samples: tuple[dict, ...]) -> object:
    """A real payload with 1–4 fields deleted or replaced by odd JSON values (sometimes garbage whole)."""
    if draw(st.integers(0, 19)) == 0:
        return draw(_VALUES)
    payload = copy.deepcopy(draw(st.sampled_from(samples)))
    for _ in range(draw(st.integers(1, 4))):
        slots = _slots(payload, [])
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        if draw(st.booleans()):
            del container[key]
        else:
            container[key] = draw(_VALUES)
    return payload


def assert_maps_or_quarantines(adapter, payload: object) -> None:  # noqa: ANN001
    """The adapter contract on any payload: a sane NewOrder, or Quarantine with a reason — nothing else."""
    from connectors.base import Quarantine

    try:
        order = adapter.to_order(payload, shop_code="shop1")
    except Quarantine as exc:
        assert exc.reason and isinstance(exc.reason, str)
        assert exc.code
        return
    assert order.channel_order_id and order.created_at.tzinfo is not None
    assert order.modified_at is None or order.modified_at.tzinfo is not None
    for amount in (order.total_fen, order.paid_fen, order.post_fee_fen, order.discount_fen):
        assert isinstance(amount, int) and not isinstance(amount, bool) and amount >= 0
    assert order.lines and all(isinstance(line.price_fen, int) and line.quantity >= 1 for line in order.lines)
    for value in (order.receiver_name, order.receiver_phone, order.address_detail, order.buyer_note):
        assert "\x1b" not in value and "\u202e" not in value
