"""Fields the database derives from what a channel delivered, so every write path agrees.

``phone_fields`` says what a receiver phone is (plain, masked, virtual, ciphertext) and extracts the
digits we can index — the last four digits are searchable even on ``138****1234``.
``search_text`` and ``name_grams`` feed the substring index and the two-character name index.
"""

from __future__ import annotations

import re
import unicodedata

from db.codes import PhoneKind

_MASKED = re.compile(r"^\+?[\d\s-]*\*{2,}[\d\s-]*$")
_VIRTUAL = re.compile(r"^\+?(?:86)?\s*(1\d{10})\s*(?:-|转|＃|#|,|，)\s*(\d{1,6})$")
_DIGITS = re.compile(r"\D")
# A masked number with a virtual extension (188****1111-123, or 188****1111-**** as db.privacy
# masks one): the last four are before the extension.
_MASKED_EXTENSION = re.compile(r"^(.*\*[\d\s-]*\d{4})\s*(?:-|转|＃|#|,|，)\s*(?:\d{1,6}|\*{1,6})$")


def normalise_query(value: str) -> str:
    """Fold full-width characters (Chinese IME, some scanners) to half-width and trim."""
    return unicodedata.normalize("NFKC", value).strip()


def phone_fields(raw: str | None) -> tuple[str, str | None, str | None]:
    """Return ``(kind, digits for exact lookup, last four digits)`` for a phone as delivered."""
    value = normalise_query(raw or "")
    if not value:
        return PhoneKind.NONE, None, None
    if "*" in value:
        extension = _MASKED_EXTENSION.match(value)
        if extension:
            value = extension.group(1)
        if _MASKED.match(value):
            digits = _DIGITS.sub("", value.rsplit("*", 1)[-1])
            return PhoneKind.MASKED, None, digits[-4:] if len(digits) >= 4 else None
        return PhoneKind.CIPHER, None, None
    virtual = _VIRTUAL.match(value)
    if virtual:
        main = virtual.group(1)
        return PhoneKind.VIRTUAL, main, main[-4:]
    digits = _DIGITS.sub("", value)
    if len(digits) >= 7 and len(digits) >= len(value.replace(" ", "").replace("-", "")) - 2:
        digits = strip_country_code(digits)
        return PhoneKind.PLAIN, digits, digits[-4:]
    return PhoneKind.CIPHER, None, None


def strip_country_code(digits: str) -> str:
    """A Chinese mobile without its country code (86 / 0086), so +86 138… and 138… are one number."""
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11 and digits[len(prefix)] == "1":
            return digits[len(prefix) :]
    return digits


def search_text(name: str, province: str, city: str, district: str, detail: str) -> str:
    """The text the substring index covers: the name, then the address run together.

    The address parts are joined without spaces so a fragment that spans them (西湖区文三路,
    杭州市西湖区) is found as typed.
    """
    address = f"{province.strip()}{city.strip()}{district.strip()}{detail.strip()}"
    return f"{name} {address}" if name else address


def name_grams(*names: str | None) -> set[str]:
    """Every two-character piece of the given names (张三丰 → 张三, 三丰), for 2-character lookups."""
    grams: set[str] = set()
    for name in names:
        text = (name or "").replace(" ", "")
        if "*" in text:  # a masked name (张*) has no pieces worth finding
            text = text.replace("*", "")
        grams.update(text[i : i + 2] for i in range(len(text) - 1))
    return grams
