"""Who may do what: the four roles, the permission table, and the check the service layer makes.

Every write a person can make goes through a service function (``db.checks.release`` / ``cancel``,
``db.edits.save_address``, ``Store.set_seller_memo``, ``deskapp.services.scan.advance`` …) that
calls :func:`require` or :func:`permit` *inside its own write transaction*: the operator's role is
read from the ``operator`` table there and then, so a screen that forgot to hide a key, a stale
session or a script cannot get round it, and a role changed by an admin applies to the next action.

============================  ===========================================================
action                        roles
============================  ===========================================================
``edit_address``              cs, supervisor, admin
``edit_memo``                 cs, supervisor, admin
``release_hold``              cs, supervisor, admin
``cancel_order``              cs, supervisor, admin
``override_check``            supervisor, admin — release an order a blocking check of
                              ``rule:checks`` held, or save an address despite a blocking problem
``advance_step``              warehouse, supervisor, admin (scan-to-confirm)
``reveal``                    cs, supervisor, admin (see a customer's unmasked data)
``export``                    supervisor, admin
``export_revealed``           admin
``manage_operators``          admin
``read_audit``                supervisor, admin
============================  ===========================================================

Actors that are not people (connector, rule, carrier, system) may do only what the desk itself
does today through these functions: nothing, except a rule releasing a hold (:data:`SYSTEM_ACTIONS`).
A connector's changes arrive through ``db.ingest``, the checks' holds through ``db.checks.record``,
and neither asks here.

The module is pure apart from :func:`require` / :func:`permit`, which run one SELECT on the
caller's connection (SQLAlchemy is imported there, not at import time: the app's first frame
imports this module and must not wait for SQLAlchemy).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from db.sanitize import clean_text

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from db.views import Actor

#: The roles, least to most trusted.
ROLES: tuple[str, ...] = ("cs", "warehouse", "supervisor", "admin")

#: Role → (Chinese, English) name as a person says it.
ROLE_NAMES: dict[str, tuple[str, str]] = {
    "cs": ("客服", "customer service"),
    "warehouse": ("仓库人员", "warehouse staff"),
    "supervisor": ("主管", "supervisor"),
    "admin": ("管理员", "admin"),
}
#: The English name at the start of a sentence ("Warehouse staff cannot …").
_EN_SUBJECT = {"cs": "Customer service", "warehouse": "Warehouse staff", "supervisor": "A supervisor",
               "admin": "An admin"}

_CS_UP = frozenset({"cs", "supervisor", "admin"})
_SUPERVISOR_UP = frozenset({"supervisor", "admin"})
_ADMIN = frozenset({"admin"})

#: Action → the roles allowed to do it.
PERMISSIONS: dict[str, frozenset[str]] = {
    "edit_address": _CS_UP,
    "edit_memo": _CS_UP,
    "release_hold": _CS_UP,
    "cancel_order": _CS_UP,
    "override_check": _SUPERVISOR_UP,
    "advance_step": frozenset({"warehouse", "supervisor", "admin"}),
    "reveal": _CS_UP,
    "export": _SUPERVISOR_UP,
    "export_revealed": _ADMIN,
    "manage_operators": _ADMIN,
    "read_audit": _SUPERVISOR_UP,
}

#: Action → (Chinese, English) words for "cannot …".
ACTION_NAMES: dict[str, tuple[str, str]] = {
    "edit_address": ("修改收货地址", "change a delivery address"),
    "edit_memo": ("修改卖家备注", "change a seller memo"),
    "release_hold": ("放行拦截单", "release a held order"),
    "cancel_order": ("取消订单", "cancel an order"),
    "override_check": ("越过拦截检查", "override a blocking check"),
    "advance_step": ("扫码确认仓库作业", "confirm a warehouse step"),
    "reveal": ("查看完整的客户信息", "see a customer's full details"),
    "export": ("导出订单", "export orders"),
    "export_revealed": ("导出未打码的客户信息", "export unmasked customer data"),
    "manage_operators": ("管理操作员", "manage operators"),
    "read_audit": ("查看审计日志", "read the audit log"),
}

#: Actor kind (not an operator) → the actions it may take through the service functions.
SYSTEM_ACTIONS: dict[str, frozenset[str]] = {
    "rule": frozenset({"release_hold"}),
}


def allowed(role: str | None, action: str) -> bool:
    """Whether a role may take an action (an unknown role may take none)."""
    return role in _roles(action)


def roles_for(action: str) -> tuple[str, ...]:
    """The roles allowed an action, in :data:`ROLES` order."""
    permitted = _roles(action)
    return tuple(r for r in ROLES if r in permitted)


def role_name(role: str, lang: str = "zh") -> str:
    """A role as a person says it (an unknown role as stored)."""
    names = ROLE_NAMES.get(role)
    return clean_text(role) if names is None else names[0 if lang == "zh" else 1]


def _roles(action: str) -> frozenset[str]:
    try:
        return PERMISSIONS[action]
    except KeyError:
        raise ValueError(f"unknown action {action!r}") from None


def _either(names: list[str], lang: str) -> str:
    """「客服、主管或管理员」/ "customer service, supervisor or admin"."""
    if len(names) <= 1:
        return "".join(names)
    if lang == "zh":
        return "、".join(names[:-1]) + "或" + names[-1]
    return ", ".join(names[:-1]) + " or " + names[-1]


class Refused(Exception):
    """An action this actor may not take; :meth:`text` says why in plain words.

    ``reason``: ``role`` (the role lacks it), ``unknown`` (no such operator), ``disabled`` (the
    operator was disabled) or ``system`` (a connector / rule / carrier / system actor).
    ``role``: the operator's role (None when unknown); ``operator``: who tried (the login, or
    ``kind:id`` for an actor that is not a person).
    """

    def __init__(self, action: str, role: str | None, operator: str, reason: str = "role") -> None:
        self.action = action
        self.role = role
        self.operator = operator
        self.reason = reason
        super().__init__(self.text("en"))

    def text(self, lang: str = "zh") -> str:
        """The reason as one plain line, in Chinese (``zh``) or English."""
        zh = lang == "zh"
        action = ACTION_NAMES.get(self.action, (self.action, self.action))[0 if zh else 1]
        who = clean_text(self.operator)
        if self.reason == "unknown":
            return f"{who} 还不是本库的操作员，不能{action}" if zh else \
                f"{who} is not an operator of this database and cannot {action}"
        if self.reason == "disabled":
            return f"{who} 已被停用，不能{action}" if zh else f"{who} is disabled and cannot {action}"
        if self.reason == "system":
            return f"{who} 不能{action}（只有操作员可以）" if zh else f"{who} cannot {action} (only an operator can)"
        needs = _either([role_name(r, lang) for r in roles_for(self.action)], lang)
        role = self.role or ""
        if zh:
            return f"{role_name(role, 'zh')}不能{action}（需要 {needs}）"
        subject = _EN_SUBJECT.get(role) or f"Role '{clean_text(role)}'"
        return f"{subject} cannot {action} (needs {needs})"


@dataclass(frozen=True, slots=True)
class OperatorRow:
    """An operator as stored (the PIN hash itself stays in ``deskapp.services.auth``)."""

    id: str
    display_name: str
    role: str
    active: bool
    has_pin: bool
    failed_pins: int
    locked_until: datetime | None
    created_at: datetime | None


_OPERATOR_SQL = ("SELECT id, display_name, role, active, pin_hash IS NOT NULL, failed_pins, locked_until, "
                 "created_at FROM operator")


def _operator_row(row: tuple) -> OperatorRow:
    from db.reads import utc

    return OperatorRow(row[0], row[1], row[2], bool(row[3]), bool(row[4]), int(row[5] or 0), utc(row[6]),
                       utc(row[7]))


def read_operator(q, login: str) -> tuple[OperatorRow | None, int]:
    """One read (``q`` as in ``db.reads``): the operator with this login, and how many operators exist."""
    rows = q(_OPERATOR_SQL + " WHERE id = :login", {"login": login})
    count = q("SELECT COUNT(*) FROM operator", {})[0][0]
    return (_operator_row(rows[0]) if rows else None), count


def read_operators(q) -> list[OperatorRow]:
    """Every operator, active first, then by login."""
    return [_operator_row(r) for r in q(_OPERATOR_SQL + " ORDER BY active DESC, id", {})]


async def require(conn: AsyncConnection, actor: Actor, action: str) -> str:
    """The actor's role if it may take ``action``, else :class:`Refused`.

    Call it inside the write transaction that does the action: the role is read there. For an
    actor that is not an operator, returns its kind (``rule`` …) when :data:`SYSTEM_ACTIONS` allows.
    """
    permitted = _roles(action)
    if actor.kind != "operator":
        if action in SYSTEM_ACTIONS.get(actor.kind, ()):
            return actor.kind
        raise Refused(action, None, f"{actor.kind}:{actor.id}", "system")
    from sqlalchemy import text

    row = (await conn.execute(text("SELECT role, active FROM operator WHERE id = :id"), {"id": actor.id})).first()
    if row is None:
        raise Refused(action, None, actor.id, "unknown")
    role, active = row[0], bool(row[1])
    if not active:
        raise Refused(action, role, actor.id, "disabled")
    if role not in permitted:
        raise Refused(action, role, actor.id)
    return role


async def permit(conn: AsyncConnection, actor: Actor, action: str, *, order_id: int | None = None,
                 at: datetime | None = None) -> Refused | None:
    """:func:`require`, but a refusal is put on the access log (kind ``refused``) in the same
    transaction and returned instead of raised.

    The caller lets its transaction commit (so the record stays) and raises the refusal after it,
    having changed nothing else::

        async with store.write() as conn:
            refused = await permit(conn, actor, "cancel_order", order_id=order_id)
            if refused is None:
                ...  # the change
        if refused is not None:
            raise refused
    """
    try:
        await require(conn, actor, action)
    except Refused as refused:
        from db.access import append_access

        who = actor.id if actor.kind == "operator" else f"{actor.kind}:{actor.id}"
        await append_access(conn, who[:64], "refused", order_id=order_id, reason=refused.text("zh"), at=at,
                            detail={"action": action, "role": refused.role, "why": refused.reason})
        return refused
    return None
