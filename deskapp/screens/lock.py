"""The lock screen: after the idle time (or from the palette) it covers everything until the same
person types their PIN — or F12 lets someone else sign in.

Opaque and a dialog: no customer data shows through it, no screen key or palette opens past it.
The same person's PIN returns to exactly where they were (the screens under it are untouched);
someone else signing in (F12) resets the desk as a switch of user does (``DeskApp``).

An operator without a PIN (an SSH login: sshd authenticated them, and there is no PIN to ask for)
is locked too, and any key returns — the lock still hides the screen from passers-by.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from db.sanitize import clean_text
from widgets.footer import DeskFooter
from widgets.header import DeskHeader
from widgets.i18n import language, tr

from deskapp.screens.base import localize_bindings
from deskapp.screens.signin import GATE_CSS
from deskapp.services.auth import sign_in

if TYPE_CHECKING:
    from deskapp.app import DeskApp

log = logging.getLogger("deskapp.lock")

#: Keys that keep their app-wide meaning on a lock without a PIN (everything else unlocks).
PASS_THROUGH = frozenset({"f12", "ctrl+q", "f2"})


class LockScreen(ModalScreen[bool]):
    """Locked: the operator's PIN (Enter) unlocks; without a PIN any key does. F12 switches user.

    ``login`` / ``name`` / ``has_pin``: who was working; ``idle_minutes``: why (None: locked by hand).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        # A dialog shuts the app's own (non-priority) keys out: the language key is offered here.
        Binding("f2", "app.toggle_language", "bind.language", id="lock.language", tooltip="bind.language"),
    ]
    DEFAULT_CSS = GATE_CSS.format(name="LockScreen", box="lock-box")

    app: DeskApp

    def __init__(self, login: str, name: str, *, has_pin: bool, idle_minutes: int | None = None) -> None:
        super().__init__()
        self.login = login
        self.operator_name = name
        self.has_pin = has_pin
        self.idle_minutes = idle_minutes
        localize_bindings(self)

    def compose(self) -> ComposeResult:
        app = self.app
        yield DeskHeader(clock=app.clock, operator=app.operator_name, role=app.role_words(),
                         sync_state=app.sync_state)
        with Vertical(id="lock-box"):
            yield Static(Content(self._title()), id="lock-title", classes="gate-title")
            yield Static(Content(self._why()), id="lock-why", classes="gate-hint")
            if self.has_pin:
                yield Input(id="lock-pin", password=True, max_length=8, restrict=r"[0-9]*")
            yield Static(Content(""), id="lock-message", classes="gate-message")
        yield DeskFooter()

    def _title(self) -> str:
        return tr("lock.pin" if self.has_pin else "lock.any_key", name=clean_text(self.operator_name) or "—")

    def _why(self) -> str:
        return tr("lock.why", n=self.idle_minutes) if self.idle_minutes else tr("lock.why_manual")

    def on_mount(self) -> None:
        if self.has_pin:
            self.query_one("#lock-pin", Input).focus()

    def on_key(self, event: events.Key) -> None:
        # Without a PIN, any key but the app-wide ones (switch user, quit, language) unlocks.
        if not self.has_pin and event.key not in PASS_THROUGH:
            event.stop()
            event.prevent_default()
            self.dismiss(True)

    @on(Input.Submitted, "#lock-pin")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value and not event.input.disabled:
            self._verify(event.value)

    @work(group="lock-check", exclusive=True, exit_on_error=False)
    async def _verify(self, pin: str) -> None:
        box = self.query_one("#lock-pin", Input)
        box.disabled = True
        self._say(tr("signin.checking"))
        try:
            result = await sign_in(self.app.store, self.login, pin, policy=self.app.policy, now=self.app.clock())
        except Exception:  # noqa: BLE001 - one plain line, the details in the log
            log.exception("unlock failed")
            result = None
        box.disabled = False
        box.value = ""
        box.focus()
        if result is None:
            self._say(tr("app.error"), error=True)
        elif result.ok:
            self.dismiss(True)
        else:
            self._say(result.text(language()), error=True)

    def _say(self, text: str, *, error: bool = False) -> None:
        message = self.query_one("#lock-message", Static)
        message.update(Content(text))
        message.set_class(error, "-error")

    def relabel(self) -> None:
        """The words in today's language (F2 while locked)."""
        localize_bindings(self)
        self.refresh_bindings()
        self.query_one("#lock-title", Static).update(Content(self._title()))
        self.query_one("#lock-why", Static).update(Content(self._why()))
        self.query_one(DeskHeader).refresh()
