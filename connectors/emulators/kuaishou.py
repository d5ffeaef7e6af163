"""Kuaishou shop (快手小店) emulator: ``/open/order/cursor/list`` with signed calls, cursor paging and
rotating refresh tokens (``/oauth2/refresh_token``).

``open.order.cursor.list`` (GET or form POST): system parameters ``appkey``, ``method``,
``version=1``, ``access_token``, ``timestamp`` (ms), ``signMethod`` (``MD5`` or ``HMAC_SHA256``),
``sign``, and the business JSON in ``param``: ``beginTime``/``endTime`` epoch **ms**, at most 7 days
apart and within 90 days; ``queryType`` 1 = by creation time, 2 = by update time (default);
``sort`` 1 = newest first, 2 = oldest first (default here); ``orderViewStatus`` 1 = all; ``pageSize``
1–50; ``cursor`` "" on the first call, then the ``cursor`` of the previous answer, until it is
``"nomore"``. The cursor is a keyset (the last row's time and id), so an order modified during a
scan leaves the window without moving any other row. The answer: ``{"result": 1, "data": {"cursor",
"orderList", "pageSize", "beginTime", "endTime"}, "requestId"}``.

From the open platform's published docs (as mirrored in AndersonBY/kwaixiaodian-python-sdk): the
call format and the signature (the parameters sorted as ``k=v`` joined by ``&``, then
``&signSecret=…``; hex MD5, or base64 HMAC-SHA256 keyed by the secret), the window codes 300003 (end
before begin), 300004 (over 7 days), 300005 (older than 90 days), the rate-limit text "Exceed qps
limit, KEY [...], MAX_QPS [300.0]", the refresh token used up after one use (``{"result": 100200102,
"error": "access_denied", "error_msg": "refreshToken.discarded"}``) and the order fields
(``orderBaseInfo``, ``orderItemInfo``, ``orderAddress``, ``orderLogisticsInfo``, ``orderRefundList``,
cross-checked with a public Go client's ``OpenOrderCursorListOrder``) and ``expressCode`` numbers. The
numbers of the other errors are this emulator's choice: 24 鉴权失败/TOKEN过期, 25 签名校验失败, 40001
missing parameter, 40002 bad parameter, 40004 rate limited, 50001 system error (the last four as a
public SDK lists them). The sign secret is the app secret here.

A Kuaishou order holds one item (a cart becomes several orders): an order of the emulator's world
with several lines shows only its first, and its amounts are that line's. Amounts are in 分.
Statuses 10 待付款, 30 已付款, 40 已发货, 50 已收货, 70 交易成功, 80 交易失败; refunds in
``orderRefundList[].refundStatus`` with the codes ``connectors/maps/kuaishou.toml`` lists.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import math

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.emulators.core import (
    DAY,
    HOUR,
    EmuOrder,
    Generator,
    Platform,
    State,
    World,
    answer,
    request_params,
)

#: The shops ``deskapp emulate kuaishou`` serves (register as ``core.SHOPS["kuaishou"]``).
DEMO_SHOPS: tuple[tuple[str, str], ...] = (("shop1", "知茶快手小店"), ("shop2", "知茶直播好物"))

METHOD = "open.order.cursor.list"
NOMORE = "nomore"
_STATUS = {"pending": 10, "paid": 30, "stocking": 30, "shipped": 40, "signed": 50, "finished": 70, "closed": 80, "closed_refund": 80}
_REFUND = {"refund_requested": 10, "refunded": 60, "return_requested": 10, "returning": 30, "returned": 60, "rejected": 20}
#: carrier code → Kuaishou ``expressCode`` (the published 物流公司编号 table).
EXPRESS_CODES: dict[str, int] = {"EMS": 2, "SF": 4, "YTO": 6, "ZTO": 9, "YD": 11, "JT": 109}
_REQUEST_IDS = itertools.count(1)


def _reply(result: int, error_msg: str = "", data: dict | None = None) -> dict:
    body: dict = {"result": result, "requestId": f"emu{next(_REQUEST_IDS):012d}"}
    if result == 1:
        body["data"] = data or {}
    else:
        body.update(error_msg=error_msg, code=str(result), sub_code="", sub_msg="")
    return body


def sign_base(params: dict[str, str]) -> str:
    """The text Kuaishou signs: the signed parameters sorted as ``k=v`` joined by ``&``."""
    keys = ("access_token", "appkey", "method", "param", "signMethod", "timestamp", "version")
    return "&".join(f"{k}={params[k]}" for k in sorted(keys) if params.get(k) is not None)


def _sign(params: dict[str, str], secret: str) -> str:
    text = f"{sign_base(params)}&signSecret={secret}"
    if params.get("signMethod") == "HMAC_SHA256":
        return base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()).decode()
    return hashlib.md5(text.encode()).hexdigest()


def _cursor(key: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}:{key[1]}".encode()).decode()


def _uncursor(cursor: str) -> tuple[int, str]:
    at, _, oid = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
    return int(at), oid


def _mask_digits(value: str) -> str:
    return "".join("*" if c.isdigit() else c for c in value)


class KuaishouPlatform(Platform):
    """The 快手小店 emulator (``PLATFORM``)."""

    name = "kuaishou"
    close_minutes = 30

    def new_order_id(self, gen: Generator, created: int) -> str:
        return str(2_300_000_000_000_000 + gen.rng.randrange(10**17))

    def adapter(self):
        from connectors.platforms.kuaishou import KuaishouAdapter

        return KuaishouAdapter()

    def render(self, order: EmuOrder, st: State) -> dict:
        line = order.lines[0]
        goods = line.price * line.qty
        discount = min(order.discount, goods)
        status: int | str = _STATUS[st.stage]
        if st.raw_status:
            status = int(st.raw_status) if st.raw_status.isdigit() else st.raw_status
        shipped = bool(st.waybill) and st.stage in ("shipped", "signed", "finished")
        digest = int(hashlib.md5(line.sku.encode()).hexdigest()[:10], 16)
        title, _, spec = line.title.rpartition(" ")
        cipher = order.phone_style == "cipher"
        phone = order.virtual if order.phone_style == "virtual" else order.masked_mobile()
        seal = hashlib.md5(f"ks{order.oid}".encode()).hexdigest()
        body = {
            "orderBaseInfo": {
                "oid": int(order.oid),
                "status": status,
                "createTime": order.created * 1000,
                "updateTime": st.modified * 1000,
                "payTime": (st.paid_at or 0) * 1000,
                "sendTime": (st.shipped_at or 0) * 1000,
                "recvTime": (st.signed_at or 0) * 1000,
                "totalFee": goods + order.post_fee - discount,
                "expressFee": order.post_fee,
                "discountFee": discount,
                "remark": order.note,
                "buyerNick": order.shown_name(),
                "preSale": 1 if order.presale else 0,
                "validPromiseShipmentTimeStamp": ((st.paid_at + 48 * HOUR + (7 * DAY if order.presale else 0)) * 1000)
                if st.paid_at else 0,
                "sellerNick": order.shop,
            },
            "orderItemInfo": {
                "orderItemId": int(order.oid) + 1,
                "itemId": 20_000_000_000 + digest % 10**10,
                "skuId": 30_000_000_000 + digest % 10**10,
                "relSkuId": 0,
                "itemTitle": title or line.title,
                "skuDesc": spec if title else "",
                "skuNick": line.sku,
                "goodsCode": line.sku.rsplit("-", 1)[0],
                "num": line.qty,
                "price": line.price,
                "originalPrice": line.price,
                "discountFee": 0,
            },
            "orderAddress": {
                "province": order.province,
                "city": order.city,
                "district": order.district,
                "town": order.town,
                "desensitiseConsignee": "" if cipher else order.shown_name(),
                "desensitiseMobile": "" if cipher else phone,
                "desensitiseAddress": "" if cipher else _mask_digits(order.detail),
                "encryptedConsignee": f"#{seal[:16]}#",
                "encryptedMobile": f"#{seal[16:]}#",
                "encryptedAddress": f"#{seal[8:24]}#",
            },
            "orderLogisticsInfo": [],
            "orderRefundList": [],
            "orderNote": {"orderNoteInfo": [{"note": st.memo}] if st.memo else []},
        }
        if shipped:
            body["orderLogisticsInfo"] = [
                {"logisticsId": int(order.oid) % 10**9, "expressNo": st.waybill, "expressCode": EXPRESS_CODES.get(st.carrier, 9999)}
            ]
        if st.after != "none":
            body["orderRefundList"] = [
                {"refundId": int(order.oid) + 7, "refundStatus": _REFUND[st.after], "refundReason": "买家申请"}
            ]
        return body

    def rate_limited(self, retry_after: int) -> dict:
        return _reply(40004, "Exceed qps limit, KEY [apiId:open.order.cursor.list;appkey:emu-app], MAX_QPS [300.0]")

    def unavailable(self) -> dict:
        return _reply(50001, "系统内部错误，请稍后重试")

    def routes(self, world: World) -> list[Route]:
        async def cursor_list(request: Request) -> Response:
            params = await request_params(request)
            return await answer(world, METHOD, lambda: self._call(world, params))

        async def refresh(request: Request) -> Response:
            params = await request_params(request)
            world.count("oauth2.refresh_token")
            with world.lock:
                return JSONResponse(self._refresh(world, params))

        return [
            Route("/open/order/cursor/list", cursor_list, methods=["GET", "POST"]),
            Route("/oauth2/refresh_token", refresh, methods=["POST"]),
        ]

    def _refresh(self, world: World, p: dict[str, str]) -> dict:
        if p.get("app_id") != world.app_key or p.get("app_secret") != world.app_secret:
            return {"result": 100200100, "error": "invalid_client", "error_msg": "app_id 或 app_secret 不正确"}
        if p.get("grant_type") != "refresh_token":
            return {"result": 100200101, "error": "unsupported_grant_type", "error_msg": "grant_type 须为 refresh_token"}
        fresh = world.refresh(p.get("refresh_token"))
        if fresh is None:
            return {"result": 100200102, "error": "access_denied", "error_msg": "refreshToken.discarded"}
        return {
            "result": 1, "access_token": fresh["access_token"], "expires_in": self.token_ttl,
            "refresh_token": fresh["refresh_token"], "refresh_token_expires_in": 180 * DAY, "scopes": ["merchant_order"],
        }

    # -- one call, under the world's lock -------------------------------------------------------

    def _call(self, world: World, p: dict[str, str]) -> dict:
        for name in ("appkey", "method", "version", "param", "access_token", "timestamp", "signMethod", "sign"):
            if not p.get(name):
                return _reply(40001, f"缺少必要参数 {name}")
        if p["appkey"] != world.app_key:
            return _reply(40002, "appkey 不存在")
        if p["method"] != METHOD or p["version"] != "1":
            return _reply(40002, f"method {p['method']} / version {p['version']} 不存在")
        if p["signMethod"] not in ("MD5", "HMAC_SHA256") or p["sign"] != _sign(p, world.app_secret):
            return _reply(25, "签名校验失败")
        shop, problem = world.authorise(p["access_token"])
        if shop is None:
            return _reply(24, f"鉴权失败：TOKEN过期或无效（{problem}）")
        try:
            q = json.loads(p["param"])
            if not isinstance(q, dict):
                raise TypeError
            begin, end = int(q["beginTime"]), int(q["endTime"])
            size = int(q.get("pageSize", 20))
            cursor = str(q.get("cursor") or "")
            key = _uncursor(cursor) if cursor and cursor != NOMORE else None
            by_update = int(q.get("queryType", 2)) == 2
            newest_first = int(q.get("sort", 2)) == 1
        except (KeyError, TypeError, ValueError, UnicodeDecodeError):
            return _reply(40002, "参数格式错误：beginTime、endTime 为毫秒时间戳，pageSize 为整数，cursor 须为上次返回的值")
        if end <= begin:
            return _reply(300003, "ENDTIME MUST AFTER BEGINTIME")
        if end - begin > 7 * DAY * 1000:
            return _reply(300004, "SEARCH TIME RANGE EXPAND 7 DAYS")
        if begin < (world.clock.now() - 90 * DAY) * 1000:
            return _reply(300005, "CAN NOT SEARCH BEFORE 90 DAYS")
        if not 1 <= size <= 50:
            return _reply(40002, "pageSize 取值 1-50")
        if cursor == NOMORE:
            return _reply(1, data={"cursor": NOMORE, "orderList": [], "pageSize": size, "beginTime": begin, "endTime": end})
        lo, hi = math.ceil(begin / 1000), math.ceil(end / 1000)  # whole seconds t with begin <= t*1000 < end
        if by_update:
            world.shift(shop, lo, hi)
            found = [(o.events[o.visible_n - 1].at, o.oid) for o in world.window(shop, lo, hi)]
        else:
            found = sorted(
                (o.created, o.oid) for o in world.orders.values() if o.shop == shop and o.visible_n and lo <= o.created < hi
            )
        if newest_first:
            found.reverse()
            rest = [k for k in found if key is None or k < key]
        else:
            rest = [k for k in found if key is None or k > key]
        chunk = rest[:size]
        more = len(rest) > size
        rows = [world.visible(world.orders[oid]) for _, oid in chunk]
        if rows and world.faults.happens("dup"):
            rows.append(world.visible(world.orders[(rest[size:size + 1] or chunk[-1:])[0][1]]))
        return _reply(1, data={
            "cursor": _cursor(chunk[-1]) if more else NOMORE, "orderList": rows, "pageSize": size,
            "beginTime": begin, "endTime": end,
        })


PLATFORM = KuaishouPlatform
