"""What every deskapp screen shares: localised key help and the header/footer frame."""

from __future__ import annotations

from dataclasses import replace

from textual.dom import DOMNode
from textual.screen import Screen

from widgets.header import DeskHeader
from widgets.i18n import tr


def localize_bindings(node: DOMNode) -> None:
    """Show binding descriptions in the current language.

    BINDINGS are declared with message ids (``bind.open``) because they are class attributes,
    created before the language is known; this rebuilds the instance's copy in today's words.
    """
    source = node._merged_bindings  # noqa: SLF001 - the class's bindings, still holding message ids
    if source is None:
        return
    bindings = source.copy()
    node._bindings = bindings  # noqa: SLF001 - Textual keeps an instance copy exactly for this
    bindings.key_to_bindings = {
        key: [
            replace(b, description=tr(b.description) if b.description else "",
                    tooltip=tr(b.tooltip) if b.tooltip else "")
            for b in items
        ]
        for key, items in bindings.key_to_bindings.items()
    }


class DeskScreen(Screen):
    """Base screen: translates its key help on creation and builds the shared header."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        localize_bindings(self)

    def header(self) -> DeskHeader:
        """The header every screen shows: the app's clock, operator (name and role) and sync state."""
        app = self.app
        words = getattr(app, "role_words", None)
        return DeskHeader(clock=app.clock, operator=app.operator_name, role=words() if words else "",
                          sync_state=app.sync_state)
