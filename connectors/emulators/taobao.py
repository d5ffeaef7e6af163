"""Taobao / Tmall TOP emulator: ``/router/rest`` with md5 signatures, sessions and TOP's error bodies.

Methods: ``taobao.trades.sold.increment.get`` (window ≤ 1 day, ``page_no`` from 1, ``page_size`` ≤ 100,
``use_has_next``, sorted by modified time descending, only the asked-for list fields),
``taobao.trade.fullinfo.get`` (one trade, every field) and ``taobao.top.auth.token.refresh``
(``token_result`` is a JSON *string*, as TOP sends it; the old refresh token is used up).

Error bodies are TOP's: ``{"error_response": {"code", "msg", "sub_code", "sub_msg", "request_id"}}``
with the public platform codes — 7 "App Call Limited" / ``accesscontrol.limited-by-app-access-count``
/ "This ban will last for N more seconds" (seen verbatim in public TOP clients), 15 "Remote service
error" / ``isp.*``, 21 Missing Method, 22 Invalid Method, 24/25 Missing/Invalid Signature, 26/27
Missing/Invalid Session (``invalid-sessionkey``), 28/29 Missing/Invalid App Key, 30 Missing
Timestamp, 40/41 Missing Required / Invalid Arguments (``isv.missing-parameter`` /
``isv.invalid-parameter``). The timestamp is not checked against the emulator's clock (tests freeze
that clock in the past). Tmall: the same emulator with Tmall's shops.
"""

from __future__ import annotations

import hashlib
import itertools
import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.emulators.core import CARRIERS, DAY, EmuOrder, Generator, Platform, State, World, answer, request_params
from connectors.platforms import CST, cst_text

_REQUEST_IDS = itertools.count(1)
_STATUS = {
    "pending": "WAIT_BUYER_PAY",
    "paid": "WAIT_SELLER_SEND_GOODS",
    "stocking": "WAIT_SELLER_SEND_GOODS",
    "shipped": "WAIT_BUYER_CONFIRM_GOODS",
    "signed": "TRADE_BUYER_SIGNED",
    "finished": "TRADE_FINISHED",
    "closed": "TRADE_CLOSED_BY_TAOBAO",
    "closed_refund": "TRADE_CLOSED",
}
_REFUND = {
    "none": "NO_REFUND",
    "refund_requested": "WAIT_SELLER_AGREE",
    "refunded": "SUCCESS",
    "return_requested": "WAIT_SELLER_AGREE",
    "returning": "WAIT_SELLER_CONFIRM_GOODS",
    "returned": "SUCCESS",
    "rejected": "SELLER_REFUSE_BUYER",
}
#: Fields the list call can return (anything else asked for is left out: the list is partial).
LIST_FIELDS = frozenset({"tid", "tid_str", "status", "modified", "created", "type", "pay_time", "payment", "buyer_open_uid"})


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _error(code: int, msg: str, sub_code: str = "", sub_msg: str = "") -> dict:
    body = {"code": code, "msg": msg, "request_id": f"emu{next(_REQUEST_IDS):010d}"}
    if sub_code:
        body["sub_code"] = sub_code
    if sub_msg:
        body["sub_msg"] = sub_msg
    return {"error_response": body}


def _sign(params: dict[str, str], secret: str) -> str:
    """Independent of the client's implementation on purpose: a shared bug would pass unnoticed."""
    joined = "".join(key + params[key] for key in sorted(params) if key != "sign")
    return hashlib.md5((secret + joined + secret).encode("utf-8")).hexdigest().upper()


class TaobaoPlatform(Platform):
    """The TOP emulator (``PLATFORM``)."""

    name = "taobao"
    close_minutes = 24 * 60
    supports_combos = True
    supports_gifts = True

    def new_order_id(self, gen: Generator, created: int) -> str:
        return f"{gen.rng.randrange(2, 5)}{gen.rng.randrange(10**18):018d}"

    def adapter(self):  # noqa: ANN201
        from connectors.platforms.taobao import TaobaoAdapter

        return TaobaoAdapter(self.channel)

    def render(self, order: EmuOrder, st: State) -> dict:
        status = st.raw_status or _STATUS[st.stage]
        refund = _REFUND[st.after]
        shipped = st.waybill and st.stage in ("shipped", "signed", "finished")
        subs = []
        for i, line in enumerate(order.lines):
            oid = f"{order.oid}{i + 1:02d}"
            sub = {
                "oid": int(oid),
                "oid_str": oid,
                "num_iid": 600_000_000_000 + (int(hashlib.md5(line.sku.encode()).hexdigest()[:8], 16) % 10**9),
                "outer_iid": line.sku.rsplit("-", 1)[0],
                "outer_sku_id": line.sku,
                "title": line.title,
                "num": line.qty,
                "price": _yuan(line.price),
                "total_fee": _yuan(line.price * line.qty),
                "payment": _yuan(line.price * line.qty),
                "status": status,
                "refund_status": refund,
            }
            if line.combo:
                sub["combo_id"] = line.combo
            if line.gift:
                sub["gift_mids"] = f"{order.oid}01"
            if shipped:
                sub.update(
                    logistics_company=CARRIERS[st.carrier][0], invoice_no=st.waybill, consign_time=cst_text(st.shipped_at)
                )
            subs.append(sub)
        phone = {"masked": order.masked_mobile(), "virtual": order.virtual, "cipher": order.cipher}.get(
            order.phone_style if self.channel == "taobao" or order.phone_style != "virtual" else "masked",
            order.masked_mobile(),
        )
        trade = {
            "tid": int(order.oid),
            "tid_str": order.oid,
            "type": "fixed",
            "status": status,
            "created": cst_text(order.created),
            "modified": cst_text(st.modified),
            "payment": _yuan(order.total),
            "total_fee": _yuan(order.goods),
            "post_fee": _yuan(order.post_fee),
            "discount_fee": _yuan(order.discount),
            "buyer_message": order.note,
            "seller_memo": st.memo,
            "seller_flag": 1 if st.memo else 0,
            "buyer_open_uid": "AAE" + hashlib.md5(order.mobile.encode()).hexdigest()[:20],
            "receiver_name": order.shown_name(),
            "receiver_state": order.province,
            "receiver_city": order.city,
            "receiver_district": order.district,
            "receiver_town": order.town,
            "receiver_address": order.detail,
            "receiver_mobile": phone,
            "receiver_phone": "",
            "oaid": hashlib.md5(f"oaid{order.oid}".encode()).hexdigest(),
            "orders": {"order": subs},
        }
        if st.paid_at is not None:
            trade["pay_time"] = cst_text(st.paid_at)
        if st.shipped_at is not None:
            trade["consign_time"] = cst_text(st.shipped_at)
        end = st.finished_at or st.closed_at
        if end is not None and st.stage in ("finished", "closed", "closed_refund"):
            trade["end_time"] = cst_text(end)
        if order.presale:
            trade["step_trade_status"] = "FRONT_PAID_FINAL_PAID"
        return trade

    def rate_limited(self, retry_after: int) -> dict:
        return _error(
            7, "App Call Limited", "accesscontrol.limited-by-app-access-count",
            f"This ban will last for {retry_after} more seconds",
        )

    def unavailable(self) -> dict:
        return _error(15, "Remote service error", "isp.top-remote-unknown-error", "远程服务调用失败，请稍后重试")

    def routes(self, world: World) -> list[Route]:
        async def router(request: Request) -> Response:
            params = await request_params(request)
            method = params.get("method", "")
            token_call = method == "taobao.top.auth.token.refresh"
            return await answer(world, method or "(none)", lambda: self._call(world, params), faults=not token_call)

        return [Route("/router/rest", router, methods=["GET", "POST"])]

    # -- one call, under the world's lock -------------------------------------------------------

    def _call(self, world: World, p: dict[str, str]) -> dict:  # noqa: PLR0911 - one return per TOP check
        method = p.get("method")
        if not method:
            return _error(21, "Missing Method")
        if not p.get("app_key"):
            return _error(28, "Missing App Key")
        if p["app_key"] != world.app_key:
            return _error(29, "Invalid App Key")
        if not p.get("timestamp"):
            return _error(30, "Missing Timestamp")
        if not p.get("sign"):
            return _error(24, "Missing Signature")
        if p.get("sign_method", "md5") != "md5" or p["sign"] != _sign(p, world.app_secret):
            return _error(25, "Invalid signature")
        if method == "taobao.top.auth.token.refresh":
            return self._refresh(world, p)
        if method not in ("taobao.trades.sold.increment.get", "taobao.trade.fullinfo.get"):
            return _error(22, "Invalid Method")
        if not p.get("session"):
            return _error(26, "Missing Session")
        shop, problem = world.authorise(p["session"])
        if shop is None:
            return _error(27, "Invalid session", "invalid-sessionkey", f"SessionKey非法 ({problem})")
        if method == "taobao.trade.fullinfo.get":
            return self._fullinfo(world, shop, p)
        return self._increment(world, shop, p)

    def _refresh(self, world: World, p: dict[str, str]) -> dict:
        fresh = world.refresh(p.get("refresh_token"))
        if fresh is None:
            return _error(15, "Remote service error", "isv.refresh-token-invalid", "refresh_token 无效或已使用")
        result = {
            "access_token": fresh["access_token"],
            "refresh_token": fresh["refresh_token"],
            "expires_in": self.token_ttl,
            "re_expires_in": 30 * DAY,
            "taobao_user_nick": fresh["shop"],
        }
        return {"top_auth_token_refresh_response": {"token_result": json.dumps(result, ensure_ascii=False)}}

    def _fullinfo(self, world: World, shop: str, p: dict[str, str]) -> dict:
        if not p.get("fields") or not p.get("tid"):
            return _error(40, "Missing Required Arguments", "isv.missing-parameter", "fields 和 tid 为必填参数")
        order = world.find(p["tid"], shop)
        if order is None:
            return _error(15, "Remote service error", "isv.trade-not-exist", f"交易 {p['tid']} 不存在")
        return {"trade_fullinfo_get_response": {"trade": world.visible(order)}}

    def _increment(self, world: World, shop: str, p: dict[str, str]) -> dict:
        from datetime import datetime

        if not p.get("start_modified") or not p.get("end_modified") or not p.get("fields"):
            return _error(40, "Missing Required Arguments", "isv.missing-parameter", "start_modified、end_modified、fields 为必填参数")
        try:
            start = int(datetime.strptime(p["start_modified"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST).timestamp())
            end = int(datetime.strptime(p["end_modified"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST).timestamp())
            page_no = int(p.get("page_no", "1"))
            page_size = int(p.get("page_size", "40"))
        except ValueError:
            return _error(41, "Invalid Arguments", "isv.invalid-parameter", "时间格式应为 yyyy-MM-dd HH:mm:ss，分页参数应为整数")
        if end <= start or end - start > DAY:
            return _error(41, "Invalid Arguments", "isv.invalid-parameter", "end_modified 须晚于 start_modified，且间隔不能超过一天")
        if page_no < 1 or not 1 <= page_size <= 100:
            return _error(41, "Invalid Arguments", "isv.invalid-parameter", "page_no 从 1 开始，page_size 取值 1-100")
        world.shift(shop, start, end)
        wanted = {f.strip() for f in p["fields"].split(",")} & LIST_FIELDS
        rows = list(reversed(world.window(shop, start, end)))  # modified time descending
        total = len(rows)
        begin = (page_no - 1) * page_size
        page = rows[begin : begin + page_size]
        if page and world.faults.happens("dup"):
            neighbour = rows[begin + page_size : begin + page_size + 1] or rows[max(0, begin - 1) : begin] or page[:1]
            page = page + neighbour
        trades = []
        for order in page:
            full = world.visible(order)
            trades.append({k: v for k, v in full.items() if k in wanted})
        answer_body: dict = {"has_next": begin + page_size < total}
        if p.get("use_has_next", "false").lower() != "true":
            answer_body["total_results"] = total
        if trades:
            answer_body["trades"] = {"trade": trades}
        return {"trades_sold_increment_get_response": answer_body}


PLATFORM = TaobaoPlatform
