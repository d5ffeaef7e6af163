"""Rich tables without borders, painted the way Rich paints them, in a fraction of the time.

Opening an order card renders three Rich tables (facts, timeline, order lines); the timeline alone
cost ~8 ms on an agent's PC, most of it Rich's general machinery around each cell (options,
``Padding`` renderables, one ``render_lines`` call per cell). :class:`QuickTable` wraps such a table
and produces the *same segments* by calling the same Rich primitives directly: ``Text.wrap`` for
the cell, ``Text.render``, ``Segment.split_and_crop_lines`` and ``Segment.apply_style`` for the
padding and styles, and column widths measured as Rich measures them. It covers the simple case
the card uses — no box, header, footer, title, caption, row styles or fixed column widths, cells
that are text, one flexible column at most, and a table that fits without shrinking columns —
and hands anything else to the table itself. ``tests/pilot/test_render_equivalence.py`` compares
the two segment for segment.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.table import Column, Table
from rich.text import Text


class QuickTable:
    """Renders ``table`` exactly as ``table`` renders itself, faster where it can."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = self.table
        if not self._simple():
            yield from console.render(table, options)
            return
        columns = table.columns
        cells = [
            [
                cell if isinstance(cell, Text) else console.render_str(cell, highlight=column.highlight)
                for cell in column.cells
            ]
            for column in columns
        ]
        widths = self._widths(cells, options.max_width)
        if widths is None:  # Rich would shrink columns to fit: leave that to Rich
            yield from console.render(table, options)
            return
        null = Style.null()
        styles = [console.get_style(column.style or "") for column in columns]
        paddings = [self._padding(index) for index in range(len(columns))]
        new_line = Segment.line()
        for row in range(len(table.rows)):
            rendered = [
                self._cell(console, options, column, cells[index][row], width, paddings[index], styles[index], null)
                for index, (column, width) in enumerate(zip(columns, widths, strict=True))
            ]
            height = max(len(lines) for lines in rendered)
            rendered = [
                Segment.align_top(lines, width, height, style)
                for lines, width, style in zip(rendered, widths, styles, strict=True)
            ]
            for line in range(height):
                for lines in rendered:
                    yield from lines[line]
                yield new_line

    def _simple(self) -> bool:
        table = self.table
        return bool(
            table.columns
            and table.box is None
            and not (table.show_header or table.show_footer or table.title or table.caption or table.row_styles)
            and table.width is None
            and table.min_width is None
            and table.style in (None, "", "none")
            and not table.show_lines
            and not table.leading
            and all(row.style is None and not row.end_section for row in table.rows)
            and all(
                column.width is None and column.min_width is None and column.vertical == "top"
                for column in table.columns
            )
            and sum(column.flexible for column in table.columns) <= 1
            and all(isinstance(cell, Text | str) for column in table.columns for cell in column.cells)
        )

    def _padding(self, index: int) -> tuple[int, int]:
        """Left and right padding of column ``index`` (Table._get_cells; no top or bottom here)."""
        table = self.table
        _top, right, _bottom, left = table.padding
        if table.collapse_padding and index:
            left = max(0, left - right)
        if not table.pad_edge:
            if index == 0:
                left = 0
            if index == len(table.columns) - 1:
                right = 0
        return left, right

    def _padding_width(self, index: int) -> int:
        """Table._get_padding_width: what Rich adds to a column's limits and flexible minimum."""
        table = self.table
        _, right, _, left = table.padding
        if table.collapse_padding:
            left = 0
            right = abs(left - right)
        if not table.pad_edge:
            if index == 0:
                left = 0
            if index == len(table.columns) - 1:
                right = 0
        return left + right

    def _widths(self, cells: list[list[Text]], max_width: int) -> list[int] | None:
        """Table._calculate_column_widths, when no column has to shrink; None when one would."""
        table = self.table
        widths = [
            self._measure(column, cells[index], sum(self._padding(index)), self._padding_width(index), max_width)
            for index, column in enumerate(table.columns)
        ]
        fixed = sum(width for width, column in zip(widths, table.columns, strict=True) if not column.flexible)
        widths = [width or 1 for width in widths]
        if table.expand and any(column.flexible for column in table.columns):
            for index, column in enumerate(table.columns):
                if column.flexible:  # ratio_distribute over the one flexible column
                    widths[index] = max(1 + self._padding_width(index), max_width - fixed)
        elif table.expand and sum(widths) < max_width:
            return None  # Rich spreads the rest over the columns
        if sum(widths) > max_width or any(
            width - sum(self._padding(index)) < 1 for index, width in enumerate(widths)
        ):
            return None
        return widths

    @staticmethod
    def _measure(column: Column, cells: list[Text], padding: int, limit_padding: int, max_width: int) -> int:
        """The maximum of Table._measure_column, for a column without a fixed width.

        Rich measures each cell as ``Padding(cell)``: the longest line plus the padding, both capped
        at ``max_width`` (a cell's minimum only matters when columns must shrink — not handled here).
        """
        if max_width < 1:
            return 0
        if max_width - padding < 1:
            return max_width
        widest = 0
        for cell in cells:
            lines = cell.plain.splitlines()
            longest = min(max((cell_len(line) for line in lines), default=0), max_width)
            width = min((longest if longest >= 1 else 0) + padding, max_width)
            widest = max(widest, width if width >= 1 else 0)
        if not cells:
            widest = max_width
        if column.max_width is not None:
            widest = min(widest, column.max_width + limit_padding)
        return widest

    @staticmethod
    def _cell(
        console: Console,
        options: ConsoleOptions,
        column: Column,
        text: Text,
        width: int,
        padding: tuple[int, int],
        style: Style,
        null: Style,
    ) -> list[list[Segment]]:
        """One cell's lines: Table._render → render_lines(Padding(cell)) → Text.__rich_console__."""
        left, right = padding
        inner = width - left - right
        lines = text.wrap(
            console,
            inner,
            justify=text.justify or column.justify or "default",
            overflow=text.overflow or column.overflow or "fold",
            tab_size=(console.tab_size if text.tab_size is None else text.tab_size) or 8,
            no_wrap=column.no_wrap if text.no_wrap is None else text.no_wrap,
        )
        segments = list(Text("\n").join(lines).render(console, end=text.end))
        # Padding(cell) pads each line to the column and adds its own padding, in the null style; the
        # table then applies the column's style to all of it.
        rows: list[list[Segment]] = []
        for line in Segment.split_and_crop_lines(segments, inner, include_new_lines=False, pad=True, style=null):
            if left:
                line.insert(0, Segment(" " * left, null))
            if right:
                line.append(Segment(" " * right, null))
            rows.append(list(Segment.apply_style(line, style)) if style else line)
        return rows
