"""Edits a person makes to an order's receiver and address, recorded as ingest records a channel's.

:func:`save_address` writes the receiver name, phone and address an agent corrected, with the
columns derived from them exactly as ``db.ingest`` derives them (phone kind / digits / last four,
the substring-index text, the two-character name pieces), an ``address`` timeline event with
old → new and the agent, and ``checked_at = NULL`` so the order checks look at the order again.

The channel's three-way merge keeps the edit: a later payload that does not change the address
leaves the desk's version standing (see ``db.ingest``). Nothing here judges an address — that is
``deskapp.services.address``, above this layer; the caller says whether what it saves is clean.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.checks import _status_before_hold
from db.codes import PhoneKind, Status
from db.fields import name_grams, phone_fields, search_text
from db.ingest import _address_text
from db.models import NameGram, Order, TimelineEvent
from db.roles import permit
from db.sanitize import clean_text
from db.store import _LIMITS, InvalidOrder, OrderNotFound, Store, append_event
from db.views import Actor

__all__ = [
    "ADDRESS_FIELDS",
    "EDITABLE",
    "RELEASE_MESSAGE",
    "AddressChanged",
    "AddressFields",
    "AddressSaved",
    "NotEditable",
    "save_address",
]

#: Statuses whose address may still be changed: the parcel has not left the warehouse.
EDITABLE = frozenset({Status.PENDING_PAYMENT, Status.PAID, Status.REVIEW, Status.HOLD, Status.ALLOCATING})
#: The timeline message of a hold released because the address was corrected.
RELEASE_MESSAGE = "地址已更正"
#: Check codes an address edit can settle (``deskapp.services.address`` / ``.phone``).
_ADDRESS_CODE_PREFIXES = ("address_", "phone_")

_o = Order.__table__.c
_t = TimelineEvent.__table__.c


@dataclass(frozen=True, slots=True)
class AddressFields:
    """The receiver and address of an order, as the order table names them."""

    receiver_name: str = ""
    receiver_phone: str = ""
    province: str = ""
    city: str = ""
    district: str = ""
    address_detail: str = ""

    @classmethod
    def of(cls, source: object) -> AddressFields:
        """The fields of anything that has them as attributes (an ``OrderCard``) or keys (a dict)."""
        if isinstance(source, Mapping):
            return cls(**{n: source.get(n) or "" for n in ADDRESS_FIELDS})
        return cls(**{n: getattr(source, n) or "" for n in ADDRESS_FIELDS})

    def cleaned(self) -> AddressFields:
        """Trimmed, controls removed (one line each); :class:`InvalidOrder` when a field is too long."""
        values = {}
        for name in ADDRESS_FIELDS:
            value = clean_text(getattr(self, name)).strip()
            if len(value) > _LIMITS[name]:
                raise InvalidOrder(f"{name} is longer than {_LIMITS[name]} characters ({len(value)})")
            values[name] = value
        return AddressFields(**values)

    def as_dict(self) -> dict[str, str]:
        return dict(zip(ADDRESS_FIELDS, astuple(self)))


ADDRESS_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AddressFields))


@dataclass(frozen=True, slots=True)
class AddressSaved:
    """What :func:`save_address` did: the fields it changed (none: nothing written), whether it
    released the order's hold, and the order's status afterwards."""

    changed: tuple[str, ...]
    released: bool
    status: str


class AddressChanged(Exception):
    """The stored receiver/address is no longer what the editor was opened with (a channel or
    another agent changed it meanwhile): nothing was written."""


class NotEditable(ValueError):
    """The order has left the warehouse (or was cancelled): changing its address here would only
    make the record disagree with the parcel."""


async def save_address(
    store: Store,
    order_id: int,
    fields: AddressFields | Mapping[str, str],
    actor: Actor,
    *,
    expected: AddressFields | Mapping[str, str] | None = None,
    clean: bool = False,
    override: bool = False,
    at: datetime | None = None,
) -> AddressSaved:
    """Write an order's corrected receiver and address in one transaction, on the record.

    ``fields``: the six :data:`ADDRESS_FIELDS` (cleaned here). ``expected``: what the editor
    showed; if the stored values differ, :class:`AddressChanged` and nothing is written.
    ``clean``: the caller's checks found no blocking address or phone problem in ``fields`` — an
    order held *only* for address/phone problems is then released in the same transaction, with a
    ``released`` event by ``actor`` (:data:`RELEASE_MESSAGE`); the checks run on it again either way.
    ``override``: the caller's checks found a blocking problem and the person saves anyway — needs
    ``override_check`` (a supervisor), is marked on the ``address`` event, and never releases a hold.
    Needs ``edit_address`` (``db.roles``): a refusal raises :class:`db.roles.Refused`, changes
    nothing and is put on the access log.
    Raises :class:`OrderNotFound`, :class:`NotEditable`, :class:`InvalidOrder` (a field too long).
    """
    at = at or datetime.now(UTC)
    new = (fields if isinstance(fields, AddressFields) else AddressFields.of(fields)).cleaned()
    if expected is not None:
        expected = (expected if isinstance(expected, AddressFields) else AddressFields.of(expected)).cleaned()
    async with store.write() as conn:
        refused = await permit(conn, actor, "edit_address", order_id=order_id, at=at)
        if refused is None and override:
            refused = await permit(conn, actor, "override_check", order_id=order_id, at=at)
        if refused is None:
            return await _save(conn, order_id, new, expected, actor, clean=clean and not override,
                               override=override, at=at)
    raise refused


async def _save(conn: AsyncConnection, order_id: int, new: AddressFields, expected: AddressFields | None,
                actor: Actor, *, clean: bool, override: bool, at: datetime) -> AddressSaved:
    """The body of :func:`save_address`'s write transaction, once the actor may make the change."""
    row = (await conn.execute(
        select(_o.status, *(_o[n] for n in ADDRESS_FIELDS)).where(_o.id == order_id)
    )).first()
    if row is None:
        raise OrderNotFound(order_id)
    status, *stored = row
    old = AddressFields(*(value or "" for value in stored))
    if expected is not None and old.cleaned() != expected:
        raise AddressChanged(order_id)
    if status not in EDITABLE:
        raise NotEditable(f"order {order_id} is {status}: its address can no longer be changed here")
    changed = tuple(n for n in ADDRESS_FIELDS if getattr(old, n) != getattr(new, n))
    if not changed:
        return AddressSaved((), False, status)
    kind, norm, tail4 = phone_fields(new.receiver_phone)
    await conn.execute(update(Order.__table__).where(_o.id == order_id).values(
        **new.as_dict(),
        phone_kind=kind,
        phone_norm=norm if kind in (PhoneKind.PLAIN, PhoneKind.VIRTUAL) else None,
        phone_tail4=tail4,
        search_text=search_text(new.receiver_name, new.province, new.city, new.district, new.address_detail),
        updated_at=at,
        checked_at=None,  # the order checks look at it again (db.checks)
    ))
    detail: dict = {"fields": list(changed)}
    if override:
        detail["override"] = True  # saved despite a blocking problem, by someone allowed to
    await append_event(conn, order_id, actor, "address", at=at, from_value=_address_text(old.as_dict()),
                       to_value=_address_text(new.as_dict()), detail=detail)
    if "receiver_name" in changed:
        grams = NameGram.__table__
        await conn.execute(delete(grams).where(grams.c.order_id == order_id))
        pieces = name_grams(new.receiver_name)
        if pieces:
            await conn.execute(insert(grams), [{"gram": g, "order_id": order_id} for g in pieces])
    released = False
    if clean and status == Status.HOLD and await _held_for_address_only(conn, order_id):
        back = await _status_before_hold(conn, order_id)
        await conn.execute(update(Order.__table__).where(_o.id == order_id).values(status=back, hold_reason=None))
        await append_event(conn, order_id, actor, "released", at=at, from_value=Status.HOLD.value,
                           to_value=back, message=RELEASE_MESSAGE)
        released, status = True, back
    return AddressSaved(changed, released, status)


async def _held_for_address_only(conn: AsyncConnection, order_id: int) -> bool:
    """Whether the order's hold came from the checks, for address or phone problems alone.

    The codes that held it are on its last ``held`` event (``db.checks.record``); a hold without
    codes (a person's, a channel's, the demo's) is a person's to release, never an address edit's.
    """
    detail = (await conn.execute(
        select(_t.detail).where(_t.order_id == order_id, _t.kind == "held").order_by(_t.id.desc()).limit(1)
    )).scalar()
    if isinstance(detail, str):  # JSON handed back as text
        detail = json.loads(detail)
    codes = (detail or {}).get("codes") or [] if isinstance(detail, dict | None) else []
    return bool(codes) and all(str(code).startswith(_ADDRESS_CODE_PREFIXES) for code in codes)
