"""JD (京东 JOS) emulator: ``/routerjson`` with md5 signatures, access tokens, JOS error bodies and a
real per-second call limit.

Method ``jingdong.pop.order.search``: business parameters travel as one JSON string in
``360buy_param_json`` (``start_date``/``end_date`` ``yyyy-MM-dd HH:mm:ss`` Beijing time, at most 30
days apart — JD says "one month"; ``order_state`` a required comma list, only orders in those states
are returned; ``page`` from 1; ``page_size`` 1–100; ``dateType`` 0 = modified time (default) or 1 =
order time; ``sortType`` 0 = oldest first (default) or 1 = newest first). Tokens:
``/oauth2/refresh_token?app_key&app_secret&grant_type=refresh_token&refresh_token`` (the open-oauth
answer shape ``{access_token, expires_in, refresh_token, scope, open_id, uid, time, token_type,
code}``; the old refresh token is used up).

Format, from public JOS material: the official call guide (help.jd.com/jos/question-580.html:
system parameters ``method``, ``access_token``, ``app_key``, ``timestamp``, ``v=2.0``, ``sign``, the
business JSON in ``360buy_param_json``), the signature MD5(secret + sorted k+v + secret) upper-case
(JOS SDKs), the answer wrapper ``jingdong_pop_order_search_responce`` (sic) →
``searchorderinfo_result`` → ``apiResult{success, chineseErrCode, englishErrCode, numberCode}``,
``orderTotal``, ``orderInfoList`` (public clients, e.g. the oms_server jd module), and gateway errors
``{"error_response": {"code": "12", "zh_desc": "无效签名", "en_desc": "Invalid Signature"}}`` with the
JOS codes 4/7/11/12/14/15/19/21 (DianSan's JOS error table, blog.csdn.net/DianSan_ERP/article/details/
142364242; 19 无效access_token and 65 系统处理超时 seen in public clients). The per-second limit answers ``code "2" App Call Limited``; which code JD
really sends for its ~10 calls/s limit is not public, so that choice is this emulator's. Business
errors (window, page size) come back inside ``apiResult`` with ``success: false`` and this emulator's
``numberCode`` values.

Not the list API's, but this emulator's: ``afterSaleState`` (JD reports after-sale through its own
service API; the raw codes 0/1/2/3 are the ones ``connectors/maps/jd.toml`` lists) and the
``logisticsId`` table below. An order whose buyer asked for a refund before it left the warehouse
shows ``LOCKED`` (锁定), as JD locks such orders. JD hands over paid orders only.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.emulators.core import (
    DAY,
    EmuOrder,
    Generator,
    Platform,
    State,
    World,
    answer,
    request_params,
)
from connectors.platforms import CST, cst_text

#: The shops ``deskapp emulate jd`` serves (register as ``core.SHOPS["jd"]``).
DEMO_SHOPS: tuple[tuple[str, str], ...] = (("shop1", "知茶京东专营店"), ("shop2", "知茶京东茶具店"))

METHOD = "jingdong.pop.order.search"
#: Every state ``order_state`` can ask for (the Source asks for all of them).
STATES: tuple[str, ...] = (
    "WAIT_SELLER_STOCK_OUT", "WAIT_SELLER_DELIVERY", "WAIT_GOODS_RECEIVE_CONFIRM", "FINISHED_L",
    "TRADE_CANCELED", "LOCKED", "PAUSE",
)
_STAGE = {
    "paid": "WAIT_SELLER_STOCK_OUT", "stocking": "WAIT_SELLER_STOCK_OUT", "shipped": "WAIT_GOODS_RECEIVE_CONFIRM",
    "signed": "WAIT_GOODS_RECEIVE_CONFIRM", "finished": "FINISHED_L", "closed": "TRADE_CANCELED",
    "closed_refund": "TRADE_CANCELED", "pending": "WAIT_SELLER_STOCK_OUT",
}
_REMARK = {
    "WAIT_SELLER_STOCK_OUT": "等待出库", "WAIT_SELLER_DELIVERY": "等待发货", "WAIT_GOODS_RECEIVE_CONFIRM": "等待确认收货",
    "FINISHED_L": "完成", "TRADE_CANCELED": "取消", "LOCKED": "已锁定", "PAUSE": "暂停",
}
_AFTER = {"refund_requested": "0", "refunded": "3", "return_requested": "0", "returning": "1", "returned": "3", "rejected": "2"}
#: carrier code → JD ``logisticsId`` (this emulator's table; check JD's logistics list before relying on it).
LOGISTICS_IDS: dict[str, str] = {"SF": "467", "ZTO": "1499", "YTO": "463", "YD": "1327", "JT": "6012", "EMS": "465"}
_REQUEST_IDS = itertools.count(1)


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _error(code: str, zh: str, en: str) -> dict:
    return {"error_response": {"code": code, "zh_desc": zh, "en_desc": en}}


def _refused(zh: str, number: int) -> dict:
    """A business refusal: HTTP 200, the method's wrapper, ``apiResult.success`` false."""
    return {
        "jingdong_pop_order_search_responce": {
            "code": "0",
            "searchorderinfo_result": {
                "apiResult": {"success": False, "chineseErrCode": zh, "englishErrCode": "param error", "numberCode": number}
            },
        }
    }


def _sign(params: dict[str, str], secret: str) -> str:
    """Independent of the client's implementation on purpose: a shared bug would pass unnoticed."""
    joined = "".join(key + params[key] for key in sorted(params) if key != "sign")
    return hashlib.md5((secret + joined + secret).encode("utf-8")).hexdigest().upper()


def vender_id(shop: str) -> int:
    """A shop's JD ``venderId`` (stable per shop code)."""
    return 10_000_000 + int(hashlib.md5(shop.encode()).hexdigest()[:6], 16) % 9_000_000


def _mask_digits(value: str) -> str:
    return "".join("*" if c.isdigit() else c for c in value)


class Bucket:
    """A token bucket in real time: ``rate`` calls per second, bursts up to ``rate``.

    ``clock`` (seconds, monotonic) can be replaced to freeze the bucket in a test.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: float | None = None
        self._at = 0.0
        self.clock = time.monotonic
        #: How many calls were refused.
        self.refused = 0

    def reset(self) -> None:
        """Full again (the next call starts a new burst)."""
        with self._lock:
            self._tokens = None

    def take(self, rate: float | None) -> bool:
        """Whether one more call may go through now."""
        if rate is None or rate <= 0:
            return True
        with self._lock:
            now = self.clock()
            if self._tokens is None:
                self._tokens = rate
            else:
                self._tokens = min(rate, self._tokens + (now - self._at) * rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            self.refused += 1
            return False


class JdPlatform(Platform):
    """The JOS emulator (``PLATFORM``). ``rate_limit`` calls per second per app key (None: no limit)."""

    name = "jd"
    paid_on_create = True
    #: JD's documented order of magnitude; tests that are not about the limit raise or clear it.
    rate_limit: float | None = 10.0

    def __init__(self, channel: str) -> None:
        super().__init__(channel)
        self.bucket = Bucket()

    def new_order_id(self, gen: Generator, created: int) -> str:
        return str(gen.rng.randrange(200_000_000_000, 400_000_000_000))

    def adapter(self):
        from connectors.platforms.jd import JdAdapter

        return JdAdapter()

    def state(self, order: EmuOrder, st: State) -> str:
        """The JD ``orderState`` of an order in state ``st``."""
        if st.raw_status:
            return st.raw_status
        if st.stage in ("paid", "stocking") and st.after in ("refund_requested", "return_requested"):
            return "LOCKED"  # JD locks an order whose buyer asked for a refund before it left
        state = _STAGE[st.stage]
        if state == "WAIT_SELLER_STOCK_OUT":
            mark = order.serial % 40
            if mark == 7:
                return "WAIT_SELLER_DELIVERY"  # 海外购: 等待境内发货
            if mark == 13:
                return "PAUSE"
        return state

    def render(self, order: EmuOrder, st: State) -> dict:
        state = self.state(order, st)
        shipped = bool(st.waybill) and st.stage in ("shipped", "signed", "finished")
        phone = order.virtual if order.phone_style == "virtual" else order.masked_mobile()
        detail = _mask_digits(order.detail)
        city = order.city if order.city != order.province else ""
        body = {
            "orderId": order.oid,
            "venderId": str(vender_id(order.shop)),
            "orderType": "22",
            "payType": "4-在线支付",
            "orderState": state,
            "orderStateRemark": _REMARK.get(state, ""),
            "orderStartTime": cst_text(order.created),
            "modified": cst_text(st.modified),
            "paymentConfirmTime": cst_text(st.paid_at) if st.paid_at else "",
            "orderTotalPrice": _yuan(order.goods),
            "orderSellerPrice": _yuan(order.goods - order.discount),
            "orderPayment": _yuan(order.total),
            "freightPrice": _yuan(order.post_fee),
            "sellerDiscount": _yuan(order.discount),
            "orderRemark": order.note,
            "venderRemark": st.memo,
            "waybill": st.waybill if shipped else "",
            "logisticsId": LOGISTICS_IDS.get(st.carrier, "") if shipped else "",
            "consigneeInfo": {
                "fullname": order.shown_name(),
                "mobile": phone,
                "telephone": phone if order.serial % 5 == 0 else "",
                "province": order.province,
                "city": order.city,
                "county": order.district,
                "town": order.town,
                "fullAddress": f"{order.province}{city}{order.district}{order.town}{detail}",
            },
            "itemInfoList": [self._item(line) for line in order.lines],
        }
        if st.after != "none":
            body["afterSaleState"] = _AFTER[st.after]
        return body

    @staticmethod
    def _item(line) -> dict:
        digest = int(hashlib.md5(line.sku.encode()).hexdigest()[:10], 16)
        return {
            "skuId": str(100_000_000_000 + digest % 10**11),
            "outerSkuId": line.sku,
            "wareId": str(10_000_000_000 + digest % 10**10),
            "skuName": line.title,
            "itemTotal": str(line.qty),
            "jdPrice": _yuan(line.price),
            "productNo": line.sku.rsplit("-", 1)[0],
        }

    def rate_limited(self, retry_after: int) -> dict:
        return _error("2", "调用频率超过限制，请稍后再试", "App Call Limited")

    def unavailable(self) -> dict:
        return _error("65", "系统处理超时！请重新进行检索！", "Service Timeout")

    def routes(self, world: World) -> list[Route]:
        async def router(request: Request) -> Response:
            params = await request_params(request)
            return await answer(world, params.get("method") or "(none)", lambda: self._call(world, params))

        async def refresh(request: Request) -> Response:
            params = await request_params(request)
            world.count("oauth2.refresh_token")
            with world.lock:
                return JSONResponse(self._refresh(world, params))

        return [
            Route("/routerjson", router, methods=["GET", "POST"]),
            Route("/oauth2/refresh_token", refresh, methods=["GET", "POST"]),
        ]

    def _refresh(self, world: World, p: dict[str, str]) -> dict:
        if p.get("app_key") != world.app_key or p.get("app_secret") != world.app_secret:
            return {"code": 401, "msg": "app_key 或 app_secret 不正确", "requestId": f"emu{next(_REQUEST_IDS)}"}
        if p.get("grant_type") != "refresh_token":
            return {"code": 400, "msg": "grant_type 须为 refresh_token", "requestId": f"emu{next(_REQUEST_IDS)}"}
        fresh = world.refresh(p.get("refresh_token"))
        if fresh is None:
            return {"code": 403, "msg": "refresh_token 无效或已使用", "requestId": f"emu{next(_REQUEST_IDS)}"}
        return {
            "access_token": fresh["access_token"], "expires_in": self.token_ttl, "refresh_token": fresh["refresh_token"],
            "scope": "snsapi_base", "open_id": f"jd-open-{fresh['shop']}", "uid": str(vender_id(fresh["shop"])),
            "time": world.clock.now() * 1000, "token_type": "bearer", "code": 0,
        }

    # -- one call, under the world's lock -------------------------------------------------------

    def _call(self, world: World, p: dict[str, str]) -> dict:
        if not p.get("method"):
            return _error("14", "缺少方法名参数", "Missing Method")
        if p["method"] != METHOD:
            return _error("15", "不存在的方法名", "Invalid Method")
        if p.get("app_key") != world.app_key:
            return _error("21", "无效App Key", "Invalid App Key")
        if not self.bucket.take(self.rate_limit):
            return self.rate_limited(1)
        if not p.get("v"):
            return _error("4", "缺少版本参数", "Missing Version")
        if p["v"] != "2.0":
            return _error("5", "不支持的版本号", "Unsupported Version")
        if not p.get("timestamp"):
            return _error("7", "缺少时间戳参数", "Missing Timestamp")
        if not p.get("sign"):
            return _error("11", "缺少签名参数", "Missing Signature")
        if p["sign"] != _sign(p, world.app_secret):
            return _error("12", "无效签名", "Invalid Signature")
        shop, problem = world.authorise(p.get("access_token"))
        if shop is None:
            return _error("19", f"无效access_token（{problem}）", "Invalid access_token")
        try:
            business = json.loads(p.get("360buy_param_json") or "{}")
            if not isinstance(business, dict):
                raise TypeError
        except (TypeError, ValueError):
            return _refused("360buy_param_json 不是合法的 JSON 对象", 10100001)
        return self._search(world, shop, {k: str(v) for k, v in business.items()})

    def _search(self, world: World, shop: str, b: dict[str, str]) -> dict:
        try:
            start = _cst_epoch(b["start_date"])
            end = _cst_epoch(b["end_date"])
            page = int(b.get("page", "1"))
            page_size = int(b.get("page_size", "20"))
        except (KeyError, ValueError):
            return _refused("start_date、end_date 必填，格式 yyyy-MM-dd HH:mm:ss；page、page_size 须为整数", 10100002)
        if end <= start:
            return _refused("结束时间须晚于开始时间", 10100003)
        if end - start > 30 * DAY:
            return _refused("开始时间和结束时间，不得相差超过1个月", 10100004)
        if page < 1 or not 1 <= page_size <= 100:
            return _refused("page 从 1 开始，page_size 取值 1-100", 10100005)
        wanted = {s.strip() for s in b.get("order_state", "").split(",") if s.strip()}
        if not wanted:
            return _refused("order_state 必填（多个状态用英文逗号分隔）", 10100006)
        if b.get("dateType", "0") == "1":
            found = sorted(
                (o for o in world.orders.values() if o.shop == shop and o.visible_n and start <= o.created < end),
                key=lambda o: (o.created, o.oid),
            )
        else:
            world.shift(shop, start, end)
            found = world.window(shop, start, end)
        rows = [world.visible(o) for o in found]
        rows = [r for r in rows if r["orderState"] in wanted]
        if b.get("sortType", "0") == "1":
            rows.reverse()
        total = len(rows)
        begin = (page - 1) * page_size
        chunk = rows[begin : begin + page_size]
        if chunk and world.faults.happens("dup"):
            chunk = chunk + (rows[begin + page_size : begin + page_size + 1] or rows[max(0, begin - 1) : begin] or chunk[:1])
        return {
            "jingdong_pop_order_search_responce": {
                "code": "0",
                "searchorderinfo_result": {
                    "apiResult": {"success": True, "chineseErrCode": "成功", "englishErrCode": "success", "numberCode": 10100000},
                    "orderTotal": total,
                    "orderInfoList": chunk,
                },
            }
        }


def _cst_epoch(value: str) -> int:
    return int(datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST).timestamp())


PLATFORM = JdPlatform
