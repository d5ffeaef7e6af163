"""Pinduoduo: the Source (``pdd.order.number.list.increment.get``) and the Adapter (order → NewOrder).

Protocol (``/api/router``, form POST): ``type`` (the method), ``client_id``, ``access_token``,
``timestamp`` (epoch seconds), ``data_type=JSON``, ``version=V1`` and ``sign`` = upper-case hex MD5
of ``client_secret + k1v1k2v2… + client_secret`` over the other parameters sorted by name. Errors
come as ``{"error_response": {"error_code", "error_msg", "sub_code", "sub_msg", "request_id"}}``
(shape from public PDD SDKs, e.g. dtapps/go-library ``ApiError``). Codes treated here: 70031 "调用过于
频繁" and 5xxxx service errors → retry; 10019 "access_token已过期" → one single-flight refresh through
``pdd.pop.auth.token.refresh``; anything else → permanent.

Reading: ``start_updated_at``/``end_updated_at`` epoch seconds at most 30 minutes apart (so the
Source cuts longer windows into 30-minute pieces), required ``order_status=5`` (all),
``refund_status=5`` (all), ``is_lucky_flag=0`` (all), ``page`` from 1, ``page_size`` ≤ 100; the
answer carries ``total_count`` and ``has_next``. PDD's own advice is to page from the last page
backwards and to keep the window end ≥ 3 minutes behind PDD's clock — both hold here (the first in
this Source, the second in the sync runner's lag). Field names follow the increment API's documented
response (lywzx/pdd-node-sdk ``PddOrderNumberListIncrementGet``); ``gift_list`` is second-hand.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta

import httpx

from connectors import statusmap
from connectors.base import Quarantine, Window
from connectors.http import DEFAULT_POLICY, RetryPolicy, request_json
from connectors.platforms import (
    Page,
    PermanentError,
    PlatformSource,
    TokenExpired,
    Tokens,
    TransientError,
    backwards,
    expect_rows,
    field,
    guarded,
    ident,
    items,
    parse_cst,
    require_dict,
    split_window,
    text,
    whole,
    whole_seconds,
    yuan_to_fen,
)
from db.codes import Status
from db.store import NewLine, NewOrder, NewParcel

METHOD = "pdd.order.number.list.increment.get"
REFRESH_METHOD = "pdd.pop.auth.token.refresh"
#: PDD error codes that mean "busy, try again" (70031: called too often).
RETRY_CODES = {70031, 70032, 50000, 50001, 50002}
TOKEN_CODES = {10019, 10020}
#: PDD ``logistics_id`` → carrier code (second-hand; an id not listed is kept as ``pdd:<id>``).
LOGISTICS = {44: "SF", 85: "YTO", 115: "ZTO", 121: "YD", 118: "EMS", 384: "JT"}


def pdd_sign(params: Mapping[str, str], secret: str) -> str:
    """MD5(secret + sorted k+v + secret), upper-case hex."""
    body = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign")
    return hashlib.md5(f"{secret}{body}{secret}".encode()).hexdigest().upper()


def check_pdd(body: object, what: str) -> dict:
    """The body of a PDD answer, or the error it carries."""
    if not isinstance(body, dict):
        raise PermanentError(f"{what}: the answer is not a JSON object")
    error = body.get("error_response")
    if error is None:
        return body
    if not isinstance(error, dict):
        error = {"error_msg": str(error)}
    code = error.get("error_code")
    message = f"{what}: PDD error {code} {error.get('error_msg', '')} {error.get('sub_code', '')} {error.get('sub_msg', '')}".strip()
    if code in TOKEN_CODES:
        raise TokenExpired(message, code=code)
    if code in RETRY_CODES:
        raise TransientError(message)
    raise PermanentError(message, code=code)


class PddSource(PlatformSource):
    """Reads one Pinduoduo shop's orders (see the module docstring)."""

    max_window = timedelta(minutes=30)

    def __init__(
        self,
        base_url: str,
        *,
        shop_code: str,
        client_id: str,
        client_secret: str,
        access_token: str,
        refresh_token: str = "",
        client: httpx.AsyncClient | None = None,
        page_size: int = 100,
        timeout: float | httpx.Timeout | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        rate: float | None = None,
    ) -> None:
        self.channel = "pdd"
        self.shop_code = shop_code
        self.url = base_url.rstrip("/") + "/api/router"
        self.client_id = client_id
        self._secret = client_secret
        self.tokens = Tokens(access_token, refresh_token)
        self._client = client
        self._own_client = client is None
        self.page_size = max(1, min(100, page_size))
        self.timeout = timeout
        self.policy = policy
        self.rate = rate
        self.rate_key = f"pdd:{self.client_id}"

    def _signed(self, method: str, params: Mapping[str, object], token: str | None) -> dict[str, str]:
        sent = {k: str(v) for k, v in params.items()}
        sent.update(type=method, client_id=self.client_id, timestamp=str(int(time.time())), data_type="JSON", version="V1")
        if token is not None:
            sent["access_token"] = token
        sent["sign"] = pdd_sign(sent, self._secret)
        return sent

    async def call(self, method: str, params: Mapping[str, object], *, check_page: tuple[int, int] | None = None) -> dict:
        """One signed call (retried per ``connectors.http``; an expired token refreshed once)."""
        def check(body: object) -> None:
            checked = check_pdd(body, f"pdd:{self.shop_code} {method}")
            if check_page is not None:
                answer = _answer(checked)
                expect_rows(_rows(answer), _total(answer), check_page[0], check_page[1], f"pdd:{self.shop_code}")

        async def send(token: str):  # noqa: ANN202
            return await request_json(
                self.client, "POST", self.url, data=lambda: self._signed(method, params, token),
                check=check, limiter=self._limiter(), policy=self.policy, timeout=self.timeout,
            )

        return await self._with_token(send)

    async def _refresh(self, refresh_token: str) -> tuple[str, str]:
        body = await request_json(
            self.client, "POST", self.url,
            data=lambda: self._signed(REFRESH_METHOD, {"refresh_token": refresh_token}, None),
            check=lambda b: check_pdd(b, f"pdd:{self.shop_code} token refresh"),
            policy=self.policy, timeout=self.timeout,
        )
        answer = body.get("pop_auth_token_refresh_response")
        if not isinstance(answer, dict) or not answer.get("access_token"):
            raise PermanentError(f"pdd:{self.shop_code} token refresh: the answer has no access_token")
        return str(answer["access_token"]), str(answer.get("refresh_token") or "")

    async def pages(self, window: Window) -> AsyncIterator[list[dict]]:
        """Every order updated in ``window``, page by page (30-minute pieces, each read backwards)."""
        for start, end in split_window(window.start, window.end, self.max_window):
            async for rows in backwards(
                lambda number, s=start, e=end: self._page(s, e, number),
                first=1, size=self.page_size, key=_row_key,
            ):
                yield rows

    async def _page(self, start: datetime, end: datetime, page: int) -> Page:
        lo, hi = whole_seconds(start, end)
        params = {
            "start_updated_at": lo, "end_updated_at": hi, "order_status": 5, "refund_status": 5,
            "is_lucky_flag": 0, "page": page, "page_size": self.page_size, "use_has_next": "false",
        }
        body = await self.call(METHOD, params, check_page=(page - 1, self.page_size))
        answer = _answer(body)
        return Page(_rows(answer), _total(answer))


def _answer(body: dict) -> dict:
    answer = body.get("order_sn_increment_get_response")
    if not isinstance(answer, dict):
        raise PermanentError("the PDD answer has no order_sn_increment_get_response")
    return answer


def _rows(answer: dict) -> list[dict]:
    rows = answer.get("order_sn_list")
    return rows if isinstance(rows, list) else []


def _total(answer: dict) -> int:
    total = answer.get("total_count", 0)
    return total if isinstance(total, int) and not isinstance(total, bool) else 0


def _row_key(row: dict) -> object:
    sn = row.get("order_sn")
    return None if sn is None else (str(sn), str(row.get("updated_at")))


class PddAdapter:
    """Maps a PDD order (``order_sn_list[]`` entry) to a NewOrder.

    Amounts are 元 (numbers or strings) → 分 exactly; times are Beijing time → UTC. ``receiver_phone``
    is plain only while the order waits for shipping and masked (``1387677****``) after — stored as
    delivered either way. ``item_list`` are the lines (``outer_id``, else ``sku_id``); ``gift_list``
    lines are gifts. ``tracking_number`` + ``logistics_id`` give the parcel. A 待发货 order whose refund
    succeeded (``refund_status`` 4) is closed: it is reported cancelled, with the raw status kept.
    """

    channel = "pdd"

    def __init__(self, status_overrides: Mapping | None = None) -> None:
        self.statuses = statusmap.load("pdd", status_overrides)

    @guarded("PDD order")
    def external_id(self, raw: dict) -> str:
        """``order_sn``."""
        return ident(require_dict(raw, "the order").get("order_sn"), "order_sn")

    @guarded("PDD order")
    def modified_at(self, raw: dict) -> datetime:
        """``updated_at`` as UTC."""
        return parse_cst(require_dict(raw, "the order").get("updated_at"), "updated_at")

    @guarded("PDD order")
    def to_order(self, raw: dict, *, shop_code: str) -> NewOrder:
        """The canonical order; Quarantine when anything needed is missing or malformed."""
        raw = require_dict(raw, "the order")
        sn = self.external_id(raw)
        raw_status = text(field(raw, "order_status", f"order {sn}"))
        status = self.statuses.status(raw_status)
        raw_refund = text(raw.get("refund_status"))
        after_sale = self.statuses.after_sale(raw_refund)
        if raw_refund == "4" and raw_status == "1":
            status = Status.CANCELLED  # refunded before shipping: the order is closed
        lines = [self._line(entry, sn, gift=False) for entry in items(raw.get("item_list"), f"order {sn} item_list")]
        if not lines:
            raise Quarantine(f"order {sn} has no item_list", code="missing_field")
        lines += [self._line(entry, sn, gift=True) for entry in items(raw.get("gift_list"), f"order {sn} gift_list")]
        parcels = []
        waybill = text(raw.get("tracking_number"))
        if waybill:
            logistics = raw.get("logistics_id")
            carrier = LOGISTICS.get(logistics, f"pdd:{text(logistics)}") if logistics not in (None, "") else ""
            parcels.append(
                NewParcel(
                    waybill_no=waybill,
                    carrier=carrier,
                    shipped_at=parse_cst(raw.get("shipping_time"), f"order {sn} shipping_time", required=False),
                    skus=[line.sku for line in lines],
                )
            )
        paid_at = parse_cst(raw.get("pay_time") or raw.get("confirm_time"), f"order {sn} pay_time", required=False)
        pay_amount = yuan_to_fen(raw.get("pay_amount"), f"order {sn} pay_amount")
        return NewOrder(
            channel="pdd",
            shop_code=shop_code,
            channel_order_id=sn,
            order_no=sn,
            created_at=parse_cst(raw.get("created_time"), f"order {sn} created_time"),
            modified_at=parse_cst(raw.get("updated_at"), f"order {sn} updated_at"),
            paid_at=paid_at,
            ship_by=parse_cst(raw.get("last_ship_time"), f"order {sn} last_ship_time", required=False),
            status=status,
            raw_status=raw_status,
            after_sale=after_sale,
            raw_after_sale=raw_refund if after_sale != "none" else "",
            total_fen=pay_amount,
            paid_fen=pay_amount if paid_at is not None else 0,
            post_fee_fen=yuan_to_fen(raw.get("postage"), f"order {sn} postage"),
            discount_fen=yuan_to_fen(raw.get("discount_amount"), f"order {sn} discount_amount"),
            presale=text(raw.get("is_pre_sale")) == "1",
            buyer_note=text(raw.get("buyer_memo"), multiline=True),
            seller_memo=text(raw.get("remark"), multiline=True),
            receiver_name=text(raw.get("receiver_name")),
            receiver_phone=text(raw.get("receiver_phone")),
            province=text(raw.get("province")),
            city=text(raw.get("city")),
            district=text(raw.get("town")),
            address_detail=text(raw.get("receiver_address")) or text(raw.get("address")),
            lines=lines,
            parcels=parcels,
        )

    def _line(self, entry: dict, sn: str, *, gift: bool) -> NewLine:
        sku = text(entry.get("outer_id")) or text(entry.get("sku_id"))
        if not sku:
            raise Quarantine(f"order {sn}: an item has no outer_id or sku_id", code="missing_field")
        title = text(entry.get("goods_name"))
        spec = text(entry.get("goods_spec"))
        return NewLine(
            sku=sku,
            title=f"{title} {spec}".strip() if spec and spec not in title else title,
            quantity=whole(entry.get("goods_count", 1), f"order {sn} goods_count", minimum=1, maximum=100_000),
            price_fen=0 if gift else yuan_to_fen(entry.get("goods_price"), f"order {sn} goods_price"),
            gift=gift,
            channel_line_id=text(entry.get("sku_id")),
        )
