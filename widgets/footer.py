"""The key-help line at the bottom of every screen."""

from __future__ import annotations

from textual.widgets import Footer


class DeskFooter(Footer):
    """Textual's Footer, rebuilt only when the keys it shows have changed.

    Footer recomposes — unmounts every key widget and mounts new ones, each styled anew — whenever
    the screen's bindings *may* have changed: every screen push and pop, every focus move. That cost
    30–90 ms per switch on this stack, right inside "Enter → card on screen", and nearly always
    produced exactly the same keys. Here the recompose is skipped when the active bindings (keys,
    words, enabled state) are what the footer already shows.
    """

    _shown: tuple | None = None

    def _shown_bindings(self) -> tuple:
        """Everything ``compose`` reads from the screen's bindings, in order."""
        return (
            self.compact,
            self.show_command_palette,
            tuple(
                (key, active.binding, active.enabled, active.tooltip)
                for key, active in self.screen.active_bindings.items()
            ),
        )

    async def recompose(self) -> None:
        if not self.is_attached or not self._bindings_ready:
            await super().recompose()
            return
        shown = self._shown_bindings()
        if shown == self._shown:
            return
        self._shown = shown
        await super().recompose()
