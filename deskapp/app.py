"""DeskApp: the shell that holds the Store, the operator and the clock, and opens screens."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from time import monotonic
from typing import TYPE_CHECKING

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.signal import Signal
from textual.widget import AwaitMount
from textual.worker import Worker, WorkerState

from db.views import Actor
from widgets.header import DeskHeader
from widgets.i18n import language, set_language, tr

from deskapp.screens.base import localize_bindings
from deskapp.screens.card import CardScreen
from deskapp.screens.lookup import LookupScreen
from deskapp.services.livesync import LiveSync, OrdersChanged, SyncHealth
from deskapp.settings import Settings

if TYPE_CHECKING:
    from db.lazy import LazyStore
    from db.store import Store

log = logging.getLogger("deskapp")

#: Collector thresholds. Young generations as CPython's defaults; automatic full collections only
#: after ~100× the usual allocation volume, since the app collects by itself when idle.
GC_YOUNG, GC_MIDDLE, GC_FULL_WHILE_BUSY = 700, 10, 1000
#: Seconds without a key or mouse event before the app runs a full collection.
GC_IDLE_AFTER = 1.0


class DeskApp(App):
    """The order desk. Build it with :func:`deskapp.__main__.make_app` (CLI and tests alike)."""

    CSS_PATH = "deskapp.tcss"
    TITLE = "deskapp"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("ctrl+q", "quit", "bind.quit", id="app.quit", tooltip="bind.quit", priority=True),
        Binding("f2", "toggle_language", "bind.language", id="app.language", tooltip="bind.language"),
        # Textual adds its palette key to the instance's bindings, which localize_bindings
        # rebuilds from the class's: declared here, Ctrl+P opens the palette (not in the footer).
        Binding("ctrl+p", "command_palette", "bind.palette", id="app.palette", show=False, priority=True),
        # Not in the footer (every screen's key line would grow by it): F4 is in the command
        # palette and the README.
        Binding("f4", "connectors", "bind.connectors", id="app.connectors", tooltip="bind.connectors",
                show=False),
        Binding("f6", "exceptions", "bind.exceptions", id="app.exceptions", tooltip="bind.exceptions",
                show=False),
        Binding("f5", "queue", "bind.queue", id="app.queue", tooltip="bind.queue", show=False),
    ]

    def __init__(
        self,
        store: Store | LazyStore,
        settings: Settings,
        *,
        operator_name: str | None = None,
        clock: Callable[[], datetime] | None = None,
        sync: LiveSync | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.settings = settings
        self.actor = Actor("operator", settings.operator)
        self.operator_name = operator_name or settings.operator
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.live = sync or LiveSync.off()
        """Background sync (``deskapp.services.livesync``); starts after the first frame."""
        self.sync_state: SyncHealth = self.live.health
        self.orders_changed_signal: Signal[OrdersChanged] = Signal(self, "orders-changed")
        """Published when background sync inserted or updated orders (screens refresh what they show)."""
        self.card_screen: CardScreen  # one for the session, built in _prepare
        self._card_screen_ready = asyncio.Event()
        self._last_input = monotonic()
        self._input_since_gc = True  # the first idle moment also collects what start-up left
        self._frozen = False
        localize_bindings(self)

    def get_default_screen(self) -> Screen:
        return LookupScreen()

    def on_mount(self) -> None:
        # A full collection walks every object not frozen: 10 ms to 300 ms here, depending on how
        # much has piled up. Take them while the agent is not typing (see _collect_when_idle)
        # rather than whenever an allocation count says so, in the middle of a keypress.
        gc.set_threshold(GC_YOUNG, GC_MIDDLE, GC_FULL_WHILE_BUSY)
        self.set_interval(1.0, self._collect_when_idle)
        self.call_after_refresh(self._prepare)
        self.call_after_refresh(self._start_sync)
        self.call_after_refresh(self._start_queue)

    def _start_sync(self) -> None:
        """After the first frame: the sync workers (or the demo's emulators) start behind the screen."""
        if self.live.configured:
            self.live.on_change = self._sync_changed
            self.live.on_orders = self._orders_synced
            self.live.launch(self.full_store)
        elif self.live.elsewhere is not None and self.live.problems:
            # The config syncs into another database than this one: say it once, in one line.
            self.notify(self.live.problems[0].text(language()), severity="warning", timeout=15, markup=False)

    def _start_queue(self) -> None:
        """After the first frame: with a rules file, the warehouse rules apply in the background
        (``deskapp.screens.queue.QueueRunner``); without one, from the first F5."""
        from deskapp.screens.queue import QueueRunner

        if getattr(self, "queue_runner", None) is None:
            self.queue_runner = QueueRunner(self)
        if self.settings.rules:
            self.queue_runner.start()

    def _orders_synced(self, change: OrdersChanged) -> None:
        # Called from a sync task: hand it to the app's own queue.
        self.call_later(self._publish_orders, change)

    def _publish_orders(self, change: OrdersChanged) -> None:
        """Tell the screens (the lookup re-runs its query); refresh the open card if it is one of them."""
        self.orders_changed_signal.publish(change)
        card = getattr(self, "card_screen", None)
        if card is not None and self.screen is card and card.order_id in change.ids:
            self._reload_card(card.order_id)

    @work(group="card-refresh", exclusive=True, exit_on_error=False)
    async def _reload_card(self, order_id: int) -> None:
        card = self.card_screen
        if self.screen is card and card.order_id == order_id:  # still showing it
            await card.load(order_id)

    async def full_store(self) -> Store:
        """The full Store (a lazily opened pool finishes opening first): what sync and the
        Connectors screen need beyond the lookup's reads."""
        opener = getattr(self.store, "store", None)
        return await opener() if opener is not None else self.store

    def _sync_changed(self, health: SyncHealth) -> None:
        # Called from a sync task: hand it to the app's own queue rather than touch widgets here.
        self.call_later(self._show_sync, health)

    def _show_sync(self, health: SyncHealth) -> None:
        """Every header (shown or waiting in the stack) shows the new health: one line repainted."""
        self.sync_state = health
        screens = list(self.screen_stack)
        card = getattr(self, "card_screen", None)
        if card is not None and card not in screens:
            screens.append(card)
        for screen in screens:
            for header in screen.query(DeskHeader):
                header.sync_state = health

    async def on_unmount(self) -> None:
        # Quitting: runners finish the batch they are writing and give the lease back before the
        # Store closes (run_app closes it after this returns).
        await self.live.stop()

    @work(group="startup", exit_on_error=False)
    async def _prepare(self) -> None:
        """After the first frame: open the write side of a lazily opened pool; build the card screen."""
        if hasattr(self.store, "start"):
            self.store.start()
        self.card_screen = screen = CardScreen()
        self.install_screen(screen, "card")
        try:
            # Compose, mount, lay out and paint it now, as its first push would (Textual has no
            # public "mount without showing"), so the first Enter costs no more than the hundredth.
            await AwaitMount(screen, self._register(self, screen))
            screen._refresh_layout(self.size)  # noqa: SLF001
            screen._compositor.render_update(full=True)  # noqa: SLF001
        finally:
            self._card_screen_ready.set()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.InputEvent):
            self._last_input = monotonic()
            self._input_since_gc = True
        await super().on_event(event)

    def _collect_when_idle(self) -> None:
        if self._input_since_gc and monotonic() - self._last_input >= GC_IDLE_AFTER:
            self._input_since_gc = False
            gc.collect()
            if not self._frozen:
                # What start-up built (both screens, the Store) lives as long as the app: out of
                # the collector's way for good, so every later full collection is short.
                gc.freeze()
                self._frozen = True

    def open_order(self, order_id: int) -> None:
        """Show the lifecycle card of one order."""
        self._open_order(order_id)

    @work(group="open-order", exclusive=True, exit_on_error=False)
    async def _open_order(self, order_id: int) -> None:
        # Read and fill first, then show: the first frame of the card is the new order, complete.
        await self._card_screen_ready.wait()
        screen = self.card_screen
        if not await screen.load(order_id):
            self.notify(tr("card.not_found"), severity="error", markup=False)
            return
        if self.screen is not screen:
            self.push_screen(screen)

    def action_connectors(self) -> None:
        """Show the Connectors screen (F4), from anywhere but a dialog."""
        from deskapp.screens.connectors import ConnectorsScreen  # not needed for the first frame

        if isinstance(self.screen, ModalScreen):
            return
        for depth, screen in enumerate(reversed(self.screen_stack)):
            if isinstance(screen, ConnectorsScreen):
                for _ in range(depth):  # it is open under the quarantine list: back to it
                    self.pop_screen()
                return
        self.push_screen(ConnectorsScreen())

    def action_exceptions(self) -> None:
        """Show the exceptions screen (F6): held orders by reason, from anywhere but a dialog."""
        from deskapp.screens.exceptions import ExceptionsScreen  # not needed for the first frame

        if isinstance(self.screen, ModalScreen):
            return
        for depth, screen in enumerate(reversed(self.screen_stack)):
            if isinstance(screen, ExceptionsScreen):
                for _ in range(depth):  # it is open under a card: back to it
                    self.pop_screen()
                return
        self.push_screen(ExceptionsScreen())

    def action_queue(self) -> None:
        """Show the warehouse queue and board with the scan box (F5), from anywhere but a dialog."""
        from deskapp.screens.queue import show_queue

        show_queue(self)

    def action_toggle_language(self) -> None:
        """Switch between Chinese and English; the lookup stays as it is, in the new words."""
        set_language("en" if language() == "zh" else "zh")
        localize_bindings(self)
        from deskapp.screens.connectors import ConnectorsScreen

        relabel_connectors = any(isinstance(s, ConnectorsScreen) for s in self.screen_stack)
        while len(self.screen_stack) > 1:
            self.pop_screen()
        if isinstance(self.screen, LookupScreen):
            self.screen.relabel()
        if relabel_connectors:  # the Connectors screen stays, in the new words
            self.push_screen(ConnectorsScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Only safe commands in the palette: no screenshot-to-path, no shell."""
        yield SystemCommand(tr("bind.search"), tr("lookup.placeholder"), self._focus_search)
        yield SystemCommand(tr("bind.connectors"), "F4", self.action_connectors)
        yield SystemCommand(tr("bind.queue"), "F5", self.action_queue)
        yield SystemCommand(tr("bind.exceptions"), "F6", self.action_exceptions)
        yield SystemCommand("中文 / English", tr("bind.language"), self.action_toggle_language)
        yield SystemCommand(tr("bind.quit"), "ctrl+q", self.exit)

    def _focus_search(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()
        if isinstance(self.screen, LookupScreen):
            self.screen.action_focus_search()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed background job becomes a short message, never a traceback on screen."""
        if event.state == WorkerState.ERROR:
            log.error("worker %s failed", event.worker.name, exc_info=event.worker.error)
            self.notify(tr("app.error"), severity="error", markup=False)

    def _handle_exception(self, error: Exception) -> None:
        # Log the traceback to the file; what reaches the terminal is one plain line (the default
        # prints a Rich traceback with locals — customer data — to the agent's screen).
        log.error("unhandled error", exc_info=error)
        if self.is_headless:  # under tests: let the test runner see it
            super()._handle_exception(error)
            return
        self._return_code = 1
        self.exit(message=tr("app.error"))
