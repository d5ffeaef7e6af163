"""Revealing one order's masked customer data: permission, reason, and a record per field.

Every read model masks the receiver's name, phone and detail address (``db.privacy``). Seeing them
unmasked is an explicit act: :func:`reveal_card` checks the operator's ``reveal`` permission
(``db.roles``) and appends one ``reveal`` record per field to the access log (who, when, which
order, which field, why) in the same write transaction, and only then reads the card with those
fields unmasked. A refusal changes nothing but the log (a ``refused`` record) and raises.
"""

from __future__ import annotations

from datetime import UTC, datetime

from db.access import append_access
from db.lazy import full
from db.privacy import FIELDS
from db.roles import permit
from db.views import Actor, OrderCard
from widgets.i18n import tr

__all__ = ["FIELD_ORDER", "RevealError", "parse_fields", "reveal_card"]

#: The fields in the order they are named and logged.
FIELD_ORDER: tuple[str, ...] = ("name", "phone", "address")


class RevealError(ValueError):
    """A reveal asked for wrongly (unknown field, no reason), as one plain line."""


def parse_fields(text: str) -> frozenset[str]:
    """``name,phone,address`` (any of them, commas or spaces) → the fields; :class:`RevealError` else."""
    names = {part.strip().lower() for part in text.replace("，", ",").replace(" ", ",").split(",") if part.strip()}
    unknown = sorted(names - FIELDS)
    if unknown or not names:
        raise RevealError(tr("reveal.bad_field", names=",".join(unknown) or text.strip(),
                             known=",".join(FIELD_ORDER)))
    return frozenset(names)


async def reveal_card(store, order_id: int, fields: frozenset[str], reason: str, actor: Actor, *,
                      via: str = "cli", at: datetime | None = None) -> OrderCard | None:
    """The order's card with ``fields`` unmasked, after the permission check and the log records.

    Raises :class:`RevealError` for a missing reason or field, ``db.roles.Refused`` when the
    operator may not reveal (that refusal is logged). ``via``: where the reveal happened (``cli``,
    ``card`` …), kept in each record's detail.
    """
    reason = reason.strip()
    if not reason:
        raise RevealError(tr("reveal.reason_needed"))
    if not fields or not fields <= FIELDS:
        raise RevealError(tr("reveal.bad_field", names=",".join(sorted(fields - FIELDS)),
                             known=",".join(FIELD_ORDER)))
    at = at or datetime.now(UTC)
    writer = await full(store)
    async with writer.write() as conn:
        refused = await permit(conn, actor, "reveal", order_id=order_id, at=at)
        if refused is None:
            for name in FIELD_ORDER:
                if name in fields:
                    await append_access(conn, actor.id, "reveal", order_id=order_id, field=name, reason=reason,
                                        at=at, detail={"via": via})
    if refused is not None:
        raise refused
    return await store.order_card(order_id, now=at, reveal=fields)
