"""Youzan (有赞云) emulator: ``/api/{method}/{version}`` with the access token in the query, the
gateway's ``gw_err_resp`` errors and ``/auth/token`` refresh.

``youzan.trades.sold.get`` (versions 4.0.0–4.0.4, JSON body): ``start_update``/``end_update``
``yyyy-MM-dd HH:mm:ss`` Beijing time, given as a pair, at most 3 months (92 days) apart; a date-only
value (``2026-11-20``) answers error 5001, as CHANNELS.md notes; ``page_no`` 1–100 and
``page_size`` 1–100, so at most 10,000 rows of one query are reachable; rows in update order;
``status`` filters when given. The answer: ``{"success": true, "code": 200, "data": {"total_results",
"full_order_info_list": [{"full_order_info": {...}}]}, "message", "trace_id"}``.

Gateway errors come in HTTP 200 as ``{"gw_err_resp": {"trace_id", "err_code", "err_msg"}}``:
4001 非法请求地址 (no version in the path), 4005 非法的API, 4007 非法的请求姿势 (not JSON), 4201 非法的请求
凭证 (no token), 4203 Token 不存在 — all observed on the live gateway (a public probe log of
open.youzanyun.com). 4202 "Token 已过期", the rate limit (4301 "API 调用频次超限") and the busy answer
(5500 "服务繁忙") are this emulator's choices where no public table was found; business errors come
as ``{"success": false, "code": 5001, "message"}``. ``/auth/token`` (JSON ``{"authorize_type":
"refresh_token", "client_id", "client_secret", "refresh_token"}``) answers ``{"success", "code",
"data": {"access_token", "expires", "scope", "refresh_token"}, "message"}``; the old refresh token
is used up.

Field names follow CHANNELS.md (``full_order_info{order_info, address_info, orders[], remark_info}``,
``deduction_pay`` in 分, other amounts in 元). Second-hand or this emulator's: ``pay_info``
(``total_fee``, ``payment``, ``post_fee``, ``deduction_pay``), ``order_info.refund_state`` (0 none,
11 全额退款中, 12 全额退款成功), ``delivery_order[].dists[].express_info{express_id, express_no}`` with
the ``EXPRESS_IDS`` table, ``orders[].is_present`` for gifts. Some paid orders wait as
``WAIT_CONFIRM`` (拼团待成团) before ``WAIT_SELLER_SEND_GOODS``. Receivers are masked.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
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
)
from connectors.platforms import CST, cst_text

#: The shops ``deskapp emulate youzan`` serves (register as ``core.SHOPS["youzan"]``).
DEMO_SHOPS: tuple[tuple[str, str], ...] = (("shop1", "知茶有赞微商城"), ("shop2", "知茶社群团购"))

METHOD = "youzan.trades.sold.get"
VERSIONS = ("4.0.0", "4.0.1", "4.0.2", "4.0.3", "4.0.4")
_STATUS = {
    "pending": "WAIT_BUYER_PAY", "paid": "WAIT_SELLER_SEND_GOODS", "stocking": "WAIT_SELLER_SEND_GOODS",
    "shipped": "WAIT_BUYER_CONFIRM_GOODS", "signed": "WAIT_BUYER_CONFIRM_GOODS", "finished": "TRADE_SUCCESS",
    "closed": "TRADE_CLOSED", "closed_refund": "TRADE_CLOSED",
}
_STATUS_STR = {
    "WAIT_BUYER_PAY": "待付款", "WAIT_CONFIRM": "待确认", "WAIT_SELLER_SEND_GOODS": "待发货",
    "WAIT_BUYER_CONFIRM_GOODS": "已发货", "TRADE_SUCCESS": "已完成", "TRADE_CLOSED": "已关闭",
}
#: refund_state: 0 none, 11 全额退款中, 12 全额退款成功 (a refused request goes back to 0).
_REFUND = {"none": 0, "refund_requested": 11, "refunded": 12, "return_requested": 11, "returning": 11, "returned": 12, "rejected": 0}
#: carrier code → Youzan ``express_id`` (this emulator's table).
EXPRESS_IDS: dict[str, int] = {"SF": 7, "YTO": 2, "ZTO": 3, "YD": 4, "EMS": 11, "JT": 138}
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_TRACE = itertools.count(1)


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _trace() -> str:
    return f"yz7-emu-{next(_TRACE):010d}"


def gateway_error(code: int, msg: str) -> dict:
    """The gateway's error body."""
    return {"gw_err_resp": {"trace_id": _trace(), "err_code": code, "err_msg": msg}}


def _failed(code: int, message: str) -> dict:
    return {"success": False, "code": code, "message": message, "data": None, "trace_id": _trace()}


class YouzanPlatform(Platform):
    """The 有赞云 emulator (``PLATFORM``)."""

    name = "youzan"
    close_minutes = 30
    supports_gifts = True

    def new_order_id(self, gen: Generator, created: int) -> str:
        return f"E{cst_text(created)[:10].replace('-', '')}{gen.rng.randrange(10**15):015d}"

    def adapter(self):
        from connectors.platforms.youzan import YouzanAdapter

        return YouzanAdapter()

    def status(self, order: EmuOrder, st: State) -> str:
        """The Youzan ``status`` of an order in state ``st``."""
        if st.raw_status:
            return st.raw_status
        if st.stage == "paid" and order.serial % 9 == 4:
            return "WAIT_CONFIRM"  # 拼团: paid, waiting for the group to fill
        return _STATUS[st.stage]

    def render(self, order: EmuOrder, st: State) -> dict:
        status = self.status(order, st)
        shipped = bool(st.waybill) and st.stage in ("shipped", "signed", "finished")
        phone = order.virtual if order.phone_style == "virtual" else order.masked_mobile()
        lines = []
        for i, line in enumerate(order.lines):
            title, _, spec = line.title.rpartition(" ")
            lines.append(
                {
                    "oid": f"{order.serial:07d}{i + 1:02d}{int(hashlib.md5(line.sku.encode()).hexdigest()[:6], 16) % 10**6:06d}",
                    "outer_sku_id": line.sku,
                    "outer_item_id": line.sku.rsplit("-", 1)[0],
                    "title": title or line.title,
                    "sku_properties_name": json.dumps([{"k": "规格", "v": spec}], ensure_ascii=False) if title else "",
                    "num": line.qty,
                    "price": _yuan(line.price),
                    "payment": _yuan(line.price * line.qty),
                    "is_present": line.gift,
                }
            )
        info = {
            "order_info": {
                "tid": order.oid,
                "status": status,
                "status_str": _STATUS_STR.get(status, ""),
                "type": 0,
                "created": cst_text(order.created),
                "update_time": cst_text(st.modified),
                "pay_time": cst_text(st.paid_at) if st.paid_at else "",
                "consign_time": cst_text(st.shipped_at) if st.shipped_at else "",
                "success_time": cst_text(st.finished_at) if st.finished_at else "",
                "refund_state": _REFUND[st.after],
            },
            "address_info": {
                "receiver_name": order.shown_name(),
                "receiver_tel": phone,
                "delivery_province": order.province,
                "delivery_city": order.city,
                "delivery_district": order.district,
                "delivery_address": f"{order.town}{order.detail}",
                "delivery_postal_code": "",
            },
            "remark_info": {"buyer_message": order.note, "trade_memo": st.memo, "star": 1 if st.memo else 0},
            "pay_info": {
                "total_fee": _yuan(order.goods),
                "payment": _yuan(order.total),
                "post_fee": _yuan(order.post_fee),
                "deduction_pay": order.discount,  # 分, unlike every other amount here
            },
            "orders": lines,
            "delivery_order": [],
        }
        if shipped:
            info["delivery_order"] = [
                {
                    "express_state": 1,
                    "dists": [{"express_info": {"express_id": EXPRESS_IDS.get(st.carrier, 0), "express_no": st.waybill}}],
                }
            ]
        return {"full_order_info": info}

    def rate_limited(self, retry_after: int) -> dict:
        return gateway_error(4301, "API 调用频次超限，请稍后再试")

    def unavailable(self) -> dict:
        return gateway_error(5500, "服务繁忙，请稍后重试")

    def routes(self, world: World) -> list[Route]:
        async def api(request: Request) -> Response:
            method, version = request.path_params["method"], request.path_params.get("version", "")
            query = dict(request.query_params)
            kind = request.headers.get("content-type", "")
            raw = await request.body()
            return await answer(world, method, lambda: self._call(world, method, version, query, kind, raw))

        async def no_version(_: Request) -> Response:
            return JSONResponse(gateway_error(4001, "非法请求地址"))

        async def token(request: Request) -> Response:
            world.count("auth.token")
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError:
                body = None
            with world.lock:
                return JSONResponse(self._token(world, body))

        return [
            Route("/api/{method}/{version}", api, methods=["POST", "GET"]),
            Route("/api/{method}", no_version, methods=["POST", "GET"]),
            Route("/auth/token", token, methods=["POST"]),
        ]

    def _token(self, world: World, body: object) -> dict:
        if not isinstance(body, dict):
            return _failed(1000, "Content type not supported, Please use 'application/json;charset=UTF-8'")
        if body.get("client_id") != world.app_key or body.get("client_secret") != world.app_secret:
            return _failed(1103, "Client 不存在")
        if body.get("authorize_type") != "refresh_token":
            return _failed(1102, "authorize_type 不支持")
        fresh = world.refresh(str(body.get("refresh_token") or ""))
        if fresh is None:
            return _failed(1106, "refresh_token 无效或已使用")
        return {
            "success": True, "code": 200, "message": None,
            "data": {
                "access_token": fresh["access_token"], "expires": (world.clock.now() + self.token_ttl) * 1000,
                "scope": "trade", "refresh_token": fresh["refresh_token"], "authority_id": fresh["shop"],
            },
        }

    # -- one call, under the world's lock -------------------------------------------------------

    def _call(self, world: World, method: str, version: str, query: dict[str, str], kind: str, raw: bytes) -> dict:
        if method != METHOD or version not in VERSIONS:
            return gateway_error(4005, "非法的API")
        if "json" not in kind:
            return gateway_error(4007, f"非法的请求姿势，httpMethod:POST, contentType:{kind or 'none'}")
        token = query.get("access_token")
        if not token:
            return gateway_error(4201, "非法的请求凭证")
        shop, problem = world.authorise(token)
        if shop is None:
            return gateway_error(4202, "Token 已过期") if problem == "expired" else gateway_error(4203, "Token 不存在")
        try:
            params = json.loads(raw or b"{}")
            if not isinstance(params, dict):
                raise TypeError
        except (TypeError, ValueError):
            return _failed(5001, "请求参数不是合法的 JSON 对象")
        return self._sold(world, shop, params)

    def _sold(self, world: World, shop: str, p: dict) -> dict:
        start_text, end_text = p.get("start_update"), p.get("end_update")
        if (start_text is None) != (end_text is None):
            return _failed(5001, "start_update 和 end_update 须同时传入")
        if start_text is None:
            return _failed(5001, "请传入 start_update 和 end_update（更新时间范围）")
        for name, value in (("start_update", start_text), ("end_update", end_text)):
            if not isinstance(value, str) or not _DATE_TIME.fullmatch(value.strip()):
                return _failed(5001, f"{name} 格式错误：须为 yyyy-MM-dd HH:mm:ss，不能只传日期")
        try:
            start, end = _cst_epoch(start_text), _cst_epoch(end_text)
            page_no = int(p.get("page_no", 1))
            page_size = int(p.get("page_size", 40))
        except (TypeError, ValueError):
            return _failed(5001, "时间或分页参数不合法")
        if end <= start or end - start > 92 * DAY:
            return _failed(5001, "end_update 须晚于 start_update，且时间跨度不能超过3个月")
        if not 1 <= page_no <= 100 or not 1 <= page_size <= 100:
            return _failed(5001, "page_no 取值 1-100，page_size 取值 1-100")
        world.shift(shop, start, end)
        rows = [world.visible(o) for o in world.window(shop, start, end)]
        if p.get("status"):
            rows = [r for r in rows if r["full_order_info"]["order_info"]["status"] == p["status"]]
        total = len(rows)
        begin = (page_no - 1) * page_size
        chunk = rows[begin : begin + page_size]
        if chunk and world.faults.happens("dup"):
            chunk = chunk + (rows[begin + page_size : begin + page_size + 1] or rows[max(0, begin - 1) : begin] or chunk[:1])
        return {
            "success": True, "code": 200, "message": "successful", "trace_id": _trace(),
            "data": {"total_results": total, "full_order_info_list": chunk},
        }


def _cst_epoch(value: str) -> int:
    return int(datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST).timestamp())


PLATFORM = YouzanPlatform
