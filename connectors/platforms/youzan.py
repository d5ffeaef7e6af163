"""Youzan (有赞云): the Source (``youzan.trades.sold.get``) and the Adapter (full_order_info → NewOrder).

Protocol: POST ``/api/youzan.trades.sold.get/4.0.4?access_token=…`` with a JSON body; the token is
read from the query only (a header or body token counts as missing — observed on the live gateway).
Answers ``{"success": true, "code": 200, "data": {"total_results", "full_order_info_list"}}``;
gateway errors ``{"gw_err_resp": {"err_code", "err_msg", "trace_id"}}`` in HTTP 200, business errors
``{"success": false, "code", "message"}``. Codes treated here: 4202/4203 (token expired / unknown)
→ one single-flight refresh through ``/auth/token`` (``authorize_type=refresh_token``); 4301
(rate limit) and 5xxx gateway errors → retry; everything else (5001 bad parameters, 4201 no token,
4005 unknown API …) → permanent. See ``connectors.emulators.youzan`` for which codes are observed
and which are the emulator's choice.

Reading: ``start_update``/``end_update`` as a pair of full ``yyyy-MM-dd HH:mm:ss`` times (a date alone
is refused with 5001), at most 3 months apart (the Source cuts at 90 days); ``page_no`` ≤ 100 ×
``page_size`` ≤ 100, so one query reaches at most 10,000 rows: a window whose ``total_results`` is
larger is halved until each piece fits, as for Douyin. Pages are read from the last back to the first
against ``total_results`` (see ``connectors.platforms``); the same ``tid`` on two pages is delivered
once per scan (dropped by ``(tid, update_time)``; a tid that changed between pages comes twice, and
the runner keeps the later one). Youzan is second-hand in CHANNELS.md.
"""

from __future__ import annotations

import json
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
    cst_text,
    expect_rows,
    fen_amount,
    guarded,
    ident,
    items,
    parse_cst,
    require_dict,
    text,
    whole,
    whole_seconds,
    yuan_to_fen,
)
from db.store import NewLine, NewOrder, NewParcel

METHOD = "youzan.trades.sold.get"
VERSION = "4.0.4"
TOKEN_CODES = {4202, 4203}
RETRY_CODES = {4301, 4302}
#: At most this many pages of one query are reachable.
MAX_PAGES = 100
#: Youzan ``express_id`` → carrier code (the emulator's table; an id not listed is kept as ``youzan:<id>``).
EXPRESS = {7: "SF", 2: "YTO", 3: "ZTO", 4: "YD", 11: "EMS", 138: "JT"}


def check_youzan(body: object, what: str) -> dict:
    """The ``data`` of a Youzan answer, or the error it carries."""
    if not isinstance(body, dict):
        raise PermanentError(f"{what}: the answer is not a JSON object")
    gateway = body.get("gw_err_resp")
    if gateway is not None:
        gateway = gateway if isinstance(gateway, dict) else {"err_msg": str(gateway)}
        code = gateway.get("err_code")
        message = f"{what}: Youzan gateway error {code} {gateway.get('err_msg', '')}".strip()
        if code in TOKEN_CODES:
            raise TokenExpired(message, code=code)
        if code in RETRY_CODES or (isinstance(code, int) and 5000 <= code < 6000):
            raise TransientError(message)
        raise PermanentError(message, code=code)
    if body.get("success") is not True:
        code = body.get("code")
        raise PermanentError(f"{what}: Youzan refused the call: {code} {body.get('message', '')}".strip(), code=code)
    data = body.get("data")
    if not isinstance(data, dict):
        raise PermanentError(f"{what}: the answer has no data")
    return data


class YouzanSource(PlatformSource):
    """Reads one Youzan shop's trades (see the module docstring)."""

    max_window = timedelta(days=90)

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
        rate: float | None = None,
    ) -> None:
        self.channel = "youzan"
        self.shop_code = shop_code
        self.base = base_url.rstrip("/")
        self.client_id = app_key
        self._secret = app_secret
        self.tokens = Tokens(access_token, refresh_token)
        self._client = client
        self._own_client = client is None
        self.page_size = max(1, min(100, page_size))
        self.timeout = timeout
        self.policy = policy
        self.rate = rate
        self.rate_key = f"youzan:{self.client_id}"
        #: How many times a window had to be halved (more rows than 100 pages reach).
        self.splits = 0

    @property
    def max_rows(self) -> int:
        """Rows one query can reach: 100 pages of ``page_size``."""
        return MAX_PAGES * self.page_size

    async def call(self, params: Mapping[str, object], *, check_page: tuple[int, int] | None = None) -> dict:
        """One ``youzan.trades.sold.get`` call; returns ``data`` (retried; an expired token refreshed once)."""
        url = f"{self.base}/api/{METHOD}/{VERSION}"
        def check(body: object) -> None:
            data = check_youzan(body, f"youzan:{self.shop_code} {METHOD}")
            if check_page is not None:
                expect_rows(_rows(data), _total(data), check_page[0], check_page[1], f"youzan:{self.shop_code}")

        async def send(token: str):  # noqa: ANN202
            body = await request_json(
                self.client, "POST", url, params={"access_token": token}, json_body=dict(params), check=check,
                limiter=self._limiter(), policy=self.policy, timeout=self.timeout,
            )
            return body["data"]

        return await self._with_token(send)

    async def _refresh(self, refresh_token: str) -> tuple[str, str]:
        body = await request_json(
            self.client, "POST", self.base + "/auth/token",
            json_body={"authorize_type": "refresh_token", "client_id": self.client_id, "client_secret": self._secret,
                       "refresh_token": refresh_token},
            check=lambda b: check_youzan(b, f"youzan:{self.shop_code} token refresh"),
            policy=self.policy, timeout=self.timeout,
        )
        data = body["data"]
        if not data.get("access_token"):
            raise PermanentError(f"youzan:{self.shop_code} token refresh: no access_token in the answer")
        return str(data["access_token"]), str(data.get("refresh_token") or "")

    async def pages(self, window: Window) -> AsyncIterator[list[dict]]:
        """Every trade updated in ``window``, page by page (90-day pieces, halved past 100 pages)."""
        lo, hi = whole_seconds(window.start, window.end)
        step = int(self.max_window.total_seconds())
        pending = [(a, min(a + step, hi)) for a in range(lo, hi, step)]
        while pending:
            start, end = pending.pop(0)
            probe = await self._page(start, end, 1)
            if probe.total > self.max_rows:
                if end - start < 2:
                    raise PermanentError(
                        f"youzan:{self.shop_code}: more than {self.max_rows} trades changed within one second; "
                        "this window cannot be read"
                    )
                middle = (start + end) // 2
                pending[:0] = [(start, middle), (middle, end)]
                self.splits += 1
                continue
            first = True

            async def fetch(number: int, s: int = start, e: int = end, first_probe: Page = probe) -> Page:
                nonlocal first
                if number == 1 and first:
                    first = False
                    return first_probe  # the probe is page 1: no need to read it twice
                return await self._page(s, e, number)

            async for rows in backwards(fetch, first=1, size=self.page_size, key=_row_key):
                yield rows

    async def _page(self, start: int, end: int, page_no: int) -> Page:
        params = {"start_update": cst_text(start), "end_update": cst_text(end), "page_no": page_no, "page_size": self.page_size}
        data = await self.call(params, check_page=(page_no - 1, self.page_size))
        return Page(_rows(data), _total(data))


def _rows(data: dict) -> list[dict]:
    rows = data.get("full_order_info_list")
    return rows if isinstance(rows, list) else []


def _total(data: dict) -> int:
    total = data.get("total_results", 0)
    return total if isinstance(total, int) and not isinstance(total, bool) else 0


def _row_key(row: dict) -> object:
    info = row.get("full_order_info") if isinstance(row, dict) else None
    order = info.get("order_info") if isinstance(info, dict) else None
    if not isinstance(order, dict) or order.get("tid") is None:
        return None
    return (str(order["tid"]), str(order.get("update_time")))


class YouzanAdapter:
    """Maps a Youzan ``full_order_info_list[]`` entry (``{"full_order_info": {...}}``) to a NewOrder.

    Amounts: ``pay_info.payment`` / ``total_fee`` / ``post_fee`` and line ``price`` are 元 strings →
    分 exactly; ``deduction_pay`` (the discount) is already 分. Times are Beijing time → UTC. The
    receiver (``address_info``) is kept as delivered (masked or a virtual number); the detail address
    is ``delivery_address``. ``orders[]`` are the lines (``outer_sku_id``, else ``outer_item_id``, else
    ``oid``; the title with the ``sku_properties_name`` values after it; ``is_present`` marks a gift); ``delivery_order[].dists[].express_info`` gives the parcels.
    ``refund_state`` is the after-sale axis, through the ``[after_sale]`` map (0 is "no refund";
    a refused request goes back to 0: Youzan has no "rejected" value).
    """

    channel = "youzan"

    def __init__(self, status_overrides: Mapping | None = None) -> None:
        self.statuses = statusmap.load("youzan", status_overrides)

    @staticmethod
    def _info(raw: object) -> dict:
        raw = require_dict(raw, "the trade")
        inner = raw.get("full_order_info", raw)
        return require_dict(inner, "full_order_info")

    @staticmethod
    def _order_info(info: dict) -> dict:
        return require_dict(info.get("order_info"), "full_order_info.order_info")

    @guarded("Youzan trade")
    def external_id(self, raw: dict) -> str:
        """``order_info.tid``."""
        return ident(self._order_info(self._info(raw)).get("tid"), "tid")

    @guarded("Youzan trade")
    def modified_at(self, raw: dict) -> datetime:
        """``order_info.update_time`` as UTC."""
        return parse_cst(self._order_info(self._info(raw)).get("update_time"), "update_time")

    @guarded("Youzan trade")
    def to_order(self, raw: dict, *, shop_code: str) -> NewOrder:
        """The canonical order; Quarantine when anything needed is missing or malformed."""
        info = self._info(raw)
        order = self._order_info(info)
        tid = ident(order.get("tid"), "tid")
        raw_status = text(order.get("status"))
        if not raw_status:
            raise Quarantine(f"trade {tid} has no status", code="missing_field")
        status = self.statuses.status(raw_status)
        raw_refund = text(order.get("refund_state"))
        after_sale = self.statuses.after_sale(raw_refund)
        lines = [self._line(entry, tid) for entry in items(info.get("orders"), f"trade {tid} orders")]
        if not lines:
            raise Quarantine(f"trade {tid} has no orders (lines)", code="missing_field")
        parcels: dict[str, NewParcel] = {}
        shipped_at = parse_cst(order.get("consign_time"), f"trade {tid} consign_time", required=False)
        for delivery in items(info.get("delivery_order"), f"trade {tid} delivery_order"):
            for dist in items(delivery.get("dists"), f"trade {tid} delivery_order.dists"):
                express = require_dict(dist.get("express_info") or {}, f"trade {tid} express_info")
                waybill = text(express.get("express_no"))
                if waybill and waybill not in parcels:
                    express_id = express.get("express_id")
                    carrier = EXPRESS.get(express_id, f"youzan:{text(express_id)}") if express_id not in (None, "", 0) else ""
                    parcels[waybill] = NewParcel(
                        waybill_no=waybill, carrier=carrier, shipped_at=shipped_at, skus=[line.sku for line in lines]
                    )
        address = require_dict(info.get("address_info") or {}, f"trade {tid} address_info")
        remarks = require_dict(info.get("remark_info") or {}, f"trade {tid} remark_info")
        pay = require_dict(info.get("pay_info") or {}, f"trade {tid} pay_info")
        paid_at = parse_cst(order.get("pay_time"), f"trade {tid} pay_time", required=False)
        payment = yuan_to_fen(pay.get("payment"), f"trade {tid} payment")
        return NewOrder(
            channel="youzan",
            shop_code=shop_code,
            channel_order_id=tid,
            order_no=tid,
            created_at=parse_cst(order.get("created"), f"trade {tid} created"),
            modified_at=parse_cst(order.get("update_time"), f"trade {tid} update_time"),
            paid_at=paid_at,
            status=status,
            raw_status=raw_status,
            after_sale=after_sale,
            raw_after_sale=raw_refund if after_sale != "none" else "",
            total_fen=payment,
            paid_fen=payment if paid_at is not None else 0,
            post_fee_fen=yuan_to_fen(pay.get("post_fee"), f"trade {tid} post_fee"),
            discount_fen=fen_amount(pay.get("deduction_pay"), f"trade {tid} deduction_pay"),
            buyer_note=text(remarks.get("buyer_message"), multiline=True),
            seller_memo=text(remarks.get("trade_memo"), multiline=True),
            receiver_name=text(address.get("receiver_name")),
            receiver_phone=text(address.get("receiver_tel")),
            province=text(address.get("delivery_province")),
            city=text(address.get("delivery_city")),
            district=text(address.get("delivery_district")),
            address_detail=text(address.get("delivery_address")),
            lines=lines,
            parcels=list(parcels.values()),
        )

    def _line(self, entry: dict, tid: str) -> NewLine:
        sku = text(entry.get("outer_sku_id")) or text(entry.get("outer_item_id")) or text(entry.get("oid"))
        if not sku:
            raise Quarantine(f"trade {tid}: a line has no outer_sku_id, outer_item_id or oid", code="missing_field")
        quantity = whole(entry.get("num", 1), f"trade {tid} num", minimum=1, maximum=100_000)
        if entry.get("price") not in (None, ""):
            price = yuan_to_fen(entry.get("price"), f"trade {tid} price")
        else:
            price = yuan_to_fen(entry.get("payment"), f"trade {tid} line payment") // quantity
        gift = entry.get("is_present")
        if gift not in (None, True, False):
            raise Quarantine(f"trade {tid}: is_present {gift!r} is not true/false", code="invalid")
        title, spec = text(entry.get("title")), _spec(entry.get("sku_properties_name"))
        return NewLine(
            sku=sku,
            title=f"{title} {spec}".strip() if spec and spec not in title else title,
            quantity=quantity,
            price_fen=price,
            gift=bool(gift),
            channel_line_id=text(entry.get("oid")),
        )


def _spec(value: object) -> str:
    """``sku_properties_name`` (a JSON list of ``{"k", "v"}`` as text) as "v1 v2"; anything else: empty."""
    if not isinstance(value, str) or not value.strip():
        return ""
    try:
        pairs = json.loads(value)
    except ValueError:
        return text(value)
    if not isinstance(pairs, list):
        return ""
    return " ".join(text(p.get("v")) for p in pairs if isinstance(p, dict) and isinstance(p.get("v"), str)).strip()
