"""What every group robot shares: the :class:`Notice`, batching under the rate limit, sending and retrying.

A :class:`Robot` turns notices into its platform's webhook JSON (``wecom``, ``dingtalk``, ``feishu``
subclass it) and sends them with the house retry approach of :mod:`connectors.http`: explicit
timeouts, `stamina` backoff capped in attempts and total time, ``Retry-After`` honoured; each platform
reads its own error answers (``errcode`` / ``code`` / ``StatusCode``) in :meth:`Robot.check`.

**Rate limits and batching.** A robot's documented limit (WeCom and DingTalk 20 messages a minute,
Feishu 100 a minute and 5 a second) is kept with `aiolimiter` leaky buckets shared per webhook on the
event loop (:func:`connectors.http.shared_limiter`). A leaky bucket of capacity *C* draining at *r*
lets through ``C + r·T`` messages in any window *T*, so a bucket of ``n/2`` per period is what keeps
"n per period" in *every* window (a bucket of ``n`` would allow 2n in a minute — and DingTalk mutes a
robot for 10 minutes past 20). :meth:`Robot.send` spends the free slots it has on single notices and,
when there are more notices than slots, packs the rest into one digest message (as many as fit the
platform's size limit; identical notices are sent once). What cannot be sent now — no slot, the
platform said "too many requests", a server error that outlived its retries — stays queued in the
robot and goes out, merged, on the next :meth:`Robot.send`.

**Secrets.** The webhook URL (it carries WeCom's ``key``, DingTalk's ``access_token``, Feishu's hook
id) and the signing secret are :class:`~connectors.config.SecretRef` names, read from the environment
at send time; no exception message, log line or ``repr`` here contains them (errors name the robot as
``kind:name``). httpx itself logs each request's URL at INFO on the ``httpx`` logger: the app keeps that
logger at WARNING (``deskapp.__main__._setup_logging``).

**Text is data.** Notice titles and lines are plain text (order numbers come from platforms): robots
strip terminal controls and neutralise the characters their markup would read (``<at …>``, ``[link](…)``,
``**``) before wrapping them in their own formatting.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
import stamina
from aiolimiter import AsyncLimiter

from connectors.config import MissingSecret, SecretRef
from connectors.http import (
    PermanentError,
    RetryPolicy,
    SourceError,
    TransientError,
    TruncatedRead,
    backoff_hook,
    classify_response,
    shared_limiter,
)
from db.sanitize import clean_text

log = logging.getLogger(__name__)

#: Explicit timeouts: a robot answers in well under a second; a stuck one must not hold a tick long.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
#: Notifications retry a few times within half a minute; what still fails stays queued for the next send.
NOTIFY_POLICY = RetryPolicy(attempts=4, timeout=30.0, wait_initial=0.5, wait_max=5.0, max_retry_after=10.0)
#: Notices kept queued per robot while it cannot send (muted, failing); the oldest go first beyond this.
MAX_PENDING = 500

#: A mention that means "everyone in the group".
MENTION_ALL = "all"
_MOBILE = re.compile(r"^(?:\+?86[- ]?)?(1\d{10})$")
#: Notice levels: 0 information, 1–3 escalation levels (3 the most urgent).
LEVELS = (0, 1, 2, 3)


def mobile(mention: str) -> str | None:
    """The 11-digit mainland mobile number a mention stands for, or None (a user id, ``all``)."""
    match = _MOBILE.match(mention.strip())
    return match.group(1) if match else None


def is_all(mention: str) -> bool:
    """Whether a mention means everyone (``all``, ``@all``)."""
    return mention.strip().lower() in ("all", "@all")


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing to tell a group: a title, plain-text lines, a level and whom to @.

    ``level``: 0 information, 1–3 escalation levels (3 the most urgent); robots colour by it where
    their format can. ``mentions``: mobile numbers, platform user ids (WeCom userid, DingTalk userId,
    Feishu open_id ``ou_…``) or ``all``; each robot @s them the way its platform does.
    """

    title: str
    lines: tuple[str, ...] = ()
    level: int = 1
    mentions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))
        object.__setattr__(self, "mentions", tuple(self.mentions))
        object.__setattr__(self, "level", max(0, min(3, int(self.level))))


@dataclass(frozen=True)
class Delivery:
    """What one :meth:`Robot.send` did.

    ``messages``: webhook calls that succeeded; ``sent``: notices they carried (a digest carries
    several); ``batched``: of those, notices that went inside a digest; ``queued``: notices still
    waiting in the robot; ``dropped``: notices given up (a permanent error, or the queue overflowed);
    ``error``: the last failure in plain words (never a secret); ``muted_for``: seconds the robot
    waits before trying again after the platform said "too many requests".
    """

    robot: str
    messages: int = 0
    sent: int = 0
    batched: int = 0
    queued: int = 0
    dropped: int = 0
    error: str | None = None
    muted_for: float | None = None

    @property
    def ok(self) -> bool:
        """Nothing failed (notices may still be queued behind the rate limit)."""
        return self.error is None


class RobotMuted(SourceError):
    """The platform refused for sending too fast and will keep refusing for ``seconds``.

    Not retried in place (DingTalk mutes a robot for 10 minutes): the robot keeps its notices and
    sends them, merged, once the time has passed.
    """

    def __init__(self, message: str, *, seconds: float, code: int | str | None = None) -> None:
        super().__init__(message)
        self.seconds = seconds
        self.code = code


@dataclass(frozen=True)
class RobotSpec:
    """How to reach one robot: its kind, a name for messages and logs, and its secrets by reference."""

    kind: str
    name: str
    webhook: SecretRef
    secret: SecretRef | None = None
    format: str | None = None  # None: the kind's default
    language: str = "zh"

    @property
    def label(self) -> str:
        """``kind:name`` — what errors and logs call this robot (no secret in it)."""
        return f"{self.kind}:{self.name}"


# -- text helpers shared by the renderers ------------------------------------------------------------

#: Characters the robots' markdown (and Feishu's text ``<at>`` tags) would read, and look-alikes that
#: they do not: untrusted text keeps its meaning but cannot become a link, a mention or bold.
_MARKUP_LOOKALIKES = str.maketrans({
    "<": "＜", ">": "＞", "[": "［", "]": "］", "*": "＊", "`": "｀", "\\": "＼", "~": "～", "|": "｜",
    "#": "＃", "_": "＿",
})


def plain(text: str) -> str:
    """One line of untrusted text, safe inside a message: controls stripped, on one line."""
    return clean_text(str(text)).strip()


def neutral(text: str) -> str:
    """:func:`plain`, with every character the platforms' markup would read replaced by a look-alike."""
    return plain(text).translate(_MARKUP_LOOKALIKES)


def mention_id(mention: str) -> str:
    """A mention id as it goes inside a tag (``<@id>``, ``<at user_id="id">``, ``@id``): nothing that closes it."""
    return re.sub(r'[\s<>"\'&]', "", plain(mention))


def merged_mentions(notices: Sequence[Notice]) -> tuple[str, ...]:
    """Every notice's mentions, each once, in order of first appearance."""
    seen: dict[str, None] = {}
    for notice in notices:
        for mention in notice.mentions:
            key = mention.strip()
            if key:
                seen.setdefault(key, None)
    return tuple(seen)


def digest_title(notices: Sequence[Notice], language: str) -> str:
    """The title of a message carrying several notices."""
    if language == "en":
        return f"{len(notices)} notices"
    return f"共 {len(notices)} 条提醒"


@dataclass(frozen=True)
class Layout:
    """A message's parts before a platform's markup: a title and sections of lines.

    One notice: its title, and one untitled section of its lines. Several (a digest): a count as the
    title, and one section per notice headed by its title. All text is :func:`plain` already.
    """

    title: str
    sections: tuple[tuple[str | None, tuple[str, ...]], ...]
    level: int
    mentions: tuple[str, ...]


def layout(notices: Sequence[Notice], language: str) -> Layout:
    """The :class:`Layout` of one message carrying ``notices``."""
    level = max(n.level for n in notices)
    mentions = merged_mentions(notices)
    if len(notices) == 1:
        only = notices[0]
        return Layout(plain(only.title), ((None, tuple(plain(line) for line in only.lines)),), level, mentions)
    sections = tuple((plain(n.title), tuple(plain(line) for line in n.lines)) for n in notices)
    return Layout(digest_title(notices, language), sections, level, mentions)


def json_bytes(body: Any) -> bytes:
    """The request body as the platforms expect it: UTF-8 JSON, Chinese unescaped."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- the robot ---------------------------------------------------------------------------------------


class Robot(abc.ABC):
    """One group robot: renders notices in its platform's format, batches under its limit, sends.

    ``client`` is shared (the caller owns and closes it). ``clock`` (monotonic seconds) times mutes;
    ``wall`` (epoch seconds) stamps signatures; both are injectable for tests. ``environ`` replaces
    ``os.environ`` when reading the secrets.
    """

    kind: ClassVar[str]
    #: Message formats this platform offers for notices; the first is the default.
    formats: ClassVar[tuple[str, ...]]
    #: (messages, seconds) limits, all of which hold at once.
    limits: ClassVar[tuple[tuple[int, float], ...]]
    #: Whether the platform can sign requests with a secret.
    signs: ClassVar[bool] = False

    def __init__(
        self,
        spec: RobotSpec,
        *,
        client: httpx.AsyncClient,
        policy: RetryPolicy = NOTIFY_POLICY,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
        max_pending: int = MAX_PENDING,
    ) -> None:
        if spec.kind != self.kind:
            raise ValueError(f"a {type(self).__name__} cannot send for a {spec.kind!r} robot")
        fmt = spec.format or self.formats[0]
        if fmt not in self.formats:
            raise ValueError(f"{spec.label}: format {fmt!r} is not one of {', '.join(self.formats)}")
        if spec.secret is not None and not self.signs:
            raise ValueError(f"{spec.label}: {self.kind} robots do not sign; drop the secret")
        self.spec = spec
        self.format = fmt
        self.language = spec.language
        self._client = client
        self._policy = policy
        self._timeout = timeout
        self._clock = clock
        self._wall = wall
        self._environ = environ
        self._max_pending = max_pending
        self._pending: list[Notice] = []
        self._overflowed = 0
        self._muted_until: float | None = None
        self._sending = asyncio.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.spec.name!r}, format={self.format!r})"

    @property
    def name(self) -> str:
        """The robot's name in the config."""
        return self.spec.name

    @property
    def label(self) -> str:
        """``kind:name``, what messages and logs call it."""
        return self.spec.label

    @property
    def pending(self) -> int:
        """Notices waiting to be sent."""
        return len(self._pending)

    # -- what each platform defines ------------------------------------------------------------

    @abc.abstractmethod
    def render(self, notices: Sequence[Notice]) -> dict[str, Any]:
        """The webhook JSON for one message carrying ``notices`` (one notice, or a digest of several)."""

    @abc.abstractmethod
    def fits(self, body: Mapping[str, Any]) -> bool:
        """Whether a rendered message is within the platform's size limit."""

    @abc.abstractmethod
    def check(self, answer: Any) -> None:
        """Read the platform's answer: return when it accepted the message, raise otherwise.

        Raises :class:`RobotMuted` for "too many requests" that lasts, :class:`TransientError` for
        what may pass in a moment, :class:`PermanentError` for what retrying cannot fix.
        """

    def sign_request(self, url: httpx.URL, body: dict[str, Any], secret: str | None) -> tuple[httpx.URL, dict]:
        """The URL and body to send, signed now where the platform signs (the default: as they are)."""
        return url, body

    # -- sending ---------------------------------------------------------------------------------

    async def send(self, notices: Iterable[Notice] = ()) -> Delivery:
        """Queue ``notices`` and send what the rate limit allows now (see the module doc).

        Never raises for a platform failure: the :class:`Delivery` says what happened. Calling it with
        nothing new flushes what is queued.
        """
        async with self._sending:
            return await self._send(list(notices))

    async def _send(self, notices: list[Notice]) -> Delivery:
        self._enqueue(notices)
        dropped, self._overflowed = self._overflowed, 0
        if not self._pending:
            return Delivery(self.label, dropped=dropped)
        now = self._clock()
        if self._muted_until is not None:
            if now < self._muted_until:
                return Delivery(self.label, queued=len(self._pending), dropped=dropped,
                                muted_for=self._muted_until - now)
            self._muted_until = None
        try:
            webhook = self.spec.webhook.value(self._environ)
            secret = self.spec.secret.value(self._environ) if self.spec.secret is not None else None
        except MissingSecret as exc:
            error = f"{self.label}: {exc}"
            log.warning("robot %s", error)
            return Delivery(self.label, queued=len(self._pending), dropped=dropped, error=error)
        limiters = self._limiters(webhook)
        messages = sent = batched = 0
        error: str | None = None
        muted_for: float | None = None
        waited = False
        while self._pending:
            free = _free_slots(limiters, len(self._pending))
            if free == 0:
                if waited:
                    break  # one wait for a slot per call; the rest goes out on the next send
                waited = True
            single = free >= 2 or len(self._pending) <= free
            batch, body = self._one(self._pending[0]) if single else self._pack(self._pending)
            try:
                await self._post(webhook, secret, body, limiters)
            except RobotMuted as exc:
                self._muted_until = self._clock() + exc.seconds
                muted_for, error = exc.seconds, str(exc)
                break
            except (TransientError, TruncatedRead) as exc:
                error = str(exc)
                break
            except PermanentError as exc:
                # Retrying cannot fix it (bad key, bad signature, a message the platform refuses):
                # give these notices up, keep the rest for the next call.
                del self._pending[: len(batch)]
                dropped += len(batch)
                error = str(exc)
                break
            del self._pending[: len(batch)]
            messages += 1
            sent += len(batch)
            if len(batch) > 1:
                batched += len(batch)
        if error is not None:
            log.warning("robot %s: %s (%d notice(s) queued, %d dropped)", self.label, error,
                        len(self._pending), dropped)
        return Delivery(self.label, messages=messages, sent=sent, batched=batched, queued=len(self._pending),
                        dropped=dropped, error=error, muted_for=muted_for)

    def _enqueue(self, notices: list[Notice]) -> None:
        for notice in notices:
            if notice not in self._pending:  # the same alert twice goes out once
                self._pending.append(notice)
        excess = len(self._pending) - self._max_pending
        if excess > 0:
            del self._pending[:excess]
            self._overflowed += excess
            log.warning("robot %s: queue full, %d oldest notice(s) dropped", self.label, excess)

    def _one(self, notice: Notice) -> tuple[list[Notice], dict[str, Any]]:
        """One notice as its own message, its lines cut short if the whole would not fit."""
        body = self.render([notice])
        if self.fits(body):
            return [notice], body
        lines = list(notice.lines)
        while lines:
            lines.pop()
            more = len(notice.lines) - len(lines)
            tail = f"…（另有 {more} 行）" if self.language != "en" else f"… ({more} more lines)"
            body = self.render([Notice(notice.title, (*lines, tail), notice.level, notice.mentions)])
            if self.fits(body):
                return [notice], body
        title = notice.title
        while len(title) > 1:
            title = title[: len(title) // 2]
            body = self.render([Notice(title + "…", (), notice.level, notice.mentions)])
            if self.fits(body):
                break
        return [notice], body

    def _pack(self, pending: Sequence[Notice]) -> tuple[list[Notice], dict[str, Any]]:
        """As many notices from the front of ``pending`` as fit one digest message."""
        batch, body = self._one(pending[0])
        for notice in pending[1:]:
            candidate = self.render([*batch, notice])
            if not self.fits(candidate):
                break
            batch.append(notice)
            body = candidate
        return batch, body

    def _limiters(self, webhook: str) -> list[AsyncLimiter]:
        # Keyed by a hash of the webhook: every Robot object for the same group robot shares one
        # budget on this event loop, and the key itself holds no secret.
        digest = hashlib.sha256(webhook.encode()).hexdigest()[:16]
        return [shared_limiter(f"robot:{self.kind}:{digest}:{period:g}", max(1, count // 2), period)
                for count, period in self.limits]

    async def _post(self, webhook: str, secret: str | None, body: dict[str, Any],
                    limiters: Sequence[AsyncLimiter]) -> None:
        policy = self._policy
        async for attempt in stamina.retry_context(
            on=backoff_hook(policy),
            attempts=policy.attempts,
            timeout=policy.timeout,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
            wait_jitter=policy.wait_jitter,
        ):
            with attempt:
                for limiter in limiters:  # every attempt, retries included, takes a slot
                    await limiter.acquire()
                url, signed = self.sign_request(httpx.URL(webhook), body, secret)  # a fresh timestamp each try
                try:
                    response = await self._client.post(
                        url, content=json_bytes(signed), timeout=self._timeout,
                        headers={"Content-Type": "application/json; charset=utf-8"},
                    )
                except httpx.TimeoutException as exc:
                    # Messages name the robot, never the URL: the URL is the secret.
                    raise TransientError(f"{self.label}: timed out ({type(exc).__name__})") from None
                except (httpx.TransportError, httpx.DecodingError) as exc:
                    raise TransientError(f"{self.label}: connection failed ({type(exc).__name__})") from None
                try:
                    answer = classify_response(response)
                except TransientError as exc:
                    raise TransientError(f"{self.label}: {exc}", retry_after=exc.retry_after,
                                         status=exc.status) from None
                except PermanentError as exc:
                    raise PermanentError(f"{self.label}: {exc}", status=exc.status) from None
                except TruncatedRead as exc:
                    raise TruncatedRead(f"{self.label}: {exc}") from None
                self.check(answer)


def _free_slots(limiters: Sequence[AsyncLimiter], most: int) -> int:
    """How many messages every limiter lets through right now (at most ``most``)."""
    free = 0
    while free < most and all(limiter.has_capacity(free + 1) for limiter in limiters):
        free += 1
    return free


def answer_code(answer: Any, *keys: str) -> tuple[int | None, str]:
    """The first of ``keys`` present in a JSON object answer as an int (None if absent), and its message."""
    if not isinstance(answer, dict):
        return None, ""
    message = next((str(answer[k]) for k in ("errmsg", "msg", "StatusMessage") if answer.get(k) is not None), "")
    for key in keys:
        value = answer.get(key)
        if value is None or isinstance(value, bool):
            continue
        try:
            return int(value), message
        except (TypeError, ValueError):
            continue
    return None, message
