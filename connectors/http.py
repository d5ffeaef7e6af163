"""HTTP for platform Sources: one request path with explicit timeouts, rate limits and retries.

Every Source (``connectors/platforms/*``, ``connectors/generic.py``) sends its calls through
:func:`request_json`, so a failing platform is retried the same way everywhere:

* **Transient** failures — 429 (its ``Retry-After`` honoured, capped), 5xx, timeouts, connection
  errors, a body cut short or not JSON — are retried by `stamina`_ with exponential backoff and
  jitter, capped in attempts *and* total time (:class:`RetryPolicy`). When the budget runs out the
  last error is raised: :class:`TransientError` or :class:`TruncatedRead`.
* **Platform errors inside a 200 answer** (Taobao ``error_response``, PDD ``error_code`` ...) are the
  Source's business: pass ``check=`` — a function of the parsed body that raises
  :class:`TransientError` (rate limited, "retry later": retried like a 429) or
  :class:`PermanentError` (bad parameters, bad signature, window too large: never retried).
* Other 4xx answers raise :class:`PermanentError` at once (retrying cannot fix them).

The sync runner (``connectors.sync``) treats any :class:`SourceError` (or any other exception) from
``Source.pages`` as "this window was not read": it records the error and does not move the watermark.

Rate limits: pass ``limiter=`` — an :class:`aiolimiter.AsyncLimiter`, usually
``shared_limiter("taobao:APPKEY", 10)`` so every Source of one app key shares one budget (limiters
are per event loop; the registry handles that). Each attempt, retries included, takes a slot.

Tests: ``stamina.set_testing(True, attempts=N, cap=True)`` keeps the retries but removes every wait
(Retry-After included). Retries are logged by stamina's own instrumentation on the ``stamina``
logger; route it to the log file, never to the terminal the TUI owns.

.. _stamina: https://stamina.hynek.me
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import stamina
from aiolimiter import AsyncLimiter

log = logging.getLogger(__name__)

#: Explicit timeouts for every phase: httpx's default is 5 s for each, and a platform under
#: promotion load answers slower than that while still answering.
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


class SourceError(Exception):
    """A platform call failed; the window it belonged to was not read."""


class TransientError(SourceError):
    """A failure that may pass: rate limited, server error, timeout, connection lost.

    ``retry_after`` is the platform's hint in seconds (``Retry-After`` or its body), if it gave one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class TruncatedRead(SourceError):
    """A body cut short, not JSON, or inconsistent with the counts the platform gave.

    Raised by :func:`request_json` for unparseable bodies (after retrying them) and by Sources for
    a page that contradicts ``total_results``/``has_next``: a short read must never look complete.
    """


class PermanentError(SourceError):
    """A failure retrying cannot fix: bad parameters or signature, forbidden, window too large."""

    def __init__(self, message: str, *, code: str | int | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry one call. ``timeout`` caps the total time spent on it, waits included."""

    attempts: int = 6
    timeout: float = 90.0
    wait_initial: float = 0.25
    wait_max: float = 10.0
    wait_jitter: float = 1.0
    #: A Retry-After longer than this is cut to it (a platform asking for an hour gets retried sooner,
    #: and the total ``timeout`` still ends the call).
    max_retry_after: float = 30.0


DEFAULT_POLICY = RetryPolicy()


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def backoff_hook(policy: RetryPolicy = DEFAULT_POLICY) -> Callable[[Exception], bool | float]:
    """The stamina ``on=`` hook: retry transient errors and truncated bodies, never anything else.

    A transient error carrying a ``retry_after`` hint waits that long (capped); others take
    stamina's exponential backoff with jitter.
    """

    def decide(exc: Exception) -> bool | float:
        if isinstance(exc, TransientError):
            if exc.retry_after is not None:
                return min(exc.retry_after, policy.max_retry_after)
            return True
        return isinstance(exc, TruncatedRead)

    return decide


def classify_response(response: httpx.Response) -> Any:
    """The parsed JSON body of a response, or the error it stands for."""
    status = response.status_code
    if status == 429:
        raise TransientError(
            f"rate limited (HTTP 429) by {response.request.url.host}",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            status=status,
        )
    if status >= 500:
        raise TransientError(
            f"server error HTTP {status} from {response.request.url.host}",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            status=status,
        )
    if status >= 400:
        raise PermanentError(
            f"HTTP {status} from {response.request.url.host}: {response.text[:200]!r}", status=status
        )
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TruncatedRead(
            f"body from {response.request.url.host} is not complete JSON ({len(response.content)} bytes): {exc}"
        ) from None


async def request_json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    params: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
    data: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
    json_body: Any = None,
    headers: Mapping[str, str] | None = None,
    limiter: AsyncLimiter | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    check: Callable[[Any], None] | None = None,
    timeout: httpx.Timeout | float | None = None,
) -> Any:
    """Send one call and return its parsed JSON body, retrying transient failures (see module doc).

    ``params`` and ``data`` (form fields) may be zero-argument callables: they are called again for
    every attempt, so a Source whose signature covers a timestamp signs each retry afresh.
    ``check(body)`` runs on every parsed body and may raise :class:`TransientError` or
    :class:`PermanentError`.
    """
    kwargs: dict[str, Any] = {"headers": headers, "timeout": timeout or DEFAULT_TIMEOUT}
    if json_body is not None:
        kwargs["json"] = json_body
    async for attempt in stamina.retry_context(
        on=backoff_hook(policy),
        attempts=policy.attempts,
        timeout=policy.timeout,
        wait_initial=policy.wait_initial,
        wait_max=policy.wait_max,
        wait_jitter=policy.wait_jitter,
    ):
        with attempt:
            kwargs["params"] = params() if callable(params) else params
            if data is not None:
                kwargs["data"] = data() if callable(data) else data
            return await _attempt(client, method, url, kwargs, limiter, check)
    raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover


async def _attempt(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    kwargs: dict[str, Any],
    limiter: AsyncLimiter | None,
    check: Callable[[Any], None] | None,
) -> Any:
    if limiter is not None:
        await limiter.acquire()
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise TransientError(f"timed out calling {url}: {type(exc).__name__}") from None
    except (httpx.TransportError, httpx.DecodingError) as exc:
        # Connection refused/reset, or the body ended before its Content-Length: both transient.
        raise TransientError(f"connection failed calling {url}: {type(exc).__name__}: {exc}") from None
    body = classify_response(response)
    if check is not None:
        check(body)
    return body


_LIMITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncLimiter]] = (
    weakref.WeakKeyDictionary()
)


def shared_limiter(key: str, rate: float, period: float = 1.0) -> AsyncLimiter:
    """One limiter per ``key`` (e.g. ``"taobao:APPKEY"``) on the running event loop: ``rate`` calls
    per ``period`` seconds. The first caller's rate wins for a key."""
    loop = asyncio.get_running_loop()
    per_loop = _LIMITERS.setdefault(loop, {})
    limiter = per_loop.get(key)
    if limiter is None:
        limiter = per_loop[key] = AsyncLimiter(rate, period)
    return limiter
