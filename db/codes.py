"""The codes stored in the order pool: standard status, after-sale state, actor and phone kinds.

Plain enums with no database machinery, so widgets and scripts can use them without importing
SQLAlchemy (``db.models`` re-exports them beside the tables).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """The standard order status: one meaning of "shipped" whatever the channel called it."""

    PENDING_PAYMENT = "pending_payment"  # 待付款
    PAID = "paid"  # 已付款
    REVIEW = "review"  # 审核中
    HOLD = "hold"  # 异常 (held: not released to the warehouse)
    ALLOCATING = "allocating"  # 配货中
    SHIPPED = "shipped"  # 已出库
    IN_TRANSIT = "in_transit"  # 运输中
    DELIVERED = "delivered"  # 已签收
    COMPLETED = "completed"  # 已完成
    CANCELLED = "cancelled"  # 已取消


#: Statuses in lifecycle order; a later one never goes back to an earlier one by itself.
LIFECYCLE: tuple[Status, ...] = (
    Status.PENDING_PAYMENT,
    Status.PAID,
    Status.REVIEW,
    Status.ALLOCATING,
    Status.SHIPPED,
    Status.IN_TRANSIT,
    Status.DELIVERED,
    Status.COMPLETED,
)
#: Work not yet out of the warehouse door.
UNSHIPPED: frozenset[Status] = frozenset(
    {Status.PAID, Status.REVIEW, Status.HOLD, Status.ALLOCATING}
)


class AfterSale(StrEnum):
    """After-sale state: its own axis, beside the order status (a delivered order can be refunding)."""

    NONE = "none"
    REFUND_REQUESTED = "refund_requested"  # 退款申请中
    REFUNDING = "refunding"  # 退款中
    REFUNDED = "refunded"  # 已退款
    RETURN_REQUESTED = "return_requested"  # 退货申请中
    RETURNING = "returning"  # 退货中
    RETURNED = "returned"  # 已退货退款
    EXCHANGING = "exchanging"  # 换货中
    REJECTED = "rejected"  # 售后已拒绝


#: After-sale states that count as a return in a customer's history.
RETURN_STATES: frozenset[AfterSale] = frozenset(
    {AfterSale.RETURN_REQUESTED, AfterSale.RETURNING, AfterSale.RETURNED, AfterSale.REFUNDED}
)


#: The priority an order starts with and keeps unless a rule decides otherwise (the rules file's
#: ``default_priority`` can change it). C, not B: S/A/B are the queues a lead fills on purpose — the
#: issue's own example rule raises live-stream orders *to* B.
DEFAULT_PRIORITY = "C"


class ActorKind(StrEnum):
    """Who made a change: every write has an author."""

    OPERATOR = "operator"
    CONNECTOR = "connector"
    RULE = "rule"
    CARRIER = "carrier"
    SYSTEM = "system"


class PhoneKind(StrEnum):
    """What the receiver phone field holds, as the channel delivered it."""

    PLAIN = "plain"
    MASKED = "masked"  # 138****1234
    VIRTUAL = "virtual"  # 18877771111-123 / 17012345678转1234
    CIPHER = "cipher"  # platform ciphertext; decrypt on demand
    NONE = "none"
