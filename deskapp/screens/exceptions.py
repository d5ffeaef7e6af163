"""The exceptions screen (F6): held orders (异常) grouped by why, and the keys to settle them.

Left, the reasons with how many held orders each has (地址冲突 / 电话无效 / 疑似测试单 / 疑似重复 /
金额异常 / 缺少信息 / 快递不达, from the codes the order checks left on the order, and 其他 for
holds without codes — a person's, a channel's, the demo's); right, the orders of the reason picked,
longest held first; below, the highlighted order's whole hold reason. The top line is today's KPI:
"今日拦截 N 单 · 每千单 X.X" (``db.checks.interceptions``).

Enter opens the order card; ``e`` opens the address form straight away; ``r`` releases the order
(a reason is required) and ``x`` cancels it (a reason, then a confirmation). Each is a timeline
event under the agent (``db.checks.release`` / ``cancel``, ``db.edits.save_address``); the list
is read again after each, and every few seconds while the screen shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import DataTable, Input, OptionList, Static
from textual.widgets.option_list import Option

from db import checks as pool
from db.edits import AddressSaved
from db.roles import Refused
from db.sanitize import clean_text
from deskapp.screens.address_form import form_for
from deskapp.screens.base import DeskScreen, localize_bindings
from deskapp.screens.connectors import KeyedTable
from deskapp.screens.quarantine import ConfirmScreen
from widgets.footer import DeskFooter
from widgets.format import channel_label, duration, fit, short_time
from widgets.i18n import language, tr

if TYPE_CHECKING:
    from db.checks import HeldOrder
    from deskapp.app import DeskApp

#: Seconds between two reads while the screen shows (the checks hold new orders as they arrive).
REFRESH_S = 5.0
#: Width of the reasons column on the left.
GROUPS_WIDTH = 16

#: Actions that need a held order to act on (left out of the footer while there is none).
_ORDER_ACTIONS = frozenset({"open", "fix", "release", "cancel_order", "switch_pane"})

ALL = "all"
OTHER = "other"
#: Reason groups in the order shown, each with the check codes that put an order in it.
REASONS: tuple[tuple[str, frozenset[str]], ...] = (
    ("address_conflict", frozenset({"address_conflict"})),
    ("phone_invalid", frozenset({"phone_invalid"})),
    ("test_order", frozenset({"test_order"})),
    ("duplicate", frozenset({"duplicate"})),
    ("amount", frozenset({"amount_negative", "amount_unusual"})),
    ("missing_field", frozenset({"missing_field"})),
    ("carrier_region", frozenset({"carrier_region"})),
)


def reasons_of(order: HeldOrder) -> list[str]:
    """The reason groups a held order belongs to (several when several checks found something)."""
    codes = set(order.codes)
    return [key for key, members in REASONS if codes & members] or [OTHER]


def reason_label(key: str) -> str:
    """地址冲突, 其他, 全部 … in the current language."""
    return tr("exc.all") if key == ALL else tr(f"reason.{key}")


@dataclass(frozen=True)
class Group:
    """One reason and the held orders it covers (``ALL``: every held order once)."""

    key: str
    orders: tuple[HeldOrder, ...]

    @property
    def label(self) -> str:
        return reason_label(self.key)


def group_held(orders: Sequence[HeldOrder]) -> list[Group]:
    """全部 first, then each reason that has orders, in :data:`REASONS` order, then 其他."""
    by_key: dict[str, list[HeldOrder]] = {}
    for order in orders:
        for key in reasons_of(order):
            by_key.setdefault(key, []).append(order)
    keys = [key for key, _ in REASONS] + [OTHER]
    return [Group(ALL, tuple(orders))] + [Group(k, tuple(by_key[k])) for k in keys if k in by_key]


def kpi_text(held_today: int, orders_today: int) -> str:
    """'今日拦截 3 单 · 每千单 7.5' ('—' per thousand before any order came in today)."""
    rate = f"{held_today * 1000 / orders_today:.1f}" if orders_today else "—"
    return tr("exc.kpi", n=held_today, rate=rate)


def group_prompt(group: Group) -> Content:
    """'地址冲突     12': the label and its count, the count right-aligned in the column."""
    count = str(len(group.orders))
    # the column's text width: its border on the right and the list's padding taken off
    width = GROUPS_WIDTH - 3
    label = fit(group.label, width - len(count) - 1)
    return Content(label + " " * (width - cell_len(label) - len(count)) + count)


class ReasonDialog(ModalScreen[str | None]):
    """Ask for a reason (required): Enter with text confirms, Escape backs out."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "bind.cancel")]
    DEFAULT_CSS = """
    ReasonDialog { align: center middle; }
    ReasonDialog > Vertical {
        width: 70; max-width: 95%; height: auto; border: round $accent; padding: 0 1; background: $surface;
    }
    ReasonDialog #reason-error { color: $error; height: auto; }
    """

    def __init__(self, prompt: str) -> None:
        super().__init__()
        self.prompt = prompt
        localize_bindings(self)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(self.prompt), id="reason-prompt")
            yield Input(id="reason")
            yield Static(Content(""), id="reason-error")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        reason = clean_text(event.value).strip()
        if not reason:
            self.query_one("#reason-error", Static).update(Content(tr("exc.reason_required")))
            return
        self.dismiss(reason)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ExceptionsScreen(DeskScreen):
    """Held orders by reason, with today's interceptions.

    | Key | Action |
    | :- | :- |
    | up/down | Move between orders (or reasons, in the reasons column). |
    | tab | Between the reasons and the orders. |
    | enter | Open the order card. |
    | e | Correct the address (the address form). |
    | r | Release the order (asks for a reason). |
    | x | Cancel the order (asks for a reason, then to confirm). |
    | escape | Back. |
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "bind.back", id="exceptions.back", tooltip="bind.back"),
        # priority: the table's own Enter binding is hidden from the footer, this one is shown
        Binding("enter", "open", "bind.open", id="exceptions.open", tooltip="bind.open", priority=True),
        Binding("e", "fix", "bind.edit_address", id="exceptions.fix", tooltip="bind.edit_address"),
        Binding("r", "release", "bind.release", id="exceptions.release", tooltip="bind.release"),
        Binding("x", "cancel_order", "bind.cancel_order", id="exceptions.cancel", tooltip="bind.cancel_order"),
        # not in the footer (the reasons are in plain sight on the left; 80 columns are full)
        Binding("tab", "switch_pane", "bind.groups", id="exceptions.groups", tooltip="bind.groups", show=False),
    ]

    DEFAULT_CSS = f"""
    ExceptionsScreen #exc-summary {{ height: 1; padding: 0 1; color: $text-muted; }}
    ExceptionsScreen #exc-body {{ height: 1fr; }}
    ExceptionsScreen #exc-groups {{ width: {GROUPS_WIDTH}; height: 1fr; border: none; border-right: solid $primary-muted; }}
    ExceptionsScreen #exc-orders {{ width: 1fr; height: 1fr; }}
    ExceptionsScreen #exc-detail {{ height: auto; max-height: 6; padding: 0 1; border-top: solid $primary-muted; }}
    ExceptionsScreen #exc-empty {{ display: none; height: 1fr; content-align: center middle; color: $text-muted; }}
    ExceptionsScreen.-empty #exc-body, ExceptionsScreen.-empty #exc-detail {{ display: none; }}
    ExceptionsScreen.-empty #exc-empty {{ display: block; }}
    """

    app: DeskApp

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[Group] = []
        self.group = ALL
        self.kpi = (0, 0)
        self._timer: Timer | None = None
        self._actionable: bool | None = None  # whether the footer shows the order keys

    def compose(self) -> ComposeResult:
        yield self.header()
        yield Static(Content(""), id="exc-summary")
        with Horizontal(id="exc-body"):
            yield OptionList(id="exc-groups")
            yield KeyedTable(
                [("order_no", "col.order_no"), ("channel", "col.channel"), ("receiver", "col.receiver"),
                 ("held", "exc.col.held"), ("reason", "exc.col.reason")],
                id="exc-orders",
            )
        yield Static(Content(tr("exc.empty")), id="exc-empty")
        yield Static(Content(""), id="exc-detail")
        yield DeskFooter()

    def on_mount(self) -> None:
        self.table.focus()
        self._timer = self.set_interval(REFRESH_S, self.reload)
        self.reload()

    def on_screen_suspend(self, _: events.ScreenSuspend) -> None:
        if self._timer is not None:
            self._timer.pause()

    def on_screen_resume(self, _: events.ScreenResume) -> None:
        if self._timer is not None and self.is_mounted:
            self._timer.resume()
            self.reload()

    def on_resize(self) -> None:
        if self.groups:
            self._show_orders()

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#exc-orders", KeyedTable)

    # -- reading

    @work(group="exceptions-read", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        """Read the held orders and today's interceptions once and show them."""
        store = await self.app.full_store()
        held = await pool.held_orders(store)
        kpi = await pool.interceptions(store, self.app.clock())
        self.show(held, kpi)

    def show(self, held: Sequence[HeldOrder], kpi: tuple[int, int]) -> None:
        """Fill the reasons, the orders of the reason picked, the KPI line and the detail."""
        self.groups = group_held(held)
        self.kpi = kpi
        if self.group not in {g.key for g in self.groups}:
            self.group = ALL
        summary = tr("exc.title", n=len(held)) + " · " + kpi_text(*kpi)
        self.query_one("#exc-summary", Static).update(Content(summary))
        self._show_groups()
        empty = not held
        self.set_class(empty, "-empty")
        if self._actionable != (not empty):
            self._actionable = not empty
            self.refresh_bindings()  # enter / e / r / x / tab leave the footer while nothing is held
        self._show_orders()

    def _show_groups(self) -> None:
        groups = self.query_one("#exc-groups", OptionList)
        wanted = [(g.key, group_prompt(g)) for g in self.groups]
        shown = [(str(o.id), o.prompt) for o in groups.options]
        if wanted != shown:
            groups.clear_options()
            groups.add_options([Option(prompt, id=key) for key, prompt in wanted])
        index = next(i for i, g in enumerate(self.groups) if g.key == self.group)
        if groups.highlighted != index:
            groups.highlighted = index

    @property
    def current(self) -> Group | None:
        """The reason picked on the left."""
        return next((g for g in self.groups if g.key == self.group), None)

    def _show_orders(self) -> None:
        group = self.current
        orders = group.orders if group is not None else ()
        now = self.app.clock()
        numbers = [clean_text(o.order_no) for o in orders]
        no_cells = max((cell_len(n) for n in numbers), default=8)
        # the reason takes what is left beside the reasons column, the other columns and their padding
        left = self.size.width - GROUPS_WIDTH - no_cells - 4 - 8 - 6 - 2 * 5 - 2
        reason_cells = max(8, left)
        rows = [
            (str(o.id), (
                Text(number),
                Text(channel_label(o.channel)),
                Text(fit(o.receiver_name or "—", 8)),
                Text(duration(max(timedelta(0), now - o.held_at), units=1) if o.held_at else "—", justify="right"),
                Text(fit(o.hold_reason or tr("exc.no_reason"), reason_cells)),
            ))
            for o, number in zip(orders, numbers, strict=True)
        ]
        self.table.show_rows(rows)
        self._show_detail(now)

    @property
    def highlighted(self) -> HeldOrder | None:
        """The held order under the cursor."""
        key = self.table.highlighted_key
        group = self.current
        if key is None or group is None:
            return None
        return next((o for o in group.orders if str(o.id) == key), None)

    def _show_detail(self, now: datetime | None = None) -> None:
        order = self.highlighted
        if order is None:
            self.query_one("#exc-detail", Static).update(Content(""))
            return
        head = tr("exc.detail", no=clean_text(order.order_no), channel=channel_label(order.channel),
                  receiver=clean_text(order.receiver_name) or "—", city=clean_text(order.city) or "—",
                  at=short_time(order.held_at, now or self.app.clock()) if order.held_at else "—")
        reasons = "、".join(reason_label(k) for k in reasons_of(order))
        body = clean_text(order.hold_reason) or tr("exc.no_reason")
        text = Text.assemble((head, "bold"), "\n", (reasons, "bold yellow"), "：", Text(body))
        self.query_one("#exc-detail", Static).update(text)

    @on(OptionList.OptionHighlighted, "#exc-groups")
    def _group_picked(self, event: OptionList.OptionHighlighted) -> None:
        key = str(event.option.id)
        if key != self.group:
            self.group = key
            self._show_orders()

    @on(OptionList.OptionSelected, "#exc-groups")
    def _group_entered(self) -> None:
        self.table.focus()

    @on(DataTable.RowHighlighted, "#exc-orders")
    def _order_highlighted(self) -> None:
        self._show_detail()

    @on(DataTable.RowSelected, "#exc-orders")
    def _order_selected(self) -> None:
        self.action_open()

    # -- keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return bool(self._actionable) or action not in _ORDER_ACTIONS

    def action_back(self) -> None:
        self.dismiss()

    def action_switch_pane(self) -> None:
        groups = self.query_one("#exc-groups", OptionList)
        (self.table if groups.has_focus else groups).focus()

    def action_open(self) -> None:
        """The highlighted order's card (Escape there comes back here); from the reasons, the orders."""
        groups = self.query_one("#exc-groups", OptionList)
        if groups.has_focus:
            self.table.focus()
            return
        order = self.highlighted
        if order is not None:
            self.app.open_order(order.id)

    def action_fix(self) -> None:
        order = self.highlighted
        if order is not None:
            self._open_form(order.id)

    @work(group="exceptions-write", exit_on_error=False)
    async def _open_form(self, order_id: int) -> None:
        card = await self.app.store.order_card(order_id, now=self.app.clock())
        if card is None:
            self.app.notify(tr("card.not_found"), severity="error", markup=False)
            self.reload()
            return
        self.app.push_screen(form_for(card), self._form_closed)

    def _form_closed(self, saved: AddressSaved | None) -> None:
        self.reload()

    def action_release(self) -> None:
        order = self.highlighted
        if order is None:
            return
        prompt = tr("exc.release_prompt", no=fit(order.order_no, 32))
        self.app.push_screen(ReasonDialog(prompt), lambda reason: self._release(order, reason))

    @work(group="exceptions-write", exit_on_error=False)
    async def _release(self, order: HeldOrder, reason: str | None) -> None:
        if not reason:
            return
        store = await self.app.full_store()
        try:
            await pool.release(store, order.id, reason, self.app.actor, at=self.app.clock())
        except Refused as refused:  # the role may not (a blocking check needs a supervisor): say why
            self.app.notify(refused.text(language()), severity="error", markup=False, timeout=6)
        except (ValueError, LookupError):
            self.app.notify(tr("exc.not_held"), severity="warning", markup=False)
        else:
            self.app.notify(tr("exc.released", no=fit(order.order_no, 32)), markup=False, timeout=3)
        self.reload()

    def action_cancel_order(self) -> None:
        order = self.highlighted
        if order is None:
            return
        prompt = tr("exc.cancel_prompt", no=fit(order.order_no, 32))
        self.app.push_screen(ReasonDialog(prompt), lambda reason: self._confirm_cancel(order, reason))

    def _confirm_cancel(self, order: HeldOrder, reason: str | None) -> None:
        if not reason:
            return
        question = tr("exc.confirm_cancel", no=fit(order.order_no, 32), reason=fit(reason, 120))
        self.app.push_screen(ConfirmScreen(question), lambda yes: self._cancel(order, reason, yes))

    @work(group="exceptions-write", exit_on_error=False)
    async def _cancel(self, order: HeldOrder, reason: str, yes: bool | None) -> None:
        if not yes:
            return
        store = await self.app.full_store()
        try:
            await pool.cancel(store, order.id, reason, self.app.actor, at=self.app.clock())
        except Refused as refused:
            self.app.notify(refused.text(language()), severity="error", markup=False, timeout=6)
        except (ValueError, LookupError):
            self.app.notify(tr("exc.cannot_cancel"), severity="warning", markup=False)
        else:
            self.app.notify(tr("exc.cancelled", no=fit(order.order_no, 32)), markup=False, timeout=3)
        self.reload()


__all__ = ["ExceptionsScreen", "Group", "ReasonDialog", "group_held", "kpi_text", "reasons_of"]
