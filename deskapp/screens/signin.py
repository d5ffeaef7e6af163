"""The sign-in screen: pick your name, type your PIN — on a shared PC, and on F12 (switch user).

It covers everything (opaque; nothing of the previous person's work shows through) and is a
dialog, so the app's screen keys (F4/F5/F6) and the command palette stay shut while it is up.
PINs are checked by ``deskapp.services.auth.sign_in`` in a thread (Argon2 is slow on purpose):
wrong PINs are counted in the database and lock the operator after the policy's limit; every
attempt is on the access log. The screen says what happened in one line: how many tries are
left, until when the operator is locked, that they are disabled or have no PIN yet.

Dismissed with the signed-in :class:`~deskapp.services.auth.OperatorInfo`, or None when backed out
(F12's sign-in only: the one at start-up cannot be left but by Ctrl+Q).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from db.roles import role_name
from db.sanitize import clean_text
from widgets.footer import DeskFooter
from widgets.header import DeskHeader
from widgets.i18n import language, tr

from deskapp.screens.base import localize_bindings
from deskapp.services.auth import OperatorInfo, SignInResult, operators, sign_in

if TYPE_CHECKING:
    from deskapp.app import DeskApp

log = logging.getLogger("deskapp.signin")

#: Names are padded to the longest, up to this many cells, so the roles form a column.
NAME_CELLS = 16

#: The CSS every screen that guards the desk shares: opaque, centred box.
GATE_CSS = """
    {name} {{ background: $background; align: center middle; }}
    {name} > #{box} {{
        width: 64; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }}
    {name} .gate-title {{ text-style: bold; height: auto; }}
    {name} .gate-hint {{ color: $text-muted; height: auto; }}
    {name} .gate-message {{ height: auto; min-height: 1; }}
    {name} .gate-message.-error {{ color: $error; text-style: bold; }}
    {name} Input, {name} Input:focus {{ border: none; height: 1; padding: 0 1; margin: 1 0 0 0; }}
    {name} Input {{ background: $boost; }}
    {name} Input:focus {{ background: $primary 25%; }}
"""


def operator_label(op: OperatorInfo, lang: str, width: int = 0) -> Text:
    """「王芳  客服」 (and 「未设 PIN」) for the list, the name padded to ``width`` cells so the roles
    line up (a Chinese character takes two); names as inert text, never markup."""
    name = clean_text(op.display_name)
    label = Text.assemble((name, "bold"), " " * max(0, width - cell_len(name)), "  ",
                          (role_name(op.role, lang), "dim"))
    if not op.has_pin:
        label.append(f"  {tr('signin.no_pin')}", style="dim italic")
    return label


class OperatorList(OptionList):
    """The operators to pick from; never focused (the filter box keeps the focus, ↑↓ move here)."""

    can_focus = False


class SignInScreen(ModalScreen[OperatorInfo | None]):
    """Pick an operator (type to filter, ↑↓, Enter), then type their PIN (Enter).

    | Key | Action |
    | :- | :- |
    | (type) | Filter the names. |
    | up/down | Move in the list. |
    | enter | Choose the highlighted name; in the PIN box: sign in. |
    | escape | From the PIN box: pick again; else back (F12's sign-in only). |
    | f2 | 中文 / English. |
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "choose", "bind.confirm", id="signin.choose", tooltip="bind.confirm", show=True),
        Binding("escape", "back", "bind.back", id="signin.back", tooltip="bind.back"),
        # A dialog shuts the app's own (non-priority) keys out: the language key is offered here.
        Binding("f2", "app.toggle_language", "bind.language", id="signin.language", tooltip="bind.language"),
        Binding("up", "move(-1)", show=False),
        Binding("down", "move(1)", show=False),
    ]

    DEFAULT_CSS = GATE_CSS.format(name="SignInScreen", box="signin-box") + """
    SignInScreen OperatorList { height: auto; max-height: 10; border: none; margin-top: 1; background: $surface; }
    SignInScreen #signin-pin-row { height: auto; display: none; }
    SignInScreen.-pin #signin-pin-row { display: block; }
    SignInScreen.-pin OperatorList, SignInScreen.-pin #signin-filter { display: none; }
    """

    app: DeskApp

    def __init__(self, *, preselect: str | None = None, cancellable: bool = True) -> None:
        """``preselect``: the login to offer first (its PIN box opens at once if it has a PIN);
        ``cancellable``: Escape backs out (switch user) — not at start-up."""
        super().__init__()
        self.preselect = preselect
        self.cancellable = cancellable
        self.everyone: list[OperatorInfo] = []
        self.shown: list[OperatorInfo] = []
        self.chosen: OperatorInfo | None = None
        localize_bindings(self)

    def compose(self) -> ComposeResult:
        app = self.app
        yield DeskHeader(clock=app.clock, operator=app.operator_name, role=app.role_words(),
                         sync_state=app.sync_state)
        with Vertical(id="signin-box"):
            yield Static(Content(tr("signin.title")), id="signin-title", classes="gate-title")
            yield Static(Content(tr("signin.hint")), id="signin-hint", classes="gate-hint")
            yield Input(id="signin-filter", placeholder=tr("signin.filter"))
            yield OperatorList(id="signin-list")
            with Vertical(id="signin-pin-row"):
                yield Static(Content(""), id="signin-who", classes="gate-title")
                yield Input(id="signin-pin", password=True, max_length=8, restrict=r"[0-9]*")
                note = getattr(app, "sign_in_note", "")
                yield Static(Content(tr("signin.pin_hint") + (f"\n{note}" if note else "")), id="signin-pin-hint",
                             classes="gate-hint")
            yield Static(Content(""), id="signin-message", classes="gate-message")
        yield DeskFooter()

    def on_mount(self) -> None:
        self.query_one("#signin-filter", Input).focus()
        self._load()

    @work(group="signin-load", exclusive=True, exit_on_error=False)
    async def _load(self) -> None:
        self.everyone = [op for op in await operators(self.app.store) if op.active]
        self._filter(self.query_one("#signin-filter", Input).value)
        first = next((op for op in self.everyone if op.id == self.preselect), None)
        if first is not None:
            self._highlight(first)
            if first.has_pin:
                self._ask_pin(first)

    # -- the list

    @on(Input.Changed, "#signin-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._filter(event.value)

    def _filter(self, text: str) -> None:
        wanted = clean_text(text).strip().lower()
        self.shown = [op for op in self.everyone
                      if not wanted or wanted in op.display_name.lower() or wanted in op.id.lower()]
        lang = language()
        width = min(NAME_CELLS, max((cell_len(clean_text(op.display_name)) for op in self.everyone), default=0))
        listing = self.query_one(OperatorList)
        listing.set_options(Option(operator_label(op, lang, width), id=op.id) for op in self.shown)
        listing.highlighted = 0 if self.shown else None
        self._say(tr("signin.none") if wanted and not self.shown else "")

    def _highlight(self, op: OperatorInfo) -> None:
        for index, shown in enumerate(self.shown):
            if shown.id == op.id:
                self.query_one(OperatorList).highlighted = index

    def action_move(self, step: int) -> None:
        if self.chosen is not None:
            return
        listing = self.query_one(OperatorList)
        if listing.option_count:
            listing.highlighted = max(0, min(listing.option_count - 1, (listing.highlighted or 0) + step))

    @property
    def highlighted(self) -> OperatorInfo | None:
        """The operator the list highlights."""
        index = self.query_one(OperatorList).highlighted
        return self.shown[index] if index is not None and index < len(self.shown) else None

    def action_choose(self) -> None:
        if self.chosen is not None:
            self._check(self.query_one("#signin-pin", Input).value)
            return
        op = self.highlighted
        if op is None:
            return
        if not op.has_pin:
            self._say(SignInResult("no_pin", op).text(language()), error=True)
            return
        self._ask_pin(op)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_choose()

    # -- the PIN

    def _ask_pin(self, op: OperatorInfo) -> None:
        self.chosen = op
        self.query_one("#signin-who", Static).update(Content(tr(
            "signin.pin_for", name=clean_text(op.display_name), role=role_name(op.role, language()))))
        self.add_class("-pin")
        pin = self.query_one("#signin-pin", Input)
        pin.value = ""
        pin.focus()

    def _pick_again(self) -> None:
        self.chosen = None
        self.remove_class("-pin")
        self.query_one("#signin-pin", Input).value = ""
        self.query_one("#signin-filter", Input).focus()

    def _check(self, pin: str) -> None:
        if self.chosen is None or not pin or self.query_one("#signin-pin", Input).disabled:
            return
        self._verify(self.chosen, pin)

    @work(group="signin-check", exclusive=True, exit_on_error=False)
    async def _verify(self, op: OperatorInfo, pin: str) -> None:
        box = self.query_one("#signin-pin", Input)
        box.disabled = True
        self._say(tr("signin.checking"))
        try:
            result = await sign_in(self.app.store, op.id, pin, policy=self.app.policy, now=self.app.clock())
        except Exception:  # noqa: BLE001 - one plain line, the details in the log
            log.exception("sign-in failed")
            result = None
        box.disabled = False
        box.value = ""
        if result is None:
            self._say(tr("app.error"), error=True)
            box.focus()
            return
        if result.ok and result.operator is not None:
            self.dismiss(result.operator)
            return
        self._say(result.text(language()), error=True)
        if result.status == "wrong_pin":
            box.focus()
        else:  # locked, disabled, no PIN: someone else may sign in meanwhile
            message = result.text(language())
            self._pick_again()
            self._say(message, error=True)

    def _say(self, text: str, *, error: bool = False) -> None:
        message = self.query_one("#signin-message", Static)
        message.update(Content(text))
        message.set_class(error, "-error")

    def action_back(self) -> None:
        if self.chosen is not None:
            self._pick_again()
            self._say("")
            return
        box = self.query_one("#signin-filter", Input)
        if box.value:
            box.value = ""
        elif self.cancellable:
            self.dismiss(None)

    def relabel(self) -> None:
        """The words in today's language (F2 while the screen is up)."""
        localize_bindings(self)
        self.refresh_bindings()
        self.query_one("#signin-title", Static).update(Content(tr("signin.title")))
        self.query_one("#signin-hint", Static).update(Content(tr("signin.hint")))
        self.query_one("#signin-pin-hint", Static).update(Content(tr("signin.pin_hint")))
        self.query_one("#signin-filter", Input).placeholder = tr("signin.filter")
        highlighted = self.highlighted
        self._filter(self.query_one("#signin-filter", Input).value)
        if highlighted is not None:
            self._highlight(highlighted)
        if self.chosen is not None:
            self._ask_pin(self.chosen)
        self.query_one(DeskHeader).refresh()
