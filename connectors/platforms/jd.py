"""JD (京东 POP, JOS): the Source (``jingdong.pop.order.search``) and the Adapter (order → NewOrder).

Protocol (JOS ``/routerjson``, form POST, from the official call guide help.jd.com/jos/question-580
and public JOS SDKs): system parameters ``method``, ``app_key``, ``access_token``, ``timestamp``
(``yyyy-MM-dd HH:mm:ss`` Beijing time), ``v=2.0``; the business parameters as one JSON string with
sorted keys in ``360buy_param_json``; ``sign`` = upper-case hex MD5 of ``secret + k1v1k2v2… + secret``
over every other parameter sorted by name. Answers: ``{"jingdong_pop_order_search_responce": {"code":
"0", "searchorderinfo_result": {"apiResult": {"success", "chineseErrCode", …}, "orderTotal",
"orderInfoList"}}}`` (``responce`` is JD's spelling); gateway errors ``{"error_response": {"code",
"zh_desc", "en_desc"}}``. Codes treated here: 2 (App Call Limited) and 65/66/1 (service timeout /
unavailable) → retry; 19 (无效access_token) → one single-flight refresh through open-oauth's
``/oauth2/refresh_token``; anything else, and ``apiResult.success == false``, → permanent.

Reading: ``start_date``/``end_date`` at most 30 days apart (JD: "one month"; the Source cuts longer
windows), ``dateType=0`` (modified time), ``sortType=0`` (oldest first), ``page`` from 1,
``page_size`` ≤ 100, and ``order_state`` — JD returns only the states asked for, so the Source asks
for every documented one (``ORDER_STATES``; pass ``order_states=`` to add a new one). The answer's
``orderTotal`` lets each page be checked and the window be read from the last page backwards (see
``connectors.platforms``). JD allows about 10 calls per second per app key: ``rate`` defaults to 10.
JD is second-hand in CHANNELS.md; the field names are those it lists.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta

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
    cst_text,
    expect_rows,
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
from db.store import NewLine, NewOrder, NewParcel

METHOD = "jingdong.pop.order.search"
RESPONSE = "jingdong_pop_order_search_responce"
#: Every documented ``orderState`` (JD returns only the states asked for).
ORDER_STATES: tuple[str, ...] = (
    "WAIT_SELLER_STOCK_OUT", "WAIT_SELLER_DELIVERY", "WAIT_GOODS_RECEIVE_CONFIRM", "FINISHED_L",
    "TRADE_CANCELED", "LOCKED", "PAUSE",
)
#: JOS gateway codes that mean "busy, try again".
RETRY_CODES = {"1", "2", "65", "66"}
TOKEN_CODES = {"19", "18"}
#: JD ``logisticsId`` → carrier code (the emulator's table; an id not listed is kept as ``jd:<id>``).
LOGISTICS = {"467": "SF", "1499": "ZTO", "463": "YTO", "1327": "YD", "6012": "JT", "465": "EMS", "2087": "JD"}


def jd_sign(params: Mapping[str, str], secret: str) -> str:
    """MD5(secret + sorted k+v + secret), upper-case hex."""
    body = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign")
    return hashlib.md5(f"{secret}{body}{secret}".encode()).hexdigest().upper()


def check_jd(body: object, what: str) -> dict:
    """The ``searchorderinfo_result`` of a JOS answer, or the error it carries."""
    if not isinstance(body, dict):
        raise PermanentError(f"{what}: the answer is not a JSON object")
    error = body.get("error_response")
    if error is not None:
        if not isinstance(error, dict):
            error = {"zh_desc": str(error)}
        code = str(error.get("code", ""))
        message = f"{what}: JOS error {code} {error.get('zh_desc', '')} {error.get('en_desc', '')}".strip()
        if code in TOKEN_CODES:
            raise TokenExpired(message, code=code)
        if code in RETRY_CODES:
            raise TransientError(message)
        raise PermanentError(message, code=code)
    answer = body.get(RESPONSE)
    result = answer.get("searchorderinfo_result") if isinstance(answer, dict) else None
    if not isinstance(result, dict):
        raise PermanentError(f"{what}: the answer has no {RESPONSE}.searchorderinfo_result")
    api = result.get("apiResult")
    if not isinstance(api, dict) or api.get("success") is not True:
        api = api if isinstance(api, dict) else {}
        raise PermanentError(
            f"{what}: JD refused the call: {api.get('numberCode', '')} {api.get('chineseErrCode', '')}".strip(),
            code=api.get("numberCode"),
        )
    return result


class JdSource(PlatformSource):
    """Reads one JD shop's orders (see the module docstring)."""

    max_window = timedelta(days=30)

    def __init__(
        self,
        base_url: str,
        *,
        shop_code: str,
        app_key: str,
        app_secret: str,
        access_token: str,
        refresh_token: str = "",
        client: httpx.AsyncClient | None = None,
        page_size: int = 100,
        timeout: float | httpx.Timeout | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        rate: float | None = 10.0,
        order_states: tuple[str, ...] = ORDER_STATES,
    ) -> None:
        self.channel = "jd"
        self.shop_code = shop_code
        self.base = base_url.rstrip("/")
        self.url = self.base + "/routerjson"
        self.app_key = app_key
        self._secret = app_secret
        self.tokens = Tokens(access_token, refresh_token)
        self._client = client
        self._own_client = client is None
        self.page_size = max(1, min(100, page_size))
        self.timeout = timeout
        self.policy = policy
        self.rate = rate
        self.rate_key = f"jd:{self.app_key}"
        self.order_states = tuple(order_states)

    def _signed(self, method: str, business: str, token: str) -> dict[str, str]:
        sent = {
            "method": method, "app_key": self.app_key, "access_token": token,
            "timestamp": cst_text(datetime.now(UTC)), "v": "2.0", "360buy_param_json": business,
        }
        sent["sign"] = jd_sign(sent, self._secret)
        return sent

    async def call(self, params: Mapping[str, object], *, check_page: tuple[int, int] | None = None) -> dict:
        """One signed ``jingdong.pop.order.search`` call; returns ``searchorderinfo_result``.

        Retried per ``connectors.http``; an expired or invalid token is refreshed once (single-flight).
        """
        business = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        def check(body: object) -> None:
            result = check_jd(body, f"jd:{self.shop_code} {METHOD}")
            if check_page is not None:
                expect_rows(_rows(result), _total(result), check_page[0], check_page[1], f"jd:{self.shop_code}")

        async def send(token: str):  # noqa: ANN202
            body = await request_json(
                self.client, "POST", self.url, data=lambda: self._signed(METHOD, business, token),
                check=check, limiter=self._limiter(), policy=self.policy, timeout=self.timeout,
            )
            return body[RESPONSE]["searchorderinfo_result"]

        return await self._with_token(send)

    async def _refresh(self, refresh_token: str) -> tuple[str, str]:
        params = {
            "app_key": self.app_key, "app_secret": self._secret, "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        }

        def check(body: object) -> None:
            if not isinstance(body, dict) or not body.get("access_token"):
                code = body.get("code") if isinstance(body, dict) else None
                msg = body.get("msg") if isinstance(body, dict) else body
                raise PermanentError(f"jd:{self.shop_code} token refresh refused: {code} {msg}", code=code)

        body = await request_json(
            self.client, "POST", self.base + "/oauth2/refresh_token", params=params, check=check,
            policy=self.policy, timeout=self.timeout,
        )
        return str(body["access_token"]), str(body.get("refresh_token") or "")

    async def pages(self, window: Window) -> AsyncIterator[list[dict]]:
        """Every order modified in ``window``, page by page (30-day pieces, each read backwards)."""
        for start, end in split_window(window.start, window.end, self.max_window):
            async for rows in backwards(
                lambda number, s=start, e=end: self._page(s, e, number),
                first=1, size=self.page_size, key=_row_key,
            ):
                yield rows

    async def _page(self, start: datetime, end: datetime, page: int) -> Page:
        lo, hi = whole_seconds(start, end)
        params = {
            "start_date": cst_text(lo), "end_date": cst_text(hi), "order_state": ",".join(self.order_states),
            "dateType": "0", "sortType": "0", "page": str(page), "page_size": str(self.page_size),
        }
        result = await self.call(params, check_page=(page - 1, self.page_size))
        return Page(_rows(result), _total(result))


def _rows(result: dict) -> list[dict]:
    rows = result.get("orderInfoList")
    return rows if isinstance(rows, list) else []


def _total(result: dict) -> int:
    total = result.get("orderTotal", 0)
    if isinstance(total, str) and total.isdigit():
        return int(total)
    return total if isinstance(total, int) and not isinstance(total, bool) else 0


def _row_key(row: dict) -> object:
    oid = row.get("orderId")
    return None if oid is None else (str(oid), str(row.get("modified")))


class JdAdapter:
    """Maps a JD ``orderInfoList[]`` entry to a NewOrder.

    Amounts are 元 strings → 分 exactly (``orderPayment`` paid, ``freightPrice``, ``sellerDiscount``);
    times are Beijing time → UTC. ``consigneeInfo`` is kept as delivered (JD masks names and phones:
    ``张*``, ``138****1234``, or a virtual number); the detail address is ``fullAddress`` without the
    province / city / county it starts with (the town stays, as in the other adapters). ``itemInfoList`` are the lines (``outerSkuId``, else
    ``skuId``; ``itemTotal`` is the quantity, ``jdPrice`` the unit price). ``waybill`` (comma
    separated when JD split the shipment) with ``logisticsId`` gives the parcels. ``afterSaleState``
    (the emulator's field) is the after-sale axis.
    """

    channel = "jd"

    def __init__(self, status_overrides: Mapping | None = None) -> None:
        self.statuses = statusmap.load("jd", status_overrides)

    @guarded("JD order")
    def external_id(self, raw: dict) -> str:
        """``orderId``."""
        return ident(require_dict(raw, "the order").get("orderId"), "orderId")

    @guarded("JD order")
    def modified_at(self, raw: dict) -> datetime:
        """``modified`` as UTC."""
        return parse_cst(require_dict(raw, "the order").get("modified"), "modified")

    @guarded("JD order")
    def to_order(self, raw: dict, *, shop_code: str) -> NewOrder:
        """The canonical order; Quarantine when anything needed is missing or malformed."""
        raw = require_dict(raw, "the order")
        oid = self.external_id(raw)
        raw_status = text(raw.get("orderState"))
        if not raw_status:
            raise Quarantine(f"order {oid} has no orderState", code="missing_field")
        status = self.statuses.status(raw_status)
        raw_after = text(raw.get("afterSaleState"))
        after_sale = self.statuses.after_sale(raw_after)
        lines = [self._line(entry, oid) for entry in items(raw.get("itemInfoList"), f"order {oid} itemInfoList")]
        if not lines:
            raise Quarantine(f"order {oid} has no itemInfoList", code="missing_field")
        parcels = []
        logistics = text(raw.get("logisticsId"))
        carrier = LOGISTICS.get(logistics, f"jd:{logistics}") if logistics else ""
        for waybill in dict.fromkeys(w.strip() for w in text(raw.get("waybill")).split(",")):
            if waybill:
                parcels.append(NewParcel(waybill_no=waybill, carrier=carrier, skus=[line.sku for line in lines]))
        consignee = require_dict(raw.get("consigneeInfo") or {}, f"order {oid} consigneeInfo")
        province, city = text(consignee.get("province")), text(consignee.get("city"))
        district = text(consignee.get("county"))
        paid_at = parse_cst(raw.get("paymentConfirmTime"), f"order {oid} paymentConfirmTime", required=False)
        payment = yuan_to_fen(raw.get("orderPayment"), f"order {oid} orderPayment")
        return NewOrder(
            channel="jd",
            shop_code=shop_code,
            channel_order_id=oid,
            order_no=oid,
            created_at=parse_cst(raw.get("orderStartTime"), f"order {oid} orderStartTime"),
            modified_at=parse_cst(raw.get("modified"), f"order {oid} modified"),
            paid_at=paid_at,
            status=status,
            raw_status=raw_status,
            after_sale=after_sale,
            raw_after_sale=raw_after if after_sale != "none" else "",
            total_fen=payment,
            paid_fen=payment if paid_at is not None else 0,
            post_fee_fen=yuan_to_fen(raw.get("freightPrice"), f"order {oid} freightPrice"),
            discount_fen=yuan_to_fen(raw.get("sellerDiscount"), f"order {oid} sellerDiscount"),
            buyer_note=text(raw.get("orderRemark"), multiline=True),
            seller_memo=text(raw.get("venderRemark"), multiline=True),
            receiver_name=text(consignee.get("fullname")),
            receiver_phone=text(consignee.get("mobile")) or text(consignee.get("telephone")),
            province=province,
            city=city,
            district=district,
            address_detail=_detail(text(consignee.get("fullAddress")), (province, city, district)),
            lines=lines,
            parcels=parcels,
        )

    def _line(self, entry: dict, oid: str) -> NewLine:
        sku = text(entry.get("outerSkuId")) or text(entry.get("skuId"))
        if not sku:
            raise Quarantine(f"order {oid}: an item has no outerSkuId or skuId", code="missing_field")
        return NewLine(
            sku=sku,
            title=text(entry.get("skuName")),
            quantity=whole(entry.get("itemTotal", 1), f"order {oid} itemTotal", minimum=1, maximum=100_000),
            price_fen=yuan_to_fen(entry.get("jdPrice"), f"order {oid} jdPrice"),
            channel_line_id=text(entry.get("skuId")),
        )


def _detail(full: str, parts: tuple[str, ...]) -> str:
    """``fullAddress`` without the province / city / county it starts with (each one, in order, if present)."""
    rest = full
    for part in parts:
        if part and rest.startswith(part):
            rest = rest[len(part) :]
    return rest.strip()
