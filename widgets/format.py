"""Formatting shared by widgets, screens and the CLI: money, China time, durations, masks.

Times are shown in UTC+8 (China Standard Time, no daylight saving) whatever the host's zone: the
platforms, the carriers and the customer on the phone all speak Beijing time.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from db.fields import phone_fields
from db.codes import PhoneKind
from db.sanitize import clean_text
from widgets.i18n import tr

CHINA = timezone(timedelta(hours=8), "CST")


def money(fen: int) -> str:
    """¥ amount from fen: 12800 → '¥128.00'."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}¥{fen // 100:,}.{fen % 100:02d}"


def _this_year_or(at: datetime | None, now: datetime | None, this_year: str, other_year: str) -> str:
    if at is None:
        return "—"
    value = at.astimezone(CHINA)
    if now is not None and value.year != now.astimezone(CHINA).year:
        return value.strftime(other_year)
    return value.strftime(this_year)


def short_time(at: datetime | None, now: datetime | None = None) -> str:
    """'11-20 14:05' (China time), or '2025-11-20' when it is not this year's."""
    return _this_year_or(at, now, "%m-%d %H:%M", "%Y-%m-%d")


def short_date(at: datetime | None, now: datetime | None = None) -> str:
    """'11-20' (China time), or '25-11-20' when it is not this year's."""
    return _this_year_or(at, now, "%m-%d", "%y-%m-%d")


def full_time(at: datetime | None) -> str:
    """'2026-11-20 14:05' (China time)."""
    return at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if at else "—"


def duration(delta: timedelta, units: int = 2) -> str:
    """A human duration with the largest units: '2天3小时', '5小时12分钟', '17分钟' (units=1: '2天')."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return tr("dur.d", n=days) + (tr("dur.h", n=hours) if hours and units > 1 else "")
    if hours:
        return tr("dur.h", n=hours) + (tr("dur.m", n=minutes) if minutes and units > 1 else "")
    if minutes:
        return tr("dur.m", n=minutes)
    return tr("dur.s", n=seconds)


def status_label(status: str) -> str:
    """The standard status in the current language."""
    return tr(f"status.{status}")


def channel_label(channel: str) -> str:
    """The channel's name in the current language."""
    return tr(f"channel.{channel}")


def carrier_label(code: str) -> str:
    """A carrier's name from its code (SF → 顺丰速运); an unknown code or a name shows as given."""
    if not code:
        return ""
    key = f"carrier.{code.strip().upper()}"
    name = tr(key)
    return clean_text(code) if name == key else name


def aftersale_label(state: str) -> str:
    """The after-sale state in the current language ('' for none)."""
    return tr(f"aftersale.{state}") if state and state != "none" else ""


def phone_display(raw: str) -> str:
    """A phone as an agent can use it: ciphertext becomes '已加密', 转 in a virtual number '-'."""
    kind, _, _ = phone_fields(raw)
    if kind == PhoneKind.CIPHER:
        return tr("phone.cipher")
    if kind == PhoneKind.VIRTUAL:  # one form, one cell: 17012345678转1234 → 17012345678-1234
        return clean_text(raw).replace("转", "-")
    return clean_text(raw)


def fit(value: str, cells: int) -> str:
    """Cut cleaned text to at most ``cells`` terminal cells (CJK counts two), marking the cut."""
    from rich.cells import cell_len, set_cell_size

    value = clean_text(value)
    if cell_len(value) <= cells:
        return value
    return set_cell_size(value, cells - 1) + "…"
