"""DeskApp: the shell that holds the Store, the operator and the clock, and opens screens."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from db.store import Store
from db.views import Actor
from widgets.i18n import language, set_language, tr

from deskapp.screens.base import localize_bindings
from deskapp.screens.card import CardScreen
from deskapp.screens.lookup import LookupScreen
from deskapp.settings import Settings

log = logging.getLogger("deskapp")


class DeskApp(App):
    """The order desk. Build it with :func:`deskapp.__main__.make_app` (CLI and tests alike)."""

    CSS_PATH = "deskapp.tcss"
    TITLE = "deskapp"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("ctrl+q", "quit", "bind.quit", id="app.quit", tooltip="bind.quit", priority=True),
        Binding("f2", "toggle_language", "bind.language", id="app.language", tooltip="bind.language"),
    ]

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        operator_name: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.settings = settings
        self.actor = Actor("operator", settings.operator)
        self.operator_name = operator_name or settings.operator
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.sync_state = "off"
        localize_bindings(self)

    def get_default_screen(self) -> Screen:
        return LookupScreen()

    def on_mount(self) -> None:
        # Everything built so far lives as long as the app: move it out of the collector's way, so
        # full collections (100–300 ms pauses on this stack) do not set the keypress p99.
        gc.collect()
        gc.freeze()

    def open_order(self, order_id: int) -> None:
        """Show the lifecycle card of one order."""
        self.push_screen(CardScreen(order_id))

    def action_toggle_language(self) -> None:
        """Switch between Chinese and English; the lookup stays as it is, in the new words."""
        set_language("en" if language() == "zh" else "zh")
        localize_bindings(self)
        while len(self.screen_stack) > 1:
            self.pop_screen()
        if isinstance(self.screen, LookupScreen):
            self.screen.relabel()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Only safe commands in the palette: no screenshot-to-path, no shell."""
        yield SystemCommand(tr("bind.search"), tr("lookup.placeholder"), self._focus_search)
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
