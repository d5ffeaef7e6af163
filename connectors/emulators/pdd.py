"""Pinduoduo emulator: ``/api/router`` with md5 signatures, access tokens and PDD's error bodies.

Methods: ``pdd.order.number.list.increment.get`` (required ``start_updated_at``/``end_updated_at``
epoch seconds ≤ 30 minutes apart, ``order_status`` 1/2/3/5, ``refund_status`` 1–5, ``is_lucky_flag``;
``page`` from 1, ``page_size`` ≤ 100, ``use_has_next``; rows in update order) and
``pdd.pop.auth.token.refresh``. Field names follow the documented increment response
(lywzx/pdd-node-sdk); ``gift_list`` is second-hand.

Errors: ``{"error_response": {"error_code", "error_msg", "sub_code", "sub_msg", "request_id"}}`` —
the shape public PDD SDKs decode (dtapps/go-library ``ApiError``). 70031 "调用过于频繁，请调低调用频率"
(rate limit) and 10019 "access_token已过期" are PDD's well-known codes; the parameter (10000), sign
(10016) and service (50001) codes are this emulator's choice where no public table was found.
PDD hands over paid orders only; the receiver phone is plain while 待发货 and masked after.
"""

from __future__ import annotations

import hashlib
import itertools

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.emulators.core import DAY, HOUR, MINUTE, EmuOrder, Generator, Platform, State, World, answer, request_params
from connectors.platforms import cst_text

_REQUEST_IDS = itertools.count(1)
_ORDER_STATUS = {"paid": 1, "stocking": 1, "closed_refund": 1, "shipped": 2, "signed": 3, "finished": 3}
_REFUND = {
    "none": 1, "refund_requested": 2, "refunded": 4, "return_requested": 2, "returning": 2, "returned": 4, "rejected": 1,
}
_AFTER_SALES = {
    "none": 0, "refund_requested": 2, "refunded": 10, "return_requested": 3, "returning": 7, "returned": 10, "rejected": 9,
}
#: carrier code → PDD logistics_id (second-hand).
LOGISTICS_IDS = {"SF": 44, "YTO": 85, "ZTO": 115, "YD": 121, "EMS": 118, "JT": 384}


def _error(code: int, msg: str, sub_code: str = "", sub_msg: str = "") -> dict:
    return {
        "error_response": {
            "error_code": code, "error_msg": msg, "sub_code": sub_code, "sub_msg": sub_msg,
            "request_id": f"emu{next(_REQUEST_IDS):012d}",
        }
    }


def _sign(params: dict[str, str], secret: str) -> str:
    joined = "".join(key + params[key] for key in sorted(params) if key != "sign")
    return hashlib.md5((secret + joined + secret).encode("utf-8")).hexdigest().upper()


def _yuan(fen: int) -> float:
    """PDD sends amounts as JSON numbers in 元 (29.9): the adapter must read them exactly."""
    return fen / 100


class PddPlatform(Platform):
    """The PDD emulator (``PLATFORM``)."""

    name = "pdd"
    paid_on_create = True
    supports_gifts = True

    def new_order_id(self, gen: Generator, created: int) -> str:
        day = cst_text(created)[2:10].replace("-", "")
        return f"{day}-{gen.rng.randrange(10**15):015d}"

    def adapter(self):  # noqa: ANN201
        from connectors.platforms.pdd import PddAdapter

        return PddAdapter()

    def render(self, order: EmuOrder, st: State) -> dict:
        status = _ORDER_STATUS.get(st.stage, 1)
        waiting = status == 1
        if waiting:
            phone = order.virtual if order.phone_style == "virtual" else order.mobile
        else:
            phone = f"{order.mobile[:7]}****"
        goods = [line for line in order.lines if not line.gift]
        gifts = [line for line in order.lines if line.gift]
        body = {
            "order_sn": order.oid,
            "order_status": int(st.raw_status) if st.raw_status and st.raw_status.isdigit() else (st.raw_status or status),
            "refund_status": _REFUND[st.after],
            "after_sales_status": _AFTER_SALES[st.after],
            "confirm_status": 1,
            "group_status": 1,
            "trade_type": 0,
            "is_lucky_flag": 1,
            "is_pre_sale": 1 if order.presale else 0,
            "pre_sale_time": cst_text(order.created + 7 * DAY) if order.presale else "",
            "created_time": cst_text(order.created),
            "confirm_time": cst_text(st.paid_at) if st.paid_at else "",
            "pay_time": cst_text(st.paid_at) if st.paid_at else "",
            "updated_at": cst_text(st.modified),
            "last_ship_time": cst_text((st.paid_at or order.created) + 48 * HOUR + (7 * DAY if order.presale else 0)),
            "shipping_time": cst_text(st.shipped_at) if st.shipped_at else "",
            "receive_time": cst_text(st.signed_at) if st.signed_at else "",
            "pay_amount": _yuan(order.total),
            "goods_amount": _yuan(order.goods),
            "discount_amount": _yuan(order.discount),
            "postage": _yuan(order.post_fee),
            "remark": st.memo,
            "buyer_memo": order.note,
            "tracking_number": st.waybill if st.shipped_at else "",
            "logistics_id": LOGISTICS_IDS.get(st.carrier, 0) if st.shipped_at else 0,
            "country": "中国",
            "province": order.province,
            "city": order.city,
            "town": order.district,
            "address": f"{order.province}{order.city}{order.district}{order.detail}",
            "receiver_address": order.detail,
            "receiver_name": order.shown_name(),
            "receiver_phone": phone,
            "item_list": [self._item(line) for line in goods],
        }
        if gifts:
            body["gift_list"] = [self._item(line) for line in gifts]
        return body

    @staticmethod
    def _item(line) -> dict:  # noqa: ANN001 - core.Line
        digest = int(hashlib.md5(line.sku.encode()).hexdigest()[:10], 16)
        title, _, spec = line.title.rpartition(" ")
        return {
            "goods_id": 100_000_000 + digest % 10**8,
            "sku_id": 1_000_000_000 + digest % 10**9,
            "outer_id": line.sku,
            "outer_goods_id": line.sku.rsplit("-", 1)[0],
            "goods_name": title or line.title,
            "goods_spec": spec if title else "",
            "goods_count": line.qty,
            "goods_price": _yuan(line.price),
        }

    def rate_limited(self, retry_after: int) -> dict:
        return _error(70031, "调用过于频繁，请调低调用频率", "isv.call-limited", f"请 {retry_after} 秒后重试")

    def unavailable(self) -> dict:
        return _error(50001, "服务暂不可用", "isp.service-unavailable", "系统繁忙，请稍后重试")

    def routes(self, world: World) -> list[Route]:
        async def router(request: Request) -> Response:
            params = await request_params(request)
            method = params.get("type", "")
            return await answer(world, method or "(none)", lambda: self._call(world, params), faults=method != "pdd.pop.auth.token.refresh")

        return [Route("/api/router", router, methods=["POST", "GET"])]

    def _call(self, world: World, p: dict[str, str]) -> dict:  # noqa: PLR0911 - one return per check
        method = p.get("type")
        if not method or not p.get("client_id") or not p.get("timestamp") or not p.get("sign"):
            return _error(10000, "参数错误", "isv.missing-parameter", "type、client_id、timestamp、sign 为必填公共参数")
        if p["client_id"] != world.app_key:
            return _error(10016, "client_id不存在")
        if p["sign"] != _sign(p, world.app_secret):
            return _error(10016, "签名校验失败", "isv.sign-error", "sign 与参数不符")
        if method == "pdd.pop.auth.token.refresh":
            fresh = world.refresh(p.get("refresh_token"))
            if fresh is None:
                return _error(10019, "refresh_token已失效", "isv.refresh-token-invalid", "请重新授权")
            return {
                "pop_auth_token_refresh_response": {
                    "access_token": fresh["access_token"], "refresh_token": fresh["refresh_token"],
                    "expires_in": self.token_ttl, "owner_id": fresh["shop"], "owner_name": fresh["shop"],
                }
            }
        if method != "pdd.order.number.list.increment.get":
            return _error(10000, "参数错误", "isv.invalid-method", f"接口 {method} 不存在")
        shop, problem = world.authorise(p.get("access_token"))
        if shop is None:
            return _error(10019, "access_token已过期", "isv.token-invalid", f"access_token {problem}")
        try:
            start, end = int(p["start_updated_at"]), int(p["end_updated_at"])
            order_status, refund_status = int(p["order_status"]), int(p["refund_status"])
            int(p["is_lucky_flag"])
            page = int(p.get("page", "1"))
            page_size = int(p.get("page_size", "100"))
        except (KeyError, ValueError):
            return _error(
                10000, "参数错误", "isv.missing-parameter",
                "start_updated_at、end_updated_at、order_status、refund_status、is_lucky_flag 为必填整数",
            )
        if end <= start or end - start > 30 * MINUTE:
            return _error(10000, "参数错误", "isv.invalid-parameter", "end_updated_at 须晚于 start_updated_at，且间隔不能超过30分钟")
        if page < 1 or not 1 <= page_size <= 100:
            return _error(10000, "参数错误", "isv.invalid-parameter", "page 从 1 开始，page_size 取值 1-100")
        world.shift(shop, start, end)
        rows = [world.visible(o) for o in world.window(shop, start, end)]
        if order_status != 5:
            rows = [r for r in rows if r["order_status"] == order_status]
        if refund_status != 5:
            rows = [r for r in rows if r["refund_status"] == refund_status]
        total = len(rows)
        begin = (page - 1) * page_size
        chunk = rows[begin : begin + page_size]
        if chunk and world.faults.happens("dup"):
            chunk = chunk + (rows[begin + page_size : begin + page_size + 1] or rows[max(0, begin - 1) : begin] or chunk[:1])
        answer_body: dict = {"order_sn_list": chunk, "has_next": begin + page_size < total}
        if p.get("use_has_next", "false").lower() != "true":
            answer_body["total_count"] = total
        return {"order_sn_increment_get_response": answer_body}


PLATFORM = PddPlatform
