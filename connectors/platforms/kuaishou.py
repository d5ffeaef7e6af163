"""Kuaishou shop (快手小店): the Source (``open.order.cursor.list``) and the Adapter (order → NewOrder).

Protocol (the open platform's API call guide, as mirrored in AndersonBY/kwaixiaodian-python-sdk):
``/open/order/cursor/list`` (the method with dots as slashes), form POST with ``appkey``, ``method``,
``version=1``, ``access_token``, ``timestamp`` (ms), ``signMethod`` and ``param`` (the business JSON);
``sign`` covers those parameters sorted as ``k=v`` joined by ``&`` plus ``&signSecret=…`` — hex MD5
or base64 HMAC-SHA256 (the default here). Answers ``{"result": 1, "data": {...}}``; any other
``result`` is an error: 24 (鉴权失败 / TOKEN过期) → one single-flight refresh, 40004 (rate limited,
"Exceed qps limit") and 5xxxx → retry, everything else (300004 window over 7 days, 25 bad signature,
4000x bad parameters …) → permanent.

**Refresh tokens rotate**: ``/oauth2/refresh_token`` (form ``grant_type=refresh_token``,
``refresh_token``, ``app_id``, ``app_secret``) answers a new access token *and a new refresh token*;
the old refresh token is dead from then on (``refreshToken.discarded``). So a refresh must happen
once for all concurrent callers (``Tokens`` does that), and whoever persists credentials must read
``source.tokens.refresh_token`` back after a refresh.

Reading: ``beginTime``/``endTime`` epoch ms at most 7 days apart (longer windows are cut),
``queryType=2`` (by update time), ``sort=2`` (oldest first), ``orderViewStatus=1`` (all),
``pageSize`` ≤ 50, ``cursor`` "" first and then the previous answer's, until ``"nomore"``. A cursor
scan has no total to check pages against, so the rule is: a page short of ``pageSize`` must be the
last (``nomore``), every page must carry a cursor, and the cursor must move — otherwise the read is
truncated (retried, then :class:`TruncatedRead`). Rows repeated across pages are delivered once per
scan. The cursor is a keyset: an order modified during the scan leaves the window without shifting
the others, and a change that becomes visible late (behind the cursor) is caught by the runner's
overlap. Kuaishou is second-hand in CHANNELS.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta

import httpx

from connectors import statusmap
from connectors.base import Quarantine, Window
from connectors.http import (
    DEFAULT_POLICY,
    RetryPolicy,
    TruncatedRead,
    request_json,
)
from connectors.platforms import (
    PermanentError,
    PlatformSource,
    TokenExpired,
    Tokens,
    TransientError,
    epoch_time,
    fen_amount,
    guarded,
    ident,
    items,
    require_dict,
    split_window,
    text,
    whole,
    whole_seconds,
)
from db.store import NewLine, NewOrder, NewParcel

METHOD = "open.order.cursor.list"
NOMORE = "nomore"
TOKEN_RESULTS = {24, 28}
RETRY_RESULTS = {40004, 50001, 50002}
#: Kuaishou ``expressCode`` → carrier code (the published 物流公司编号 table; others kept as ``kuaishou:<code>``).
EXPRESS = {2: "EMS", 4: "SF", 6: "YTO", 9: "ZTO", 11: "YD", 109: "JT", 14: "JD"}
_MAX_MS = 4_102_444_800_000


def kuaishou_sign(params: Mapping[str, str], secret: str) -> str:
    """The call signature: ``k=v&…`` over the signed parameters sorted, plus ``&signSecret=``."""
    keys = ("access_token", "appkey", "method", "param", "signMethod", "timestamp", "version")
    base = "&".join(f"{k}={params[k]}" for k in sorted(keys) if params.get(k) is not None) + f"&signSecret={secret}"
    if params.get("signMethod") == "HMAC_SHA256":
        return base64.b64encode(hmac.new(secret.encode(), base.encode(), hashlib.sha256).digest()).decode()
    return hashlib.md5(base.encode()).hexdigest()


def check_kuaishou(body: object, what: str) -> dict:
    """The ``data`` of a Kuaishou answer, or the error it carries."""
    if not isinstance(body, dict):
        raise PermanentError(f"{what}: the answer is not a JSON object")
    result = body.get("result")
    if result == 1:
        data = body.get("data")
        if not isinstance(data, dict):
            raise PermanentError(f"{what}: the answer has no data")
        return data
    message = f"{what}: Kuaishou error {result} {body.get('error_msg') or body.get('msg') or ''}".strip()
    if result in TOKEN_RESULTS:
        raise TokenExpired(message, code=result)
    if result in RETRY_RESULTS or (isinstance(result, int) and 50000 <= result < 60000):
        raise TransientError(message)
    raise PermanentError(message, code=result)


def check_page(data: dict, size: int, cursor: str, where: str) -> None:
    """Fail loudly on a page that cannot be a whole page of a cursor scan (see the module docstring)."""
    rows = data.get("orderList")
    nxt = data.get("cursor")
    if not isinstance(rows, list):
        raise TruncatedRead(f"{where}: the page has no orderList")
    if not isinstance(nxt, str) or not nxt:
        raise TruncatedRead(f"{where}: the page has no cursor: the read cannot go on and cannot be called complete")
    if nxt != NOMORE:
        if len(rows) < size:
            raise TruncatedRead(f"{where}: a page of {len(rows)} rows (page size {size}) that is not the last: a short read")
        if nxt == cursor:
            raise TruncatedRead(f"{where}: the cursor did not move")


class KuaishouSource(PlatformSource):
    """Reads one Kuaishou shop's orders (see the module docstring)."""

    max_window = timedelta(days=7)

    def __init__(
        self,
        base_url: str,
        *,
        shop_code: str,
        app_key: str,
        app_secret: str,
        access_token: str,
        refresh_token: str = "",
        sign_secret: str | None = None,
        sign_method: str = "HMAC_SHA256",
        client: httpx.AsyncClient | None = None,
        page_size: int = 50,
        timeout: float | httpx.Timeout | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        rate: float | None = None,
    ) -> None:
        self.channel = "kuaishou"
        self.shop_code = shop_code
        self.base = base_url.rstrip("/")
        self.app_key = app_key
        self._secret = app_secret
        self._sign_secret = sign_secret or app_secret
        self.sign_method = sign_method
        self.tokens = Tokens(access_token, refresh_token)
        self._client = client
        self._own_client = client is None
        self.page_size = max(1, min(50, page_size))
        self.timeout = timeout
        self.policy = policy
        self.rate = rate
        self.rate_key = f"kuaishou:{self.app_key}"

    def _signed(self, param: str, token: str) -> dict[str, str]:
        sent = {
            "appkey": self.app_key, "method": METHOD, "version": "1", "access_token": token,
            "timestamp": str(int(time.time() * 1000)), "signMethod": self.sign_method, "param": param,
        }
        sent["sign"] = kuaishou_sign(sent, self._sign_secret)
        return sent

    async def call(self, params: Mapping[str, object], *, page_check: bool = True) -> dict:
        """One signed ``open.order.cursor.list`` call; returns ``data`` (retried; an expired token
        refreshed once, single-flight). ``page_check`` applies :func:`check_page` inside the retries."""
        param = json.dumps(params, separators=(",", ":"), ensure_ascii=False)
        size = int(params.get("pageSize", 20))  # type: ignore[call-overload]
        cursor = str(params.get("cursor", ""))
        def check(body: object) -> None:
            data = check_kuaishou(body, f"kuaishou:{self.shop_code} {METHOD}")
            if page_check:
                check_page(data, size, cursor, f"kuaishou:{self.shop_code}")

        async def send(token: str):  # noqa: ANN202
            body = await request_json(
                self.client, "POST", self.base + "/open/order/cursor/list",
                data=lambda: self._signed(param, token), check=check, limiter=self._limiter(),
                policy=self.policy, timeout=self.timeout,
            )
            return body["data"]

        return await self._with_token(send)

    async def _refresh(self, refresh_token: str) -> tuple[str, str]:
        def check(body: object) -> None:
            if not isinstance(body, dict) or body.get("result") != 1 or not body.get("access_token"):
                detail = body if not isinstance(body, dict) else f"{body.get('result')} {body.get('error_msg', '')}"
                raise PermanentError(f"kuaishou:{self.shop_code} token refresh refused: {detail}")

        body = await request_json(
            self.client, "POST", self.base + "/oauth2/refresh_token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token, "app_id": self.app_key,
                  "app_secret": self._secret},
            check=check, policy=self.policy, timeout=self.timeout,
        )
        return str(body["access_token"]), str(body.get("refresh_token") or "")

    async def pages(self, window: Window) -> AsyncIterator[list[dict]]:
        """Every order updated in ``window``, page by page (7-day pieces, each followed by cursor)."""
        for start, end in split_window(window.start, window.end, self.max_window):
            lo, hi = whole_seconds(start, end)
            seen: set[object] = set()
            cursor = ""
            while True:
                data = await self.call({
                    "orderViewStatus": 1, "pageSize": self.page_size, "sort": 2, "queryType": 2,
                    "beginTime": lo * 1000, "endTime": hi * 1000, "cursor": cursor,
                })
                fresh = []
                for row in data["orderList"]:
                    key = _row_key(row)
                    if key is not None and key in seen:
                        continue
                    if key is not None:
                        seen.add(key)
                    fresh.append(row)
                if fresh:
                    yield fresh
                if data["cursor"] == NOMORE:
                    break
                cursor = data["cursor"]


def _row_key(row: object) -> object:
    base = row.get("orderBaseInfo") if isinstance(row, dict) else None
    if not isinstance(base, dict) or base.get("oid") is None:
        return None
    return (str(base["oid"]), str(base.get("updateTime")))


def ms_time(value: object, what: str, *, required: bool = True) -> datetime | None:
    """Epoch milliseconds → aware UTC (to the second); None when optional and empty or 0."""
    if value is None or value == "" or value == 0 or value == "0":
        return epoch_time(None, what, required=required)
    ms = whole(value, what, minimum=1, maximum=_MAX_MS)
    return epoch_time(ms // 1000, what, required=required)


class KuaishouAdapter:
    """Maps a Kuaishou ``orderList[]`` entry to a NewOrder.

    Amounts are 分 (``totalFee`` paid, ``expressFee``, ``discountFee``; the item's ``price``); times
    epoch ms → UTC. One order, one item (``orderItemInfo``: ``skuNick`` — the merchant's SKU code —
    else ``goodsCode``, else ``skuId``; the title is ``itemTitle`` + ``skuDesc``). The receiver is kept
    as delivered: the masked ``desensitise*`` fields when present, else the ciphertext
    ``encrypted*``; the detail address is town + ``desensitiseAddress`` (or the ciphertext). The buyer's
    ``remark`` is the buyer note; ``orderNote.orderNoteInfo[].note`` the seller memo. The first
    ``orderRefundList`` entry gives the after-sale state; ``orderLogisticsInfo`` the parcels.
    """

    channel = "kuaishou"

    def __init__(self, status_overrides: Mapping | None = None) -> None:
        self.statuses = statusmap.load("kuaishou", status_overrides)

    @staticmethod
    def _base(raw: object) -> dict:
        return require_dict(require_dict(raw, "the order").get("orderBaseInfo"), "orderBaseInfo")

    @guarded("Kuaishou order")
    def external_id(self, raw: dict) -> str:
        """``orderBaseInfo.oid``."""
        return ident(self._base(raw).get("oid"), "oid")

    @guarded("Kuaishou order")
    def modified_at(self, raw: dict) -> datetime:
        """``orderBaseInfo.updateTime`` (ms) as UTC."""
        return ms_time(self._base(raw).get("updateTime"), "updateTime")

    @guarded("Kuaishou order")
    def to_order(self, raw: dict, *, shop_code: str) -> NewOrder:
        """The canonical order; Quarantine when anything needed is missing or malformed."""
        raw = require_dict(raw, "the order")
        base = self._base(raw)
        oid = ident(base.get("oid"), "oid")
        raw_status = text(base.get("status"))
        if not raw_status:
            raise Quarantine(f"order {oid} has no status", code="missing_field")
        status = self.statuses.status(raw_status)
        raw_after = ""
        for refund in items(raw.get("orderRefundList"), f"order {oid} orderRefundList"):
            value = text(refund.get("refundStatus"))
            if value:
                raw_after = value
                break
        after_sale = self.statuses.after_sale(raw_after)
        item = raw.get("orderItemInfo")
        if item is None:
            raise Quarantine(f"order {oid} has no orderItemInfo", code="missing_field")
        line = self._line(require_dict(item, f"order {oid} orderItemInfo"), oid)
        shipped_at = ms_time(base.get("sendTime"), f"order {oid} sendTime", required=False)
        parcels: dict[str, NewParcel] = {}
        for entry in items(raw.get("orderLogisticsInfo"), f"order {oid} orderLogisticsInfo"):
            waybill = text(entry.get("expressNo"))
            if waybill and waybill not in parcels:
                code = entry.get("expressCode")
                carrier = EXPRESS.get(code, f"kuaishou:{text(code)}") if code not in (None, "", 0) else ""
                parcels[waybill] = NewParcel(waybill_no=waybill, carrier=carrier, shipped_at=shipped_at, skus=[line.sku])
        address = require_dict(raw.get("orderAddress") or {}, f"order {oid} orderAddress")
        masked_detail = text(address.get("desensitiseAddress"))
        notes = require_dict(raw.get("orderNote") or {}, f"order {oid} orderNote")
        memo = "\n".join(
            n for n in (text(e.get("note"), multiline=True) for e in items(notes.get("orderNoteInfo"), f"order {oid} orderNoteInfo")) if n
        )
        paid_at = ms_time(base.get("payTime"), f"order {oid} payTime", required=False)
        total = fen_amount(base.get("totalFee"), f"order {oid} totalFee")
        return NewOrder(
            channel="kuaishou",
            shop_code=shop_code,
            channel_order_id=oid,
            order_no=oid,
            created_at=ms_time(base.get("createTime"), f"order {oid} createTime"),
            modified_at=ms_time(base.get("updateTime"), f"order {oid} updateTime"),
            paid_at=paid_at,
            ship_by=ms_time(base.get("validPromiseShipmentTimeStamp"), f"order {oid} promise time", required=False),
            status=status,
            raw_status=raw_status,
            after_sale=after_sale,
            raw_after_sale=raw_after if after_sale != "none" else "",
            total_fen=total,
            paid_fen=total if paid_at is not None else 0,
            post_fee_fen=fen_amount(base.get("expressFee"), f"order {oid} expressFee"),
            discount_fen=fen_amount(base.get("discountFee"), f"order {oid} discountFee"),
            presale=text(base.get("preSale")) not in ("", "0"),
            buyer_note=text(base.get("remark"), multiline=True),
            seller_memo=memo,
            receiver_name=text(address.get("desensitiseConsignee")) or text(address.get("encryptedConsignee")),
            receiver_phone=text(address.get("desensitiseMobile")) or text(address.get("encryptedMobile")),
            province=text(address.get("province")),
            city=text(address.get("city")),
            district=text(address.get("district")),
            address_detail=f"{text(address.get('town'))}{masked_detail}" if masked_detail else text(address.get("encryptedAddress")),
            lines=[line],
            parcels=list(parcels.values()),
        )

    def _line(self, item: dict, oid: str) -> NewLine:
        sku = text(item.get("skuNick")) or text(item.get("goodsCode")) or text(item.get("skuId"))
        if not sku:
            raise Quarantine(f"order {oid}: the item has no skuNick, goodsCode or skuId", code="missing_field")
        title, spec = text(item.get("itemTitle")), text(item.get("skuDesc"))
        return NewLine(
            sku=sku,
            title=f"{title} {spec}".strip() if spec and spec not in title else title,
            quantity=whole(item.get("num", 1), f"order {oid} num", minimum=1, maximum=100_000),
            price_fen=fen_amount(item.get("price"), f"order {oid} price"),
            channel_line_id=text(item.get("orderItemId")),
        )
