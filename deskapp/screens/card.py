"""The order card screen: the lifecycle card of one order, with copy keys, the seller memo, the
address form and the reveal of the customer's full details.

The card shows the receiver masked (``db.privacy``). ``v`` asks which fields and why, then
``deskapp.services.reveal.reveal_card`` checks the ``reveal`` permission and logs one access-log
record per field before the card shows them; a countdown line says when they hide again
(``SecurityPolicy.reveal_minutes``) — and leaving the card, the idle lock or a switch of user hides
them at once. Opening the address form (``e``) is a reveal too (reason 「修改地址」), logged the
same way: the form shows the real receiver to edit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from db.privacy import MASK
from db.roles import Refused, allowed
from db.sanitize import clean_text
from db.views import OrderCard
from widgets.footer import DeskFooter
from widgets.header import DeskHeader
from widgets.i18n import language, tr
from widgets.order_card import OrderCardView

from deskapp.screens.base import DeskScreen, localize_bindings
from deskapp.services.insights import alerts, replies
from deskapp.services.reveal import FIELD_ORDER, RevealError, reveal_card

if TYPE_CHECKING:
    from db.edits import AddressSaved
    from deskapp.app import DeskApp


class MemoDialog(ModalScreen[str | None]):
    """Edit the seller memo: Enter saves, Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "bind.back")]
    DEFAULT_CSS = """
    MemoDialog { align: center middle; }
    MemoDialog > Vertical { width: 70; max-width: 95%; height: auto; border: round $accent; padding: 0 1; background: $surface; }
    """

    def __init__(self, memo: str) -> None:
        super().__init__()
        self._memo = memo
        localize_bindings(self)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Content(tr("card.memo_prompt")))
            yield Input(value=self._memo, id="memo")

    @on(Input.Submitted)
    def _save(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


#: The access-log reason recorded when a memo that quotes a phone number opens for editing.
MEMO_REASON = "修改备注"
#: The common reasons offered on keys 1–3 of the reveal dialog (message ids).
REVEAL_REASONS = ("reveal.reason.call", "reveal.reason.address", "reveal.reason.courier")


def field_names(fields: frozenset[str]) -> str:
    """「姓名、电话」 / "name, phone" in the fields' usual order."""
    return ("、" if language() == "zh" else ", ").join(tr(f"reveal.field.{f}") for f in FIELD_ORDER if f in fields)


class RevealDialog(ModalScreen[tuple[frozenset[str], str] | None]):
    """Which of the customer's details to show in full, and why (required).

    | Key | Action |
    | :- | :- |
    | n / p / a | Tick or untick name, phone, address (all ticked at first). |
    | 1-3 | Show them, for that common reason. |
    | 4 / tab | Type another reason; Enter shows them. |
    | up/down, enter | Pick a reason from the list. |
    | escape | Back to the card, nothing shown. |
    """

    BINDINGS = [
        Binding("escape", "cancel", "bind.cancel", id="reveal.cancel", tooltip="bind.cancel"),
        Binding("n", "toggle('name')", show=False),
        Binding("p", "toggle('phone')", show=False),
        Binding("a", "toggle('address')", show=False),
        *(Binding(str(i), f"pick({i})", show=False) for i in range(1, 5)),
    ]
    DEFAULT_CSS = """
    RevealDialog { align: center middle; }
    RevealDialog > Vertical {
        width: 64; max-width: 100%; height: auto; border: round $accent; padding: 0 1; background: $surface;
    }
    RevealDialog #reveal-title { text-style: bold; }
    RevealDialog #reveal-reasons { height: auto; border: none; background: $surface; }
    RevealDialog Input { border: none; height: 1; padding: 0 1; background: $boost; }
    RevealDialog #reveal-note { color: $text-muted; height: auto; }
    RevealDialog #reveal-error { color: $error; text-style: bold; height: auto; }
    """

    def __init__(self, order_no: str, minutes: int) -> None:
        super().__init__()
        self.order_no = order_no
        self.minutes = minutes
        self.fields: set[str] = set(FIELD_ORDER)
        localize_bindings(self)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(tr("reveal.title", no=clean_text(self.order_no))), id="reveal-title")
            yield Static(Content(self._fields_line()), id="reveal-fields")
            yield Static(Content(tr("reveal.reason_prompt")), id="reveal-prompt")
            yield OptionList(*(Option(Content(f"{i}  {tr(key)}")) for i, key in
                               enumerate((*REVEAL_REASONS, "reveal.reason.other"), 1)), id="reveal-reasons")
            yield Input(id="reveal-reason", placeholder=tr("reveal.reason_placeholder"))
            yield Static(Content(tr("reveal.recorded", n=self.minutes)), id="reveal-note")
            yield Static(Content(""), id="reveal-error")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def _fields_line(self) -> str:
        marks = "  ".join(f"[{'x' if f in self.fields else ' '}] {tr(f'reveal.field.{f}')}" for f in FIELD_ORDER)
        return f"{tr('reveal.show')} {marks}    ({tr('reveal.toggle_hint')})"

    def action_toggle(self, field: str) -> None:
        self.fields ^= {field}
        self.query_one("#reveal-fields", Static).update(Content(self._fields_line()))

    def action_pick(self, number: int) -> None:
        if number <= len(REVEAL_REASONS):
            self._done(tr(REVEAL_REASONS[number - 1]))
        else:
            self.query_one("#reveal-reason", Input).focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_pick(event.option_index + 1)

    @on(Input.Submitted)
    def _typed(self, event: Input.Submitted) -> None:
        event.stop()
        reason = clean_text(event.value).strip()
        if not reason:
            self._error(tr("reveal.need_reason"))
            return
        self._done(reason)

    def _done(self, reason: str) -> None:
        if not self.fields:
            self._error(tr("reveal.need_field"))
            return
        self.dismiss((frozenset(self.fields), reason))

    def _error(self, text: str) -> None:
        self.query_one("#reveal-error", Static).update(Content(text))

    def action_cancel(self) -> None:
        self.dismiss(None)


class CardScreen(DeskScreen):
    """One order's lifecycle card.

    The app builds one CardScreen at start-up and fills it with each order it opens (see
    :meth:`load` and ``DeskApp.open_order``): composing ~20 widgets, their CSS and a footer for every
    Enter cost more than everything else in the keypress together.

    | Key | Action |
    | :- | :- |
    | escape | Back to the lookup, query and results kept. |
    | c | Copy the order no. |
    | w | Copy the (first) waybill no. |
    | m | Edit the seller memo (recorded on the timeline under your name). |
    | e | Correct the receiver and address (checked as you type; recorded under your name). |
    | v | Show the customer's full name / phone / address, with a reason (recorded; hidden again after a while). |
    | v | (while shown) Hide them now. |
    | 1-4 | Copy a suggested reply. |
    | up/down/pgup/pgdn | Scroll. |
    """

    BINDINGS = [
        Binding("escape", "back", "bind.back", id="card.back", tooltip="bind.back"),
        Binding("c", "copy_no", "bind.copy_no", id="card.copy_no", tooltip="bind.copy_no"),
        Binding("w", "copy_waybill", "bind.copy_waybill", id="card.copy_waybill", tooltip="bind.copy_waybill"),
        Binding("m", "memo", "bind.memo", id="card.memo", tooltip="bind.memo"),
        # Always shown (a key that comes and goes with the order's status would rebuild the footer
        # on every other card): on an order that has left the warehouse it says why it cannot.
        Binding("e", "edit_address", "bind.edit_address", id="card.edit_address", tooltip="bind.edit_address"),
        Binding("v", "reveal", "bind.reveal", id="card.reveal", tooltip="bind.reveal"),
        *(Binding(str(i), f"copy_reply({i})", show=False, id=f"card.reply{i}") for i in range(1, 5)),
    ]

    DEFAULT_CSS = """
    CardScreen #card-reveal { display: none; height: 1; padding: 0 1; background: $warning 30%; text-style: bold; }
    CardScreen.-revealed #card-reveal { display: block; }
    """

    app: DeskApp

    def __init__(self) -> None:
        super().__init__()
        self.order_id: int | None = None
        self.card: OrderCard | None = None
        self.replies: list[str] = []
        self.revealed: frozenset[str] = frozenset()
        """The fields shown unmasked now (logged reveal), for :attr:`order_id` only."""
        self._reveal_until = 0.0  # on the app's idle_clock
        self._reveal_timer: Timer | None = None
        self._language = language()
        self._styled_for: tuple | None = None

    def compose(self) -> ComposeResult:
        yield self.header()
        yield Static(Content(""), id="card-reveal")
        yield OrderCardView(id="card")
        yield DeskFooter()

    def on_mount(self) -> None:
        self._styled_for = self._style_inputs()  # every node was just styled, mounting

    def _style_inputs(self) -> tuple:
        return (self.app.theme, self.app.classes, self.app.pseudo_classes)

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        # Textual restyles every node of a screen each time it comes back: ~10 ms on every card
        # here. What these styles depend on and could change while the card is away is the app's
        # theme and state (a CSS change restyles all screens by itself; focus and hover changes
        # restyle their own nodes), so restyle only when those changed. This handler runs before
        # Textual's own, which reads the flag.
        styled_for = self._style_inputs()
        if styled_for == self._styled_for:
            event.refresh_styles = False
        self._styled_for = styled_for

    async def load(self, order_id: int) -> bool:
        """Read order ``order_id`` and show it; False, and the screen untouched, if it is gone.

        Details revealed for this order stay revealed until their time is up; another order
        comes masked."""
        now = self.app.clock()
        if order_id != self.order_id:
            self._drop_reveal()
        card = await self.app.store.order_card(order_id, now=now, reveal=self.revealed)
        if card is None:
            return False
        self._fill(order_id, card)
        return True

    def _fill(self, order_id: int, card: OrderCard) -> None:
        now = self.app.clock()
        header = self.query_one(DeskHeader)
        if self._language != language():  # F2 since this screen was last filled
            self._language = language()
            localize_bindings(self)
            self.refresh_bindings()
            header.refresh()
        header.sync_state = self.app.sync_state
        view = self.query_one(OrderCardView)
        if order_id != self.order_id:
            view.scroll_home(animate=False)
        self.order_id, self.card = order_id, card
        self.replies = replies(card, now)
        view.show(card, alerts=alerts(card, now), replies=self.replies, now=now)
        self.set_focus(view, scroll_visible=False)  # now, not after the first frame (as focus() would)

    def action_back(self) -> None:
        self.card = None  # nothing of this order is left to copy once the screen is gone
        if self.revealed:  # leaving hides them: no unmasked picture stays behind in the widget
            self._drop_reveal()
            self.query_one(OrderCardView).clear()
        self.dismiss()

    # -- revealing the customer's full details

    def action_reveal(self) -> None:
        """``v``: ask which fields and why; ``v`` while they show hides them again."""
        if self.card is None:
            return
        if self.revealed:
            self.conceal()
            self.app.notify(tr("reveal.hidden"), markup=False, timeout=2)
            return
        role = self.app.operator_role
        if role and not allowed(role, "reveal"):  # said at once; the service refuses it anyway
            self.app.notify(Refused("reveal", role, self.app.actor.id).text(language()), severity="error",
                            markup=False, timeout=6)
            return
        self.app.push_screen(RevealDialog(self.card.order_no, self.app.policy.reveal_minutes), self._reveal_asked)

    @work(group="card-write", exit_on_error=False)
    async def _reveal_asked(self, asked: tuple[frozenset[str], str] | None) -> None:
        if asked is None or self.order_id is None:
            return
        fields, reason = asked
        order_id = self.order_id
        card = await self._reveal(order_id, fields, reason, via="card")
        if card is None or self.order_id != order_id or self.app.gated:
            return
        self.revealed = fields
        self._reveal_until = self.app.idle_clock() + self.app.policy.reveal_minutes * 60
        self._fill(order_id, card)
        self.add_class("-revealed")
        self.tick_reveal()
        if self._reveal_timer is None:
            self._reveal_timer = self.set_interval(1.0, self.tick_reveal)

    async def _reveal(self, order_id: int, fields: frozenset[str], reason: str, *, via: str) -> OrderCard | None:
        """``reveal_card`` (permission, one access-log record per field) — a refusal said in one line."""
        try:
            card = await reveal_card(self.app.store, order_id, fields, reason, self.app.actor, via=via,
                                     at=self.app.clock())
        except Refused as refused:
            self.app.notify(refused.text(language()), severity="error", markup=False, timeout=6)
            return None
        except RevealError as error:
            self.app.notify(str(error), severity="error", markup=False, timeout=6)
            return None
        if card is None:
            self.app.notify(tr("card.not_found"), severity="error", markup=False)
        return card

    def tick_reveal(self) -> None:
        """The countdown line, every second; at zero the details are masked again."""
        if not self.revealed:
            return
        left = self._reveal_until - self.app.idle_clock()
        if left <= 0:
            self.conceal()
            return
        seconds = int(left + 0.999)
        self.query_one("#card-reveal", Static).update(Content(tr(
            "reveal.countdown", fields=field_names(self.revealed), t=f"{seconds // 60}:{seconds % 60:02d}")))

    def conceal(self) -> None:
        """Mask the revealed details again now (time up, ``v``, the idle lock)."""
        if not self.revealed:
            return
        self._drop_reveal()
        if self.order_id is not None and self.card is not None:
            self.query_one(OrderCardView).clear()  # nothing unmasked while the masked card is read
            self._remask(self.order_id)

    @work(group="card-refresh", exclusive=True, exit_on_error=False)
    async def _remask(self, order_id: int) -> None:
        if self.order_id == order_id:
            await self.load(order_id)

    def _drop_reveal(self) -> None:
        self.revealed = frozenset()
        if self._reveal_timer is not None:
            self._reveal_timer.stop()
            self._reveal_timer = None
        self.remove_class("-revealed")

    def forget(self) -> None:
        """Someone else signed in: nothing of this order stays, revealed or not."""
        self._drop_reveal()
        self.order_id, self.card, self.replies = None, None, []
        if self.is_mounted:
            self.query_one(OrderCardView).clear()

    def _copy(self, value: str, what: str = "") -> None:
        self.app.copy_to_clipboard(value)
        self.app.notify(what or tr("card.copied", v=value), markup=False, timeout=2)

    def action_copy_no(self) -> None:
        if self.card:
            self._copy(self.card.order_no)

    def action_copy_waybill(self) -> None:
        if not self.card:
            return
        waybills = [p.waybill_no for p in self.card.parcels if p.waybill_no]
        if waybills:
            self._copy(waybills[0] if len(waybills) == 1 else " ".join(waybills))
        else:
            self.app.notify(tr("card.no_waybill"), severity="warning", markup=False, timeout=2)

    def action_copy_reply(self, number: int) -> None:
        if 0 < number <= len(self.replies):
            self._copy(self.replies[number - 1], tr("reply.copied"))

    def action_memo(self) -> None:
        if not self.card:
            return
        if MASK in self.card.seller_memo:
            self._edit_unmasked_memo(self.card.id)
        else:
            self.app.push_screen(MemoDialog(self.card.seller_memo), self._memo_entered)

    @work(group="card-write", exit_on_error=False)
    async def _edit_unmasked_memo(self, order_id: int) -> None:
        """The memo as stored, to edit: the card shows phone numbers in it masked (db.privacy), and
        saving the masked text would overwrite them. Showing them is a logged reveal of ``phone``."""
        card = await self._reveal(order_id, frozenset({"phone"}), MEMO_REASON, via="memo")
        if card is not None and self.order_id == order_id and not self.app.gated:
            self.app.push_screen(MemoDialog(card.seller_memo), self._memo_entered)

    @work(group="card-write", exit_on_error=False)
    async def _memo_entered(self, memo: str | None) -> None:
        if memo is None or self.card is None or self.order_id is None:
            return
        order_id = self.order_id
        try:
            await self.app.store.set_seller_memo(order_id, memo, actor=self.app.actor)
        except Refused as refused:  # the role may not change memos (db.roles): say why, change nothing
            self.app.notify(refused.text(language()), severity="error", markup=False, timeout=6)
            return
        self.app.notify(tr("card.memo_saved"), markup=False, timeout=2)
        if self.order_id == order_id and not await self.load(order_id):
            self.app.notify(tr("card.not_found"), severity="error", markup=False)
            self.action_back()

    def action_edit_address(self) -> None:
        # imported here: the form and its writes pull in SQLAlchemy, which the first frame must not wait for
        from db.edits import EDITABLE

        if self.card is None:
            return
        if self.card.status not in EDITABLE:
            self.app.notify(tr("addr.not_editable"), severity="warning", markup=False, timeout=3)
            return
        role = self.app.operator_role
        if role and not allowed(role, "edit_address"):  # said at once; saving is refused anyway
            self.app.notify(Refused("edit_address", role, self.app.actor.id).text(language()), severity="error",
                            markup=False, timeout=6)
            return
        self._open_address_form(self.card.id)

    @work(group="card-write", exit_on_error=False)
    async def _open_address_form(self, order_id: int) -> None:
        """The form edits the real receiver: reading it is a logged reveal (reason 「修改地址」)."""
        from db.edits import AddressFields
        from deskapp.screens.address_form import EDIT_REASON, EDIT_REVEAL, AddressForm

        card = await self._reveal(order_id, EDIT_REVEAL, EDIT_REASON, via="address_form")
        if card is None or self.order_id != order_id or self.app.gated:
            return
        self.app.push_screen(AddressForm(card.id, card.order_no, AddressFields.of(card)), self._address_saved)

    @work(group="card-write", exit_on_error=False)
    async def _address_saved(self, saved: AddressSaved | None) -> None:
        if saved is None or not saved.changed or self.order_id is None:
            return
        if not await self.load(self.order_id):
            self.app.notify(tr("card.not_found"), severity="error", markup=False)
            self.action_back()
