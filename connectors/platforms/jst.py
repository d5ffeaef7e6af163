"""聚水潭 (Jushuitan ERP): the Source (``orders.single.query``) and the Adapter (ERP order → NewOrder).

Many teams already run their shops through this ERP, so it is an upstream like a platform: one
connector brings in the orders of every shop the ERP holds, with receivers in plain text.

Protocol (openapi.jushuitan.com, as public clients implement it): form POST to
``/open/orders/single/query`` with ``app_key``, ``access_token``, ``timestamp`` (epoch s),
``charset=utf-8``, ``version=2``, ``biz`` (the business JSON) and ``sign`` = lower-case hex MD5 of
``app_secret`` + every other parameter sorted by name as ``k+v``. Answers ``{"code": 0, "msg",
"data": {"page_size", "page_index", "data_count", "page_count", "has_next", "orders"}}``; ``code``
≠ 0 is an error: 100 (token 超时 / 无效) → one single-flight refresh through
``/openWeb/auth/refreshToken``; 150 (内部处理异常), 180 (timestamp off — re-signed on retry), 199 /
200 (调用太频繁) → retry; everything else (120 签名错误, 140 参数不符合规范 …) → permanent.

Reading: ``modified_begin``/``modified_end`` at most 7 days apart (the Source cuts longer windows),
``page_index`` from 1, ``page_size`` ≤ 100; each window is read from its last page back to the first
and every page is checked against ``data_count`` (see ``connectors.platforms``).
"""

from __future__ import annotations

import hashlib
import json
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

PATH = "/open/orders/single/query"
REFRESH_PATH = "/openWeb/auth/refreshToken"
TOKEN_CODES = {100}
RETRY_CODES = {150, 180, 199, 200}
#: 聚水潭 ``lc_id`` → carrier code (second-hand; others are kept as ``jst:<lc_id>``).
LC_IDS = {"ZTO": "ZTO", "YTO": "YTO", "YUNDA": "YD", "SF": "SF", "JTSD": "JT", "EMS": "EMS", "JD": "JD", "STO": "STO"}
#: ERP statuses that are links between orders, not states of this one.
LINKS = {"Merged": "合并", "Split": "拆分"}
_CLOSED_SHOP_STATUSES = {"TRADE_CLOSED", "TRADE_CLOSED_BY_TAOBAO"}


def jst_sign(params: Mapping[str, str], secret: str) -> str:
    """MD5(app_secret + sorted k+v), lower-case hex."""
    body = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign")
    return hashlib.md5(f"{secret}{body}".encode()).hexdigest()


def check_jst(body: object, what: str) -> dict:
    """The ``data`` of a 聚水潭 answer, or the error it carries."""
    if not isinstance(body, dict):
        raise PermanentError(f"{what}: the answer is not a JSON object")
    code = body.get("code")
    if code in (0, "0"):
        data = body.get("data")
        if not isinstance(data, dict):
            raise PermanentError(f"{what}: the answer has no data")
        return data
    try:
        number = int(code)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = None
    message = f"{what}: 聚水潭 error {code} {body.get('msg', '')}".strip()
    if number in TOKEN_CODES:
        raise TokenExpired(message, code=number)
    if number in RETRY_CODES:
        raise TransientError(message)
    raise PermanentError(message, code=code)  # type: ignore[arg-type]


class JstSource(PlatformSource):
    """Reads one 聚水潭 account's orders (see the module docstring)."""

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
        client: httpx.AsyncClient | None = None,
        page_size: int = 100,
        timeout: float | httpx.Timeout | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        rate: float | None = None,
    ) -> None:
        self.channel = "jst"
        self.shop_code = shop_code
        self.base = base_url.rstrip("/")
        self.app_key = app_key
        self._secret = app_secret
        self.tokens = Tokens(access_token, refresh_token)
        self._client = client
        self._own_client = client is None
        self.page_size = max(1, min(100, page_size))
        self.timeout = timeout
        self.policy = policy
        self.rate = rate
        self.rate_key = f"jst:{self.app_key}"

    def _signed(self, biz: str, token: str) -> dict[str, str]:
        sent = {
            "app_key": self.app_key, "access_token": token, "timestamp": str(int(time.time())), "charset": "utf-8",
            "version": "2", "biz": biz,
        }
        sent["sign"] = jst_sign(sent, self._secret)
        return sent

    async def call(self, biz: Mapping[str, object], *, check_page: tuple[int, int] | None = None) -> dict:
        """One signed ``orders.single.query`` call; returns ``data`` (retried; an expired token refreshed once)."""
        text_biz = json.dumps(biz, separators=(",", ":"), ensure_ascii=False)
        def check(body: object) -> None:
            data = check_jst(body, f"jst:{self.shop_code} orders.single.query")
            if check_page is not None:
                expect_rows(_rows(data), _total(data), check_page[0], check_page[1], f"jst:{self.shop_code}")

        async def send(token: str):  # noqa: ANN202
            body = await request_json(
                self.client, "POST", self.base + PATH, data=lambda: self._signed(text_biz, token),
                check=check, limiter=self._limiter(), policy=self.policy, timeout=self.timeout,
            )
            return body["data"]

        return await self._with_token(send)

    async def _refresh(self, refresh_token: str) -> tuple[str, str]:
        def form() -> dict[str, str]:
            sent = {
                "app_key": self.app_key, "timestamp": str(int(time.time())), "grant_type": "refresh_token",
                "charset": "utf-8", "refresh_token": refresh_token, "scope": "all",
            }
            sent["sign"] = jst_sign(sent, self._secret)
            return sent

        body = await request_json(
            self.client, "POST", self.base + REFRESH_PATH, data=form,
            check=lambda b: check_jst(b, f"jst:{self.shop_code} token refresh"), policy=self.policy, timeout=self.timeout,
        )
        data = body["data"]
        if not data.get("access_token"):
            raise PermanentError(f"jst:{self.shop_code} token refresh: no access_token in the answer")
        return str(data["access_token"]), str(data.get("refresh_token") or "")

    async def pages(self, window: Window) -> AsyncIterator[list[dict]]:
        """Every order modified in ``window``, page by page (7-day pieces, each read backwards)."""
        for start, end in split_window(window.start, window.end, self.max_window):
            async for rows in backwards(
                lambda number, s=start, e=end: self._page(s, e, number),
                first=1, size=self.page_size, key=_row_key,
            ):
                yield rows

    async def _page(self, start: datetime, end: datetime, page_index: int) -> Page:
        lo, hi = whole_seconds(start, end)
        biz = {"modified_begin": cst_text(lo), "modified_end": cst_text(hi), "page_index": page_index, "page_size": self.page_size}
        data = await self.call(biz, check_page=(page_index - 1, self.page_size))
        return Page(_rows(data), _total(data))


def _rows(data: dict) -> list[dict]:
    rows = data.get("orders")
    return rows if isinstance(rows, list) else []


def _total(data: dict) -> int:
    total = data.get("data_count", 0)
    return total if isinstance(total, int) and not isinstance(total, bool) else 0


def _row_key(row: dict) -> object:
    oid = row.get("o_id") if isinstance(row, dict) else None
    return None if oid is None else (str(oid), str(row.get("modified")))


class JstAdapter:
    """Maps a 聚水潭 ``orders[]`` entry to a NewOrder.

    The ERP number ``o_id`` is the order's id (split orders share one ``so_id``); ``so_id``, the
    platform's number, is the order number people quote. Amounts are 元 (numbers, or ``freight`` as
    text) → 分 exactly: ``pay_amount`` total, ``freight``, ``free_amount`` discount; times Beijing
    time → UTC. Receivers are plain text. ``items`` are the lines (``sku_id``, else ``i_id``; name +
    ``properties_value``; ``is_gift``); ``l_id`` + ``lc_id`` the parcel. ``as_status`` is the
    after-sale axis.

    **Merged / Split are links, not states.** Such an order keeps ``raw_status`` Merged / Split as
    delivered, but its standard status comes from its own facts, looked up in the same map: cancelled
    if ``shop_status`` is closed, else Sent once it has a waybill or ship date, else WaitConfirm once
    paid, else WaitPay. The link goes into ``tags`` — ``聚水潭合并→<link_o_id>`` /
    ``聚水潭拆分→<link_o_id>`` for the order that was merged or split into ``link_o_id``, and
    ``聚水潭合并单:<merge_so_id>`` / ``聚水潭拆分单`` for the orders a merge or split made — so the
    ingest writes it on the order's timeline (a tag change is an ``updated`` event by the connector)
    and agents see it on the card.
    """

    channel = "jst"

    def __init__(self, status_overrides: Mapping | None = None) -> None:
        self.statuses = statusmap.load("jst", status_overrides)

    @guarded("聚水潭 order")
    def external_id(self, raw: dict) -> str:
        """``o_id`` (the ERP's own number)."""
        return ident(require_dict(raw, "the order").get("o_id"), "o_id")

    @guarded("聚水潭 order")
    def modified_at(self, raw: dict) -> datetime:
        """``modified`` as UTC."""
        return parse_cst(require_dict(raw, "the order").get("modified"), "modified")

    @guarded("聚水潭 order")
    def to_order(self, raw: dict, *, shop_code: str) -> NewOrder:
        """The canonical order; Quarantine when anything needed is missing or malformed."""
        raw = require_dict(raw, "the order")
        oid = self.external_id(raw)
        raw_status = text(raw.get("status"))
        if not raw_status:
            raise Quarantine(f"order {oid} has no status", code="missing_field")
        tags = []
        waybill = text(raw.get("l_id"))
        shipped_at = parse_cst(raw.get("send_date"), f"order {oid} send_date", required=False)
        paid_at = parse_cst(raw.get("pay_date"), f"order {oid} pay_date", required=False)
        if raw_status in LINKS:
            link = text(raw.get("link_o_id"))
            tags.append(f"聚水潭{LINKS[raw_status]}→{link}" if link else f"聚水潭{LINKS[raw_status]}")
            if text(raw.get("shop_status")) in _CLOSED_SHOP_STATUSES:
                own = "Cancelled"
            elif waybill or shipped_at is not None:
                own = "Sent"
            else:
                own = "WaitConfirm" if paid_at is not None else "WaitPay"
            status = self.statuses.status(own)
        else:
            status = self.statuses.status(raw_status)
        if _flag(raw.get("is_merge"), oid, "is_merge"):
            merged_from = text(raw.get("merge_so_id"))
            tags.append(f"聚水潭合并单:{merged_from}" if merged_from else "聚水潭合并单")
        if _flag(raw.get("is_split"), oid, "is_split"):
            tags.append("聚水潭拆分单")
        raw_after = text(raw.get("as_status"))
        after_sale = self.statuses.after_sale(raw_after)
        lines = [self._line(entry, oid) for entry in items(raw.get("items"), f"order {oid} items")]
        if not lines:
            raise Quarantine(f"order {oid} has no items", code="missing_field")
        parcels = []
        if waybill:
            lc_id = text(raw.get("lc_id"))
            carrier = LC_IDS.get(lc_id, f"jst:{lc_id}") if lc_id else text(raw.get("logistics_company"))
            parcels.append(NewParcel(waybill_no=waybill, carrier=carrier, shipped_at=shipped_at, skus=[line.sku for line in lines]))
        pay_amount = yuan_to_fen(raw.get("pay_amount"), f"order {oid} pay_amount")
        number = text(raw.get("so_id"))
        return NewOrder(
            channel="jst",
            shop_code=shop_code,
            channel_order_id=oid,
            order_no=number if number and len(number) <= 64 else oid,
            created_at=parse_cst(raw.get("order_date") or raw.get("created"), f"order {oid} order_date"),
            modified_at=parse_cst(raw.get("modified"), f"order {oid} modified"),
            paid_at=paid_at,
            status=status,
            raw_status=raw_status,
            after_sale=after_sale,
            raw_after_sale=raw_after if after_sale != "none" else "",
            total_fen=pay_amount,
            paid_fen=yuan_to_fen(raw.get("paid_amount"), f"order {oid} paid_amount") if paid_at is not None else 0,
            post_fee_fen=yuan_to_fen(raw.get("freight"), f"order {oid} freight"),
            discount_fen=yuan_to_fen(raw.get("free_amount"), f"order {oid} free_amount"),
            tags=tags,
            buyer_note=text(raw.get("buyer_message"), multiline=True),
            seller_memo=text(raw.get("remark"), multiline=True),
            receiver_name=text(raw.get("receiver_name")),
            receiver_phone=text(raw.get("receiver_mobile")) or text(raw.get("receiver_phone")),
            province=text(raw.get("receiver_state")),
            city=text(raw.get("receiver_city")),
            district=text(raw.get("receiver_district")),
            address_detail=_detail(text(raw.get("receiver_town")), text(raw.get("receiver_address"))),
            lines=lines,
            parcels=parcels,
        )

    def _line(self, entry: dict, oid: str) -> NewLine:
        sku = text(entry.get("sku_id")) or text(entry.get("i_id"))
        if not sku:
            raise Quarantine(f"order {oid}: an item has no sku_id or i_id", code="missing_field")
        name, spec = text(entry.get("name")), text(entry.get("properties_value"))
        return NewLine(
            sku=sku,
            title=f"{name} {spec}".strip() if spec and spec not in name else name,
            quantity=whole(entry.get("qty", 1), f"order {oid} qty", minimum=1, maximum=100_000),
            price_fen=yuan_to_fen(entry.get("price"), f"order {oid} price"),
            gift=_flag(entry.get("is_gift"), oid, "is_gift"),
            channel_line_id=text(entry.get("oi_id")),
        )


def _flag(value: object, oid: str, what: str) -> bool:
    if value in (None, "", False, 0, "false", "False", "0"):
        return False
    if value in (True, 1, "true", "True", "1"):
        return True
    raise Quarantine(f"order {oid}: {what} {value!r} is not true/false", code="invalid")


def _detail(town: str, address: str) -> str:
    """The street address with its town (街道/镇) in front, unless the address already starts with it."""
    return address if not town or address.startswith(town) else f"{town}{address}"
