"""Platform-direct connectors: one module per platform, each with its Source and its Adapter.

* ``taobao`` — Taobao and Tmall (the TOP API; Tmall is the same API with other shops),
* ``pdd`` — Pinduoduo, ``douyin`` — the Douyin shop (抖店).

A **Source** speaks the platform's HTTP API through :func:`connectors.http.request_json` and yields
raw order dicts page by page (:class:`connectors.base.Source`); an **Adapter** maps one raw dict to a
:class:`db.store.NewOrder` or raises :class:`connectors.base.Quarantine` (:class:`connectors.base.Adapter`).

What a Source raises (all :class:`connectors.http.SourceError`; the window was then *not* read):

* :class:`~connectors.http.TransientError` — rate limited, 5xx, timeout, connection lost, the
  platform's own "busy, retry" codes; carries ``retry_after`` when the platform hinted one. Each call
  is already retried (stamina, see ``connectors.http``); this is raised once that budget is spent.
* :class:`~connectors.http.TruncatedRead` — a body cut short or not JSON, or a page whose row count
  contradicts the total the platform gave (retried like a transient error first). Never a short
  read that looks complete.
* :class:`~connectors.http.PermanentError` — the platform refused the call: bad signature, bad
  parameters, window too large, credentials revoked. Retrying does not help; someone must look.
  :class:`TokenExpired` is one of these, handled inside the Source by one single-flight refresh.

Paging rule shared by all three (see :func:`backwards`): every platform here pages a time window
whose rows can *leave* it while it is read (an order modified again moves out past the window end).
Reading pages from the last one back to the first can only re-read such a row, never skip one;
reading forwards can skip one. So each Source first learns the total, then reads backwards, checks
every page's row count against the total that page reported, and restarts when the total grew.
Windows must end a few minutes behind platform time (the sync runner's lag) for that to hold.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import httpx
from aiolimiter import AsyncLimiter

from connectors.base import Quarantine
from connectors.http import (
    PermanentError,
    SourceError,
    TransientError,
    TruncatedRead,
    shared_limiter,
)
from db.sanitize import clean_text, is_clean

__all__ = [
    "CST",
    "PLATFORM_CHANNELS",
    "PermanentError",
    "PlatformSource",
    "SourceError",
    "TokenExpired",
    "Tokens",
    "TransientError",
    "TruncatedRead",
    "backwards",
    "cst_text",
    "epoch_time",
    "fen_amount",
    "make_adapter",
    "make_source",
    "parse_cst",
    "yuan_to_fen",
]

log = logging.getLogger(__name__)

#: The platforms' clock: Beijing time, whatever the host's zone.
CST = timezone(timedelta(hours=8), "CST")
_CST_OFFSET = timedelta(hours=8)  # China has had no daylight saving time since 1991
_CST_SECONDS = 8 * 3600
_YUAN = re.compile(r"(\d{1,12})(?:\.(\d{0,2}))?", re.ASCII)
_CST_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})", re.ASCII)
#: An id as platforms send it: what ``ident`` accepts after cleaning (\w is str.isalnum plus "_").
_IDENT = re.compile(r"[\w-]{1,64}")
#: Sane bounds for platform times (anything outside is a malformed payload, not an order).
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)
#: Amounts beyond this (10 billion 元) are malformed.
_MAX_FEN = 10**12


class TokenExpired(PermanentError):
    """The access token was refused as expired or invalid: refresh it, then send the call again."""


# -- credentials -------------------------------------------------------------------------------------


@dataclass
class Tokens:
    """An access token with its refresh token, refreshed single-flight.

    When several calls find the token expired at once, exactly one refresh call is made: the first
    caller refreshes under the lock; the others see the token has changed since they used it and
    simply retry with the new one. ``refreshes`` counts the refresh calls made.

    ``on_refresh(access, refresh)`` (sync or async) is told every new pair, before any caller uses
    it: the old refresh token is used up, so whoever persists tokens (``connectors.tokenstore``)
    must keep the new one. Its failure is logged, never raised into the sync. The values are kept
    out of ``repr``.
    """

    access_token: str = dataclasses.field(repr=False)
    refresh_token: str = dataclasses.field(default="", repr=False)
    refreshes: int = 0
    on_refresh: Callable[[str, str], Awaitable[None] | None] | None = dataclasses.field(
        default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._lock: asyncio.Lock | None = None

    async def refresh(self, stale: str, do_refresh: Callable[[str], Awaitable[tuple[str, str]]]) -> None:
        """Replace ``stale`` by a fresh token unless another caller already did."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.access_token != stale:
                return  # refreshed while this caller waited
            access, refresh = await do_refresh(self.refresh_token)
            self.access_token, self.refresh_token = access, refresh or self.refresh_token
            self.refreshes += 1
            if self.on_refresh is not None:
                try:
                    kept = self.on_refresh(self.access_token, self.refresh_token)
                    if inspect.isawaitable(kept):
                        await kept
                except Exception as error:  # noqa: BLE001 - the sync goes on with the pair in memory
                    log.error("the refreshed tokens could not be kept: %s", type(error).__name__)


T = TypeVar("T")


class PlatformSource:
    """What every platform Source shares: its HTTP client (its own unless it was given one), the
    rate limiter it shares with every Source of the same app key, and the expired-token retry.

    A subclass sets ``_client``, ``_own_client``, ``rate``, ``rate_key`` and ``tokens`` in its
    ``__init__`` and has an ``async _refresh(refresh_token) -> (access, refresh)``.
    """

    _client: httpx.AsyncClient | None
    _own_client: bool
    rate: float | None
    rate_key: str  # the limiter's key: "<platform>:<app key>"; the platform counts per app
    tokens: Tokens

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient()
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client if this Source made it."""
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def _limiter(self) -> AsyncLimiter | None:
        return shared_limiter(self.rate_key, self.rate) if self.rate else None

    async def _with_token(self, send: Callable[[str], Awaitable[T]]) -> T:
        """``send(access_token)``; when the platform says the token expired, refresh it (once for
        all callers, see :class:`Tokens`) and send again — once."""
        token = self.tokens.access_token
        try:
            return await send(token)
        except TokenExpired:
            await self.tokens.refresh(token, self._refresh)
        return await send(self.tokens.access_token)

    async def _refresh(self, refresh_token: str) -> tuple[str, str]:
        raise NotImplementedError


# -- backwards paging --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page as a Source read it: its rows and the total the platform reported with it."""

    rows: list[dict]
    total: int


async def backwards(
    fetch: Callable[[int], Awaitable[Page]],
    *,
    first: int,
    size: int,
    key: Callable[[dict], object],
    restarts: int = 3,
) -> AsyncIterator[list[dict]]:
    """Every row of a window, read from the last page back to the first.

    ``fetch(page)`` reads one page (numbered from ``first``) and must itself fail with
    :class:`TruncatedRead` when the page holds fewer rows than its own total implies (the Sources do
    that inside the retried call). Rows already yielded in this scan (same ``key``) are dropped, so a
    duplicate across pages reaches the runner once. If the total *grew* during the scan — rows
    arrived inside the window — the scan restarts from the new last page (up to ``restarts`` times),
    because rows pushed down past a page already read would otherwise be missed.
    """
    seen: set[object] = set()
    probe = await fetch(first)
    for _ in range(restarts + 1):
        total = probe.total
        if total <= 0:
            return
        pages = math.ceil(total / size)
        if pages == 1:
            yield _fresh(probe.rows, seen, key)
            return
        grew = False
        for number in range(first + pages - 1, first - 1, -1):
            page = await fetch(number)
            if page.total > total:
                grew = True
                probe = page
                break
            fresh = _fresh(page.rows, seen, key)
            if fresh:
                yield fresh
        if not grew:
            return
    raise TruncatedRead(f"the window kept growing while it was read ({restarts} restarts); read it again later")


def expect_rows(rows: list[dict], total: int, page_index: int, size: int, where: str) -> None:
    """Fail loudly when a page holds fewer rows than its own total says it must."""
    expected = max(0, min(size, total - page_index * size))
    if len(rows) < expected:
        raise TruncatedRead(
            f"{where}: page {page_index + 1} holds {len(rows)} rows but the platform's total of {total} "
            f"means {expected}: a short read"
        )


def _fresh(rows: list[dict], seen: set[object], key: Callable[[dict], object]) -> list[dict]:
    out = []
    for row in rows:
        k = key(row)
        if k is not None and k in seen:
            continue
        if k is not None:
            seen.add(k)
        out.append(row)
    return out


def split_window(start: datetime, end: datetime, step: timedelta) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` widened to whole seconds (what the platforms take), cut into pieces no
    longer than ``step``. Widening after cutting made a 30-minute piece 30 min 1 s, which PDD refuses."""
    lo, hi = whole_seconds(start, end)
    start, end = datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC)
    pieces = []
    cursor = start
    while cursor < end:
        nxt = min(cursor + step, end)
        pieces.append((cursor, nxt))
        cursor = nxt
    return pieces


def whole_seconds(start: datetime, end: datetime) -> tuple[int, int]:
    """A window's edges as epoch seconds, widened (never narrowed) to whole seconds."""
    lo = math.floor(start.timestamp())
    hi = math.ceil(end.timestamp())
    return lo, hi


def cst_text(value: datetime | int) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in Beijing time (epoch seconds or an aware datetime)."""
    if isinstance(value, int):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value + _CST_SECONDS))
    return value.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")


# -- payload parsing (adapters) ----------------------------------------------------------------------


def require_dict(raw: Any, what: str) -> dict:
    """``raw`` as a dict, or Quarantine."""
    if not isinstance(raw, dict):
        raise Quarantine(f"{what} is not a JSON object (got {type(raw).__name__})", code="invalid")
    return raw


def field(raw: dict, name: str, what: str) -> Any:
    """A required field, or Quarantine(missing_field)."""
    value = raw.get(name)
    if value is None or value == "":
        raise Quarantine(f"{what} has no {name}", code="missing_field")
    return value


def text(value: Any, *, multiline: bool = False) -> str:
    """Untrusted text as data: cleaned (``db.sanitize``); numbers become their digits; None is empty."""
    if type(value) is str:  # nearly always: the checks below are for the odd payload
        return (clean_text(value, multiline=multiline) if not is_clean(value) else value).strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        raise Quarantine(f"expected text, got {value!r}", code="invalid")
    if isinstance(value, (int, float, Decimal)):
        value = str(value)
    if not isinstance(value, str):
        raise Quarantine(f"expected text, got {type(value).__name__}", code="invalid")
    return clean_text(value, multiline=multiline).strip()


def ident(value: Any, what: str) -> str:
    """A platform id (digits, letters, dashes) given as text or a whole number."""
    if type(value) is str and _IDENT.fullmatch(value):  # nearly always: nothing to clean
        return value
    if isinstance(value, bool) or value is None:
        raise Quarantine(f"{what} is missing or not an id", code="missing_field")
    if isinstance(value, int):
        if value <= 0:
            raise Quarantine(f"{what} {value} is not a valid id", code="invalid")
        return str(value)
    if isinstance(value, str):
        cleaned = clean_text(value).strip()
        if cleaned and len(cleaned) <= 64 and all(c.isalnum() or c in "-_" for c in cleaned):
            return cleaned
    raise Quarantine(f"{what} {value!r} is not a valid id", code="invalid")


def whole(value: Any, what: str, *, minimum: int = 0, maximum: int = 10**9) -> int:
    """A whole number given as an int or as digits."""
    if isinstance(value, bool):
        raise Quarantine(f"{what} {value!r} is not a whole number", code="invalid")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise Quarantine(f"{what} {value!r} is not a whole number", code="invalid")
    if not minimum <= value <= maximum:
        raise Quarantine(f"{what} {value} is out of range ({minimum}–{maximum})", code="invalid")
    return value


def yuan_to_fen(value: Any, what: str) -> int:
    """An amount in 元 (``"123.45"``, ``123.45`` or ``123``) as whole 分, exactly (Decimal, never float)."""
    if type(value) is str:
        plain = _YUAN.fullmatch(value)  # "123.45": whole fen without Decimal (most amounts)
        if plain is not None:
            result = int(plain[1]) * 100 + int((plain[2] or "").ljust(2, "0"))
            if result <= _MAX_FEN:
                return result
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise Quarantine(f"{what} {value!r} is not an amount", code="invalid")
    try:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidOperation
            amount = Decimal(repr(value))  # the shortest text that reads back as this float: 29.9 → "29.9"
        elif isinstance(value, (int, str, Decimal)):
            amount = Decimal(value.strip() if isinstance(value, str) else value)
        else:
            raise InvalidOperation
        if not amount.is_finite():
            raise InvalidOperation
        fen = amount * 100
        if fen != fen.to_integral_value():
            raise Quarantine(f"{what} {value!r} has more than two decimals", code="invalid")
    except (ArithmeticError, ValueError):  # InvalidOperation, Overflow ...
        raise Quarantine(f"{what} {value!r} is not an amount in 元", code="invalid") from None
    result = int(fen)
    if not 0 <= result <= _MAX_FEN:
        raise Quarantine(f"{what} {value!r} is out of range", code="invalid")
    return result


def fen_amount(value: Any, what: str) -> int:
    """An amount already in 分 (Douyin): a whole, non-negative number."""
    if value is None or value == "":
        return 0
    return whole(value, what, maximum=_MAX_FEN)


def parse_cst(value: Any, what: str, *, required: bool = True) -> datetime | None:
    """``YYYY-MM-DD HH:MM:SS`` in Beijing time → aware UTC; None when optional and empty."""
    if value is None or value == "":
        if required:
            raise Quarantine(f"{what} is missing", code="missing_field")
        return None
    if not isinstance(value, str):
        raise Quarantine(f"{what} {value!r} is not a time", code="invalid")
    try:
        if _CST_TIME.fullmatch(value) is not None:  # the format exactly, then the C parser (4× the regex groups)
            utc = (datetime.fromisoformat(value) - _CST_OFFSET).replace(tzinfo=UTC)
        else:
            found = _CST_TIME.fullmatch(value.strip())
            if found is None:
                raise ValueError
            utc = datetime(*map(int, found.groups()), tzinfo=CST).astimezone(UTC)
    except ValueError:
        raise Quarantine(f"{what} {value!r} is not a time like 2026-11-20 14:00:00", code="invalid") from None
    return _bounded(utc, what)


def epoch_time(value: Any, what: str, *, required: bool = True) -> datetime | None:
    """Epoch seconds → aware UTC; None when optional and empty or 0 (platforms send 0 for "not yet")."""
    if value is None or value == "" or value == 0 or value == "0":
        if required:
            raise Quarantine(f"{what} is missing", code="missing_field")
        return None
    seconds = whole(value, what, minimum=1, maximum=4_102_444_800)
    return _bounded(datetime.fromtimestamp(seconds, UTC), what)


def _bounded(value: datetime, what: str) -> datetime:
    if not _EARLIEST <= value < _LATEST:
        raise Quarantine(f"{what} {value.isoformat()} is not a plausible time", code="invalid")
    return value


def items(value: Any, what: str) -> list[dict]:
    """A list of JSON objects (missing: empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise Quarantine(f"{what} is not a list", code="invalid")
    for item in value:
        require_dict(item, f"an entry of {what}")
    return value


def guarded(what: str) -> Callable:
    """Decorate an adapter method so that any malformed-payload error becomes a Quarantine.

    The adapters check every field they read and raise Quarantine with a precise reason; this is the
    net under that: a payload shaped in a way nobody foresaw is still quarantined with a reason
    (never a crash of the sync worker).
    """

    def wrap(fn: Callable) -> Callable:
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Quarantine:
                raise
            except (TypeError, ValueError, KeyError, AttributeError, IndexError, ArithmeticError) as exc:
                raise Quarantine(f"malformed {what} payload: {type(exc).__name__}: {exc}", code="invalid") from None

        inner.__name__ = fn.__name__
        inner.__doc__ = fn.__doc__
        return inner

    return wrap


# -- construction ------------------------------------------------------------------------------------

#: Channels with a platform-direct Source and Adapter here.
PLATFORM_CHANNELS: tuple[str, ...] = ("taobao", "tmall", "pdd", "douyin", "jd", "youzan", "kuaishou", "jst")
#: The Source and Adapter classes of the platforms whose arguments are the common ones.
_COMMON = {
    "jd": ("connectors.platforms.jd", "JdSource", "JdAdapter"),
    "youzan": ("connectors.platforms.youzan", "YouzanSource", "YouzanAdapter"),
    "kuaishou": ("connectors.platforms.kuaishou", "KuaishouSource", "KuaishouAdapter"),
    "jst": ("connectors.platforms.jst", "JstSource", "JstAdapter"),
}


def make_source(
    channel: str,
    base_url: str,
    *,
    shop_code: str,
    app_key: str,
    app_secret: str,
    access_token: str,
    refresh_token: str = "",
    **options: Any,
):  # noqa: ANN201 - TaobaoSource | PddSource | DouyinSource
    """One shop's Source for a channel, with the same argument names for every platform.

    ``options`` go to the Source: ``client`` (a shared ``httpx.AsyncClient``), ``page_size``,
    ``timeout``, ``policy`` (``connectors.http.RetryPolicy``), ``rate`` (calls/s per app key), and
    per platform ``max_window`` (Taobao), ``max_rows`` (Douyin). After a token refresh the Source's
    ``tokens.access_token`` / ``tokens.refresh_token`` hold the new pair (the old refresh token is
    used up on every platform here), so a caller that persists tokens should read them back.
    """
    if channel in ("taobao", "tmall"):
        from connectors.platforms.taobao import TaobaoSource

        return TaobaoSource(
            base_url, channel=channel, shop_code=shop_code, app_key=app_key, app_secret=app_secret,
            session=access_token, refresh_token=refresh_token, **options,
        )
    if channel == "pdd":
        from connectors.platforms.pdd import PddSource

        return PddSource(
            base_url, shop_code=shop_code, client_id=app_key, client_secret=app_secret,
            access_token=access_token, refresh_token=refresh_token, **options,
        )
    if channel == "douyin":
        from connectors.platforms.douyin import DouyinSource

        return DouyinSource(
            base_url, shop_code=shop_code, app_key=app_key, app_secret=app_secret,
            access_token=access_token, refresh_token=refresh_token, **options,
        )
    if channel in _COMMON:
        import importlib

        module, source, _ = _COMMON[channel]
        return getattr(importlib.import_module(module), source)(
            base_url, shop_code=shop_code, app_key=app_key, app_secret=app_secret,
            access_token=access_token, refresh_token=refresh_token, **options,
        )
    raise ValueError(f"no platform connector for channel {channel!r} (have: {', '.join(PLATFORM_CHANNELS)})")


def make_adapter(channel: str, status_overrides: Any = None):  # noqa: ANN201 - an Adapter
    """The Adapter for a channel, its status map laid over with ``status_overrides`` (deskapp.toml)."""
    if channel in ("taobao", "tmall"):
        from connectors.platforms.taobao import TaobaoAdapter

        return TaobaoAdapter(channel, status_overrides)
    if channel == "pdd":
        from connectors.platforms.pdd import PddAdapter

        return PddAdapter(status_overrides)
    if channel == "douyin":
        from connectors.platforms.douyin import DouyinAdapter

        return DouyinAdapter(status_overrides)
    if channel in _COMMON:
        import importlib

        module, _, adapter = _COMMON[channel]
        return getattr(importlib.import_module(module), adapter)(status_overrides)
    raise ValueError(f"no platform adapter for channel {channel!r} (have: {', '.join(PLATFORM_CHANNELS)})")
