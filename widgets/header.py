"""The one-line header: app name, signed-in operator, sync health and the China-time clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from db.sanitize import clean_text
from widgets.format import CHINA
from widgets.i18n import tr

_SYNC_STYLES = {"ok": "$success", "lagging": "$warning", "failing": "bold $error", "off": "$text-muted"}


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

    def __init__(self, clock: Callable[[], datetime] | None = None, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        self._clock = clock or (lambda: datetime.now(UTC))

    def on_mount(self) -> None:
        self.set_interval(1.0, self.refresh)

    def render(self) -> Content:
        now = self._clock().astimezone(CHINA)
        left = Content.assemble(
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
        right = Content(now.strftime("%m-%d %H:%M:%S "))
        gap = max(1, self.size.width - left.cell_length - right.cell_length)
        return Content.assemble(left, " " * gap, right)
