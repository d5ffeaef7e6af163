"""DeskApp: the shell that holds the Store, the operator and the clock, and opens screens."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from time import monotonic
from typing import TYPE_CHECKING

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import CommandPalette, SearchIcon
from textual.screen import ModalScreen, Screen
from textual.signal import Signal
from textual.widget import AwaitMount
from textual.worker import Worker, WorkerState

from db.views import Actor
from widgets.header import DeskHeader
from widgets.i18n import language, set_language, tr

from deskapp.screens.base import localize_bindings
from deskapp.screens.card import CardScreen
from deskapp.screens.lock import LockScreen
from deskapp.screens.lookup import LookupScreen
from deskapp.screens.signin import SignInScreen
from deskapp.services.auth import OperatorInfo, SecurityPolicy
from deskapp.services.livesync import LiveSync, OrdersChanged, SyncHealth
from deskapp.settings import Settings

if TYPE_CHECKING:
    from db.lazy import LazyStore
    from db.store import Store
    from deskapp.services.escalation import Toast

log = logging.getLogger("deskapp")

#: Collector thresholds. Young generations as CPython's defaults; automatic full collections only
#: after ~100× the usual allocation volume, since the app collects by itself when idle.
GC_YOUNG, GC_MIDDLE, GC_FULL_WHILE_BUSY = 700, 10, 1000
#: Seconds without a key or mouse event before the app runs a full collection.
GC_IDLE_AFTER = 1.0
#: How often the idle lock looks at the time since the last key (seconds).
IDLE_CHECK_S = 5.0


class DeskPalette(CommandPalette):
    """Textual's command palette with a plain-text search icon."""

    def on_mount(self) -> None:
        self.query_one(SearchIcon).icon = ">"


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
        # From anywhere, also inside a text box or a dialog (priority): the sign-in screen for the
        # next person. Not in the footer (the lock screen says it; the palette and README list it).
        Binding("f12", "switch_user", "bind.switch_user", id="app.switch_user", tooltip="bind.switch_user",
                show=False, priority=True),
    ]

    def __init__(
        self,
        store: Store | LazyStore,
        settings: Settings,
        *,
        operator_name: str | None = None,
        clock: Callable[[], datetime] | None = None,
        sync: LiveSync | None = None,
        operator: OperatorInfo | None = None,
        require_sign_in: bool = False,
        preselect: str | None = None,
        policy: SecurityPolicy | None = None,
        idle_clock: Callable[[], float] | None = None,
        sign_in_note: str = "",
    ) -> None:
        """``operator``: who works (else ``settings.operator``, read after the first frame);
        ``require_sign_in``: nobody is signed in yet — the sign-in screen comes first (``run_app``
        decides, ``deskapp.services.session``), with ``preselect``'s name offered; ``policy``: the
        idle lock and reveal times; ``idle_clock``: seconds, monotonic, for the idle lock and the
        reveal countdown (tests move it on)."""
        super().__init__()
        self.store = store
        self.settings = settings
        self.require_sign_in = require_sign_in
        self.sign_in_note = sign_in_note
        """One more line under the PIN box (the demo says its PIN there)."""
        self.preselect = preselect
        self.operator_info: OperatorInfo | None = None if require_sign_in else operator
        """The signed-in operator (None before the first sign-in)."""
        login = "" if require_sign_in else (operator.id if operator else settings.operator)
        self.actor = Actor("operator", login)
        """The author of every write from this terminal: the signed-in operator."""
        self.operator_name = "" if require_sign_in else (operator_name or (operator.display_name if operator
                                                                           else settings.operator))
        self.operator_role = "" if require_sign_in or operator is None else operator.role
        self.policy = policy or SecurityPolicy()
        self.idle_clock: Callable[[], float] = idle_clock or monotonic
        self._idle_since = self.idle_clock()
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
        self.call_after_refresh(self._start_escalation)
        self._idle_since = self.idle_clock()
        self.set_interval(IDLE_CHECK_S, self.check_idle_lock)
        if self.require_sign_in:
            self.push_screen(SignInScreen(preselect=self.preselect, cancellable=False), self._signed_in)
        elif self.operator_info is None:
            self.call_after_refresh(self._load_operator)
        if not self.is_headless:
            # Ctrl+Z reaches the app as a key (the driver turns ISIG off), but a SIGTSTP from
            # elsewhere would make the driver stop the process: a forced-command session freezes.
            signal.signal(signal.SIGTSTP, signal.SIG_IGN)

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

    def _start_escalation(self) -> None:
        """After the first frame: escalation of overdue urgent orders, when an escalation file is
        configured (``deskapp.services.escalation_runner``); a file that cannot be used is said once."""
        from deskapp.services.escalation_runner import for_app

        self.escalation, problem = for_app(getattr(self.settings, "escalation", None), get_store=self.full_store,
                                           clock=self.clock, toast=self._escalation_toast, language=language)
        if problem is not None:
            self.notify(tr("esc.broken", path=self.settings.escalation, problem=problem.text(language())),
                        title=tr("esc.broken_title"), severity="warning", timeout=15, markup=False)
        elif self.escalation is not None:
            self.escalation.launch()

    def _escalation_toast(self, toast: Toast) -> None:
        self.notify(toast.message, title=toast.title, severity=toast.severity,
                    timeout=20 if toast.severity == "error" else 10, markup=False)

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
        if getattr(self, "escalation", None) is not None:
            await self.escalation.stop()
        await self.live.stop()
        if self.require_sign_in and self.operator_info is not None:
            # A shared PC: when this person's session ended is on record, as a switch of user is.
            from db.access import log_access

            try:
                await log_access(self.store, self.operator_info.id, "sign_out", detail={"by": "quit"},
                                 at=self.clock())
            except Exception:  # noqa: BLE001 - quitting goes on; the details in the log
                log.exception("sign-out record not written")

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
        # The write side (SQLAlchemy, the models: ~35,000 objects) usually opens after the first
        # idle collection has frozen start-up; frozen without it, every later idle collection
        # walked it again (~30 ms of CPU each, in the middle of an agent's pause; bench/load.py).
        # So: collect and freeze once more at the next idle moment, once it is open.
        try:
            await self.full_store()
        except Exception:  # noqa: BLE001 - a pool that did not open is reported where a write needs it
            return
        self._frozen = False
        self._input_since_gc = True

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.InputEvent):
            self._last_input = monotonic()
            self._input_since_gc = True
            self._idle_since = self.idle_clock()
        await super().on_event(event)

    # -- who is working: sign-in, switch user, idle lock -------------------------------------------

    @work(group="startup-operator", exit_on_error=False)
    async def _load_operator(self) -> None:
        """Role (and PIN or not) of the operator the app was started as, for the header and the lock."""
        from db.lazy import read
        from db.roles import read_operator

        row, _ = await read(self.store, read_operator, self.actor.id)
        if row is not None and self.operator_info is None and self.actor.id == row.id:
            self.operator_info = OperatorInfo.of(row)
            self.operator_role = row.role
            self._show_operator()

    @property
    def gated(self) -> bool:
        """The sign-in or lock screen is up: nothing of the desk may open past it."""
        return any(isinstance(screen, (SignInScreen, LockScreen)) for screen in self.screen_stack)

    def role_words(self) -> str:
        """The signed-in operator's role as a person says it, in today's language ("" before sign-in)."""
        from db.roles import role_name

        return role_name(self.operator_role, language()) if self.operator_role else ""

    def _show_operator(self) -> None:
        """Every header (shown or waiting in the stack) shows who is signed in now, and their role."""
        screens = list(self.screen_stack)
        card = getattr(self, "card_screen", None)
        if card is not None and card not in screens:
            screens.append(card)
        role = self.role_words()
        for screen in screens:
            for header in screen.query(DeskHeader):
                header.operator = self.operator_name
                header.role = role

    def _become(self, who: OperatorInfo) -> None:
        self.operator_info = who
        self.actor = who.actor
        self.operator_name = who.display_name
        self.operator_role = who.role
        self._idle_since = self.idle_clock()
        self._show_operator()

    def action_switch_user(self) -> None:
        """F12: the sign-in screen for the next person; Escape there returns to what was on screen."""
        if isinstance(self.screen, SignInScreen):
            return
        self.push_screen(SignInScreen(cancellable=True), self._signed_in)

    def _signed_in(self, who: OperatorInfo | None) -> None:
        """After the sign-in screen: the same person carries on where they were (a lock under the
        sign-in goes too); someone else gets a fresh desk and every later write is theirs."""
        if who is None:
            return
        before = self.operator_info
        if before is None or who.id == before.id:
            while self.gated and len(self.screen_stack) > 1:
                self.pop_screen()
            self._become(who)
            return
        if getattr(self, "card_screen", None) is not None:
            self.card_screen.forget()
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self._clear_lookup()
        self._become(who)
        self._log_access(before.id, "sign_out", {"next": who.id})
        self._log_access(who.id, "switch_user", {"from": before.id})
        self.notify(tr("signin.switched", name=who.display_name, role=who.role_name(language())),
                    markup=False, timeout=4)

    def _clear_lookup(self) -> None:
        """The lookup at the bottom of the stack, empty: no query, no rows (before the next frame)."""
        from textual.widgets import Input

        lookup = self.screen_stack[0]
        if isinstance(lookup, LookupScreen):
            lookup.query_one("#search", Input).value = ""
            lookup.results.show_hits([], self.clock())
            lookup.search("")
            lookup.action_focus_search()

    @work(group="access-log", exit_on_error=False)
    async def _log_access(self, operator_id: str, kind: str, detail: dict | None = None) -> None:
        from db.access import log_access

        await log_access(self.store, operator_id, kind, detail=detail, at=self.clock())

    def check_idle_lock(self) -> None:
        """Lock the screen once ``policy.idle_lock_minutes`` have passed without a key (the app
        calls it every few seconds; tests call it after moving ``idle_clock`` on)."""
        minutes = self.policy.idle_lock_minutes
        if not minutes or not self.actor.id or self.gated:
            return
        if self.idle_clock() - self._idle_since >= minutes * 60:
            self.lock(idle_minutes=minutes)

    def lock(self, *, idle_minutes: int | None = None) -> None:
        """Cover the desk with the lock screen; a card's revealed details are masked again."""
        if self.gated or not self.actor.id:
            return
        card = getattr(self, "card_screen", None)
        if card is not None:
            card.conceal()
        who = self.operator_info
        self.push_screen(LockScreen(self.actor.id, self.operator_name, has_pin=bool(who and who.has_pin),
                                    idle_minutes=idle_minutes), self._unlocked)
        self._log_access(self.actor.id, "idle_lock", {"minutes": idle_minutes} if idle_minutes else {"by": "hand"})

    def _unlocked(self, _: bool | None) -> None:
        self._idle_since = self.idle_clock()

    def action_lock(self) -> None:
        """Lock the screen now (the palette's 锁屏): leaving the desk for a moment."""
        self.lock()

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
        if self.gated:  # locked (or someone else signed in) while it was read: not shown
            if screen not in self.screen_stack:
                screen.forget()
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
        self._show_operator()  # the role in the new words
        if self.gated:  # the sign-in or lock screen stays up, in the new words
            for screen in self.screen_stack:
                if isinstance(screen, (SignInScreen, LockScreen, LookupScreen)):
                    screen.relabel()
            return
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
        yield SystemCommand(tr("bind.switch_user"), "F12", self.action_switch_user)
        yield SystemCommand(tr("bind.lock"), tr("lock.why_manual"), self.action_lock)
        yield SystemCommand(tr("bind.quit"), "ctrl+q", self.exit)

    # A forced-command SSH session (docs/ssh-host.md) must never leave the app: no suspend, no
    # file written at a path an action string names. tests/pty/test_terminal.py checks it for real.

    def action_suspend_process(self) -> None:
        """Off. Under sshd's ForceCommand a stopped app is a frozen session, or a shell where one exists."""
        self.notify(tr("app.no_suspend"), severity="warning", markup=False)

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        """Off: it writes an SVG wherever the action names (``[@click=app.screenshot(...)]`` in markup)."""
        log.warning("screenshot action refused")

    def action_command_palette(self) -> None:
        """The palette in the interface language, with a text icon (🔎 is a blank box without an emoji font)."""
        if self.use_command_palette and not CommandPalette.is_open(self) and not self.gated:
            self.push_screen(DeskPalette(id="--command-palette", placeholder=tr("palette.placeholder")))

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
