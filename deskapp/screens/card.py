"""The order card screen: the lifecycle card of one order, with copy keys, the seller memo and the
address form."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from db.views import OrderCard
from widgets.footer import DeskFooter
from widgets.header import DeskHeader
from widgets.i18n import language, tr
from widgets.order_card import OrderCardView

from deskapp.screens.base import DeskScreen, localize_bindings
from deskapp.services.insights import alerts, replies

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
        *(Binding(str(i), f"copy_reply({i})", show=False, id=f"card.reply{i}") for i in range(1, 5)),
    ]

    app: DeskApp

    def __init__(self) -> None:
        super().__init__()
        self.order_id: int | None = None
        self.card: OrderCard | None = None
        self.replies: list[str] = []
        self._language = language()
        self._styled_for: tuple | None = None

    def compose(self) -> ComposeResult:
        yield self.header()
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
        """Read order ``order_id`` and show it; False, and the screen untouched, if it is gone."""
        now = self.app.clock()
        card = await self.app.store.order_card(order_id, now=now)
        if card is None:
            return False
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
        return True

    def action_back(self) -> None:
        self.card = None  # nothing of this order is left to copy once the screen is gone
        self.dismiss()

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
        if self.card:
            self.app.push_screen(MemoDialog(self.card.seller_memo), self._memo_entered)

    @work(group="card-write", exit_on_error=False)
    async def _memo_entered(self, memo: str | None) -> None:
        if memo is None or self.card is None or self.order_id is None:
            return
        order_id = self.order_id
        await self.app.store.set_seller_memo(order_id, memo, actor=self.app.actor)
        self.app.notify(tr("card.memo_saved"), markup=False, timeout=2)
        if self.order_id == order_id and not await self.load(order_id):
            self.app.notify(tr("card.not_found"), severity="error", markup=False)
            self.action_back()

    def action_edit_address(self) -> None:
        # imported here: the form and its writes pull in SQLAlchemy, which the first frame must not wait for
        from db.edits import EDITABLE
        from deskapp.screens.address_form import form_for

        if self.card is None:
            return
        if self.card.status not in EDITABLE:
            self.app.notify(tr("addr.not_editable"), severity="warning", markup=False, timeout=3)
            return
        self.app.push_screen(form_for(self.card), self._address_saved)

    @work(group="card-write", exit_on_error=False)
    async def _address_saved(self, saved: AddressSaved | None) -> None:
        if saved is None or not saved.changed or self.order_id is None:
            return
        if not await self.load(self.order_id):
            self.app.notify(tr("card.not_found"), severity="error", markup=False)
            self.action_back()
