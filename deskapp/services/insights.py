"""What the card tells an agent before they ask: red alerts and ready-to-send replies.

Both are pure functions of an order card and the current time, so they are tested without a UI and
always agree with the data on screen. Replies are filled by plain substitution into our own
templates; the customer's text in them stays data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from db.codes import UNSHIPPED, AfterSale
from db.privacy import MASK
from db.views import OrderCard, ParcelView
from widgets.format import aftersale_label, carrier_label, duration, full_time, short_time
from widgets.i18n import tr

#: Labels should be printed this long before the ship-by promise.
PRINT_LEAD = timedelta(hours=2)
#: Paid this long ago and still in the warehouse → alert.
UNSHIPPED_AFTER = timedelta(hours=24)
#: A parcel on the road without a tracking update for this long → alert.
STALE_TRACKING = timedelta(hours=72)
#: A customer with this many returns in 30 days is offered the no-questions return.
EASY_RETURN_AFTER = 2

_OPEN_AFTERSALE = frozenset(
    {
        AfterSale.REFUND_REQUESTED,
        AfterSale.REFUNDING,
        AfterSale.RETURN_REQUESTED,
        AfterSale.RETURNING,
        AfterSale.EXCHANGING,
    }
)


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert line; ``severity`` is 'error' (red) or 'warning' (yellow)."""

    code: str
    severity: str
    text: str


def _unprinted(card: OrderCard) -> bool:
    return not card.parcels or any(p.state == "pending" for p in card.parcels)


def _on_the_road(parcel: ParcelView) -> bool:
    return parcel.state in ("shipped", "in_transit") and parcel.delivered_at is None


def alerts(card: OrderCard, now: datetime) -> list[Alert]:
    """Alerts derived from the order's data, most urgent first."""
    found: list[Alert] = []
    status = card.status
    if card.hold_reason:
        found.append(Alert("hold", "error", tr("alert.hold", reason=card.hold_reason)))
    if status in UNSHIPPED and card.ship_by is not None:
        cutoff = card.ship_by - PRINT_LEAD
        if now > card.ship_by:
            found.append(Alert("overdue", "error", tr("alert.overdue", t=duration(now - card.ship_by))))
        if now > cutoff and _unprinted(card):
            found.append(Alert("unprinted", "error", tr("alert.unprinted", t=duration(now - cutoff))))
    if status in UNSHIPPED and card.paid_at is not None and not card.presale:
        waited = now - card.paid_at
        if waited >= UNSHIPPED_AFTER:
            found.append(Alert("unshipped", "error", tr("alert.unshipped", t=duration(waited))))
    for parcel in card.parcels:
        last = parcel.last_track_at or parcel.shipped_at
        if _on_the_road(parcel) and last is not None and now - last >= STALE_TRACKING:
            found.append(
                Alert(
                    "stale_tracking",
                    "error",
                    tr("alert.stale_tracking", t=duration(now - last), waybill=parcel.waybill_no or "—"),
                )
            )
    if card.after_sale in _OPEN_AFTERSALE:
        found.append(Alert("aftersale", "warning", tr("alert.aftersale", state=aftersale_label(card.after_sale))))
    if card.customer and card.customer.returns_30d >= EASY_RETURN_AFTER:
        found.append(Alert("returns", "warning", tr("alert.returns", n=card.customer.returns_30d)))
    return found


def replies(card: OrderCard, now: datetime) -> list[str]:
    """Reply scripts that fit the order right now, best first (at most four)."""
    found: list[str] = []
    codes = {a.code for a in alerts(card, now)}
    road = [p for p in card.parcels if p.waybill_no and p.state in ("shipped", "in_transit", "delivered")]
    address_hold = any(c.startswith("address_") for c in card.check_codes) or "地址" in (card.hold_reason or "")
    if "hold" in codes and address_hold:  # an address hold (the checks', or a person's): ask the buyer
        detail = card.address_detail
        if MASK in detail:  # shown masked: a reply must not read "****" to the buyer — ask for the street
            place = " ".join(x for x in (card.province, card.city, card.district, detail.split(MASK)[0].strip()) if x)
            found.append(tr("reply.hold_street", place=place))
        else:
            address = " ".join(x for x in (card.province, card.city, card.district, detail) if x)
            found.append(tr("reply.hold", address=address))
    if card.after_sale in _OPEN_AFTERSALE:
        found.append(tr("reply.aftersale", state=aftersale_label(card.after_sale)))
    if "stale_tracking" in codes:
        stale = next(p for p in road if p.state != "delivered") if road else None
        if stale:
            found.append(tr("reply.stale", carrier=carrier_label(stale.carrier), waybill=stale.waybill_no))
    if card.status in UNSHIPPED:
        if "overdue" in codes or "unshipped" in codes:
            found.append(tr("reply.late"))
        elif card.presale and card.ship_by:
            found.append(tr("reply.presale", ship_by=full_time(card.ship_by)))
        elif card.ship_by:
            found.append(tr("reply.waiting", ship_by=short_time(card.ship_by)))
    elif card.status in ("delivered", "completed"):
        delivered = [p.delivered_at for p in card.parcels if p.delivered_at]
        if delivered:
            found.append(tr("reply.delivered", at=full_time(max(delivered))))
    elif road and "stale_tracking" not in codes:
        parcel = road[-1]
        found.append(
            tr(
                "reply.shipped",
                carrier=carrier_label(parcel.carrier),
                waybill=parcel.waybill_no,
                track=parcel.last_track_text or "—",
            )
        )
    if card.customer and card.customer.returns_30d >= EASY_RETURN_AFTER:
        found.append(tr("reply.easy_return"))
    return found[:4]
