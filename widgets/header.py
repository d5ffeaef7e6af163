"""The one-line header: app name, signed-in operator, sync health and the China-time clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from db.sanitize import clean_text
from widgets.format import CHINA, duration
from widgets.i18n import tr

_SYNC_STYLES = {
    "ok": "green", "lagging": "yellow", "failing": "bold red", "config": "bold red", "off": "dim",
    "other": "cyan", "starting": "dim",
}


@runtime_checkable
class SyncSummary(Protocol):
    """What the header needs to know about sync (``deskapp.services.livesync.SyncHealth`` is one).

    ``state``: off (not configured), config (the config has problems), starting, ok, failing,
    other (another terminal holds the sync lease), lagging. ``failing``: how many connectors are
    failing; ``last_ok``: the last successful run of any connector (aware), if any.
    """

    state: str
    failing: int
    last_ok: datetime | None


def ago(delta: timedelta) -> str:
    """'刚刚' under a minute, else '2分钟前' / '3小时前' (the largest unit only)."""
    if delta < timedelta(minutes=1):
        return tr("time.just_now")
    return tr("time.ago", t=duration(delta, units=1))


def sync_words(sync: SyncSummary | str, now: datetime) -> str:
    """The sync part of the header in today's language: '正常 2分钟前', '2 个异常', '未配置' ..."""
    if isinstance(sync, str):
        return tr(f"app.sync.{sync}")
    if sync.state == "failing":
        return tr("app.sync.failing_n", n=sync.failing)
    words = tr(f"app.sync.{sync.state}")
    if sync.state == "ok" and sync.last_ok is not None:
        words += " " + ago(max(timedelta(0), now - sync.last_ok))
    return words


class DeskHeader(Widget):
    """Shows who is signed in and whether the pool is in sync, so neither is ever a guess.

    Set :attr:`operator`, :attr:`role` and :attr:`sync_state`; the clock (and the "2分钟前" beside a healthy sync)
    ticks by itself from ``clock``. Changing either repaints this one line, never the layout.
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
    role: reactive[str] = reactive("")
    """Their role in words (「客服」), shown beside the name; "" shows none."""
    sync_state: reactive[SyncSummary | str] = reactive("off")
    """A :class:`SyncSummary`, or just a state name (off, ok, lagging, failing)."""

    def __init__(
        self,
        clock: Callable[[], datetime] | None = None,
        *,
        operator: str = "",
        role: str = "",
        sync_state: SyncSummary | str = "off",
        **kwargs,  # noqa: ANN003
    ) -> None:
        super().__init__(**kwargs)
        self._clock = clock or (lambda: datetime.now(UTC))
        self.set_reactive(DeskHeader.operator, operator)
        self.set_reactive(DeskHeader.role, role)
        self.set_reactive(DeskHeader.sync_state, sync_state)

    def on_mount(self) -> None:
        self.set_interval(1.0, self.refresh)

    def render(self) -> Table:
        now = self._clock()
        sync = self.sync_state
        state = sync if isinstance(sync, str) else sync.state
        left = Text.assemble(
            (" deskapp ", "bold reverse"),
            " ",
            (tr("app.title"), "bold"),
            "   ",
            (tr("app.operator") + "：", "dim"),
            (clean_text(self.operator) or "—", "bold"),
            (tr("app.role", role=clean_text(self.role)) if self.role else "", "dim"),
            "   ",
            (tr("app.sync") + "：", "dim"),
            (sync_words(sync, now), _SYNC_STYLES.get(state, "")),
        )
        grid = Table.grid(expand=True)
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(justify="right", no_wrap=True)
        grid.add_row(left, now.astimezone(CHINA).strftime("%m-%d %H:%M:%S "))
        return grid
