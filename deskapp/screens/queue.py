"""The warehouse queue and board (F5), with scan-to-confirm; and the runner that keeps the rules applied.

**Queue view**: the open orders to work on, most urgent first — priority (S A B C), then the
ship-by deadline — with a live countdown ("2小时13分", red "超时 35分"), progress, channel,
warehouse and tags; filters by warehouse (F7), channel (F8), progress (F9) and tag (F10) (F6 stays
the app's exceptions key).
**Board view** (F5 again): how many orders are red (< 2 h left, waybill not printed), yellow
(< 6 h, not picked) and green — the three always add up to the total — per warehouse, and the red
and yellow orders themselves. Both follow the pool as it changes, whoever changed it: every second
the orders changed since the last look are read (the timeline is the change feed:
``db.queue.changes_since``) and merged into place; the whole queue is read on opening and every
minute. The countdowns tick every second; the counting happens in a thread.

**Scan**: the scan box has the focus. A barcode gun types the order no. or a waybill no. and
Enter; the order advances one step (``deskapp.services.scan``) and the line above the box says so
in green — or refuses in red with the terminal bell, and nothing changes. Ctrl+T sets the
station (which step this scanner does). With the box empty, Enter opens the highlighted order.

The list can hold 50,000 orders: it is a Line-API ScrollView painting only the rows on screen
(a DataTable spends seconds on that many rows). Untrusted text (order numbers, tags, names) goes
in as plain segments — never markup — cut to its column by terminal cells, so CJK columns align;
no column adds an ambiguous-width character of its own (some CJK terminals draw those two wide;
``widgets.format.fit``'s cut mark "…" is the one left, as on every other screen).

:class:`QueueRunner` is the glue between the app and :class:`~deskapp.services.queue.QueueService`:
a one-second timer checks the rules file (a change re-prioritises the open queue), synced changes
recompute the orders they affect, and a full recompute runs every few minutes. It starts with the
app when a rules file is configured, else when the queue is first opened. A broken rules file is
shown as a toast once and on the queue screen until fixed; the previous rules stay in force. It also
looks at escalation's S breaker every second (a lease any process may hold): while it is tripped
the summary line starts with "S 熔断中 至 14:30", and when it trips or clears the whole queue is
recomputed (the rules grant A instead of a new S meanwhile: ``deskapp.services.queue``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.cells import cell_len
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.scroll_view import ScrollView
from textual.signal import Signal
from textual.strip import Strip
from textual.timer import Timer
from textual.widgets import ContentSwitcher, Input, Static

from db.queue import QueueRow
from db.sanitize import clean_text
from deskapp.screens.base import DeskScreen
from deskapp.services.queue import (
    FULL_EVERY_S,
    POLL_S,
    BoardIndex,
    Choices,
    Filters,
    QueueService,
    QueueView,
    Recomputed,
    choices,
    colour_of,
    left_text,
    merge,
    next_value,
    queue_view,
)
from deskapp.services.rules import priority_rank
from deskapp.services.scan import MAX_CODE, STEPS, ScanResult, Step, advance
from deskapp.services.sla import CHINA, BoardThresholds, Colour
from widgets.footer import DeskFooter
from widgets.format import channel_label, fit, money, status_label
from widgets.i18n import language, tr

if TYPE_CHECKING:
    from deskapp.app import DeskApp
    from deskapp.services.livesync import OrdersChanged

log = logging.getLogger("deskapp.queue")

#: Seconds between two full reads of the queue while the screen shows. Changes are followed every
#: second through the timeline (``db.queue.changes_since``); this catches anything written without
#: an event.
FULL_RELOAD_S = 60.0
#: More changed orders than this (or a quarter of the queue) at once: read it all again.
FULL_AFTER = 2000

PRIORITY_STYLE = {"S": "bold magenta", "A": "bold yellow", "B": "cyan", "C": "dim"}
COLOUR_STYLE = {Colour.RED: "bold red", Colour.YELLOW: "yellow", Colour.GREEN: "green"}


# -- the runner -------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueNews:
    """Published on :attr:`QueueRunner.news` after a recompute, a rules change or a rules problem."""

    recomputed: Recomputed | None = None
    rules_changed: bool = False


class QueueRunner:
    """Drives the app's :class:`QueueService`: rules-file polling, synced changes, full recomputes."""

    def __init__(self, app: DeskApp) -> None:
        self.app = app
        rules = getattr(app.settings, "rules", None)
        self.service = QueueService(app.full_store, rules_path=Path(rules) if rules else None, clock=app.clock)
        self.news: Signal[QueueNews] = Signal(app, "queue-news")
        """What screens subscribe to: the queue changed, or the rules did."""
        self.started = False
        self._busy = False
        self._ids: set[int] = set()
        self._full = True
        self._last_full = 0.0
        self._looked = False  # the rules file has been looked at once
        self._timer: Timer | None = None

    def start(self) -> None:
        """Begin: load the rules, recompute the open queue, then poll every :data:`POLL_S` seconds."""
        if self.started:
            return
        self.started = True
        self.app.orders_changed_signal.subscribe(self.app, self._orders_changed)
        self._timer = self.app.set_interval(POLL_S, self.tick)
        self.tick()

    def _orders_changed(self, change: OrdersChanged) -> None:
        self._ids.update(change.ids)
        self.tick()

    def tick(self) -> None:
        """One look at the rules file and the pending work, unless one is still running."""
        if self._busy:
            return
        self._busy = True
        self.app.run_worker(self._cycle(), group="queue-rules", exit_on_error=False)

    async def _cycle(self) -> None:
        try:
            check = await self.service.check_rules()
            if check.new_error and check.error is not None:
                self.app.notify(check.error.text(language()), title=tr("q.rules_rejected"), severity="error",
                                timeout=12, markup=False)
            # The S breaker tripped or cleared (in any process): judge every order again, so the
            # ones it held back at A get S as soon as the cool-down ends.
            breaker = await self.service.check_breaker()
            full = check.changed or breaker or self._full or time.monotonic() - self._last_full >= FULL_EVERY_S
            ids, self._ids = self._ids, set()
            result = None
            if full:
                self._full = False
                self._last_full = time.monotonic()
                result = await self.service.recompute()
            elif ids:
                result = await self.service.recompute(ids)
            if result is not None or check.changed or check.new_error:
                # The first look at the file is the start, not a change worth a toast.
                self.news.publish(QueueNews(result, check.changed and self._looked))
            self._looked = True
        except Exception:
            log.exception("queue recompute failed")
            self._full = True
        finally:
            self._busy = False


def show_queue(app: DeskApp) -> None:
    """Open the queue (F5) from anywhere but a dialog; back to it if it is open under others."""
    if isinstance(app.screen, ModalScreen):
        return
    runner = getattr(app, "queue_runner", None)
    if runner is None:
        app.queue_runner = runner = QueueRunner(app)
    runner.start()
    for depth, screen in enumerate(reversed(app.screen_stack)):
        if isinstance(screen, QueueScreen):
            for _ in range(depth):
                app.pop_screen()
            return
    app.push_screen(QueueScreen(runner))


# -- the list ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of the queue list: which cell, how many terminal cells wide, right-aligned or not."""

    key: str
    width: int
    right: bool = False


def columns_for(width: int) -> list[Column]:
    """The queue's columns at a width: the narrow set, more on a wide terminal; tags take the rest."""
    progress = max(cell_len(progress_label(p)) for p in ("paid", "review", "allocating", "picked", "packed"))
    channel = max(cell_len(channel_label(c)) for c in ("taobao", "pdd", "douyin", "miniapp", "kuaishou"))
    cols = [Column("pri", 2), Column("left", 15), Column("order_no", 20 if width < 120 else 22 if width < 150 else 24),
            Column("progress", progress), Column("channel", channel), Column("warehouse", 6)]
    if width >= 120:
        cols += [Column("receiver", 8), Column("city", 8), Column("amount", 10, right=True)]
    if width >= 150:
        cols += [Column("why", 24)]
    used = sum(c.width + 1 for c in cols)
    cols.append(Column("tags", max(4, width - used)))
    return cols


def progress_label(progress: str) -> str:
    """Where an order is in the warehouse, in the interface language: 已付款 … 已拣货 已打包."""
    return tr(f"q.progress.{progress}") if progress in ("picked", "packed") else status_label(progress)


def row_cells(row: QueueRow, cols: Sequence[Column], now: datetime, board: BoardThresholds) -> list[tuple[str, str]]:
    """One queue row's cells (text, style) for ``cols``: text as stored (cleaned when placed)."""
    colour = colour_of(row, now, board)
    left = None if row.due is None else row.due - now
    cells = {
        "pri": (row.priority, PRIORITY_STYLE.get(row.priority, "")),
        "left": (left_text(left), COLOUR_STYLE[colour] if row.due is not None else "dim"),
        "order_no": (row.order_no, ""),
        "progress": (progress_label(row.progress), "bold" if row.progress in ("picked", "packed") else ""),
        "channel": (channel_label(row.channel), ""),
        "warehouse": (row.warehouse or tr("q.unassigned"), "" if row.warehouse else "dim"),
        "receiver": (row.receiver, ""),
        "city": (row.city, ""),
        "amount": (money(row.total_fen), ""),
        "why": (row.why or "", "dim"),
        "tags": (" ".join(row.tags), "italic"),
    }
    return [cells[col.key] for col in cols]


_STYLES: dict[tuple[str, int], Style] = {}


def _style(name: str, column: int = -1) -> Style:
    """The style of a cell; the column in its meta (as DataTable does), so no two cells' segments
    are ever merged into one run (an SVG export of a merged run drifts in some viewers)."""
    style = _STYLES.get((name, column))
    if style is None:
        style = Style.parse(name) if name else Style()
        if column >= 0:
            style += Style.from_meta({"column": column})
        _STYLES[(name, column)] = style
    return style


def line_segments(cells: Sequence[tuple[str, str]], cols: Sequence[Column]) -> list[Segment]:
    """Cells placed in their columns: each cleaned and cut to its width in terminal cells (CJK
    counts two). A cell's blanks trail its own text in its own segment (a right-aligned cell's lead
    the one before), so no segment starts with blanks: SVG viewers (rsvg) draw a leading blank
    narrower than a cell, which would shift everything after it."""
    runs: list[list] = []
    last = len(cols) - 1
    for index, ((value, style), col) in enumerate(zip(cells, cols, strict=True)):
        shown = fit(value, col.width)
        blank = " " * (col.width - cell_len(shown))
        gap = " " if index < last else ""
        if not shown or (col.right and runs):
            if runs:
                runs[-1][0] += blank
            else:
                runs.append([blank, "", index])
            if shown:
                runs.append([shown + gap, style, index])
            else:
                runs[-1][0] += gap
        elif col.right:
            runs.append([blank + shown + gap, style, index])
        else:
            runs.append([shown + blank + gap, style, index])
    return [Segment(text, _style(style, index)) for text, style, index in runs if text]


class Segments:
    """A line of prepared segments as a Rich renderable (the column titles above the list)."""

    def __init__(self, segments: list[Segment], style: str = "") -> None:
        self.segments = segments
        self.style = _style(style)

    def __rich_console__(self, console, options):
        yield from Segment.apply_style(self.segments, self.style)

    def __rich_measure__(self, console, options) -> Measurement:
        width = Segment.get_line_length(self.segments)
        return Measurement(width, width)


def header_segments(cols: Sequence[Column]) -> Segments:
    """The column titles, placed as the rows' cells."""
    return Segments(line_segments([(tr(f"q.col.{col.key}"), "") for col in cols], cols), "bold")


class QueueList(ScrollView, can_focus=True):
    """Queue rows, painted line by line (only the rows on screen), with a cursor row.

    | Key | Action |
    | :- | :- |
    | up/down | Move between orders. |
    | pageup/pagedown | A screenful up or down. |
    | home/end | First or last order. |
    | enter | Open the highlighted order. |
    """

    BINDINGS: ClassVar[list[Binding]] = [
        Binding("up", "cursor(-1)", show=False),
        Binding("down", "cursor(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "cursor(-1000000000)", show=False),
        Binding("end", "cursor(1000000000)", show=False),
        Binding("enter", "choose", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"queue-list--cursor", "queue-list--empty"}
    DEFAULT_CSS = """
    QueueList { height: 1fr; scrollbar-size-vertical: 1; }
    QueueList > .queue-list--cursor { background: $block-cursor-blurred-background; }
    QueueList:focus > .queue-list--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
    }
    QueueList > .queue-list--empty { color: $text-muted; }
    """

    cursor: reactive[int] = reactive(0, always_update=True, repaint=False)
    """The highlighted row (index into the rows shown)."""

    class Chosen(Message):
        """Enter (or a click) on an order."""

        def __init__(self, order_id: int) -> None:
            super().__init__()
            self.order_id = order_id

    def __init__(self, paint: Callable[[QueueRow, int], list[Segment]], **kwargs) -> None:
        super().__init__(**kwargs)
        self._paint = paint
        self.rows: list[QueueRow] = []
        self.empty_text = ""
        self.pinned = False
        """The person moved the cursor: a refresh keeps that order highlighted (else: the top one)."""

    @property
    def highlighted(self) -> QueueRow | None:
        """The order under the cursor."""
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def show(self, rows: list[QueueRow]) -> None:
        """Show these rows; the highlighted order stays highlighted wherever it moved."""
        keep = self.highlighted if self.pinned else None
        self.rows = rows
        self.virtual_size = Size(self.scrollable_content_region.width, len(rows))
        index = 0
        if keep is not None:
            index = next((i for i, row in enumerate(rows) if row.id == keep.id), min(self.cursor, len(rows) - 1))
        self.cursor = max(0, index)
        self.refresh()

    def on_resize(self, _: events.Resize) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.rows))

    def watch_cursor(self, cursor: int) -> None:
        height = self.scrollable_content_region.height
        top = int(self.scroll_y)
        if cursor < top:
            self.scroll_to(y=cursor, animate=False, immediate=True)
        elif height and cursor >= top + height:
            self.scroll_to(y=cursor - height + 1, animate=False, immediate=True)
        self.refresh()

    def action_cursor(self, delta: int) -> None:
        if self.rows:
            self.pinned = True
            self.cursor = max(0, min(len(self.rows) - 1, self.cursor + delta))

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.scrollable_content_region.height - 1))

    def action_choose(self) -> None:
        row = self.highlighted
        if row is not None:
            self.post_message(self.Chosen(row.id))

    def on_click(self, event: events.Click) -> None:
        index = int(self.scroll_y) + event.y
        if 0 <= index < len(self.rows):
            if index == self.cursor and event.chain >= 2:
                self.action_choose()
            self.pinned = True
            self.cursor = index

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = int(self.scroll_y) + y
        base = self.rich_style
        if not self.rows:
            if y == 0 and self.empty_text:
                style = self.get_component_rich_style("queue-list--empty")
                return Strip([*Text(fit(self.empty_text, width), end="").render(self.app.console)]) \
                    .adjust_cell_length(width).apply_style(base + style)
            return Strip.blank(width, base)
        if index >= len(self.rows):
            return Strip.blank(width, base)
        strip = Strip(self._paint(self.rows[index], width)).adjust_cell_length(width)
        style = base
        if index == self.cursor:
            style = base + self.get_component_rich_style("queue-list--cursor")
        return strip.apply_style(style)


class ScanBox(Input):
    """Where the barcode gun types; Enter confirms the scan."""


# -- the screen -------------------------------------------------------------------------------


class QueueScreen(DeskScreen):
    """The warehouse queue and board, with the scan box.

    | Key | Action |
    | :- | :- |
    | (scan) / enter | Confirm the scanned order's next step (empty box: open the highlighted order). |
    | up/down/pageup/pagedown | Move in the list. |
    | f5 | Queue ↔ board. |
    | f7 / f8 / f9 / f10 | Filter by warehouse / channel / progress / tag (each press: the next value, then all). |
    | ctrl+t | The station: which step this scanner confirms (auto: each order's next step). |
    | escape | Clear the scan box; else the filters; else back. |
    """

    BINDINGS: ClassVar[list[Binding]] = [
        Binding("escape", "back", "bind.back", id="queue.back", tooltip="bind.back"),
        Binding("f5", "toggle_board", "bind.board", id="queue.board", tooltip="bind.board"),
        Binding("f7", "filter('warehouse')", "bind.f_warehouse", id="queue.warehouse", tooltip="bind.f_warehouse"),
        Binding("f8", "filter('channel')", "bind.f_channel", id="queue.channel", tooltip="bind.f_channel"),
        Binding("f9", "filter('progress')", "bind.f_progress", id="queue.progress", tooltip="bind.f_progress"),
        Binding("f10", "filter('tag')", "bind.f_tag", id="queue.tag", tooltip="bind.f_tag"),
        Binding("ctrl+t", "station", "bind.station", id="queue.station", tooltip="bind.station"),
        Binding("up", "move(-1)", show=False),
        Binding("down", "move(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
    ]

    DEFAULT_CSS = """
    QueueScreen #q-summary { height: 1; padding: 0 1; color: $text-muted; }
    QueueScreen #q-rules-error { height: auto; max-height: 3; padding: 0 1; background: $error 30%; display: none; }
    QueueScreen #q-rules-error.-shown { display: block; }
    QueueScreen #q-views { height: 1fr; }
    QueueScreen .q-columns { height: 1; padding: 0 0 0 1; }
    QueueScreen QueueList { padding: 0 0 0 1; }
    QueueScreen #q-blocks { height: 3; }
    QueueScreen .q-block { width: 1fr; height: 3; content-align: center middle; text-align: center; text-style: bold; }
    QueueScreen #q-red { background: $error 70%; }
    QueueScreen #q-yellow { background: $warning 60%; }
    QueueScreen #q-green { background: $success 45%; }
    QueueScreen #q-houses { height: auto; max-height: 8; padding: 0 1; }
    QueueScreen #q-urgent-title { height: 1; padding: 0 1; color: $text-muted; }
    QueueScreen #q-result { height: 1; padding: 0 1; }
    QueueScreen #q-result.-ok { background: $success 60%; text-style: bold; }
    QueueScreen #q-result.-error { background: $error; color: $text; text-style: bold; }
    QueueScreen ScanBox { border: tall $accent; }
    QueueScreen ScanBox.-error { border: tall $error; }
    """

    app: DeskApp

    def __init__(self, runner: QueueRunner) -> None:
        super().__init__()
        self.runner = runner
        self.all_rows: list[QueueRow] = []
        self.rows: list[QueueRow] = []
        self.filters = Filters()
        self.station: Step | None = None
        self.board_view = False
        self.loaded = False
        self._choices: Choices | None = None
        self._index: BoardIndex | None = None
        self._houses: list[tuple[str, BoardIndex]] = []
        self._by_priority: dict[str, int] = {}
        self._reading = False
        self._want = self._want_full = False
        self._last_event: int | None = None
        self._cols: list[Column] = []
        self._reload_timer: Timer | None = None
        self._tick_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield self.header()
        yield Static(Content(tr("q.loading")), id="q-summary")
        yield Static(Content(""), id="q-rules-error")
        with ContentSwitcher(initial="q-list-view", id="q-views"):
            with Vertical(id="q-list-view"):
                yield Static(Content(""), classes="q-columns", id="q-list-columns")
                yield QueueList(self._paint, id="q-list")
            with Vertical(id="q-board-view"):
                with Horizontal(id="q-blocks"):
                    yield Static(Content(""), classes="q-block", id="q-red")
                    yield Static(Content(""), classes="q-block", id="q-yellow")
                    yield Static(Content(""), classes="q-block", id="q-green")
                yield Static(Content(""), id="q-houses")
                yield Static(Content(""), id="q-urgent-title")
                yield Static(Content(""), classes="q-columns", id="q-urgent-columns")
                yield QueueList(self._paint, id="q-urgent")
        yield Static(Content(""), id="q-result")
        yield ScanBox(placeholder=tr("q.scan.placeholder"), max_length=MAX_CODE * 2, id="q-scan")
        yield DeskFooter()

    def on_mount(self) -> None:
        self.scan_box.focus()
        self._label_scan()
        self.runner.news.subscribe(self, self._news)
        self._reload_timer = self.set_interval(FULL_RELOAD_S, self.reload)
        self._tick_timer = self.set_interval(1.0, self._tick)
        self._show_rules()
        self.reload()

    def on_screen_suspend(self, _: events.ScreenSuspend) -> None:
        for timer in (self._reload_timer, self._tick_timer):
            if timer is not None:
                timer.pause()

    def on_screen_resume(self, _: events.ScreenResume) -> None:
        if self.is_mounted:
            for timer in (self._reload_timer, self._tick_timer):
                if timer is not None:
                    timer.resume()
            self.scan_box.focus()
            self.reload()

    # -- parts

    @property
    def scan_box(self) -> ScanBox:
        return self.query_one("#q-scan", ScanBox)

    @property
    def queue_list(self) -> QueueList:
        return self.query_one("#q-list", QueueList)

    @property
    def urgent(self) -> QueueList:
        return self.query_one("#q-urgent", QueueList)

    @property
    def board(self) -> BoardThresholds:
        return self.runner.service.rules.board

    def _set(self, selector: str, content: Content | Text | Table | Segments | str) -> None:
        if isinstance(content, str):
            content = Content(content)
        self.query_one(selector, Static).update(content)

    # -- data

    def reload(self, full: bool = True) -> None:
        """Show the pool's changes: the orders changed since the last look (the timeline is the
        change feed), or — ``full`` — the whole queue read again. One read at a time; asked again
        meanwhile, it looks once more when done."""
        self._want_full = self._want_full or full
        self._want = True
        if not self._reading:
            self._reading = True
            self._read()

    @work(group="queue-read", exit_on_error=False)
    async def _read(self) -> None:
        service = self.runner.service
        try:
            while self._want:
                self._want = False
                full, self._want_full = self._want_full or self._last_event is None, False
                before = self.all_rows
                if not full:
                    last, ids = await service.changes(self._last_event)
                    if ids is not None and not ids:
                        self._last_event = last
                        continue
                    full = ids is None or len(ids) > max(FULL_AFTER, len(before) // 4)
                if full:
                    last, _ = await service.changes(None)  # first: a change during the read is seen next time
                    fresh, ids = await service.queue(), None
                else:
                    fresh = await service.queue(ids)
                filters = replace(self.filters)
                view = await asyncio.to_thread(_view, before, fresh, ids, filters, self.board)
                self._last_event = last
                self.loaded = True
                if filters == self.filters:
                    self._present(view)
                else:  # a filter key was pressed meanwhile
                    self.all_rows = view.all_rows
                    self._apply()
        finally:
            self._reading = False

    def _apply(self) -> None:
        """The filters changed: the same rows, counted again (in a thread: 50,000 rows take a while)."""
        self._recount(self.all_rows, replace(self.filters))

    @work(group="queue-view", exclusive=True, exit_on_error=False)
    async def _recount(self, rows: list[QueueRow], filters: Filters) -> None:
        view = await asyncio.to_thread(queue_view, rows, filters, self.board)
        if filters == self.filters:
            self._present(view)

    def _present(self, view: QueueView) -> None:
        """Show one computed view: the list, the board and the summary."""
        if view.all_rows is not self.all_rows:
            self._choices = None  # worked out again at the next filter key
        self.all_rows, self.rows = view.all_rows, view.rows
        self._index, self._houses, self._by_priority = view.index, view.houses, view.by_priority
        self.queue_list.empty_text = tr("q.empty_filtered") if self.filters.active and self.all_rows else tr("q.empty")
        self.queue_list.show(self.rows)
        self._show_counts(self.app.clock())

    def _paint(self, row: QueueRow, width: int) -> list[Segment]:
        if not self._cols or sum(c.width + 1 for c in self._cols) - 1 != width:
            self._cols = columns_for(width)
            self.call_later(self._set_columns)  # not while the list is painting
        return line_segments(row_cells(row, self._cols, self.app.clock(), self.board), self._cols)

    def _set_columns(self) -> None:
        header = header_segments(self._cols)
        for selector in ("#q-list-columns", "#q-urgent-columns"):
            self.query_one(selector, Static).update(header)

    def on_resize(self, _: events.Resize) -> None:
        self._cols = []

    def _tick(self) -> None:
        """Every second: the countdowns and the counts move on; the changes since the last look."""
        self.reload(full=False)
        now = self.app.clock()
        self._show_counts(now)
        self.queue_list.refresh()
        self.urgent.refresh()

    def _show_counts(self, now: datetime) -> None:
        if self._index is None:
            return
        counts = self._index.counts(now)
        by_priority = self._by_priority
        parts = [tr("q.summary", n=len(self.rows), total=len(self.all_rows))]
        parts.append(" ".join(f"{p} {by_priority[p]}" for p in sorted(by_priority, key=priority_rank)))
        parts.append(tr("q.counts", red=counts[Colour.RED], yellow=counts[Colour.YELLOW],
                        green=counts[Colour.GREEN], total=self._index.total))
        parts.extend(self._filter_words())
        if self.station is not None:
            parts.append(tr("q.station_is", station=tr(f"scan.step.{self.station}")))
        summary = Content(" · ".join(p for p in parts if p))
        until = self.runner.service.s_breaker(now)
        if until is not None:  # first, so an 80-column line never cuts it off
            summary = Content.assemble((tr("q.s_breaker", t=f"{until.astimezone(CHINA):%H:%M}"), "bold red"),
                                       " · ", summary)
        self._set("#q-summary", summary)
        if self.board_view:
            self._show_board(now, counts)

    def _filter_words(self) -> list[str]:
        f = self.filters
        words = []
        if f.warehouse is not None:
            words.append(tr("q.filter.warehouse", v=clean_text(f.warehouse) or tr("q.unassigned")))
        if f.channel is not None:
            words.append(tr("q.filter.channel", v=channel_label(f.channel)))
        if f.progress is not None:
            words.append(tr("q.filter.progress", v=progress_label(f.progress)))
        if f.tag is not None:
            words.append(tr("q.filter.tag", v=fit(f.tag, 12)))
        return words

    def _show_board(self, now: datetime, counts: dict[Colour, int]) -> None:
        board = self.board
        hints = {Colour.RED: tr("q.board.red_hint", h=f"{board.red_hours:g}"),
                 Colour.YELLOW: tr("q.board.yellow_hint", h=f"{board.yellow_hours:g}"),
                 Colour.GREEN: tr("q.board.green_hint")}
        for colour, selector in ((Colour.RED, "#q-red"), (Colour.YELLOW, "#q-yellow"), (Colour.GREEN, "#q-green")):
            self._set(selector, Content(f"{tr(f'q.board.{colour}')}  {counts[colour]}\n{hints[colour]}"))
        table = Table(box=None, padding=(0, 2, 0, 0), header_style="bold", show_edge=False, pad_edge=False)
        table.add_column(tr("q.col.warehouse"), no_wrap=True)
        for key in ("red", "yellow", "green", "total"):
            table.add_column(tr(f"q.board.{key}"), justify="right", no_wrap=True)
        for house, index in self._houses:
            c = index.counts(now)
            table.add_row(Text(fit(house, 12) if house else tr("q.unassigned"), style="" if house else "dim"),
                          *self._count_cells(c, index.total))
        if len(self._houses) > 1:
            table.add_row(Text(tr("q.board.total"), style="bold"), *self._count_cells(counts, self._index.total))
        self._set("#q-houses", table)
        urgent = self._index.urgent(now)
        self._set("#q-urgent-title", tr("q.board.urgent", n=len(urgent)))
        self.urgent.empty_text = tr("q.board.none_urgent")
        if urgent != self.urgent.rows:
            self.urgent.show(urgent)

    @staticmethod
    def _count_cells(counts: dict[Colour, int], total: int) -> list[Text]:
        return [Text(str(counts[Colour.RED]), style="bold red" if counts[Colour.RED] else "dim"),
                Text(str(counts[Colour.YELLOW]), style="yellow" if counts[Colour.YELLOW] else "dim"),
                Text(str(counts[Colour.GREEN]), style="green" if counts[Colour.GREEN] else "dim"),
                Text(str(total), style="bold")]

    def _news(self, news: QueueNews) -> None:
        self._show_rules()
        if news.recomputed is not None and news.recomputed.changed or news.rules_changed:
            self.reload(full=False)
        if news.rules_changed and news.recomputed is not None:
            self.notify(tr("q.recomputed", n=len(news.recomputed.changed), version=news.recomputed.version),
                        timeout=4, markup=False)

    def _show_rules(self) -> None:
        error = self.runner.service.error
        box = self.query_one("#q-rules-error", Static)
        if error is None:
            box.remove_class("-shown")
            return
        first = error.problems[0].text(language()) if error.problems else str(error)
        more = len(error.problems) - 1
        text = tr("q.rules_error", error=clean_text(first, multiline=True))
        if more > 0:
            text += " " + tr("q.rules_more", n=more)
        box.update(Content(text))
        box.add_class("-shown")

    # -- scanning

    @on(Input.Submitted, "#q-scan")
    def _submitted(self, event: Input.Submitted) -> None:
        value = event.value
        if not value.strip():
            self._open_highlighted()
            return
        self.scan_box.value = ""
        self.scan(value)

    @on(Input.Changed, "#q-scan")
    def _typing(self) -> None:
        self.scan_box.remove_class("-error")

    @work(group="scan", exclusive=False, exit_on_error=False)
    async def scan(self, value: str) -> ScanResult:
        """Advance the scanned order one step (or refuse, loudly) and show what happened."""
        store = await self.app.full_store()
        result = await advance(store, value, self.app.actor, station=self.station, at=self.app.clock())
        self.scanned(result)
        if result.ok:
            self.reload(full=False)
        return result

    def scanned(self, result: ScanResult) -> None:
        """Say what a scan did: green for a step, red with the bell for a refusal."""
        line = self.query_one("#q-result", Static)
        line.set_class(result.ok, "-ok")
        line.set_class(not result.ok, "-error")
        line.update(Content(result.message()))
        self.scan_box.set_class(not result.ok, "-error")
        if not result.ok:
            self.app.bell()

    def _open_highlighted(self) -> None:
        view = self.urgent if self.board_view else self.queue_list
        row = view.highlighted
        if row is not None:
            self.app.open_order(row.id)

    @on(QueueList.Chosen)
    def _chosen(self, event: QueueList.Chosen) -> None:
        self.app.open_order(event.order_id)

    # -- keys

    def action_move(self, delta: int) -> None:
        (self.urgent if self.board_view else self.queue_list).action_cursor(delta)

    def action_page(self, direction: int) -> None:
        (self.urgent if self.board_view else self.queue_list).action_page(direction)

    def action_toggle_board(self) -> None:
        self.board_view = not self.board_view
        self.query_one("#q-views", ContentSwitcher).current = "q-board-view" if self.board_view else "q-list-view"
        self._cols = []
        self._show_counts(self.app.clock())

    def action_filter(self, which: str) -> None:
        if self._choices is None:
            self._choices = choices(self.all_rows)
        c = self._choices
        values = {"warehouse": c.warehouses, "channel": c.channels, "progress": c.progress, "tag": c.tags}[which]
        setattr(self.filters, which, next_value(getattr(self.filters, which), values))
        self._apply()

    def action_station(self) -> None:
        order: list[Step | None] = [None, *STEPS]
        self.station = order[(order.index(self.station) + 1) % len(order)]
        self._label_scan()
        self._show_counts(self.app.clock())

    def _label_scan(self) -> None:
        station = tr(f"scan.step.{self.station}") if self.station is not None else tr("q.station.auto")
        self.scan_box.border_title = tr("q.scan.title", station=station)

    def action_back(self) -> None:
        box = self.scan_box
        if box.value:
            box.value = ""
        elif self.filters.active:
            self.filters = Filters()
            self._apply()
        else:
            self.dismiss()


def _view(before: list[QueueRow], fresh: list[QueueRow], ids: list[int] | None, filters: Filters,
          board: BoardThresholds) -> QueueView:
    """A full read (``ids`` None), or the changed orders merged into the rows shown; then counted."""
    rows = fresh if ids is None else merge(before, fresh, ids)
    return queue_view(rows, filters, board)
