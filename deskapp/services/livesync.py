"""Sync inside the app: every configured shop (or the demo's emulators) as a background task.

:class:`LiveSync` is what ``deskapp`` runs behind the screens. After the first frame the app calls
:meth:`LiveSync.launch` with a way to get the full Store; one asyncio task then builds the workers
(``connectors.wiring.build_workers`` from ``deskapp.toml``, or one runner per demo emulator) and
runs each shop's ``SyncRunner.run_forever`` side by side. The sync lease decides which process
syncs: in a second terminal on the same database every run is skipped, and the health says so.

Each ``SyncReport`` updates a :class:`SyncHealth` (what the header shows) and per-connector
:class:`LiveConnector` notes (what only this process knows: shops that could not start and why,
shops switched off in the config). Counts, errors and quarantine live in the database
(``db.ingest.connector_statuses``), so every terminal shows the same numbers. A run that inserted
or updated orders is also told to ``on_orders`` as :class:`OrdersChanged` (the app refreshes what
it shows of them).

A config that names its database (``db = …``) syncs into that database only: when the app opened
another one (``--db``, ``DESKAPP_DB``), :meth:`LiveSync.keep_to` turns the sync off here and says
why, as a problem in plain words and the header state ``elsewhere``.

:meth:`LiveSync.stop` sets the stop event — runners finish the batch they are writing, commit or
roll back, and give the lease back — and only cancels what is still running after a grace period
(a platform call stuck in its retries). Nothing here raises into the app: a failure becomes a
logged error and a state in plain words. No Textual here; the app turns health into pixels.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from connectors.base import Adapter
    from connectors.config import Config, Problem
    from connectors.emulators import RunningEmulator
    from connectors.sync import SyncReport
    from connectors.wiring import Worker
    from db.store import Store

log = logging.getLogger("deskapp.sync")

#: Every platform call gives up after this; the retry policy decides what happens next.
HTTP_TIMEOUT_S = 15.0
#: How long :meth:`LiveSync.stop` waits for runners to finish their batch before cancelling them.
STOP_GRACE_S = 5.0
#: A healthy header is repainted for a newer success only when it is at least this much newer.
FRESHNESS_STEP = timedelta(seconds=10)

#: The demo's live shop code: distinct from the shops the demo database was built with.
DEMO_SHOP = "live1"
#: Demo emulators: generated history per channel, how far back it goes, new orders per minute.
DEMO_ORDERS = 40
DEMO_DAYS = 0.5
DEMO_NEW_PER_MINUTE = 4.0
DEMO_INTERVAL_S = 1.0


#: How often the order checks look for orders waiting to be checked (an indexed query when none wait).
CHECK_INTERVAL_S = 0.5


def utc_now() -> datetime:
    """The default clock: aware UTC now."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class SyncHealth:
    """Overall sync health, as the header shows it (see ``widgets.header.SyncSummary``).

    ``state``: ``off`` (no config), ``config`` (the config has problems), ``elsewhere`` (the config
    syncs into another database than the one open here), ``starting`` (no run reported yet),
    ``ok``, ``failing`` (``failing`` connectors failed their last run or could not start),
    ``other`` (another terminal holds the sync lease).
    """

    state: str = "off"
    failing: int = 0
    last_ok: datetime | None = None


@dataclass(frozen=True)
class OrdersChanged:
    """A sync run inserted or updated these orders (database ids)."""

    connector: str
    ids: frozenset[int]


@dataclass
class LiveConnector:
    """What this process knows about one configured connector beyond the database's counters."""

    connector: str
    channel: str
    state: str = "waiting"  # waiting | ok | failing | other | not_started | paused
    reason: str | None = None  # why it failed, could not start, or was skipped (plain words)
    last_report_at: datetime | None = None
    adapter: Adapter | None = field(default=None, repr=False)


@dataclass(frozen=True)
class DemoPlan:
    """The emulators ``deskapp demo`` runs in-process, and how the app's workers poll them."""

    channels: tuple[str, ...] = ()  # empty: every channel an emulator exists for
    shop: str = DEMO_SHOP
    orders: int = DEMO_ORDERS
    days: float = DEMO_DAYS
    new_per_minute: float = DEMO_NEW_PER_MINUTE
    interval: float = DEMO_INTERVAL_S
    #: None: a new seed every start, so a reused demo database gets new orders rather than the
    #: same order ids again on a world whose clock moved on (which reads as status regressions).
    seed: int | None = None


class LiveSync:
    """The app's background sync service; see the module docstring.

    Build it with :meth:`from_config` (a ``deskapp.toml``), :meth:`demo` (in-process emulators) or
    :meth:`off`; then ``launch(get_store)`` after the first frame and ``await stop()`` on the way out.
    ``on_change`` is called (on the event loop) with the new :class:`SyncHealth` whenever it changes;
    ``on_orders`` with an :class:`OrdersChanged` after every run that inserted or updated orders.
    """

    def __init__(
        self,
        *,
        config: Config | None = None,
        config_path: Path | None = None,
        problems: Sequence[Problem] = (),
        demo: DemoPlan | None = None,
        clock: Callable[[], datetime] = utc_now,
        runner_options: dict[str, Any] | None = None,
        http_timeout: float = HTTP_TIMEOUT_S,
        config_db: str | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.config_db = config_db if config_db is not None else (config.db if config is not None else None)
        """The database the config syncs into (its ``db``), when it names one."""
        self.elsewhere: str | None = None
        """The database open here, when it is not the config's (then nothing syncs here)."""
        self.problems: list[Problem] = list(problems)
        self.demo_plan = demo
        self.clock = clock
        self.runner_options = dict(runner_options or {})
        self.http_timeout = http_timeout
        self.on_change: Callable[[SyncHealth], None] | None = None
        self.on_orders: Callable[[OrdersChanged], None] | None = None
        self.connectors: dict[str, LiveConnector] = {}
        self.emulators: list[RunningEmulator] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._last_ok: datetime | None = None
        self._idle = False  # started, and found nothing to run
        self.fatal: str | None = None  # why the whole sync stopped, if it did (plain words)
        self._health = SyncHealth(self._idle_state())
        if config is not None:
            for shop in config.shops(enabled_only=False):
                channel = config.channel(shop.channel)
                paused = not shop.enabled or (channel is not None and not channel.enabled)
                self.connectors[shop.actor_id] = LiveConnector(
                    shop.actor_id, shop.channel, "paused" if paused else "waiting")

    # -- building --------------------------------------------------------------------------------

    @classmethod
    def off(cls) -> LiveSync:
        """No sync in this app: the header says 未配置."""
        return cls()

    @classmethod
    def from_config(cls, path: str | Path, **options: Any) -> LiveSync:
        """Sync what ``path`` configures. A config with problems syncs nothing and lists them.

        Unset environment variables are not problems here: the shops that need them show as not
        started, with the variable's name, while the others sync.
        """
        from connectors.config import read

        path = Path(path)
        config, problems = read(path)
        problems = [p for p in problems if p.code != "missing_env"]
        if problems or config is None:
            log.warning("sync config %s has %d problems", path, len(problems))
            return cls(config_path=path, problems=problems, config_db=config.db if config else None, **options)
        return cls(config=config, config_path=path, **options)

    @classmethod
    def demo(cls, plan: DemoPlan | None = None, **options: Any) -> LiveSync:
        """Run the platform emulators in this process and sync them (``deskapp demo``)."""
        plan = plan or DemoPlan()
        options.setdefault("runner_options", {"overlap": timedelta(minutes=1), "lag": timedelta(0),
                                              "initial_lookback": timedelta(days=plan.days)})
        return cls(demo=plan, **options)

    def keep_to(self, db: str) -> None:
        """The app opened ``db``: if the config syncs into another database, sync nothing here and
        say so (a problem in plain words, the header state ``elsewhere``)."""
        from deskapp.settings import same_db

        if self.config_db is None or self.demo_plan is not None or same_db(self.config_db, db):
            return
        from connectors.config import Problem
        from db.sanitize import clean_text

        where = clean_text(str(self.config_path or "deskapp.toml"))
        theirs, here = clean_text(self.config_db), clean_text(db)
        self.elsewhere = db
        self.config = None
        self.connectors.clear()
        self.problems.insert(0, Problem(
            "db",
            f"{where} 的店铺同步到 {theirs}；这里打开的是 {here}，所以这里不同步（不加 --db、不设 DESKAPP_DB 即打开 {theirs}）",
            f"the shops of {where} sync into {theirs}; this window opened {here}, so it does not sync "
            f"(leave out --db and DESKAPP_DB to open {theirs})",
            "other_db",
        ))
        self._health = SyncHealth(self._idle_state())
        log.warning("not syncing: the config syncs into %s, the app opened %s", self.config_db, db)

    @property
    def configured(self) -> bool:
        """True when there is something to sync (a usable config or the demo's emulators)."""
        return self.config is not None or self.demo_plan is not None

    @property
    def health(self) -> SyncHealth:
        """The current overall health."""
        return self._health

    @property
    def running(self) -> bool:
        """True between :meth:`launch` and the end of :meth:`stop`."""
        return self._task is not None and not self._task.done()

    # -- running ---------------------------------------------------------------------------------

    def launch(self, get_store: Callable[[], Awaitable[Store]]) -> None:
        """Start syncing in the background (call on the app's event loop; a second call is a no-op)."""
        if self._task is not None or not self.configured or self._stop.is_set():
            return
        self._set_health(SyncHealth("starting"))
        self._task = asyncio.create_task(self._run(get_store), name="deskapp live sync")

    async def stop(self, grace: float = STOP_GRACE_S) -> None:
        """Stop every runner cleanly (their running batch commits or rolls back), then the emulators."""
        self.on_change = None  # the screens are going away
        self.on_orders = None
        self._stop.set()
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            log.warning("sync did not stop within %.0f s; cancelling what is left", grace)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        except Exception:  # noqa: BLE001 - _run logs its own failures; this is the stop path
            log.debug("sync ended with an error while stopping", exc_info=True)

    async def _run(self, get_store: Callable[[], Awaitable[Store]]) -> None:
        import httpx

        try:
            store = await get_store()
            async with httpx.AsyncClient(timeout=self.http_timeout) as client:
                workers = await self._build(store, client)
                if self._stop.is_set():
                    return
                if not workers:
                    self._idle = True
                    self._publish()
                    return
                log.info("live sync: %d shops", len(workers))
                from deskapp.services.checker import Checker

                tasks = [
                    asyncio.create_task(w.runner.run_forever(w.interval, self._stop), name=f"sync {w.runner.connector}")
                    for w in workers
                ]
                # the order checks follow the sync: what it brings in is checked within a second
                tasks.append(asyncio.create_task(Checker(store).run_forever(CHECK_INTERVAL_S, self._stop),
                                                 name="order checks"))
                try:
                    await asyncio.gather(*tasks)
                finally:
                    for task in tasks:
                        task.cancel()  # a no-op for the ones that ended
                    await asyncio.gather(*tasks, return_exceptions=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - never into the app: a state and a log line
            log.exception("live sync failed")
            from connectors.sync import describe

            self.fatal = describe(exc)
            for item in self.connectors.values():
                if item.state not in ("paused", "not_started"):
                    item.state, item.reason = "failing", self.fatal
            self._publish()
        finally:
            await self._stop_emulators()

    async def _build(self, store: Store, client: httpx.AsyncClient) -> list[Worker]:
        if self.demo_plan is not None:
            return await self._build_demo(store, client)
        if self.config is None:
            return []
        from connectors.wiring import build_workers

        workers, not_started = build_workers(store, self.config, client, on_report=self.record,
                                             **self.runner_options)
        for item in not_started:
            note = self._note(item.connector)
            note.state, note.reason = "not_started", item.reason
        for worker in workers:
            note = self._note(worker.runner.connector)
            note.adapter = worker.runner.adapter
        return workers

    async def _build_demo(self, store: Store, client: httpx.AsyncClient) -> list[Worker]:
        from connectors.emulators import CHANNELS, start_emulator
        from connectors.sync import SyncRunner
        from connectors.wiring import Worker

        plan = self.demo_plan
        assert plan is not None
        seed = plan.seed if plan.seed is not None else time.time_ns() % 2**31
        workers: list[Worker] = []
        for channel in plan.channels or CHANNELS:
            if self._stop.is_set():
                break
            try:
                # In a thread: building the world and serving it never holds up the screen's loop.
                emulator = await asyncio.to_thread(
                    start_emulator, channel, 0, orders=plan.orders, seed=seed, days=plan.days,
                    shops=(plan.shop,), new_per_minute=plan.new_per_minute,
                )
            except Exception:  # noqa: BLE001 - one emulator less; the demo goes on
                log.exception("demo: the %s emulator did not start", channel)
                continue
            self.emulators.append(emulator)
            try:
                source, adapter = emulator.connector(plan.shop, client=client)
            except Exception:  # noqa: BLE001 - e.g. an emulator without a connector yet
                log.exception("demo: no connector for the %s emulator", channel)
                continue
            runner = SyncRunner(store, source, adapter, on_report=self.record, **self.runner_options)
            note = self._note(runner.connector, channel)
            note.adapter = adapter
            workers.append(Worker(runner, timedelta(seconds=plan.interval)))
        return workers

    async def _stop_emulators(self) -> None:
        emulators, self.emulators = self.emulators, []
        for emulator in emulators:
            try:
                await asyncio.to_thread(emulator.stop)
            except Exception:  # noqa: BLE001
                log.exception("demo: could not stop the %s emulator", emulator.channel)

    # -- health ----------------------------------------------------------------------------------

    def _note(self, connector: str, channel: str | None = None) -> LiveConnector:
        note = self.connectors.get(connector)
        if note is None:
            note = self.connectors[connector] = LiveConnector(connector, channel or connector.split(":", 1)[0])
        return note

    def record(self, report: SyncReport) -> None:
        """A runner finished a run: note it and recompute the health (called on the event loop)."""
        now = self.clock()
        note = self._note(report.connector)
        note.last_report_at = now
        if report.error is not None:
            note.state, note.reason = "failing", report.error
        elif report.skipped is not None:
            note.state, note.reason = "other", report.skipped
        else:
            note.state, note.reason = "ok", None
            self._last_ok = now
        self._publish()
        changed = report.result.changed_ids
        if changed and self.on_orders is not None:
            try:
                self.on_orders(OrdersChanged(report.connector, frozenset(changed)))
            except Exception:  # a listener's bug must not stop syncing
                log.exception("orders-changed listener failed")

    def _idle_state(self) -> str:
        if self.elsewhere is not None:
            return "elsewhere"
        if self.problems:
            return "config"
        return "starting" if self.configured else "off"

    def summarise(self) -> SyncHealth:
        """The health from what every connector last reported."""
        if not self.configured:
            return SyncHealth(self._idle_state())
        notes = [n for n in self.connectors.values() if n.state != "paused"]
        failing = sum(n.state in ("failing", "not_started") for n in notes)
        if failing or self.fatal is not None:
            return SyncHealth("failing", max(failing, 1), self._last_ok)
        if self._idle:  # every shop is switched off: nothing to sync
            return SyncHealth("off")
        if any(n.state == "ok" for n in notes):
            return SyncHealth("ok", 0, self._last_ok)
        if notes and all(n.state == "other" for n in notes):
            return SyncHealth("other")
        return SyncHealth("starting")

    def _publish(self) -> None:
        health = self.summarise()
        old = self._health
        same = (health.state, health.failing) == (old.state, old.failing)
        fresher = health.last_ok is not None and (
            old.last_ok is None or health.last_ok - old.last_ok >= FRESHNESS_STEP)
        if not same or fresher:
            self._set_health(health)

    def _set_health(self, health: SyncHealth) -> None:
        self._health = health
        if self.on_change is not None:
            try:
                self.on_change(health)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop syncing
                log.exception("sync health listener failed")

    # -- for the Connectors screen ---------------------------------------------------------------

    def adapter_for(self, connector: str, channel: str) -> Adapter | None:
        """The adapter to retry a quarantined payload of ``connector`` with, or None.

        The running worker's own adapter (with the config's status maps) if there is one; else a
        platform channel's adapter with the config's overrides; else None.
        """
        note = self.connectors.get(connector)
        if note is not None and note.adapter is not None:
            return note.adapter
        return fallback_adapter(channel, self.config)


def fallback_adapter(channel: str, config: Config | None = None) -> Adapter | None:
    """A platform channel's adapter (with the config's status maps, if configured); None otherwise."""
    try:
        from connectors.config import PLATFORM_CHANNELS
        from connectors.platforms import make_adapter

        if channel not in PLATFORM_CHANNELS:
            return None
        settings = config.channel(channel) if config is not None else None
        return make_adapter(channel, settings.overrides() if settings is not None else None)
    except Exception:  # noqa: BLE001 - no adapter for it here
        log.exception("no adapter for channel %s", channel)
        return None


def config_for_app(explicit: str | Path | None) -> LiveSync:
    """The app's sync: the ``--config`` file if given, else the default config file if it exists,
    else off. (An explicit path that does not exist is a config problem, shown as such.)"""
    if explicit:
        return LiveSync.from_config(explicit)
    from deskapp.settings import default_config_path

    path = default_config_path()
    return LiveSync.from_config(path) if path.is_file() else LiveSync.off()
