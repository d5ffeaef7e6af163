"""The order lifecycle card: everything about one order on one screen.

Data in (an ``OrderCard`` read model, its alerts and reply scripts, and "now"), nothing out but
rendering: the screen that hosts it owns the keys. Every string from the order is cleaned and put
in as ``Text`` — never parsed as markup — so a buyer note cannot style, link or break the screen.
Below 140 columns the sections stack; from 140 columns up the timeline gets the left half.
Everything below the title is painted by one widget (see :class:`_CardLayout`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from rich.console import Group, RenderableType
from rich.segment import Segment
from rich.style import Style as RichStyle
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.reactive import Reactive
from textual.strip import Strip
from textual.style import Style
from textual.visual import RenderOptions, RichVisual
from textual.widgets import Static

from db.sanitize import clean_text
from db.views import OrderCard, TimelineItem
from widgets.format import (
    aftersale_label,
    channel_label,
    duration,
    money,
    phone_display,
    short_time,
    status_label,
)
from widgets.i18n import tr
from widgets.quick_table import QuickTable
from widgets.results import STATUS_STYLE

if TYPE_CHECKING:
    from textual.css.styles import RulesMap

WIDE = 140

BADGE_STYLE = {
    "pending_payment": "black on grey70",
    "paid": "black on bright_cyan",
    "review": "black on bright_cyan",
    "hold": "bold white on red",
    "allocating": "black on yellow",
    "shipped": "black on bright_blue",
    "in_transit": "black on bright_blue",
    "delivered": "black on green",
    "completed": "black on green",
    "cancelled": "white on grey37",
}
ALERT_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}
ALERT_MARK = {"error": "●", "warning": "▲", "info": "·"}


class AlertLike(Protocol):
    """What the card needs of an alert."""

    severity: str
    text: str


def t(value: str | None, style: str = "") -> Text:
    """Untrusted text as an inert Text: cleaned of controls, never parsed as markup."""
    return Text(clean_text(value), style=style)


def _quick(body: RenderableType) -> RenderableType:
    """Tables through QuickTable (same picture, a fraction of the time); anything else as it is."""
    return QuickTable(body) if isinstance(body, Table) else body


def _section(title: str, body: RenderableType) -> Group:
    return Group(Text(title, style="bold underline"), body)


def _actor(item: TimelineItem) -> Text:
    if item.actor_kind == "operator":
        return t(item.actor_name, "bold")
    label = tr(f"actor.{item.actor_kind}")
    return Text.assemble((label, "dim"), (":", "dim"), t(item.actor_id, "dim"))


def _event(item: TimelineItem) -> Text:
    text = Text(tr(f"event.{item.kind}"))
    if item.kind == "status" or (item.kind in ("created", "hold", "release") and item.to_value):
        if item.from_value:
            text.append(" " + status_label(item.from_value) + "→", style="dim")
        if item.to_value:
            text.append(("" if item.from_value else " ") + status_label(item.to_value))
    return text


def timeline_table(items: Sequence[TimelineItem], now: datetime) -> Table:
    """Each step with its China time, how long after the previous step, who and what."""
    table = Table(box=None, show_header=False, pad_edge=False, expand=True, padding=(0, 1, 0, 0))
    table.add_column("at", no_wrap=True, style="cyan")
    table.add_column("gap", no_wrap=True, style="dim", justify="right")
    table.add_column("who", no_wrap=True, max_width=12, overflow="ellipsis")
    table.add_column("what", no_wrap=True)
    table.add_column("detail", ratio=1, overflow="fold")
    previous: datetime | None = None
    for item in items:
        gap = "+" + duration(item.at - previous, units=1) if previous is not None else ""
        detail = t(item.message)
        if item.kind in ("memo", "address") and (item.from_value or item.to_value):
            detail = Text.assemble(t(item.from_value, "dim strike"), " → ", t(item.to_value))
        table.add_row(short_time(item.at, now), gap, _actor(item), _event(item), detail)
        previous = item.at
    return table


class _CardLayout:
    """Everything below the card's title, laid out as the separate widgets it replaces were.

    The card used to be eight Statics in three containers; laying those out and painting each one
    was half the cost of opening a card. One Static now paints it all (see :class:`_CardVisual`),
    line for line and style for style as before: every part followed by one blank line; from
    :data:`WIDE` columns up, the timeline on the left — half the width rounded down, its last 2
    columns blank — beside the other parts. Blank areas are painted as Textual paints a widget's
    padding: background only.
    """

    def __init__(
        self, head: list[RenderableType], left: list[RenderableType], right: list[RenderableType], *, wide: bool
    ) -> None:
        self.head, self.left, self.right, self.wide = head, left, right, wide

    def render(self, widget: Static, style: RichStyle, width: int) -> list[Strip]:
        """The lines ``widget`` shows at ``width`` in ``style``."""
        app = widget.app
        options = app.console_options.update(highlight=False, width=width)

        def paint(part: RenderableType, width: int) -> list[list[Segment]]:
            # as a Static ``width`` wide paints ``part`` (RichVisual.render_strips)
            segments = app.console.render(widget.post_render(part, style), options.update_width(width))
            return list(Segment.split_and_crop_lines(segments, width, include_new_lines=False, pad=False))

        lines: list[list[Segment]] = []
        for part in self.head if self.wide else (*self.head, *self.left, *self.right):
            lines.extend(paint(part, width))
            lines.append([])
        if self.wide:
            blank = RichStyle.from_color(bgcolor=style.bgcolor)
            left_width = width // 2 - 2
            right_width = width - width // 2
            left = self._column(paint, self.left, left_width, blank)
            right = self._column(paint, self.right, right_width, blank)
            for index in range(max(len(left), len(right))):
                lines.append(
                    [
                        *(left[index] if index < len(left) else [Segment(" " * left_width, blank)]),
                        Segment("  ", blank),
                        *(right[index] if index < len(right) else [Segment(" " * right_width, blank)]),
                    ]
                )
        return [Strip(line) for line in lines]

    @staticmethod
    def _column(
        paint: Callable[[RenderableType, int], list[list[Segment]]],
        parts: list[RenderableType],
        width: int,
        blank: RichStyle,
    ) -> list[list[Segment]]:
        lines: list[list[Segment]] = []
        for part in parts:
            lines.extend(Segment.adjust_line_length(line, width, blank) for line in paint(part, width))
            lines.append([Segment(" " * width, blank)])
        return lines


class _CardVisual(RichVisual):
    """Shows a :class:`_CardLayout`, rendered once per width and style.

    Textual renders a Rich renderable in full to learn its height for the layout, then again to
    paint it; this keeps the first rendering for the paint.
    """

    def __init__(self, widget: Static, layout: _CardLayout) -> None:
        super().__init__(widget, layout)
        self._layout = layout
        self._rendered: tuple[int, RichStyle, list[Strip]] | None = None

    def _strips(self, width: int, style: Style) -> list[Strip]:
        rich_style = style.rich_style
        if self._rendered is None or self._rendered[:2] != (width, rich_style):
            self._rendered = (width, rich_style, self._layout.render(self._widget, rich_style, width))
        return self._rendered[2]

    def get_height(self, rules: RulesMap, width: int) -> int:
        return len(self._strips(width, self._widget.visual_style))

    def render_strips(self, width: int, height: int | None, style: Style, options: RenderOptions) -> list[Strip]:
        strips = self._strips(width, style)
        return strips if height is None else strips[:height]


class _CardContent(Static):
    """The Static that shows a :class:`_CardLayout`.

    Textual lays the screen out again, and repaints it, whenever a widget's virtual size changes —
    for this one, every card of a different height: one more frame, right after the card is up,
    that changes nothing (a Static does not scroll; a new size already repaints it).
    """

    virtual_size: Reactive[Size] = Reactive(Size(0, 0), repaint=False)


class OrderCardView(VerticalScroll):
    """Shows one :class:`db.views.OrderCard`; call :meth:`show` with new data to refresh."""

    DEFAULT_CSS = """
    OrderCardView { padding: 0 1; }
    """

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        self._parts: tuple[list[RenderableType], list[RenderableType], list[RenderableType]] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="card-title")
        yield _CardContent(id="card-content")

    def on_resize(self) -> None:
        wide = self.size.width >= WIDE
        if wide != self.has_class("-wide"):
            self.set_class(wide, "-wide")
            self._paint()

    def show(
        self,
        card: OrderCard,
        *,
        alerts: Sequence[AlertLike],
        replies: Sequence[str],
        now: datetime,
    ) -> None:
        """Render ``card`` as of ``now``."""
        self.query_one("#card-title", Static).update(card_title(card))
        head: list[RenderableType] = [QuickTable(card_facts(card, now))]
        if alerts:
            head.append(
                Group(*(Text(f"{ALERT_MARK[a.severity]} {a.text}", style=ALERT_STYLE[a.severity]) for a in alerts))
            )
        left: list[RenderableType] = [_section(tr("card.timeline"), QuickTable(timeline_table(card.timeline, now)))]
        right: list[RenderableType] = [
            _section(tr("card.parcels"), parcels_block(card, now)),
            _section(tr("card.lines"), _quick(lines_table(card))),
        ]
        if card.customer is not None:
            right.append(_section(tr("card.customer"), customer_block(card, now)))
        if replies:
            right.append(
                _section(
                    tr("card.replies") + "  (" + tr("card.reply_hint") + ")",
                    Group(*(Text.assemble((f"{i}. ", "bold"), reply) for i, reply in enumerate(replies, 1))),
                )
            )
        self._parts = (head, left, right)
        self._paint()

    def clear(self) -> None:
        """Show nothing (the order's data is dropped, not just hidden)."""
        self._parts = None
        self.query_one("#card-title", Static).update("")
        self.query_one("#card-content", _CardContent).update("")

    def _paint(self) -> None:
        if self._parts is None:
            return
        content = self.query_one("#card-content", _CardContent)
        content.update(_CardVisual(content, _CardLayout(*self._parts, wide=self.has_class("-wide"))))


def _ship_by(card: OrderCard, now: datetime) -> Text:
    if card.ship_by is None:
        return Text("—")
    text = Text(short_time(card.ship_by, now))
    if card.status in ("paid", "review", "hold", "allocating"):
        left = card.ship_by - now
        if left.total_seconds() >= 0:
            style = "bold yellow" if left.total_seconds() < 6 * 3600 else "green"
            text.append(f"  {tr('card.left', t=duration(left))}", style=style)
        else:
            text.append(f"  {tr('card.overdue', t=duration(left))}", style="bold red")
    if card.presale:
        text.append(f"  [{tr('card.presale')}]", style="magenta")
    return text


def card_title(card: OrderCard) -> Text:
    """Status badge, after-sale badge, order no., channel and shop, priority, tags, raw status."""
    title = Text.assemble(
        (f" {status_label(card.status)} ", BADGE_STYLE.get(card.status, "reverse")),
        " ",
    )
    after = aftersale_label(card.after_sale)
    if after:
        title.append(f" {after} ", style="black on yellow")
        title.append(" ")
    title.append_text(t(card.order_no, "bold"))
    title.append("  ")
    title.append(channel_label(card.channel), style="bold")
    title.append("·")
    title.append_text(t(card.shop_name))
    if card.priority in ("S", "A"):
        title.append(f"  {card.priority}", style="bold magenta")
    for tag in card.tags:
        title.append("  #")
        title.append_text(t(tag, "magenta"))
    raw = " / ".join(x for x in (card.raw_status, card.raw_after_sale) if x)
    if raw:
        title.append(f"  {tr('card.raw')}: ", style="dim")
        title.append_text(t(raw, "dim"))
    return title

def card_facts(card: OrderCard, now: datetime) -> Table:
    """Amounts, ship-by with time left, times, receiver and notes."""
    table = Table.grid(padding=(0, 2), expand=True)
    table.add_column(no_wrap=True)
    table.add_column(ratio=1)
    amounts = Text.assemble(
        (money(card.paid_fen or card.total_fen), "bold"),
        (f"  {tr('card.total')} {money(card.total_fen)}", "dim"),
        (f" · {tr('card.post_fee')} {money(card.post_fee_fen)}", "dim"),
    )
    if card.discount_fen:
        amounts.append(f" · {tr('card.discount')} {money(card.discount_fen)}", style="dim")
    table.add_row(Text(tr("card.amount"), style="dim"), amounts)
    times = Text.assemble(
        (f"{tr('card.created')} ", "dim"), short_time(card.created_at, now),
        (f"  {tr('card.paid')} ", "dim"), short_time(card.paid_at, now),
    )
    table.add_row(Text(tr("card.ship_by"), style="dim"), _ship_by(card, now))
    if card.priority_why:  # why the warehouse works it in this lane: the rule that decided it
        table.add_row(Text(tr("card.priority"), style="dim"),
                      Text.assemble((card.priority, "bold magenta"), " · ", t(card.priority_why)))
    table.add_row(Text(tr("card.times"), style="dim"), times)
    receiver = Text.assemble(
        t(card.receiver_name, "bold"), "  ", phone_display(card.receiver_phone), "  ",
        t(" ".join(x for x in (card.province, card.city, card.district) if x)), " ",
        t(card.address_detail),
    )
    table.add_row(Text(tr("card.receiver"), style="dim"), receiver)
    if card.buyer_note:
        table.add_row(Text(tr("card.note"), style="dim"), t(card.buyer_note, "bold yellow"))
    if card.seller_memo:
        table.add_row(Text(tr("card.memo"), style="dim"), t(card.seller_memo))
    return table

def parcels_block(card: OrderCard, now: datetime) -> RenderableType:
    """Each parcel: warehouse, carrier, waybill, state, last tracking line, lines carried."""
    if not card.parcels:
        return Text(tr("card.no_parcels"), style="dim")
    rows = []
    for index, parcel in enumerate(card.parcels, 1):
        head = Text.assemble(
            (f"{index}. ", "bold"),
            t(parcel.warehouse),
            " · ",
            t(parcel.carrier),
            " ",
            t(parcel.waybill_no or "—", "bold"),
            " · ",
            (tr(f"parcel.{parcel.state}"), STATUS_STYLE.get(parcel.state, "")),
        )
        rows.append(head)
        if parcel.last_track_text:
            rows.append(
                Text.assemble("   ", (short_time(parcel.last_track_at, now), "cyan"), " ", t(parcel.last_track_text))
            )
        if len(card.parcels) > 1 and parcel.lines:
            carried = Text("   ", style="dim")
            for sku, qty in parcel.lines:
                carried.append_text(t(sku, "dim"))
                carried.append(f"×{qty}  ", style="dim")
            rows.append(carried)
    return Group(*rows)

def lines_table(card: OrderCard) -> RenderableType:
    """The order lines with gift and combo marks."""
    if not card.lines:
        return Text("—", style="dim")
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("sku", no_wrap=True, style="dim")
    table.add_column("title", overflow="ellipsis", no_wrap=True)
    table.add_column("qty", no_wrap=True, justify="right")
    table.add_column("price", no_wrap=True, justify="right")
    for line in card.lines:
        title = t(line.title)
        if line.gift:
            title.append(f" [{tr('card.gift')}]", style="green")
        if line.combo_sku:
            title.append(" ")
            title.append_text(t(f"[{tr('card.combo')} {line.combo_sku}]", "dim"))
        table.add_row(t(line.sku), title, f"×{line.quantity}", money(line.price_fen))
    return table

def customer_block(card: OrderCard, now: datetime) -> RenderableType:
    """The customer across channels: summary and their other orders."""
    customer = card.customer
    assert customer is not None
    summary = Text.assemble(
        t(customer.name, "bold"),
        "  ",
        tr(
            "card.customer_summary",
            n=customer.order_count,
            channels="、".join(channel_label(c) for c in customer.channels),
            r=customer.return_count,
            r30=customer.returns_30d,
            why=tr(f"match.{customer.match_reason}") if customer.match_reason else "—",
        ),
    )
    rows: list[RenderableType] = [summary]
    for other in customer.others:
        row = Text.assemble(
            "  ",
            (short_time(other.paid_at, now), "cyan"),
            "  ",
            channel_label(other.channel),
            " ",
            t(other.order_no),
            "  ",
            (status_label(other.status), STATUS_STYLE.get(other.status, "")),
            "  ",
            money(other.total_fen),
        )
        after = aftersale_label(other.after_sale)
        if after:
            row.append(f"  {after}", style="yellow")
        rows.append(row)
    return Group(*rows)
