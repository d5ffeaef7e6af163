"""Order checks: what is wrong with an order before it reaches the warehouse.

Pure functions, no database and no UI: :func:`check_order` takes an order's facts
(:class:`OrderFacts`) and a :class:`CheckContext` (what the pool knows: each SKU's usual price, the
carriers' coverage) and returns :class:`Problem` s, each with a ``code``, a ``severity`` (``block``
holds the order as 异常 so it is not released to the warehouse; ``warn`` shows on the card) and a
one-line Chinese message that says what to do. ``deskapp.services.checker`` runs them on every
ingested and every edited order, off the UI loop, and records what they found.

=====================  ========  ===========================================================
code                   severity  when
=====================  ========  ===========================================================
address_*              as found  ``deskapp.services.address``: conflict blocks; ambiguous,
                                 legacy and incomplete warn; masked/encrypted is never judged
phone_*                as found  ``deskapp.services.phone``: invalid blocks; a landline whose
                                 area code is another city warns; masked/virtual never judged
missing_field          block     no receiver, no phone, no street address or no items
test_order             block     "测试/test/勿发" in the notes, name or titles; a 0.01 amount;
                                 a test SKU (TEST…/测试…)
amount_negative        block     a negative amount or price
amount_unusual         warn      a line priced far above the SKU's usual price
duplicate              block     tagged a probable duplicate at ingest (same phone and items
                                 within 30 minutes): a person decides
presale_no_date        warn      a presale order with no ship date
carrier_region         block     the order's carrier does not deliver to its province/city
=====================  ========  ===========================================================
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from db.ingest import DUPLICATE_TAG
from db.store import normalise_sku
from deskapp.services.address import Problem, Status, check_address, verdict_of
from deskapp.services.phone import check_phone

__all__ = [
    "DUPLICATE_TAG",
    "CheckContext",
    "LineFacts",
    "OrderFacts",
    "Problem",
    "check_order",
    "verdict_of",
]

#: A line priced this many times over the SKU's usual price is unusual (with enough history).
UNUSUAL_FACTOR = 5
#: How many earlier lines of a SKU make its usual price worth comparing with.
UNUSUAL_MIN_HISTORY = 5

_TEST_WORDS = re.compile(r"测试|test|勿发|请勿发货|不要发货|演示单", re.IGNORECASE)
_TEST_SKU = re.compile(r"^(?:TEST|测试)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class LineFacts:
    sku: str
    title: str = ""
    quantity: int = 1
    price_fen: int = 0
    gift: bool = False


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What the checks read of an order (text as stored: cleaned, never markup)."""

    order_no: str = ""
    status: str = "paid"
    receiver_name: str = ""
    receiver_phone: str = ""
    province: str = ""
    city: str = ""
    district: str = ""
    address_detail: str = ""
    total_fen: int = 0
    paid_fen: int = 0
    buyer_note: str = ""
    seller_memo: str = ""
    tags: tuple[str, ...] = ()
    presale: bool = False
    presale_ship_at: datetime | None = None
    ship_by: datetime | None = None
    carrier: str = ""
    lines: tuple[LineFacts, ...] = ()


@dataclass(frozen=True)
class CheckContext:
    """What the pool knows that one order does not.

    ``usual_price``: SKU (normalised) → (typical price in fen, how many lines it is based on).
    ``not_served``: carrier name → provinces or cities (official names) it does not deliver to.
    """

    usual_price: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    not_served: Mapping[str, frozenset[str]] = field(default_factory=dict)


def _masked(value: str) -> bool:
    return "*" in value


def check_order(order: OrderFacts, context: CheckContext | None = None) -> list[Problem]:
    """Every problem with ``order``, most serious first. Never raises on odd text."""
    context = context or CheckContext()
    problems: list[Problem] = []
    problems += _missing(order)
    address = None
    if order.province or order.city or order.district or order.address_detail:
        address = check_address(province=order.province, city=order.city, district=order.district,
                                detail=order.address_detail)
        problems += [p for p in address.problems if p.severity in ("block", "warn")]
    if order.receiver_phone:
        city = address.city if address is not None and address.city else order.city
        phone = check_phone(order.receiver_phone, city=city, province=order.province)
        problems += [p for p in phone.problems if p.severity in ("block", "warn")]
    problems += _test_order(order)
    problems += _amounts(order, context)
    if DUPLICATE_TAG in order.tags:
        problems.append(Problem("duplicate", "block", "疑似重复下单（同一手机号、同样商品、30分钟内）— 请核实后放行或取消"))
    if order.presale and order.presale_ship_at is None and order.ship_by is None:
        problems.append(Problem("presale_no_date", "warn", "预售订单没有发货日期 — 请与渠道核对预售发货时间"))
    problems += _carrier(order, context, address)
    problems.sort(key=lambda p: p.severity != "block")
    return _unique(problems)


def _unique(problems: Iterable[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    out = []
    for p in problems:
        if (p.code, p.message) not in seen:
            seen.add((p.code, p.message))
            out.append(p)
    return out


def _missing(order: OrderFacts) -> list[Problem]:
    missing = []
    if not order.receiver_name.strip():
        missing.append("收货人")
    if not order.receiver_phone.strip():
        missing.append("电话")
    if not order.address_detail.strip() and not _masked(order.province + order.city):
        missing.append("详细地址")
    if not order.lines:
        missing.append("商品")
    if not missing:
        return []
    return [Problem("missing_field", "block", f"缺少{'、'.join(missing)} — 补全后才能发货")]


def _test_order(order: OrderFacts) -> list[Problem]:
    reasons = []
    for label, value in (("买家留言", order.buyer_note), ("卖家备注", order.seller_memo),
                         ("收货人", order.receiver_name)):
        found = _TEST_WORDS.search(value or "")
        if found:
            reasons.append(f"{label}含“{found.group(0)}”")
    for line in order.lines:
        if _TEST_SKU.match(line.sku):
            reasons.append(f"测试商品 {line.sku}")
            break
        found = _TEST_WORDS.search(line.title)
        if found:
            reasons.append(f"商品名含“{found.group(0)}”")
            break
    if order.paid_fen == 1 or (order.total_fen == 1 and order.paid_fen in (0, 1)):
        reasons.append("金额 0.01 元")
    if not reasons:
        return []
    return [Problem("test_order", "block", f"疑似测试单（{'；'.join(reasons)}）— 确认后取消或放行")]


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


def _amounts(order: OrderFacts, context: CheckContext) -> list[Problem]:
    out = []
    negative = [name for name, value in (("订单金额", order.total_fen), ("实付", order.paid_fen)) if value < 0]
    negative += [f"{line.sku} 单价" for line in order.lines if line.price_fen < 0 or line.quantity < 0]
    if negative:
        out.append(Problem("amount_negative", "block", f"金额为负（{'、'.join(negative)}）— 请核对订单金额"))
    for line in order.lines:
        usual = context.usual_price.get(normalise_sku(line.sku))
        if usual is None or line.gift or line.price_fen <= 0:
            continue
        typical, count = usual
        if count >= UNUSUAL_MIN_HISTORY and typical > 0 and line.price_fen > typical * UNUSUAL_FACTOR:
            out.append(Problem(
                "amount_unusual", "warn",
                f"{line.sku} 单价 ¥{_yuan(line.price_fen)}，远高于平时的 ¥{_yuan(typical)} — 请核对价格",
            ))
    return out


def _carrier(order: OrderFacts, context: CheckContext, address: object) -> list[Problem]:
    if not order.carrier:
        return []
    refused = context.not_served.get(order.carrier)
    if not refused:
        return []
    if address is not None and getattr(address, "status", None) != Status.NO_DATA:
        places = {getattr(address, "province", ""), getattr(address, "city", "")}
    else:
        places = {order.province, order.city}
    hit = sorted(p for p in places if p and p in refused)
    if not hit:
        return []
    return [Problem("carrier_region", "block", f"{order.carrier} 不配送 {hit[0]} — 请改用其他快递")]
