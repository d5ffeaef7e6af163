"""Taobao and Tmall through the TOP API: the Source (HTTP) and the Adapter (Trade → NewOrder).

Protocol (TOP, ``/router/rest``): every call carries ``method``, ``app_key``, ``session`` (the shop's
access token), ``timestamp`` (``YYYY-MM-DD HH:MM:SS`` Beijing time), ``format=json``, ``v=2.0``,
``sign_method=md5`` and ``sign`` = upper-case hex MD5 of ``secret + k1v1k2v2… + secret`` over every
other parameter sorted by name. Errors come inside HTTP 200 as
``{"error_response": {"code", "msg", "sub_code", "sub_msg"}}``; the codes used here are TOP's public
platform codes (7 App Call Limited with ``sub_msg`` "This ban will last for N more seconds",
10 Service Currently Unavailable, 15 Remote Service Error with ``isp.*`` sub codes = retry later,
25 Invalid Signature, 26/27 Missing/Invalid Session, 40/41 missing/invalid arguments) — from the
TOP error-code table reproduced in many public SDKs and posts.

Reading (``taobao.trades.sold.increment.get``): ``start_modified``/``end_modified`` at most one day
apart, ``page_no`` from 1, ``page_size`` ≤ 100, sorted by modified time **descending**, and the list
carries only the fields asked for, so each trade's details come from ``taobao.trade.fullinfo.get``.
The Source cuts a window into pieces of at most ``max_window``, learns each piece's
``total_results`` and reads its pages from the last back to the first (see ``connectors.platforms``).
Tmall is the same API with Tmall shops: ``TaobaoSource(channel="tmall", ...)``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
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
from db.store import NewLine, NewOrder, NewParcel

#: What the list call asks for (the rest comes from fullinfo).
LIST_FIELDS = "tid,tid_str,status,modified"
#: What fullinfo asks for.
FULL_FIELDS = (
    "tid,tid_str,status,type,created,modified,pay_time,consign_time,end_time,payment,total_fee,post_fee,"
    "discount_fee,buyer_message,seller_memo,seller_flag,buyer_open_uid,receiver_name,receiver_state,"
    "receiver_city,receiver_district,receiver_town,receiver_address,receiver_mobile,receiver_phone,oaid,"
    "step_trade_status,orders"
)
_BAN = re.compile(r"(\d+)\s*more\s*second", re.IGNORECASE)
#: TOP codes that mean "busy, try again".
_RETRY_CODES = {7, 8, 10, 4, 5, 6}
_SESSION_CODES = {26, 27}


def top_sign(params: Mapping[str, str], secret: str) -> str:
    """TOP's md5 signature: MD5(secret + sorted k+v + secret), upper-case hex."""
    body = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign")
    return hashlib.md5(f"{secret}{body}{secret}".encode()).hexdigest().upper()


def check_top(body: object, what: str) -> dict:
    """The body of a TOP answer, or the error it carries (transient / token / permanent)."""
    if not isinstance(body, dict):
        raise PermanentError(f"{what}: the answer is not a JSON object")
    error = body.get("error_response")
    if error is None:
        return body
    if not isinstance(error, dict):
        error = {"msg": str(error)}
    code = error.get("code")
    sub_code = str(error.get("sub_code") or "")
    sub_msg = str(error.get("sub_msg") or "")
    message = f"{what}: TOP error {code} {error.get('msg', '')} {sub_code} {sub_msg}".strip()
    if code in _SESSION_CODES or sub_code in ("invalid-sessionkey", "isv.session-expired"):
        raise TokenExpired(message, code=code)
    if code in _RETRY_CODES or sub_code.startswith(("isp.", "accesscontrol.")):
        ban = _BAN.search(sub_msg)
        raise TransientError(message, retry_after=float(ban.group(1)) if ban else None)
    raise PermanentError(message, code=sub_code or code)


class TaobaoSource(PlatformSource):
    """Reads one Taobao/Tmall shop's trades over TOP (see the module docstring).

    ``session``/``refresh_token`` are the shop's tokens; an expired session is refreshed once,
    single-flight, through ``taobao.top.auth.token.refresh`` (``self.tokens.refreshes`` counts it).
    ``rate`` (calls per second, shared by every Source of one app key) is off when None.
    """

    max_window = timedelta(days=1)

    def __init__(
        self,
        base_url: str,
        *,
        shop_code: str,
        app_key: str,
        app_secret: str,
        session: str,
        refresh_token: str = "",
        channel: str = "taobao",
        client: httpx.AsyncClient | None = None,
        page_size: int = 100,
        max_window: timedelta | None = None,
        timeout: float | httpx.Timeout | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        rate: float | None = None,
        detail_concurrency: int = 8,
    ) -> None:
        self.channel = channel
        self.shop_code = shop_code
        self.url = base_url.rstrip("/") + "/router/rest"
        self.app_key = app_key
        self._secret = app_secret
        self.tokens = Tokens(session, refresh_token)
        self._client = client
        self._own_client = client is None
        self.page_size = max(1, min(100, page_size))
        if max_window is not None:
            self.max_window = min(max_window, TaobaoSource.max_window)
        self.timeout = timeout
        self.policy = policy
        self.rate = rate
        self.rate_key = f"taobao:{self.app_key}"
        self.detail_concurrency = detail_concurrency

    async def call(self, method: str, params: Mapping[str, object], *, check_page: tuple[int, int] | None = None) -> dict:
        """One signed TOP call (retried per ``connectors.http``; an expired session refreshed once)."""
        def signed(token: str) -> dict[str, str]:
            sent = {k: str(v) for k, v in params.items()}
            sent.update(
                method=method, app_key=self.app_key, session=token, timestamp=cst_text(datetime.now(UTC)),
                format="json", v="2.0", sign_method="md5",
            )
            sent["sign"] = top_sign(sent, self._secret)
            return sent

        def check(body: object) -> None:
            checked = check_top(body, f"{self.channel}:{self.shop_code} {method}")
            if check_page is not None:
                answer = _answer(checked, "trades_sold_increment_get_response")
                rows = _trades(answer)
                total = _total(answer)
                expect_rows(rows, total, check_page[0], check_page[1], f"{self.channel}:{self.shop_code}")

        async def send(token: str):  # noqa: ANN202
            return await request_json(
                self.client, "POST", self.url, data=lambda: signed(token), check=check,
                limiter=self._limiter(), policy=self.policy, timeout=self.timeout,
            )

        return await self._with_token(send)

    async def _refresh(self, refresh_token: str) -> tuple[str, str]:
        params = {
            "method": "taobao.top.auth.token.refresh", "app_key": self.app_key, "refresh_token": refresh_token,
            "timestamp": cst_text(datetime.now(UTC)), "format": "json", "v": "2.0", "sign_method": "md5",
        }
        params["sign"] = top_sign(params, self._secret)
        body = await request_json(
            self.client, "POST", self.url, data=params, policy=self.policy, timeout=self.timeout,
            check=lambda b: _refresh_check(check_top(b, f"{self.channel}:{self.shop_code} token refresh")),
        )
        result = json.loads(body["top_auth_token_refresh_response"]["token_result"])
        return str(result["access_token"]), str(result.get("refresh_token") or "")

    async def pages(self, window: Window) -> AsyncIterator[list[dict]]:
        """Every trade modified in ``window`` (full details), page by page."""
        for start, end in split_window(window.start, window.end, self.max_window):
            async for rows in backwards(
                lambda number, s=start, e=end: self._list(s, e, number),
                first=1, size=self.page_size, key=_row_key,
            ):
                yield await self._details(rows)

    async def _list(self, start: datetime, end: datetime, page_no: int) -> Page:
        lo, hi = whole_seconds(start, end)
        params = {
            "start_modified": cst_text(lo),
            "end_modified": cst_text(hi),
            "fields": LIST_FIELDS, "page_no": page_no, "page_size": self.page_size, "use_has_next": "false",
        }
        body = await self.call(
            "taobao.trades.sold.increment.get", params, check_page=(page_no - 1, self.page_size)
        )
        answer = _answer(body, "trades_sold_increment_get_response")
        return Page(_trades(answer), _total(answer))

    async def _details(self, rows: list[dict]) -> list[dict]:
        gate = asyncio.Semaphore(self.detail_concurrency)

        async def one(row: dict) -> dict:
            tid = row.get("tid_str") or row.get("tid")
            if tid is None:
                return row  # the adapter quarantines it with the reason
            async with gate:
                try:
                    body = await self.call("taobao.trade.fullinfo.get", {"tid": tid, "fields": FULL_FIELDS})
                except PermanentError as exc:
                    if "trade-not-exist" in str(exc):
                        return row  # gone since the list was read: the partial row goes to quarantine
                    raise
            trade = _answer(body, "trade_fullinfo_get_response").get("trade")
            return trade if isinstance(trade, dict) else row

        return list(await asyncio.gather(*(one(row) for row in rows)))


def _refresh_check(body: dict) -> None:
    answer = body.get("top_auth_token_refresh_response")
    if not isinstance(answer, dict) or not isinstance(answer.get("token_result"), str):
        raise PermanentError("token refresh: the answer has no token_result")


def _answer(body: dict, key: str) -> dict:
    answer = body.get(key)
    if not isinstance(answer, dict):
        raise PermanentError(f"the TOP answer has no {key}")
    return answer


def _trades(answer: dict) -> list[dict]:
    trades = answer.get("trades") or {}  # TOP leaves "trades" out when there are none
    rows = trades.get("trade") if isinstance(trades, dict) else trades
    return rows if isinstance(rows, list) else []


def _total(answer: dict) -> int:
    total = answer.get("total_results", 0)
    return total if isinstance(total, int) and not isinstance(total, bool) else 0


def _row_key(row: dict) -> object:
    tid = row.get("tid_str") or row.get("tid")
    return None if tid is None else (str(tid), str(row.get("modified")))


class TaobaoAdapter:
    """Maps a TOP ``Trade`` (fullinfo) to a NewOrder; Tmall with ``channel="tmall"``.

    Amounts are 元 strings → 分 (Decimal); times are Beijing time → UTC; receiver fields are kept as
    delivered (masked ``138****1234``, virtual ``…-1234``, ciphertext ``~…~``); the detail address is
    ``receiver_town`` + ``receiver_address``. Sub-orders become
    lines (``outer_sku_id``, else ``outer_iid``, else ``num_iid``); a sub-order with ``gift_mids`` and
    a zero price is a gift; ``combo_id`` (天猫搭配宝) marks the lines of one combo; sub-orders with an
    ``invoice_no`` become parcels (one per waybill). The order-level after-sale state is the first
    sub-order's ``refund_status`` other than NO_REFUND/CLOSED.
    """

    def __init__(self, channel: str = "taobao", status_overrides: Mapping | None = None) -> None:
        self.channel = channel
        self.statuses = statusmap.load(channel, status_overrides)

    @guarded("Taobao trade")
    def external_id(self, raw: dict) -> str:
        """The trade id (``tid_str``, else ``tid``)."""
        raw = require_dict(raw, "the trade")
        value = raw.get("tid_str") or raw.get("tid")
        return ident(value, "tid")

    @guarded("Taobao trade")
    def modified_at(self, raw: dict) -> datetime:
        """``modified`` as UTC."""
        return parse_cst(require_dict(raw, "the trade").get("modified"), "modified")

    @guarded("Taobao trade")
    def to_order(self, raw: dict, *, shop_code: str) -> NewOrder:
        """The canonical order; Quarantine when anything needed is missing or malformed."""
        raw = require_dict(raw, "the trade")
        tid = self.external_id(raw)
        raw_status = text(field(raw, "status", f"trade {tid}"))
        status = self.statuses.status(raw_status)
        subs = items(_sub_orders(raw.get("orders")), f"trade {tid} orders")
        if not subs:
            raise Quarantine(f"trade {tid} has no sub-orders (orders.order)", code="missing_field")
        lines: list[NewLine] = []
        parcels: dict[str, NewParcel] = {}
        refund = ""
        for sub in subs:
            sku = text(sub.get("outer_sku_id")) or text(sub.get("outer_iid")) or text(sub.get("num_iid"))
            if not sku:
                raise Quarantine(f"trade {tid}: a sub-order has no outer_sku_id, outer_iid or num_iid", code="missing_field")
            price = yuan_to_fen(sub.get("price"), f"trade {tid} sub-order price")
            lines.append(
                NewLine(
                    sku=sku,
                    title=text(sub.get("title")),
                    quantity=whole(sub.get("num", 1), f"trade {tid} sub-order num", minimum=1, maximum=100_000),
                    price_fen=price,
                    gift=bool(sub.get("gift_mids")) and price == 0,
                    combo_sku=text(sub.get("combo_id")) or None,
                    channel_line_id=text(sub.get("oid_str") or sub.get("oid")),
                )
            )
            sub_refund = text(sub.get("refund_status"))
            if not refund and sub_refund not in ("", "NO_REFUND", "CLOSED"):
                refund = sub_refund
            waybill = text(sub.get("invoice_no"))
            if waybill:
                parcel = parcels.get(waybill)
                if parcel is None:
                    parcel = parcels[waybill] = NewParcel(
                        waybill_no=waybill,
                        carrier=text(sub.get("logistics_company")),
                        shipped_at=parse_cst(sub.get("consign_time") or raw.get("consign_time"), f"trade {tid} consign_time", required=False),
                    )
                parcel.skus.append(sku)
        after_sale = self.statuses.after_sale(refund)
        paid_at = parse_cst(raw.get("pay_time"), f"trade {tid} pay_time", required=False)
        payment = yuan_to_fen(raw.get("payment"), f"trade {tid} payment")
        phone = text(raw.get("receiver_mobile")) or text(raw.get("receiver_phone"))
        return NewOrder(
            channel=self.channel,
            shop_code=shop_code,
            channel_order_id=tid,
            order_no=tid,
            created_at=parse_cst(raw.get("created"), f"trade {tid} created"),
            modified_at=parse_cst(raw.get("modified"), f"trade {tid} modified"),
            paid_at=paid_at,
            status=status,
            raw_status=raw_status,
            after_sale=after_sale,
            raw_after_sale=refund,
            total_fen=payment,
            paid_fen=payment if paid_at is not None else 0,
            post_fee_fen=yuan_to_fen(raw.get("post_fee"), f"trade {tid} post_fee"),
            discount_fen=yuan_to_fen(raw.get("discount_fee"), f"trade {tid} discount_fee"),
            presale=bool(text(raw.get("step_trade_status"))),
            buyer_note=text(raw.get("buyer_message"), multiline=True),
            seller_memo=text(raw.get("seller_memo"), multiline=True),
            receiver_name=text(raw.get("receiver_name")),
            receiver_phone=phone,
            province=text(raw.get("receiver_state")),
            city=text(raw.get("receiver_city")),
            district=text(raw.get("receiver_district")),
            address_detail=_detail(text(raw.get("receiver_town")), text(raw.get("receiver_address"))),
            lines=lines,
            parcels=list(parcels.values()),
        )


def _detail(town: str, address: str) -> str:
    """The street address with its town (街道/镇) in front, unless the address already starts with it."""
    return address if not town or address.startswith(town) else f"{town}{address}"


def _sub_orders(value: object) -> object:
    """``orders`` as TOP wraps it (``{"order": [...]}``) or already a list."""
    if isinstance(value, dict):
        return value.get("order", [])
    return value
