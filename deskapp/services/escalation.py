"""Escalation of unshipped urgent orders, and the S-order circuit breaker. No UI, no database writes.

Every ``interval_seconds`` the :class:`EscalationWorker` fetches the open queue (a list of
:class:`OpenOrder`, built by the caller) and asks the :class:`Escalator` what to do now:

* **Levels.** An order of a configured priority (S, A …) still unshipped ``after_minutes`` after it
  started waiting escalates to level 1 (the group lead), later level 2 (the supervisor), then level 3
  (the owner) — each level once per order. An order first seen past several thresholds (the app was
  closed) goes straight to the highest it reached: the lower levels count as done, so nobody is
  told three times at once. Which levels were sent is kept in memory; :meth:`Escalator.remember`
  restores it from the timeline after a restart (the caller writes one timeline event per
  :class:`Escalation`: :meth:`Escalation.event` gives its fields). An order that leaves the queue
  (shipped, cancelled) is forgotten.
* **Circuit breaker.** More than ``max_s_waiting`` S orders waiting trips it: one alert, and
  :meth:`Escalator.grants_s` answers False for ``cooldown_minutes`` — the rules should then grant A
  instead of S, so the S lane is not flooded. After the cool-down it resets by itself (a "reset"
  event); if the S pile is still over the limit at the next check it trips again with a new alert.
* **Who hears it.** Each level names people (name, group robot, @mentions). A :class:`Tick` carries
  one :class:`~connectors.notify.Notice` per (level, robot) listing that level's orders, and in-app
  :class:`Toast` texts (level 1 information, 2 warning, 3 error). :class:`NotifySender` hands notices
  to the robots (``connectors.notify``: WeCom / DingTalk / Feishu, signed, batched under their limits)
  and toasts to a callback.

Wired to a database (one sender per database, toasts in every session, the breaker seen by every
process) by :mod:`deskapp.services.escalation_runner`.

An order is *waiting* unless its status is shipped or later, or cancelled (any other status — paid,
review, allocating, a warehouse step — counts); held orders are left alone unless
``include_held = true``. All times are timezone-aware; ``now`` is injectable everywhere.

The ``[escalation]`` TOML section (``deskapp.escalation.example.toml`` is the documented example) is
read by :func:`parse_config` / :func:`load_config`, which report every problem at once in Chinese and
English (:class:`~connectors.config.Problem`). Robot webhooks and signing secrets are named by
environment variable (``webhook_env``, ``secret_env``), never written in the file, never printed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import inspect
import logging
import os
import re
import tomllib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from connectors.config import Problem, SecretRef
from connectors.notify import KINDS as ROBOT_KINDS
from connectors.notify import (
    ROBOTS,
    Delivery,
    Notice,
    Robot,
    RobotSpec,
    is_all,
    make_robot,
    mobile,
)
from db.codes import Status
from db.sanitize import clean_text
from deskapp.services.rules import PRIORITIES
from deskapp.services.sla import CHINA

log = logging.getLogger("deskapp.escalation")

#: Statuses that are no longer waiting for the warehouse.
DONE_STATUSES: frozenset[str] = frozenset(
    {Status.SHIPPED, Status.IN_TRANSIT, Status.DELIVERED, Status.COMPLETED, Status.CANCELLED}
)
MAX_LEVELS = 3
DEFAULT_INTERVAL_S = 60
INTERVAL_S = (10, 3600)
AFTER_MINUTES = (1, 43_200)  # up to 30 days
COOLDOWN_MINUTES = (1, 1440)
MAX_S_WAITING = (1, 100_000)
#: How many order numbers a toast names before "… and N more".
TOAST_ORDERS = 3

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Keys that would hold a secret in the file itself.
_LITERAL_SECRETS = {"webhook", "url", "webhook_url", "secret", "key", "token", "access_token", "sign"}
#: What each kind's webhook URL contains, to catch a variable holding the wrong thing (never echoed).
_WEBHOOK_SHAPE = {
    "wecom": ("/cgi-bin/webhook/send", "key="),
    "dingtalk": ("/robot/send", "access_token="),
    "feishu": ("/bot/v2/hook/",),
}
_KIND_ZH = {"wecom": "企业微信", "dingtalk": "钉钉", "feishu": "飞书"}
_KIND_EN = {"wecom": "WeCom", "dingtalk": "DingTalk", "feishu": "Feishu"}
_LEVEL_ZH = {1: "一级", 2: "二级", 3: "三级"}


def utc_now() -> datetime:
    """The default clock: aware UTC now."""
    return datetime.now(UTC)


# -- input and config ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """One order of the open queue, as escalation needs it.

    ``waiting_since``: when it started waiting for the warehouse (paid / released), aware.
    ``sla_due``: its ship-by deadline, if known (shown in the notice, not used to decide).
    """

    order_no: str
    priority: str
    status: str
    waiting_since: datetime
    sla_due: datetime | None = None
    order_id: int | None = None
    warehouse: str = ""


@dataclass(frozen=True)
class Person:
    """Someone to tell: a name, the group robot that reaches them (None: in-app only), whom to @."""

    name: str
    robot: str | None = None
    mentions: tuple[str, ...] = ()
    id: str = ""


@dataclass(frozen=True)
class Level:
    """One escalation level: its name, after how long unshipped per priority, and who hears it."""

    number: int
    name: str
    after: Mapping[str, timedelta]
    notify: tuple[Person, ...] = ()


@dataclass(frozen=True)
class Breaker:
    """The S-order circuit breaker: more than ``max_s_waiting`` trips it for ``cooldown``."""

    max_s_waiting: int
    cooldown: timedelta
    notify: tuple[Person, ...] = ()


@dataclass(frozen=True)
class EscalationConfig:
    """The ``[escalation]`` section, typed. Holds no secret values (robots hold :class:`SecretRef` names)."""

    levels: tuple[Level, ...]
    robots: Mapping[str, RobotSpec] = field(default_factory=lambda: MappingProxyType({}))
    breaker: Breaker | None = None
    interval_seconds: float = DEFAULT_INTERVAL_S
    language: str = "zh"
    include_held: bool = False
    enabled: bool = True

    def thresholds(self, priority: str) -> tuple[timedelta, ...]:
        """How long unshipped an order of ``priority`` may wait before each level (empty: never escalates)."""
        out = []
        for level in self.levels:
            after = level.after.get(priority)
            if after is None:
                break
            out.append(after)
        return tuple(out)

    def priorities(self) -> tuple[str, ...]:
        """The priorities whose orders a check must see: those that escalate, and S for the breaker."""
        wanted = {p for level in self.levels for p in level.after}
        if self.breaker is not None:
            wanted.add("S")
        return tuple(p for p in PRIORITIES if p in wanted)

    def waiting(self, status: str) -> bool:
        """Whether an order with ``status`` is still waiting for the warehouse."""
        if status in DONE_STATUSES:
            return False
        return self.include_held or status != Status.HOLD


# -- decisions -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Escalation:
    """An order that reached a level now (``previous``: the level it had reached before, 0 for none)."""

    order: OpenOrder
    level: int
    level_name: str
    previous: int
    waited: timedelta
    notify: tuple[Person, ...]

    def event(self) -> dict[str, Any]:
        """Keyword arguments for the timeline event the caller appends (``db.store.append_event``)."""
        names = [p.name for p in self.notify]
        return {
            "kind": "escalated",
            "from_value": str(self.previous),
            "to_value": str(self.level),
            "message": f"{_LEVEL_ZH[self.level]}升级（{self.level_name}）" + (f"：通知 {'、'.join(names)}" if names else ""),
            "detail": {"level": self.level, "level_name": self.level_name, "priority": self.order.priority,
                       "waited_minutes": int(self.waited.total_seconds() // 60), "notified": names},
        }


@dataclass(frozen=True)
class BreakerEvent:
    """The breaker tripped (``until``: when it resets) or reset."""

    kind: str  # "tripped" | "reset"
    at: datetime
    s_waiting: int
    threshold: int
    until: datetime | None = None


@dataclass(frozen=True)
class Toast:
    """An in-app notification, plain text: show it with ``notify(message, title=…, markup=False)``.

    ``severity`` is Textual's: ``information``, ``warning`` or ``error``.
    """

    title: str
    message: str
    severity: str = "warning"


@dataclass(frozen=True)
class Routed:
    """A notice for one robot (by its name in the config)."""

    robot: str
    notice: Notice


@dataclass(frozen=True)
class Tick:
    """What one check decided: escalations, a breaker event, the notices and toasts to send."""

    at: datetime
    waiting: int
    s_waiting: int
    escalations: tuple[Escalation, ...] = ()
    breaker: BreakerEvent | None = None
    notices: tuple[Routed, ...] = ()
    toasts: tuple[Toast, ...] = ()


# -- the escalator ---------------------------------------------------------------------------------


class Escalator:
    """Decides, check by check, which orders escalate and whether the breaker trips (see module doc)."""

    def __init__(self, config: EscalationConfig, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.config = config
        self._clock = clock
        self._sent: dict[str, int] = {}
        self._open_until: datetime | None = None

    def reconfigure(self, config: EscalationConfig) -> None:
        """Use a new config from the next check on; what was sent and the breaker state are kept."""
        self.config = config

    def remember(self, order_no: str, level: int) -> None:
        """Record that ``order_no`` already reached ``level`` (restoring state from the timeline)."""
        self._sent[order_no] = max(self._sent.get(order_no, 0), int(level))

    def level_of(self, order_no: str) -> int:
        """The highest level ``order_no`` has been escalated to (0: none)."""
        return self._sent.get(order_no, 0)

    @property
    def breaker_until(self) -> datetime | None:
        """When the tripped breaker resets (None: not tripped)."""
        return self._open_until

    def restore_breaker(self, until: datetime | None) -> None:
        """The breaker as another process left it: tripped until ``until`` (None: not tripped)."""
        self._open_until = until

    def grants_s(self, now: datetime | None = None) -> bool:
        """Whether new orders may be given priority S now (False while the breaker cools down)."""
        if self._open_until is None:
            return True
        return (now or self._clock()) >= self._open_until

    def decide(self, queue: Iterable[OpenOrder], now: datetime | None = None) -> Tick:
        """The decisions for the open ``queue`` at ``now``; marks what it returns as sent."""
        now = now or self._clock()
        config = self.config
        seen: set[str] = set()
        escalations: list[Escalation] = []
        waiting = s_waiting = 0
        limits: dict[str, tuple[timedelta, ...]] = {}
        for order in queue:
            if not config.waiting(str(order.status)):
                continue
            if order.waiting_since.tzinfo is None:
                log.warning("escalation: order %s has a naive waiting_since; skipped", clean_text(order.order_no))
                continue
            seen.add(order.order_no)
            waiting += 1
            if order.priority == "S":
                s_waiting += 1
            waited = now - order.waiting_since
            steps = limits.get(order.priority)
            if steps is None:
                steps = limits[order.priority] = config.thresholds(order.priority)
            reached = sum(1 for after in steps if waited >= after)
            previous = self._sent.get(order.order_no, 0)
            if reached > previous:
                level = config.levels[reached - 1]
                escalations.append(Escalation(order, reached, level.name, previous, waited, level.notify))
                self._sent[order.order_no] = reached
        for order_no in [n for n in self._sent if n not in seen]:
            del self._sent[order_no]
        breaker = self._breaker(s_waiting, now)
        escalations.sort(key=lambda e: (e.level, _rank(e.order.priority), -e.waited))
        notices, toasts = _compose(config, escalations, breaker, now)
        return Tick(now, waiting, s_waiting, tuple(escalations), breaker, notices, toasts)

    def _breaker(self, s_waiting: int, now: datetime) -> BreakerEvent | None:
        rule = self.config.breaker
        event = None
        if self._open_until is not None and now >= self._open_until:
            self._open_until = None
            event = BreakerEvent("reset", now, s_waiting, rule.max_s_waiting if rule else 0)
        if rule is not None and self._open_until is None and s_waiting > rule.max_s_waiting:
            self._open_until = now + rule.cooldown
            event = BreakerEvent("tripped", now, s_waiting, rule.max_s_waiting, self._open_until)
        return event


def _rank(priority: str) -> int:
    return PRIORITIES.index(priority) if priority in PRIORITIES else len(PRIORITIES)


# -- wording ---------------------------------------------------------------------------------------


def duration(span: timedelta, language: str = "zh") -> str:
    """A span in words: ``2 小时 5 分`` / ``2h 05m``; under a minute ``不到 1 分`` / ``<1m``."""
    minutes = int(abs(span).total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if language == "en":
        if days:
            return f"{days}d {hours}h"
        if hours:
            return f"{hours}h {mins:02d}m"
        return f"{mins}m" if mins else "<1m"
    if days:
        return f"{days} 天 {hours} 小时" if hours else f"{days} 天"
    if hours:
        return f"{hours} 小时 {mins} 分" if mins else f"{hours} 小时"
    return f"{mins} 分" if mins else "不到 1 分"


def _order_line(e: Escalation, now: datetime, language: str) -> str:
    order = e.order
    no = clean_text(order.order_no)
    where = clean_text(order.warehouse)
    if language == "en":
        text = f"{order.priority} {no}: waiting {duration(e.waited, 'en')}"
        if order.sla_due is not None:
            left = order.sla_due - now
            text += (f", {duration(left, 'en')} left before the ship-by time" if left >= timedelta(0)
                     else f", {duration(left, 'en')} past the ship-by time")
        return text + (f" ({where})" if where else "")
    text = f"{order.priority} 级 {no}：已等待 {duration(e.waited)}"
    if order.sla_due is not None:
        left = order.sla_due - now
        text += f"，距承诺发货还剩 {duration(left)}" if left >= timedelta(0) else f"，已超过承诺发货 {duration(left)}"
    return text + (f"（{where}）" if where else "")


def _level_title(level: int, name: str, count: int, language: str) -> str:
    if language == "en":
        return f"Level {level} escalation ({name}): {count} urgent order(s) not shipped"
    return f"{_LEVEL_ZH[level]}升级（{name}）：{count} 张加急单超时未发货"


def _names(people: Sequence[Person], language: str) -> str:
    return (", " if language == "en" else "、").join(p.name for p in people)


def _compose(config: EscalationConfig, escalations: Sequence[Escalation], breaker: BreakerEvent | None,
             now: datetime) -> tuple[tuple[Routed, ...], tuple[Toast, ...]]:
    language = config.language
    notices: list[Routed] = []
    toasts: list[Toast] = []
    for level in config.levels:
        here = [e for e in escalations if e.level == level.number]
        if not here:
            continue
        title = _level_title(level.number, level.name, len(here), language)
        lines = [_order_line(e, now, language) for e in here]
        if level.notify:
            lines.append(f"Over to: {_names(level.notify, 'en')}" if language == "en"
                         else f"请 {_names(level.notify, 'zh')} 处理")
        notices += _route(level.notify, title, lines, level.number)
        toasts.append(level_toast(level.number, level.name, [e.order.order_no for e in here],
                                  [p.name for p in level.notify], language))
    if breaker is not None and config.breaker is not None:
        rule = config.breaker
        if breaker.kind == "tripped" and breaker.until is not None:
            until = breaker.until.astimezone(CHINA).strftime("%H:%M")
            minutes = int(rule.cooldown.total_seconds() // 60)
            if language == "en":
                title = f"Circuit breaker: {breaker.s_waiting} S orders waiting (limit {rule.max_s_waiting})"
                lines = [f"No new S priority for {minutes} minutes, until {until} (China time)",
                         "Clear the S orders already waiting first"]
            else:
                title = f"熔断：S 级待发订单 {breaker.s_waiting} 张，超过上限 {rule.max_s_waiting} 张"
                lines = [f"暂停新增 S 级 {minutes} 分钟，{until}（北京时间）恢复", "请先处理已在等待的 S 级订单"]
            if rule.notify:
                lines.append(f"Over to: {_names(rule.notify, 'en')}" if language == "en"
                             else f"请 {_names(rule.notify, 'zh')} 处理")
            notices += _route(rule.notify, title, lines, MAX_LEVELS)
            toasts.append(Toast(title, lines[0], "error"))
        elif breaker.kind == "reset":
            if language == "en":
                toasts.append(Toast("Circuit breaker reset", "New orders may be given S priority again", "information"))
            else:
                toasts.append(Toast("熔断已解除", "恢复新增 S 级订单", "information"))
    return tuple(notices), tuple(toasts)


#: A toast's severity by escalation level.
LEVEL_SEVERITY = {1: "information", 2: "warning", 3: "error"}


def level_toast(level: int, name: str, order_nos: Sequence[str], told: Sequence[str], language: str = "zh") -> Toast:
    """The in-app toast for orders that reached ``level`` (``told``: the names of who was notified).

    Order numbers come from platforms: cleaned of terminal controls here, shown as plain text.
    """
    numbers = [clean_text(n) for n in order_nos]
    shown = ("、" if language != "en" else ", ").join(numbers[:TOAST_ORDERS])
    if len(numbers) > TOAST_ORDERS:
        shown += (f" and {len(numbers) - TOAST_ORDERS} more" if language == "en"
                  else f" 等 {len(numbers)} 张")
    names = (", " if language == "en" else "、").join(clean_text(n) for n in told)
    message = shown + ((f" — told {names}" if language == "en" else f"；已通知 {names}") if names else "")
    return Toast(_level_title(level, clean_text(name), len(numbers), language), message,
                 LEVEL_SEVERITY.get(level, "error"))


def breaker_toast(tripped: bool, until: datetime | None, language: str = "zh") -> Toast:
    """The toast for a breaker another process tripped (``until``: when it resets) or that reset."""
    if not tripped:
        if language == "en":
            return Toast("Circuit breaker reset", "New orders may be given S priority again", "information")
        return Toast("熔断已解除", "恢复新增 S 级订单", "information")
    at = until.astimezone(CHINA).strftime("%H:%M") if until is not None else "?"
    if language == "en":
        return Toast("Circuit breaker: too many S orders waiting",
                     f"No new S priority until {at} (China time); clear the S orders already waiting first", "error")
    return Toast("熔断：S 级待发订单超过上限", f"暂停新增 S 级，{at}（北京时间）恢复；请先处理已在等待的 S 级订单", "error")


def _route(people: Sequence[Person], title: str, lines: Sequence[str], level: int) -> list[Routed]:
    """One notice per robot among ``people``, @-ing the people that robot reaches."""
    by_robot: dict[str, list[str]] = {}
    for person in people:
        if person.robot is None:
            continue
        mentions = by_robot.setdefault(person.robot, [])
        mentions.extend(m for m in person.mentions if m not in mentions)
    return [Routed(robot, Notice(title, tuple(lines), level, tuple(mentions))) for robot, mentions in by_robot.items()]


# -- sending ---------------------------------------------------------------------------------------


def build_robots(config: EscalationConfig, *, client: Any, **options: Any) -> dict[str, Robot]:
    """The config's robots, by name, sending through ``client`` (an ``httpx.AsyncClient`` the caller owns).

    ``options`` go to :class:`connectors.notify.Robot` (``environ``, ``clock``, ``policy`` …).
    """
    return {name: make_robot(spec, client=client, **options) for name, spec in config.robots.items()}


class NotifySender:
    """Hands a :class:`Tick`'s notices to the robots and its toasts to ``toast``; never raises.

    A robot that starts failing (bad secret, muted, unreachable) is also told once as a toast, and
    again only when its error changes.
    """

    def __init__(self, robots: Mapping[str, Robot], toast: Callable[[Toast], object] | None = None, *,
                 language: str = "zh", tick_toasts: bool = True) -> None:
        self.robots = dict(robots)
        self.toast = toast
        self.language = language
        self.tick_toasts = tick_toasts
        """False: only robot failures are toasted (the runner toasts escalations from the timeline)."""
        self._last_error: dict[str, str | None] = {}

    async def deliver(self, tick: Tick | None) -> list[Delivery]:
        """Send ``tick``'s toasts and notices (and flush what robots still queue); the deliveries."""
        if tick is not None and self.tick_toasts:
            for toast in tick.toasts:
                self._show(toast)
        wanted: dict[str, list[Notice]] = {}
        for routed in tick.notices if tick is not None else ():
            if routed.robot in self.robots:
                wanted.setdefault(routed.robot, []).append(routed.notice)
            else:
                log.warning("escalation: no robot named %r; notice not sent", routed.robot)
        names = [n for n, robot in self.robots.items() if n in wanted or robot.pending]
        results = await asyncio.gather(*(self.robots[n].send(wanted.get(n, ())) for n in names),
                                       return_exceptions=True)
        deliveries: list[Delivery] = []
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                log.error("escalation: robot %s failed: %s", name, type(result).__name__)
                result = Delivery(name, error=type(result).__name__)
            deliveries.append(result)
            self._tell_failure(name, result)
        return deliveries

    def _tell_failure(self, name: str, delivery: Delivery) -> None:
        previous = self._last_error.get(name)
        self._last_error[name] = delivery.error
        if delivery.error is None or delivery.error == previous:
            return
        if self.language == "en":
            self._show(Toast(f"Group robot {name} could not send",
                             f"{delivery.error}; {delivery.queued} notice(s) waiting", "warning"))
        else:
            self._show(Toast(f"群机器人 {name} 发送失败", f"{delivery.error}；{delivery.queued} 条待发", "warning"))

    def _show(self, toast: Toast) -> None:
        if self.toast is None:
            return
        try:
            self.toast(toast)
        except Exception:  # a toast that cannot be shown must not stop the robots
            log.exception("escalation: could not show a toast")


QueueFetcher = Callable[[], Awaitable[Iterable[OpenOrder]] | Iterable[OpenOrder]]


class EscalationWorker:
    """Runs the check every ``interval`` seconds: fetch the queue, decide, send. Never raises out.

    ``fetch()`` returns the open queue (sync or async). ``on_tick(tick)`` (sync or async) gets every
    tick with decisions, for the timeline events (:meth:`Escalation.event`) — called *before*
    sending, so that a sender stalled past its turn cannot make the next one send the same again;
    it returns False when this process may no longer send (its lease is gone): the tick's notices
    are then dropped, for the new sender decides them. A failure in any step is logged and the loop
    goes on (a failed ``on_tick`` still sends: people hear of it even if the record is missing).
    """

    def __init__(self, escalator: Escalator, fetch: QueueFetcher, sender: NotifySender, *,
                 interval: float | None = None,
                 on_tick: Callable[[Tick], Awaitable[bool | None] | bool | None] | None = None) -> None:
        self.escalator = escalator
        self.fetch = fetch
        self.sender = sender
        self.interval = interval if interval is not None else escalator.config.interval_seconds
        self.on_tick = on_tick
        self.ticks = 0
        self.failures = 0

    async def tick(self, now: datetime | None = None) -> Tick | None:
        """One check; the :class:`Tick`, or None when the queue could not be read or judged."""
        self.ticks += 1
        tick: Tick | None = None
        try:
            queue = self.fetch()
            if inspect.isawaitable(queue):
                queue = await queue
            # In a thread: 50,000 waiting orders take ~0.2 s to judge, a hitch on an app's UI loop.
            tick = await asyncio.to_thread(self.escalator.decide, list(queue), now)
        except Exception:  # the loop must outlive a bad read
            self.failures += 1
            log.exception("escalation: could not check the queue")
        if tick is not None and self.on_tick is not None and (tick.escalations or tick.breaker):
            try:
                result = self.on_tick(tick)
                if inspect.isawaitable(result):
                    result = await result
                if result is False:
                    log.warning("escalation: no longer the sender; %d notice(s) left to the next one",
                                len(tick.notices))
                    tick = dataclasses.replace(tick, notices=(), toasts=())
            except Exception:
                self.failures += 1
                log.exception("escalation: on_tick failed")
        try:
            await self.sender.deliver(tick)  # with no tick it still flushes queued notices
        except Exception:
            self.failures += 1
            log.exception("escalation: could not send notices")
        return tick

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Check now and then every ``interval`` seconds until ``stop`` is set (or the task is cancelled)."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            await self.tick()
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                pass


# -- config ----------------------------------------------------------------------------------------


class EscalationConfigError(Exception):
    """The ``[escalation]`` section cannot be used as it is; ``problems`` says why."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.text("en") for p in problems))
        self.problems = problems


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None,
                require_env: bool = True) -> EscalationConfig:
    """The typed ``[escalation]`` section of the TOML file at ``path``; raises :class:`EscalationConfigError`.

    ``require_env=False`` accepts unset environment variables (a robot then fails when it sends).
    """
    config, problems = read_config(path, environ=environ)
    if not require_env:
        problems = [p for p in problems if p.code != "missing_env"]
    if problems or config is None:
        raise EscalationConfigError(problems)
    return config


def read_config(path: str | Path, *, environ: Mapping[str, str] | None = None
                ) -> tuple[EscalationConfig | None, list[Problem]]:
    """The config as far as it could be read, and every problem with the file (empty: it is fine)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except FileNotFoundError:
        return None, [Problem(str(path), "找不到配置文件", "file not found", "missing_file")]
    except OSError as error:
        return None, [Problem(str(path), f"无法读取文件（{error.strerror}）", f"cannot read the file ({error.strerror})",
                              "unreadable")]
    except UnicodeDecodeError:
        return None, [Problem(str(path), "文件不是 UTF-8 编码", "the file is not UTF-8 text", "encoding")]
    except tomllib.TOMLDecodeError as error:
        return None, [Problem(str(path), f"TOML 格式错误：{error}", f"not valid TOML: {error}", "toml")]
    return parse_config(data, environ=environ)


def parse_config(document: Mapping[str, Any], *, environ: Mapping[str, str] | None = None
                 ) -> tuple[EscalationConfig | None, list[Problem]]:
    """The ``[escalation]`` section of an already-parsed TOML document, and every problem with it."""
    reader = _Reader(os.environ if environ is None else environ)
    section = document.get("escalation")
    if section is None:
        return None, [Problem("escalation", "没有 [escalation] 段", "there is no [escalation] section", "missing")]
    if not isinstance(section, dict):
        return None, [Problem("escalation", "应为一个表：[escalation]", "should be a table: [escalation]")]
    return reader.section(section), reader.problems


_TOP_KEYS = ("enabled", "interval_seconds", "language", "include_held", "robots", "people", "levels", "breaker")
_ROBOT_KEYS = ("kind", "webhook_env", "secret_env", "format")
_PERSON_KEYS = ("name", "robot", "mentions")
_LEVEL_KEYS = ("name", "after_minutes", "notify")
_BREAKER_KEYS = ("max_s_waiting", "cooldown_minutes", "notify")


class _Reader:
    """Walks the section once, building typed objects and collecting every problem."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[Problem] = []

    def problem(self, where: str, zh: str, en: str, code: str = "invalid") -> None:
        self.problems.append(Problem(where, zh, en, code))

    def keys(self, table: Mapping, allowed: Sequence[str], where: str) -> None:
        for key in table:
            if key in allowed:
                continue
            if key in _LITERAL_SECRETS:
                self.problem(f"{where}.{key}",
                             f"不要把 webhook 地址或密钥直接写进文件；请放进环境变量，并写 {_env_key(key)} = \"变量名\"",
                             f"do not put a webhook URL or secret in the file; put it in an environment variable and "
                             f"write {_env_key(key)} = \"VARIABLE_NAME\"", "literal_secret")
                continue
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint_zh = f"（是不是 {close[0]}？）" if close else "（拼写错误？）"
            hint_en = f" (did you mean {close[0]}?)" if close else " (a typo?)"
            self.problem(f"{where}.{key}", f"未知的设置项「{clean_text(str(key))}」{hint_zh}",
                         f"unknown setting '{clean_text(str(key))}'{hint_en}", "unknown_key")

    def table(self, value: Any, where: str, what_zh: str = "一个表", what_en: str = "a table") -> dict | None:
        if isinstance(value, dict):
            return value
        self.problem(where, f"应为{what_zh}", f"should be {what_en}")
        return None

    def text(self, table: Mapping, key: str, where: str, *, required: bool = False) -> str:
        value = table.get(key)
        if value is None:
            if required:
                self.problem(f"{where}.{key}", f"缺少 {key}", f"{key} is missing", "missing")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.problem(f"{where}.{key}", "应为文字（用引号括起来）", "should be text (in quotes)")
            return ""
        return clean_text(value).strip()

    def number(self, table: Mapping, key: str, where: str, default: float, bounds: tuple[int, int],
               unit_zh: str, unit_en: str, *, integer: bool = False) -> float:
        if key not in table:
            return default
        value = table[key]
        low, high = bounds
        if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
            kind_zh, kind_en = ("整数", "a whole number") if integer else ("数字", "a number")
            self.problem(f"{where}.{key}", f"应为{kind_zh}（{unit_zh}）", f"should be {kind_en} ({unit_en})")
            return default
        if not low <= value <= high:
            self.problem(f"{where}.{key}", f"{value} 超出范围：应在 {low} 到 {high} {unit_zh}之间",
                         f"{value} is out of range: it should be between {low} and {high} {unit_en}", "out_of_range")
            return default
        return value

    def flag(self, table: Mapping, key: str, where: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            self.problem(f"{where}.{key}", "应为 true 或 false", "should be true or false")
            return default
        return value

    def env(self, table: Mapping, key: str, where: str, *, required: bool) -> SecretRef | None:
        place = f"{where}.{key}"
        if key not in table:
            if required:
                self.problem(place, f"缺少 {key}：写 {key} = \"环境变量名\"（变量里放 webhook 地址）",
                             f"{key} is missing: write {key} = \"VARIABLE_NAME\" (the variable holds the webhook URL)",
                             "missing")
            return None
        value = table[key]
        if not isinstance(value, str) or not _ENV_NAME.match(value):
            self.problem(place, "应为环境变量的名字（字母、数字和下划线）",
                         "should be the name of an environment variable (letters, digits, underscore)")
            return None
        if not self.environ.get(value):
            self.problem(place, f"环境变量 {value} 未设置", f"environment variable {value} is not set", "missing_env")
        return SecretRef(value)

    # -- parts ---------------------------------------------------------------------------------------

    def section(self, data: Mapping[str, Any]) -> EscalationConfig | None:
        where = "escalation"
        self.keys(data, _TOP_KEYS, where)
        enabled = self.flag(data, "enabled", where, True)
        include_held = self.flag(data, "include_held", where, False)
        interval = self.number(data, "interval_seconds", where, DEFAULT_INTERVAL_S, INTERVAL_S, "秒", "seconds")
        language = data.get("language", "zh")
        if language not in ("zh", "en"):
            self.problem(f"{where}.language", "应为 \"zh\"（中文）或 \"en\"（英文）", "should be \"zh\" or \"en\"")
            language = "zh"
        robots = self.robots(data.get("robots", {}), language)
        people = self.people(data.get("people", {}), robots)
        levels = self.levels(data.get("levels"), people, robots, language)
        breaker = self.breaker(data["breaker"], people, robots) if "breaker" in data else None
        if not levels:
            return None
        return EscalationConfig(levels=levels, robots=MappingProxyType(robots), breaker=breaker,
                                interval_seconds=interval, language=language, include_held=include_held,
                                enabled=enabled)

    def robots(self, value: Any, language: str) -> dict[str, RobotSpec]:
        table = self.table(value, "escalation.robots", "一个表：[escalation.robots.名字]", "a table: [escalation.robots.NAME]")
        out: dict[str, RobotSpec] = {}
        for name, spec in (table or {}).items():
            where = f"escalation.robots.{name}"
            if not _NAME.match(str(name)):
                self.problem(where, "机器人名字只能用字母、数字、- 和 _（最多 32 个字符）",
                             "a robot name uses letters, digits, - and _ (at most 32 characters)")
                continue
            spec = self.table(spec, where)
            if spec is None:
                continue
            self.keys(spec, _ROBOT_KEYS, where)
            kind = spec.get("kind")
            if kind not in ROBOT_KINDS:
                self.problem(f"{where}.kind",
                             "应为 \"wecom\"（企业微信）、\"dingtalk\"（钉钉）或 \"feishu\"（飞书）",
                             "should be \"wecom\", \"dingtalk\" or \"feishu\"", "unknown_kind")
                continue
            webhook = self.env(spec, "webhook_env", where, required=True)
            secret = self.env(spec, "secret_env", where, required=False)
            if secret is not None and not ROBOTS[kind].signs:
                self.problem(f"{where}.secret_env", "企业微信群机器人不签名：请去掉 secret_env（webhook 地址里的 key 就是凭证）",
                             "WeCom robots do not sign: remove secret_env (the key in the webhook URL is the credential)")
                secret = None
            fmt = spec.get("format", ROBOTS[kind].formats[0])
            if fmt not in ROBOTS[kind].formats:
                options = "、".join(f'"{f}"' for f in ROBOTS[kind].formats)
                self.problem(f"{where}.format", f"{_KIND_ZH[kind]}机器人的消息格式应为 {options}",
                             f"a {_KIND_EN[kind]} robot's format should be one of {', '.join(ROBOTS[kind].formats)}")
                fmt = ROBOTS[kind].formats[0]
            if webhook is None:
                continue
            if webhook.present(self.environ):
                value = webhook.value(self.environ)
                if not value.startswith(("http://", "https://")) or not all(p in value for p in _WEBHOOK_SHAPE[kind]):
                    # Never echo the value: it is the secret.
                    self.problem(f"{where}.webhook_env",
                                 f"环境变量 {webhook.env} 的值不像{_KIND_ZH[kind]}群机器人的 webhook 地址"
                                 f"（应以 http(s):// 开头并包含 {' 和 '.join(_WEBHOOK_SHAPE[kind])}）",
                                 f"environment variable {webhook.env} does not look like a {_KIND_EN[kind]} robot webhook "
                                 f"URL (it should start with http(s):// and contain {' and '.join(_WEBHOOK_SHAPE[kind])})",
                                 "bad_webhook")
            out[str(name)] = RobotSpec(kind, str(name), webhook, secret, fmt, language)
        return out

    def person(self, value: Any, where: str, robots: Mapping[str, RobotSpec], person_id: str = "") -> Person | None:
        table = self.table(value, where)
        if table is None:
            return None
        self.keys(table, _PERSON_KEYS, where)
        name = self.text(table, "name", where, required=True)
        robot = self.text(table, "robot", where) or None
        mentions_value = table.get("mentions", [])
        if not isinstance(mentions_value, list) or not all(isinstance(m, str) and m.strip() for m in mentions_value):
            self.problem(f"{where}.mentions", "应为文字列表，例如 [\"13800000000\"]",
                         "should be a list of text, e.g. [\"13800000000\"]")
            mentions_value = []
        mentions = tuple(clean_text(m).strip() for m in mentions_value)
        if robot is not None and robot not in robots:
            known = "、".join(robots) or "（无）"
            self.problem(f"{where}.robot", f"没有名为「{robot}」的机器人；已配置：{known}",
                         f"there is no robot named '{robot}'; configured: {', '.join(robots) or '(none)'}", "unknown_robot")
            robot = None
        if robot is None and mentions:
            self.problem(f"{where}.mentions", "设置了 @ 提醒却没有指定机器人 robot", "mentions need a robot to @ through")
        if robot is not None:
            self.mentions(mentions, robots[robot], f"{where}.mentions")
        if not name:
            return None
        return Person(name, robot, mentions, person_id)

    def mentions(self, mentions: Sequence[str], spec: RobotSpec, where: str) -> None:
        for mention in mentions:
            if spec.kind == "feishu" and mobile(mention) is not None:
                self.problem(where, f"飞书机器人不能按手机号 @ 人（{clean_text(mention)}）：请用 open_id（ou_ 开头）或 \"all\"",
                             f"a Feishu robot cannot @ by mobile number ({clean_text(mention)}): use an open_id (ou_…) "
                             "or \"all\"")
            if spec.kind == "wecom" and spec.format == "markdown" and (mobile(mention) is not None or is_all(mention)):
                self.problem(where, f"企业微信 markdown 消息只能按 userid @ 人（{clean_text(mention)}）：按手机号或 @所有人 请用 "
                             "format = \"text\"",
                             f"WeCom markdown messages @ by userid only ({clean_text(mention)}): for mobile numbers or "
                             "everyone use format = \"text\"")

    def people(self, value: Any, robots: Mapping[str, RobotSpec]) -> dict[str, Person]:
        table = self.table(value, "escalation.people", "一个表：[escalation.people.代号]", "a table: [escalation.people.ID]")
        out: dict[str, Person] = {}
        for person_id, spec in (table or {}).items():
            where = f"escalation.people.{person_id}"
            if not _NAME.match(str(person_id)):
                self.problem(where, "人员代号只能用字母、数字、- 和 _（最多 32 个字符）",
                             "a person id uses letters, digits, - and _ (at most 32 characters)")
                continue
            person = self.person(spec, where, robots, str(person_id))
            if person is not None:
                out[str(person_id)] = person
        return out

    def notify(self, table: Mapping, where: str, people: Mapping[str, Person],
               robots: Mapping[str, RobotSpec]) -> tuple[Person, ...]:
        value = table.get("notify", [])
        place = f"{where}.notify"
        if not isinstance(value, list):
            self.problem(place, "应为人员代号列表，例如 [\"lead\"]", "should be a list of person ids, e.g. [\"lead\"]")
            return ()
        out: list[Person] = []
        for index, item in enumerate(value):
            if isinstance(item, str):
                person = people.get(item)
                if person is None:
                    known = "、".join(people) or "（无）"
                    self.problem(f"{place}[{index}]", f"没有代号为「{clean_text(item)}」的人员；已配置：{known}",
                                 f"there is no person '{clean_text(item)}'; configured: {', '.join(people) or '(none)'}",
                                 "unknown_person")
                    continue
            else:
                person = self.person(item, f"{place}[{index}]", robots)
                if person is None:
                    continue
            if person not in out:
                out.append(person)
        return tuple(out)

    def levels(self, value: Any, people: Mapping[str, Person], robots: Mapping[str, RobotSpec],
               language: str) -> tuple[Level, ...]:
        where = "escalation.levels"
        if value is None:
            self.problem(where, "没有升级级别：至少写一个 [[escalation.levels]]",
                         "no levels: add at least one [[escalation.levels]]", "missing")
            return ()
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problem(where, "应写成 [[escalation.levels]] 表格数组（依次为一级、二级、三级）",
                         "should be written as [[escalation.levels]] tables (level 1, 2, 3 in order)")
            return ()
        if not 1 <= len(value) <= MAX_LEVELS:
            self.problem(where, f"升级级别应为 1 到 {MAX_LEVELS} 级（现在是 {len(value)} 级）",
                         f"there should be 1 to {MAX_LEVELS} levels (there are {len(value)})", "out_of_range")
            value = value[:MAX_LEVELS]
        levels: list[Level] = []
        for index, table in enumerate(value):
            number = index + 1
            place = f"{where}[{index}]"
            self.keys(table, _LEVEL_KEYS, place)
            name = self.text(table, "name", place) or (f"level {number}" if language == "en" else _LEVEL_ZH[number])
            after = self.after(table, place, levels[-1] if levels else None)
            notify = self.notify(table, place, people, robots)
            levels.append(Level(number, name, MappingProxyType(after), notify))
        return tuple(levels)

    def after(self, table: Mapping, where: str, below: Level | None) -> dict[str, timedelta]:
        place = f"{where}.after_minutes"
        value = table.get("after_minutes")
        if value is None:
            self.problem(place, "缺少 after_minutes：每个优先级未发货多少分钟后升级，例如 { S = 30, A = 120 }",
                         "after_minutes is missing: minutes unshipped per priority before this level, e.g. "
                         "{ S = 30, A = 120 }", "missing")
            return {}
        if not isinstance(value, dict) or not value:
            self.problem(place, "应为一个表：优先级 = 分钟数，例如 { S = 30, A = 120 }",
                         "should be a table: priority = minutes, e.g. { S = 30, A = 120 }")
            return {}
        out: dict[str, timedelta] = {}
        for priority, minutes in value.items():
            key = f"{place}.{priority}"
            if priority not in PRIORITIES:
                self.problem(key, f"未知的优先级「{clean_text(str(priority))}」；可用：{'、'.join(PRIORITIES)}",
                             f"unknown priority '{clean_text(str(priority))}'; use one of: {', '.join(PRIORITIES)}",
                             "unknown_priority")
                continue
            low, high = AFTER_MINUTES
            if isinstance(minutes, bool) or not isinstance(minutes, int | float):
                self.problem(key, "应为分钟数，例如 30", "should be a number of minutes, e.g. 30")
                continue
            if not low <= minutes <= high:
                self.problem(key, f"{minutes} 分钟超出范围：应在 {low} 到 {high} 分钟之间",
                             f"{minutes} minutes is out of range: it should be between {low} and {high}", "out_of_range")
                continue
            span = timedelta(minutes=minutes)
            if below is not None:
                previous = below.after.get(priority)
                if previous is None:
                    self.problem(key, f"{priority} 级在上一级没有设置时间：每一级都要先经过前一级",
                                 f"priority {priority} has no time in the level before: each level follows the one "
                                 "before it", "skipped_level")
                    continue
                if span <= previous:
                    self.problem(key, f"{priority} 级 {minutes} 分钟应晚于上一级的 {int(previous.total_seconds() // 60)} 分钟",
                                 f"{priority}: {minutes} minutes should be later than the level before "
                                 f"({int(previous.total_seconds() // 60)} minutes)", "not_increasing")
                    continue
            out[str(priority)] = span
        return out

    def breaker(self, value: Any, people: Mapping[str, Person], robots: Mapping[str, RobotSpec]) -> Breaker | None:
        where = "escalation.breaker"
        table = self.table(value, where)
        if table is None:
            return None
        self.keys(table, _BREAKER_KEYS, where)
        if "max_s_waiting" not in table:
            self.problem(f"{where}.max_s_waiting", "缺少 max_s_waiting：S 级待发订单超过多少张时熔断",
                         "max_s_waiting is missing: how many S orders waiting trip the breaker", "missing")
            return None
        limit = self.number(table, "max_s_waiting", where, 0, MAX_S_WAITING, "张", "orders", integer=True)
        cooldown = self.number(table, "cooldown_minutes", where, 30, COOLDOWN_MINUTES, "分钟", "minutes")
        notify = self.notify(table, where, people, robots)
        if not limit:
            return None
        return Breaker(int(limit), timedelta(minutes=cooldown), notify)


def _env_key(key: str) -> str:
    return "secret_env" if key in ("secret", "sign") else "webhook_env"
