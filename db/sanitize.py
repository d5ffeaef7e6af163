"""The one cleaning path for text that came from outside (buyers, channels, carriers, files).

Rich and Textual pass ESC and most C0/C1 controls straight to the terminal, so a buyer note could
clear the screen, plant a hyperlink (OSC 8) or write the agent's clipboard (OSC 52); bidi overrides
can make an address read backwards. ``clean_text`` removes all of those. It is applied at ingest
(before anything is stored) and again at render, so data that reached the database by another road
is still harmless on screen. Markup is a separate concern: cleaned text is still *data* and must be
rendered as ``Content``/``Text`` objects, never parsed as markup.
"""

from __future__ import annotations

import re

# C0 except TAB and LF, DEL, C1, the bidi / invisible-direction characters, and lone surrogates
# (JSON allows "\ud800"; no terminal can show it and no database can store it).
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]"
)
# Anything the slow path would touch (all C0 including TAB/LF/CR, DEL, C1, bidi): most text has
# none, and one search is ~4× cheaper than the two substitutions and three replaces below.
_SUSPECT = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")
# A whole escape sequence is dropped, not just its ESC, so "ESC[2J" does not leave "[2J" behind.
_SEQUENCES = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC ... BEL|ST (hyperlinks, clipboard, title)
    r"|\x1b[P_^X][^\x1b]*(?:\x1b\\)?"  # DCS / APC / PM / SOS strings
    r"|\x1b\[[0-?]*[ -/]*[@-~]"  # CSI (cursor, erase, colours)
    r"|\x1b[@-Z\\-_]"  # two-byte escapes
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
    r"|\x9d[^\x07\x9c]*(?:\x07|\x9c)?"  # 8-bit OSC
)


def is_clean(value: str) -> bool:
    """True when :func:`clean_text` would return ``value`` unchanged, one-line or multiline
    (it holds no control, bidi or surrogate character at all)."""
    return _SUSPECT.search(value) is None


def clean_text(value: str | None, *, multiline: bool = False) -> str:
    """Return ``value`` with terminal controls and bidi overrides removed.

    Newlines survive only where ``multiline`` is true (notes); in one-line fields (names,
    addresses, phone numbers) they become spaces so a row in a table stays one row.
    """
    if not value:
        return ""
    if _SUSPECT.search(value) is None:
        return value
    text = _SEQUENCES.sub("", value)
    if not multiline:
        text = text.replace("\r\n", " ").replace("\n", " ").replace("\t", " ")
    else:
        text = text.replace("\r\n", "\n")
    return _UNSAFE.sub("", text)
