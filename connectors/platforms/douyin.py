"""The Douyin shop (抖店): the Source (``order.searchList``) and the Adapter (shop order → NewOrder).

Protocol (as public 抖店 SDKs implement it, e.g. seven_cloudapp_frame's ``ShakeShopBaseModel``):
POST ``/order/searchList`` with query ``app_key``, ``method=order.searchList``, ``access_token``,
``timestamp`` (``YYYY-MM-DD HH:MM:SS``), ``v=2``, ``sign_method=hmac-sha256`` and ``sign`` =
hex HMAC-SHA256(key=secret, secret + "app_key…method…param_json…timestamp…v2" + secret), where
``param_json`` is the JSON body with sorted keys and no spaces. Answers: ``{"code": 10000, "msg",
"sub_code", "sub_msg", "data", "log_id"}``; error codes from the 抖店 table (iMactool/jinritemai
``ErrorCode``): 20000 服务不可用 / 20001 内部服务超时 / 60000 触发限流 → retry (and 20004/20005, which
CHANNELS.md lists as "retry within 30 s"); 40003 with ``isv.access-token-expired`` → refresh the
token once (POST ``/token/refresh``), 40003 ``isv.signature-invalid`` and 40004 (business
parameter errors) → permanent.

Reading: ``update_time_start``/``update_time_end`` epoch seconds, ``page`` **from 0**, ``size`` ≤ 100,
``order_by=update_time``; one query reaches at most 50,000 rows (``max_rows``): when a window's
``total`` is larger the Source halves the window until each piece fits. Amounts are in 分.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime

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
    epoch_time,
    expect_rows,
    fen_amount,
    guarded,
    ident,
    items,
    require_dict,
    text,
    whole,
    whole_seconds,
)
from db.store import NewLine, NewOrder, NewParcel

RETRY_CODES = {20000, 20001, 20004, 20005, 60000}
TOKEN_SUB_CODES = {"isv.access-token-expired", "isv.access-token-no-existed"}


def param_json(params: Mapping[str, object]) -> str:
    """The business parameters as 抖店 signs them: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def douyin_sign(app_key: str, method: str, body: str, timestamp: str, secret: str) -> str:
    """hex HMAC-SHA256(secret, secret + app_key…method…param_json…timestamp…v2 + secret)."""
    pattern = f"{secret}app_key{app_key}method{method}param_json{body}timestamp{timestamp}v2{secret}"
    return hmac.new(secret.encode(), pattern.encode(), hashlib.sha256).hexdigest()


def check_douyin(body: object, what: str) -> dict:
    """The ``data`` of a 抖店 answer, or the error it carries."""
    if not isinstance(body, dict):
        raise PermanentError(f"{what}: the answer is not a JSON object")
    code = body.get("code")
    if code == 10000:
        data = body.get("data")
        if not isinstance(data, dict):
            raise PermanentError(f"{what}: the answer has no data")
        return data
    sub_code = str(body.get("sub_code") or "")
    message = f"{what}: 抖店 error {code} {body.get('msg', '')} {sub_code} {body.get('sub_msg', '')}".strip()
    if sub_code in TOKEN_SUB_CODES:
        raise TokenExpired(message, code=sub_code)
    if code in RETRY_CODES or sub_code.startswith(("isp.", "dop.service")):
        raise TransientError(message)
    raise PermanentError(message, code=sub_code or code)


class DouyinSource(PlatformSource):
    """Reads one Douyin shop's orders (see the module docstring)."""

    #: One query reaches at most this many rows; a larger window is halved.
    max_rows = 50_000

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
        max_rows: int | None = None,
        timeout: float | httpx.Timeout | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        rate: float | None = None,
    ) -> None:
        self.channel = "douyin"
        self.shop_code = shop_code
        self.base = base_url.rstrip("/")
        self.app_key = app_key
        self._secret = app_secret
        self.tokens = Tokens(access_token, refresh_token)
        self._client = client
        self._own_client = client is None
        self.page_size = max(1, min(100, page_size))
        self.max_rows = max_rows or DouyinSource.max_rows
        self.timeout = timeout
        self.policy = policy
        self.rate = rate
        self.rate_key = f"douyin:{self.app_key}"
        #: How many times a window had to be halved (more than ``max_rows`` rows).
        self.splits = 0

    def _query(self, method: str, body: str, token: str | None) -> dict[str, str]:
        stamp = cst_text(datetime.now(UTC))
        query = {"app_key": self.app_key, "method": method, "timestamp": stamp, "v": "2", "sign_method": "hmac-sha256"}
        if token is not None:
            query["access_token"] = token
        query["sign"] = douyin_sign(self.app_key, method, body, stamp, self._secret)
        return query

    async def call(self, method: str, params: Mapping[str, object], *, check_page: tuple[int, int] | None = None) -> dict:
        """One signed call; returns ``data`` (retried per ``connectors.http``; expired token refreshed once)."""
        body = param_json(params)
        path = "/" + method.replace(".", "/")
        def check(answer: object) -> None:
            data = check_douyin(answer, f"douyin:{self.shop_code} {method}")
            if check_page is not None:
                expect_rows(_rows(data), _total(data), check_page[0], check_page[1], f"douyin:{self.shop_code}")

        async def send(token: str):  # noqa: ANN202
            answer = await request_json(
                self.client, "POST", self.base + path,
                params=lambda: self._query(method, body, token),
                json_body=json.loads(body), check=check, limiter=self._limiter(), policy=self.policy,
                timeout=self.timeout,
            )
            return answer["data"]

        return await self._with_token(send)

    async def _refresh(self, refresh_token: str) -> tuple[str, str]:
        body = param_json({"grant_type": "refresh_token", "refresh_token": refresh_token})
        answer = await request_json(
            self.client, "POST", self.base + "/token/refresh",
            params=lambda: self._query("token.refresh", body, None), json_body=json.loads(body),
            check=lambda b: check_douyin(b, f"douyin:{self.shop_code} token refresh"),
            policy=self.policy, timeout=self.timeout,
        )
        data = answer["data"]
        if not data.get("access_token"):
            raise PermanentError(f"douyin:{self.shop_code} token refresh: no access_token in the answer")
        return str(data["access_token"]), str(data.get("refresh_token") or "")

    async def pages(self, window: Window) -> AsyncIterator[list[dict]]:
        """Every order updated in ``window``, page by page (halving windows over ``max_rows``)."""
        lo, hi = whole_seconds(window.start, window.end)
        pending = [(lo, hi)]
        while pending:
            start, end = pending.pop(0)
            probe = await self._page(start, end, 0)
            if probe.total > self.max_rows:
                if end - start < 2:
                    raise PermanentError(
                        f"douyin:{self.shop_code}: more than {self.max_rows} orders changed within one second; "
                        "this window cannot be read"
                    )
                middle = (start + end) // 2
                pending[:0] = [(start, middle), (middle, end)]
                self.splits += 1
                continue
            first = True

            async def fetch(number: int, s: int = start, e: int = end, first_probe: Page = probe) -> Page:
                nonlocal first
                if number == 0 and first:
                    first = False
                    return first_probe  # the probe is page 0: no need to read it twice
                return await self._page(s, e, number)

            async for rows in backwards(fetch, first=0, size=self.page_size, key=_row_key):
                yield rows

    async def _page(self, start: int, end: int, page: int) -> Page:
        params = {
            "update_time_start": start, "update_time_end": end, "page": page, "size": self.page_size,
            "order_by": "update_time", "order_asc": False,
        }
        data = await self.call("order.searchList", params, check_page=(page, self.page_size))
        return Page(_rows(data), _total(data))


def _rows(data: dict) -> list[dict]:
    rows = data.get("shop_order_list")
    return rows if isinstance(rows, list) else []


def _total(data: dict) -> int:
    total = data.get("total", 0)
    return total if isinstance(total, int) and not isinstance(total, bool) else 0


def _row_key(row: dict) -> object:
    oid = row.get("order_id")
    return None if oid is None else (str(oid), str(row.get("update_time")))


class DouyinAdapter:
    """Maps a 抖店 shop order (``shop_order_list[]``) to a NewOrder.

    Amounts are already 分; times are epoch seconds (0 = not yet). The receiver is kept as
    delivered: ``post_receiver``/``post_tel`` (masked or a virtual number) when present, else the
    ciphertext ``encrypt_post_receiver``/``encrypt_post_tel``. The address is ``post_addr``
    (province/city/town names; street + detail as the detail). ``sku_order_list`` are the lines
    (``out_sku_id``, else ``code``, else ``sku_id``); the order-level after-sale state is the first
    line's ``after_sale_info.after_sale_status`` that is not 0. ``logistics_info`` gives the parcels.
    """

    channel = "douyin"

    def __init__(self, status_overrides: Mapping | None = None) -> None:
        self.statuses = statusmap.load("douyin", status_overrides)

    @guarded("Douyin order")
    def external_id(self, raw: dict) -> str:
        """``order_id``."""
        return ident(require_dict(raw, "the order").get("order_id"), "order_id")

    @guarded("Douyin order")
    def modified_at(self, raw: dict) -> datetime:
        """``update_time`` as UTC."""
        return epoch_time(require_dict(raw, "the order").get("update_time"), "update_time")

    @guarded("Douyin order")
    def to_order(self, raw: dict, *, shop_code: str) -> NewOrder:
        """The canonical order; Quarantine when anything needed is missing or malformed."""
        raw = require_dict(raw, "the order")
        oid = self.external_id(raw)
        raw_status = text(raw.get("order_status"))
        if not raw_status:
            raise Quarantine(f"order {oid} has no order_status", code="missing_field")
        status = self.statuses.status(raw_status)
        skus = items(raw.get("sku_order_list"), f"order {oid} sku_order_list")
        if not skus:
            raise Quarantine(f"order {oid} has no sku_order_list", code="missing_field")
        lines = []
        raw_after = ""
        for sku in skus:
            code = text(sku.get("out_sku_id")) or text(sku.get("code")) or text(sku.get("sku_id"))
            if not code:
                raise Quarantine(f"order {oid}: a line has no out_sku_id, code or sku_id", code="missing_field")
            quantity = whole(sku.get("item_num", 1), f"order {oid} item_num", minimum=1, maximum=100_000)
            if sku.get("goods_price") not in (None, ""):
                price = fen_amount(sku.get("goods_price"), f"order {oid} goods_price")
            else:
                price = fen_amount(sku.get("origin_amount"), f"order {oid} origin_amount") // quantity
            lines.append(
                NewLine(
                    sku=code, title=text(sku.get("product_name")), quantity=quantity, price_fen=price,
                    channel_line_id=text(sku.get("order_id")),
                )
            )
            info = sku.get("after_sale_info")
            if info is not None:
                info = require_dict(info, f"order {oid} after_sale_info")
                value = text(info.get("after_sale_status"))
                if not raw_after and value not in ("", "0"):
                    raw_after = value
        after_sale = self.statuses.after_sale(raw_after)
        parcels = []
        for entry in items(raw.get("logistics_info"), f"order {oid} logistics_info"):
            waybill = text(entry.get("tracking_no"))
            if waybill:
                parcels.append(
                    NewParcel(
                        waybill_no=waybill,
                        carrier=text(entry.get("company")) or text(entry.get("company_name")),
                        shipped_at=epoch_time(entry.get("ship_time"), f"order {oid} ship_time", required=False),
                        skus=[line.sku for line in lines],
                    )
                )
        address = require_dict(raw.get("post_addr") or {}, f"order {oid} post_addr")
        paid_at = epoch_time(raw.get("pay_time"), f"order {oid} pay_time", required=False)
        pay_amount = fen_amount(raw.get("pay_amount"), f"order {oid} pay_amount")
        return NewOrder(
            channel="douyin",
            shop_code=shop_code,
            channel_order_id=oid,
            order_no=oid,
            created_at=epoch_time(raw.get("create_time"), f"order {oid} create_time"),
            modified_at=epoch_time(raw.get("update_time"), f"order {oid} update_time"),
            paid_at=paid_at,
            ship_by=epoch_time(raw.get("exp_ship_time"), f"order {oid} exp_ship_time", required=False),
            status=status,
            raw_status=raw_status,
            after_sale=after_sale,
            raw_after_sale=raw_after,
            total_fen=pay_amount,
            paid_fen=pay_amount if paid_at is not None else 0,
            post_fee_fen=fen_amount(raw.get("post_amount"), f"order {oid} post_amount"),
            discount_fen=fen_amount(raw.get("promotion_amount"), f"order {oid} promotion_amount"),
            presale=any(text(s.get("pre_sale_type")) not in ("", "0") for s in skus),
            buyer_note=text(raw.get("buyer_words"), multiline=True),
            seller_memo=text(raw.get("seller_words"), multiline=True),
            receiver_name=text(raw.get("post_receiver")) or text(raw.get("encrypt_post_receiver")),
            receiver_phone=text(raw.get("post_tel")) or text(raw.get("encrypt_post_tel")),
            province=_place(address, "province", oid),
            city=_place(address, "city", oid),
            district=_place(address, "town", oid),
            address_detail=(_place(address, "street", oid) + text(address.get("detail"))).strip(),
            lines=lines,
            parcels=parcels,
        )


def _place(address: dict, level: str, oid: str) -> str:
    value = address.get(level)
    if value is None:
        return ""
    return text(require_dict(value, f"order {oid} post_addr.{level}").get("name"))
