"""Ship-by deadlines, time left, and the warehouse board colour — pure functions of an order's facts.

Where a deadline comes from, first that applies:

1. **the platform's own promise** (``OrderFacts.promised_ship_at``, e.g. PDD ``last_ship_time``,
   Douyin ``exp_ship_time``): the one the platform penalises, unless the channel or shop turns it
   off with ``platform_promise = false``;
2. **the presale date** (``presale_ship_at``) for a presale order; a presale order without a date
   has *no* deadline (the hours-after-payment promise does not apply to presale);
3. **hours after payment**, from the shop's setting, else its channel's, else the default (48 h);
4. nothing for an order not yet paid.

Every :class:`Deadline` says which of these made it (``basis`` and ``source``), so the card can
show why an order is due when it is. The board colour follows the issue: **red** when less than
``red_hours`` are left and the waybill is not printed, **yellow** when less than ``yellow_hours``
are left and the order is not picked, **green** otherwise (also: no deadline). Each order gets
exactly one colour, so the counts per colour always add up to the total.

Times are timezone-aware UTC datetimes; naive ones are refused (a naive "now" is the classic
eight-hours-off bug on a host set to China time). The UI shows UTC+8 (:data:`CHINA`). The
policy and thresholds are read from the rules file's ``[sla]`` and ``[board]`` sections
(:mod:`deskapp.services.rules`); the defaults here apply when the file says nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deskapp.services.rules import OrderFacts

#: China Standard Time: how the UI shows times and how the rules file's local times are read.
CHINA = timezone(timedelta(hours=8), "UTC+8")

#: Hours after payment when neither the shop nor its channel says otherwise.
DEFAULT_HOURS = 48.0


class Colour(StrEnum):
    """A board colour."""

    RED = "red"
    YELLOW = "yellow"
    GREEN = "green"


class Basis(StrEnum):
    """What a deadline was computed from."""

    PLATFORM = "platform"  # the platform's own promised ship time
    PRESALE = "presale"  # the presale ship date
    HOURS = "hours"  # N hours after payment


@dataclass(frozen=True, slots=True)
class Promise:
    """One channel's or shop's promise; ``None`` inherits from the level above."""

    hours: float | None = None
    platform_promise: bool | None = None


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """Ship-by promises: a default, per channel, and per shop of a channel.

    ``channels`` maps a channel code to its :class:`Promise`; ``shops`` maps ``(channel, shop
    code)`` to the shop's. A shop setting beats its channel's, which beats the default.
    """

    hours: float = DEFAULT_HOURS
    platform_promise: bool = True
    channels: Mapping[str, Promise] = field(default_factory=lambda: MappingProxyType({}))
    shops: Mapping[tuple[str, str], Promise] = field(default_factory=lambda: MappingProxyType({}))

    def hours_for(self, channel: str, shop: str) -> tuple[float, str]:
        """Promised hours after payment for a shop, and where that number was set."""
        promise = self.shops.get((channel, shop))
        if promise is not None and promise.hours is not None:
            return promise.hours, f"shop:{channel}/{shop}"
        promise = self.channels.get(channel)
        if promise is not None and promise.hours is not None:
            return promise.hours, f"channel:{channel}"
        return self.hours, "default"

    def trusts_platform(self, channel: str, shop: str) -> bool:
        """Whether the platform's own promised time is used for this shop."""
        for promise in (self.shops.get((channel, shop)), self.channels.get(channel)):
            if promise is not None and promise.platform_promise is not None:
                return promise.platform_promise
        return self.platform_promise


@dataclass(frozen=True, slots=True)
class BoardThresholds:
    """Hours left below which an order turns red (not printed) or yellow (not picked)."""

    red_hours: float = 2.0
    yellow_hours: float = 6.0


@dataclass(frozen=True, slots=True)
class Deadline:
    """When an order must ship by, and why then.

    ``source`` says which setting gave the hours (``default``, ``channel:douyin``,
    ``shop:douyin/dy-main``); it is ``platform`` or ``presale`` for those bases.
    """

    at: datetime
    basis: Basis
    source: str
    hours: float | None = None

    def explain(self, language: str = "zh") -> str:
        """One line for the card: why the order is due at this time (shown in UTC+8)."""
        when = self.at.astimezone(CHINA).strftime("%m-%d %H:%M")
        if self.basis is Basis.PLATFORM:
            return f"{when} 前发货（平台承诺时间）" if language != "en" else f"ship by {when} (the platform's promise)"
        if self.basis is Basis.PRESALE:
            return f"{when} 前发货（预售发货日）" if language != "en" else f"ship by {when} (presale ship date)"
        hours = f"{self.hours:g}"
        if language == "en":
            where = {"default": "default"}.get(self.source, self.source.replace(":", " "))
            return f"ship by {when} ({hours} h after payment, {where})"
        kind, _, name = self.source.partition(":")
        where = {"default": "默认", "channel": f"渠道 {name}", "shop": f"店铺 {name}"}[kind]
        return f"{when} 前发货（付款后 {hours} 小时，{where}）"


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (got naive {value.isoformat()})")
    return value


def deadline(facts: OrderFacts, policy: SlaPolicy | None = None) -> Deadline | None:
    """The ship-by deadline of an order, or ``None`` when none applies (unpaid, presale without date)."""
    policy = policy or SlaPolicy()
    if facts.promised_ship_at is not None and policy.trusts_platform(facts.channel, facts.shop):
        return Deadline(_aware(facts.promised_ship_at, "promised_ship_at"), Basis.PLATFORM, "platform")
    if facts.presale:
        if facts.presale_ship_at is None:
            return None
        return Deadline(_aware(facts.presale_ship_at, "presale_ship_at"), Basis.PRESALE, "presale")
    if facts.paid_at is None:
        return None
    hours, source = policy.hours_for(facts.channel, facts.shop)
    return Deadline(_aware(facts.paid_at, "paid_at") + timedelta(hours=hours), Basis.HOURS, source, hours)


def time_left(due: Deadline | datetime | None, now: datetime) -> timedelta | None:
    """Time until the deadline (negative once it has passed), or ``None`` without a deadline."""
    if due is None:
        return None
    at = due.at if isinstance(due, Deadline) else due
    return _aware(at, "deadline") - _aware(now, "now")


def board_colour(
    due: Deadline | datetime | None,
    now: datetime,
    *,
    printed: bool,
    picked: bool,
    board: BoardThresholds | None = None,
) -> Colour:
    """The order's colour on the warehouse board.

    Red: under ``red_hours`` left (or overdue) and the waybill not printed. Yellow: under
    ``yellow_hours`` left and not picked. Green: everything else, including no deadline.
    """
    left = time_left(due, now)
    if left is None:
        return Colour.GREEN
    board = board or BoardThresholds()
    hours = left.total_seconds() / 3600
    if hours < board.red_hours and not printed:
        return Colour.RED
    if hours < board.yellow_hours and not picked:
        return Colour.YELLOW
    return Colour.GREEN


def board_counts(
    items: Iterable[tuple[Deadline | datetime | None, bool, bool]],
    now: datetime,
    board: BoardThresholds | None = None,
) -> dict[Colour, int]:
    """How many orders of each colour; ``items`` are ``(deadline, printed, picked)``.

    Every colour is a key (zero included), and the counts add up to the number of items.
    """
    counts = dict.fromkeys(Colour, 0)
    for due, printed, picked in items:
        counts[board_colour(due, now, printed=printed, picked=picked, board=board)] += 1
    return counts
