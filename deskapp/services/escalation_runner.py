"""Escalation wired to a database: one sender per database, toasts in every session, the S breaker.

:class:`EscalationRunner` runs the :class:`~deskapp.services.escalation.EscalationWorker` against a
Store — in ``deskapp sync`` (forever mode, beside the order checks) and in every app session:

* **One sender per database.** Several app sessions and a ``deskapp sync`` may run on one database;
  only the holder of the lease named :data:`ESCALATION_LEASE` (``db.ingest.lease_acquire``) reads
  the queue, decides, writes the escalation timeline events and posts to the group robots. It renews
  the lease at every check (for 3 × the interval) and gives it back on a clean stop; when a holder
  dies, another process takes over once the lease has run out. Taking over, it restores the levels
  already reached from the timeline (:meth:`~deskapp.services.escalation.Escalator.remember`) and
  the breaker from its lease, so neither a restart nor a change of sender tells anybody twice. The
  events are written *before* the robots are called, and only while the lease is still held.
* **Toasts in every session.** Every session, sender or not, follows the timeline for escalation
  events written since its last look (``db.queue.escalations_since``) and toasts them grouped by
  level (level 1 information, 2 warning, 3 error). A session toasts only what happens after it
  started.
* **The S breaker.** A trip takes the lease :data:`~deskapp.services.queue.S_BREAKER_LEASE` until
  the cool-down ends: every process's ``QueueService`` grants A instead of a new S while it is held,
  and every session toasts the trip and the reset.

A session whose robots' environment variables are not set — an agent's own account on a shared
server, where ``deskapp sync`` is the sender — runs *listen-only*: toasts and the breaker, never the
lease. :func:`load` reads an escalation file and says which it is; :func:`for_app` is the app's way in.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.config import Problem
from db import queue as dbq
from db.codes import ActorKind
from db.sanitize import clean_text
from db.views import Actor
from deskapp.services.escalation import (
    EscalationConfig,
    EscalationWorker,
    Escalator,
    NotifySender,
    OpenOrder,
    Tick,
    Toast,
    breaker_toast,
    build_robots,
    level_toast,
    read_config,
    utc_now,
)
from deskapp.services.queue import S_BREAKER_LEASE

if TYPE_CHECKING:
    from db.store import Store

log = logging.getLogger("deskapp.escalation")

#: The lease whose holder is the one sender of a database.
ESCALATION_LEASE = "escalation"
#: Who writes the escalation timeline events.
ACTOR = Actor(ActorKind.SYSTEM.value, "escalation")
#: The lease outlives this many missed checks before another process takes over.
LEASE_CHECKS = 3
#: How long a stop waits for a check in flight (a robot answering slowly) before cancelling it.
STOP_GRACE_S = 5.0


def holder_id() -> str:
    """This process's name on the lease: host, pid and a random part (two sessions of one process differ)."""
    host = clean_text(socket.gethostname()).strip()[:64] or "host"
    return f"{host}:{os.getpid()}:{secrets.token_hex(4)}"


# -- the file ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    """What an escalation file gave.

    ``config`` None: the file cannot be used (``problems`` says why). Otherwise ``sends`` tells
    whether every robot's environment variables are set; when not, ``problems`` lists the unset
    ones and the config still serves toasts and the breaker (listen-only).
    """

    path: Path
    config: EscalationConfig | None
    problems: tuple[Problem, ...]
    sends: bool


def load(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Loaded:
    """Read and check the escalation file at ``path`` (see :class:`Loaded`)."""
    path = Path(path)
    config, problems = read_config(path, environ=environ)
    unset = [p for p in problems if p.code == "missing_env"]
    if config is None or len(unset) < len(problems):
        return Loaded(path, None, tuple(problems), False)
    return Loaded(path, config, tuple(unset), not unset)


def for_app(path: str | None, *, get_store: Callable[[], Awaitable[Store]], clock: Callable[[], datetime],
            toast: Callable[[Toast], object], language: Callable[[], str] | None = None,
            environ: Mapping[str, str] | None = None) -> tuple[EscalationRunner | None, Problem | None]:
    """The app's runner for the escalation file at ``path`` (None: no file, escalation off), or the
    first problem of a file that cannot be used (the app says it once and runs without escalation)."""
    if not path:
        return None, None
    loaded = load(path, environ=environ)
    if loaded.config is None:
        log.warning("escalation file %s not used: %s", path, "; ".join(p.text("en") for p in loaded.problems))
        # the file's own mistake first: an unset variable is the lesser news
        return None, next((p for p in loaded.problems if p.code != "missing_env"), loaded.problems[0])
    if not loaded.config.enabled:
        return None, None
    if not loaded.sends:
        log.info("escalation: listen-only here (robot variables not set: %s)",
                 ", ".join(p.where for p in loaded.problems))
    runner = EscalationRunner(loaded.config, get_store, sends=loaded.sends, clock=clock, on_toast=toast,
                              language=language, environ=environ)
    return runner, None


# -- the runner -------------------------------------------------------------------------------


class EscalationRunner:
    """Escalation against one database; see the module docstring.

    ``get_store``: how to reach the Store. ``sends``: may this process become the sender (its
    robots' variables are set)? ``on_toast``: shows a toast (none in ``deskapp sync``).
    ``language``: the toasts' language, asked each time (the app's can change). ``holder``: the
    name on the lease (default :func:`holder_id`). ``robots``: ready robots by name (tests; default:
    built from the config on an HTTP client of the runner's own).
    """

    def __init__(self, config: EscalationConfig, get_store: Callable[[], Awaitable[Store]], *, sends: bool = True,
                 clock: Callable[[], datetime] = utc_now, on_toast: Callable[[Toast], object] | None = None,
                 language: Callable[[], str] | None = None, holder: str | None = None,
                 robots: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None,
                 interval: float | None = None) -> None:
        self.config = config
        self.sends = sends
        self.holder = holder or holder_id()
        self.interval = interval if interval is not None else config.interval_seconds
        self.ttl = timedelta(seconds=LEASE_CHECKS * self.interval)
        self.holding = False
        """This process is the database's sender (it held the lease at the last check)."""
        self.breaker_until: datetime | None = None
        """When the tripped S breaker ends, as last looked at (None: not tripped)."""
        self.ticks = 0
        self.failures = 0
        self._get_store = get_store
        self._clock = clock
        self._on_toast = on_toast
        self._language = language or (lambda: config.language)
        self._environ = environ
        self._robots = robots
        self._client: Any = None
        self._sender = NotifySender({}, self._show, language=config.language, tick_toasts=False)
        self.worker = EscalationWorker(Escalator(config, clock=clock), self._fetch, self._sender,
                                       interval=self.interval, on_tick=self._record)
        self._cursor: int | None = None
        self._breaker_looked = False
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def escalator(self) -> Escalator:
        return self.worker.escalator

    # -- running

    def launch(self) -> None:
        """Check now and then every interval, in the background (call on the running loop)."""
        if self._task is None and not self._stop.is_set():
            self._task = asyncio.create_task(self.run(self._stop), name="escalation")

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Check now and then every interval until ``stop`` is set; never raises out (but a cancel)."""
        stop = stop or self._stop
        while not stop.is_set():
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop outlives anything one check meets
                self.failures += 1
                log.exception("escalation: check failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                pass

    async def stop(self, grace: float = STOP_GRACE_S) -> None:
        """Stop the background checks (a check in flight gets ``grace`` seconds), then :meth:`close`."""
        self._stop.set()
        task = self._task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), grace)
            except TimeoutError:
                log.warning("escalation: a check did not end within %.0f s; cancelled", grace)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.close()

    async def close(self) -> None:
        """Give the lease back (the next sender takes over at its next check) and close the HTTP client."""
        from db.ingest import lease_release

        if self.holding:
            self.holding = False
            try:
                await lease_release(await self._get_store(), ESCALATION_LEASE, self.holder)
            except Exception:
                log.exception("escalation: could not give the lease back (it runs out by itself)")
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def tick(self, now: datetime | None = None) -> Tick | None:
        """One check: take or renew the lease and, as the sender, escalate; then toast what is new.

        The :class:`Tick` when this process decided (it is the sender), else None.
        """
        async with self._lock:
            self.ticks += 1
            now = now or self._clock()
            store = await self._get_store()
            if self._cursor is None:  # where this session starts following the timeline
                self._cursor, _ = await dbq.read(store, dbq.escalations_since, None)
            tick = await self._send(store, now) if self.sends else None
            toasts: list[Toast] = []
            for look in (self._follow, self._watch_breaker):
                try:
                    toasts += await look(store, now)
                except Exception:
                    self.failures += 1
                    log.exception("escalation: could not read %s", look.__name__.strip("_"))
            for toast in toasts:
                self._show(toast)
            return tick

    # -- the sender

    async def _send(self, store: Store, now: datetime) -> Tick | None:
        from db.ingest import lease_acquire

        try:
            held = await lease_acquire(store, ESCALATION_LEASE, self.holder, self.ttl, now=now)
        except Exception:
            self.failures += 1
            log.exception("escalation: could not take or renew the lease")
            held = False
        if held and not self.holding:
            try:
                await self._take_over(store, now)
            except Exception:  # without the record, sending could tell people twice: not this time
                self.failures += 1
                log.exception("escalation: could not read what was already escalated")
                return None
            log.info("escalation: %s is the sender for this database", self.holder)
        elif self.holding and not held:
            log.warning("escalation: another process is the sender now")
        self.holding = held
        if not held:
            return None
        return await self.worker.tick(now)

    async def _take_over(self, store: Store, now: datetime) -> None:
        """Start as the sender from what the database says: levels reached, the breaker."""
        from db.ingest import lease_holder

        escalator = Escalator(self.config, clock=self._clock)
        for order_no, level in (await dbq.read(store, dbq.escalated_levels, self.config.include_held)).items():
            escalator.remember(order_no, level)
        breaker = await lease_holder(store, S_BREAKER_LEASE, now=now)
        escalator.restore_breaker(breaker[1] if breaker is not None else None)
        self.worker.escalator = escalator
        if not self._sender.robots and self.config.robots:
            self._sender.robots = dict(self._robots) if self._robots is not None else self._build_robots()

    def _build_robots(self) -> dict[str, Any]:
        import httpx

        self._client = httpx.AsyncClient()
        options = {"environ": self._environ} if self._environ is not None else {}
        return build_robots(self.config, client=self._client, **options)

    async def _fetch(self) -> list[OpenOrder]:
        store = await self._get_store()
        config = self.worker.escalator.config
        rows = await dbq.read(store, dbq.waiting_rows, config.priorities(), config.include_held)
        return [OpenOrder(r.order_no, r.priority, r.status, r.waiting_since, r.sla_due, r.id, r.warehouse)
                for r in rows]

    async def _record(self, tick: Tick) -> bool:
        """The tick's timeline events and the breaker's lease, written while the lease is still
        ours (False: it is not — the notices are left to the new sender)."""
        from db.ingest import lease_acquire

        store = await self._get_store()
        if not await lease_acquire(store, ESCALATION_LEASE, self.holder, self.ttl, now=tick.at):
            self.holding = False
            return False
        rows = [dbq.event_row(e.order.order_id, ACTOR, at=tick.at, **e.event())
                for e in tick.escalations if e.order.order_id is not None]
        if rows:
            async with store.write() as conn:
                await dbq.store_rule_changes(conn, (), (), rows)
            log.info("escalation: %d order(s) escalated (%s)", len(rows),
                     ", ".join(f"level {e.level}" for e in tick.escalations[:5]))
        breaker = tick.breaker
        if breaker is not None and breaker.kind == "tripped" and breaker.until is not None:
            await lease_acquire(store, S_BREAKER_LEASE, self.holder, breaker.until - tick.at, now=tick.at)
            log.warning("escalation: S breaker tripped (%d S orders waiting, limit %d) until %s",
                        breaker.s_waiting, breaker.threshold, breaker.until.isoformat())
        return True

    # -- every session

    async def _follow(self, store: Store, now: datetime) -> list[Toast]:
        """Toasts for the escalation events written since the last look, one per level."""
        last, events = await dbq.read(store, dbq.escalations_since, self._cursor)
        self._cursor = last
        groups: dict[tuple[int, str], tuple[list[str], list[str]]] = {}
        for _, order_no, level, detail in events:
            name = detail.get("level_name")
            numbers, told = groups.setdefault((level, name if isinstance(name, str) and name else str(level)), ([], []))
            numbers.append(order_no)
            for person in detail.get("notified") or ():
                if isinstance(person, str) and person not in told:
                    told.append(person)
        language = self._language()
        return [level_toast(level, name, numbers, told, language)
                for (level, name), (numbers, told) in sorted(groups.items())]

    async def _watch_breaker(self, store: Store, now: datetime) -> list[Toast]:
        """A toast when the S breaker trips or resets (whoever tripped it); none at the first look."""
        from db.ingest import lease_holder

        held = await lease_holder(store, S_BREAKER_LEASE, now=now)
        until = held[1] if held is not None else None
        previous, self.breaker_until = self.breaker_until, until
        first, self._breaker_looked = not self._breaker_looked, True
        if first or until == previous:
            return []
        if until is None:
            return [breaker_toast(False, None, self._language())]
        if previous is None or until > previous:
            return [breaker_toast(True, until, self._language())]
        return []

    def _show(self, toast: Toast) -> None:
        if self._on_toast is None:
            return
        try:
            self._on_toast(toast)
        except Exception:  # a toast that cannot be shown must not stop escalation
            log.exception("escalation: could not show a toast")
