"""The one-line header: app name, signed-in operator, sync health and the China-time clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from db.sanitize import clean_text
from widgets.format import CHINA
from widgets.i18n import tr

_SYNC_STYLES = {"ok": "green", "lagging": "yellow", "failing": "bold red", "off": "dim"}


class DeskHeader(Widget):
    """Shows who is signed in and whether the pool is in sync, so neither is ever a guess.

    Set :attr:`operator` and :attr:`sync_state`; the clock ticks by itself from ``clock``.
    """

    DEFAULT_CSS = """
    DeskHeader {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
    }
    """

    operator: reactive[str] = reactive("")
    """Display name of the signed-in operator."""
    sync_state: reactive[str] = reactive("off")
    """One of ok, lagging, failing, off."""

    def __init__(
        self,
        clock: Callable[[], datetime] | None = None,
        *,
        operator: str = "",
        sync_state: str = "off",
        **kwargs,  # noqa: ANN003
    ) -> None:
        super().__init__(**kwargs)
        self._clock = clock or (lambda: datetime.now(UTC))
        self.set_reactive(DeskHeader.operator, operator)
        self.set_reactive(DeskHeader.sync_state, sync_state)

    def on_mount(self) -> None:
        self.set_interval(1.0, self.refresh)

    def render(self) -> Table:
        now = self._clock().astimezone(CHINA)
        left = Text.assemble(
            (" deskapp ", "bold reverse"),
            " ",
            (tr("app.title"), "bold"),
            "   ",
            (tr("app.operator") + "：", "dim"),
            (clean_text(self.operator) or "—", "bold"),
            "   ",
            (tr("app.sync") + "：", "dim"),
            (tr(f"app.sync.{self.sync_state}"), _SYNC_STYLES.get(self.sync_state, "")),
        )
        grid = Table.grid(expand=True)
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(justify="right", no_wrap=True)
        grid.add_row(left, now.strftime("%m-%d %H:%M:%S "))
        return grid
