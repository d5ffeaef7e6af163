"""聚水潭 (Jushuitan ERP) emulator: ``/open/orders/single/query`` with md5 signatures, access tokens and
``/openWeb/auth/refreshToken``.

``orders.single.query`` (form POST): ``app_key``, ``access_token``, ``timestamp`` (epoch s),
``charset=utf-8``, ``version=2``, ``sign`` and the business JSON in ``biz``: ``modified_begin`` and
``modified_end`` (``yyyy-MM-dd HH:mm:ss``, together, at most 7 days apart), ``page_index`` from 1,
``page_size`` 1–100, ``status`` optional. Rows in modified order. The answer: ``{"code": 0, "msg":
"执行成功", "data": {"page_size", "page_index", "data_count", "page_count", "has_next", "orders"}}``.

From public 聚水潭 open-platform clients: the signature (lower-case hex MD5 of ``app_secret`` + the
parameters sorted by name as ``k+v``, ``sign`` left out), the ``/openWeb/auth/refreshToken`` form
(``app_key``, ``timestamp``, ``grant_type=refresh_token``, ``charset``, ``refresh_token``,
``scope=all``, answered with ``data{access_token, expires_in, refresh_token, scope}``), the error
codes (100 token 超时/无效 → refresh, 120 签名错误, 140 参数不符合规范, 150 内部处理异常, 199/200 调用太频繁
— quoted from openweb.jushuitan.com's code table in a public client) and the order fields (``o_id``
ERP number, ``so_id`` platform number, ``status``, ``shop_status``, ``order_date``, ``pay_date``,
``send_date``, ``modified``, ``pay_amount``/``paid_amount``/``free_amount`` numbers and ``freight``
text in 元, ``receiver_*``, ``l_id``/``lc_id``/``logistics_company``, ``question_type``,
``link_o_id``, ``merge_so_id``, ``is_merge``, ``is_split``, ``items[]``; a public client's
``JushuitanOrderRespVO`` lists them with their meanings).

Statuses: WaitPay, WaitConfirm (已付款待审核), WaitFConfirm (待财审), Question (异常, with
``question_type``), Delivering (发货中), Sent, Cancelled, and Merged / Split — the last two say the
order was merged into, or split into, the ERP order ``link_o_id``. Here a few orders of the world are
shown Merged / Split from payment on (their own life — payment, shipment — still shows in
``pay_date``, ``send_date``, ``l_id`` and ``shop_status``), a few are merge results
(``is_merge`` with ``merge_so_id``) or split results (``is_split``). The ERP holds receivers in
plain text (it decrypted them from the platforms). ``as_id``/``as_status`` carry the after-sale state
(the real API reports it through ``refund.single.query``; the codes are that API's, as
``connectors/maps/jst.toml`` lists them) — a simplification of this emulator.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.emulators.core import (
    CARRIERS,
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

#: The shops ``deskapp emulate jst`` serves (register as ``core.SHOPS["jst"]``): one ERP account each.
DEMO_SHOPS: tuple[tuple[str, str], ...] = (("shop1", "聚水潭·知茶总仓"),)

_SHOP_STATUS = {
    "pending": "WAIT_BUYER_PAY", "paid": "WAIT_SELLER_SEND_GOODS", "stocking": "WAIT_SELLER_SEND_GOODS",
    "shipped": "WAIT_BUYER_CONFIRM_GOODS", "signed": "WAIT_BUYER_CONFIRM_GOODS", "finished": "TRADE_FINISHED",
    "closed": "TRADE_CLOSED_BY_TAOBAO", "closed_refund": "TRADE_CLOSED",
}
_AS_STATUS = {
    "refund_requested": "WaitConfirm", "refunded": "Finished", "return_requested": "WaitConfirm",
    "returning": "WaitGoods", "returned": "Finished", "rejected": "Cancelled",
}
#: carrier code → 聚水潭 ``lc_id`` (物流公司编码; second-hand).
LC_IDS: dict[str, str] = {"ZTO": "ZTO", "YTO": "YTO", "YD": "YUNDA", "SF": "SF", "JT": "JTSD", "EMS": "EMS"}
_QUESTIONS = ("地址异常", "等待订单合并", "商品编码缺失", "黑名单")
_PLATFORM_SHOPS = ((10_690_153, "知茶小铺（淘宝）"), (10_690_154, "知茶优选（拼多多）"), (10_690_155, "知茶抖音旗舰店"))


def _reply(code: int, msg: str, data: dict | None = None) -> dict:
    return {"code": code, "msg": msg, "data": data}


def _sign(params: dict[str, str], secret: str) -> str:
    """Independent of the client's implementation on purpose: a shared bug would pass unnoticed."""
    joined = "".join(key + params[key] for key in sorted(params) if key != "sign")
    return hashlib.md5((secret + joined).encode("utf-8")).hexdigest()


def _yuan_number(fen: int) -> float:
    """聚水潭 sends most amounts as JSON numbers in 元 (29.9): the adapter must read them exactly."""
    return fen / 100


def so_id(order: EmuOrder) -> str:
    """The platform order number the ERP holds for an order (``so_id``)."""
    return str(10**18 + int(hashlib.md5(f"so{order.oid}".encode()).hexdigest()[:15], 16) % (9 * 10**17))


class JstPlatform(Platform):
    """The 聚水潭 emulator (``PLATFORM``)."""

    name = "jst"
    close_minutes = 30
    stocks = True
    supports_gifts = True

    def new_order_id(self, gen: Generator, created: int) -> str:
        return str(38_000_000 + gen.serial)

    def adapter(self):
        from connectors.platforms.jst import JstAdapter

        return JstAdapter()

    @staticmethod
    def link(order: EmuOrder) -> str:
        """What an order is Merged / Split into: an ERP order number (``o_id``) of its own."""
        return str(int(order.oid) + 900_000_000) if order.serial % 25 in (3, 8) else ""

    def status(self, order: EmuOrder, st: State) -> str:
        """The ERP ``status`` of an order in state ``st``."""
        if st.raw_status:
            return st.raw_status
        stage, mark = st.stage, order.serial % 25
        if stage == "pending":
            return "WaitPay"
        if stage in ("closed", "closed_refund"):
            return "Cancelled"
        if mark == 3:
            return "Merged"
        if mark == 8:
            return "Split"
        if stage == "paid":
            return "Question" if mark == 13 else "WaitConfirm"
        if stage == "stocking":
            return "WaitFConfirm" if mark == 17 else "Delivering"
        return "Sent"

    def render(self, order: EmuOrder, st: State) -> dict:
        status = self.status(order, st)
        mark = order.serial % 25
        shipped = bool(st.waybill) and st.stage in ("shipped", "signed", "finished")
        shop_id, shop_name = _PLATFORM_SHOPS[order.serial % len(_PLATFORM_SHOPS)]
        number = so_id(order)
        items = []
        for i, line in enumerate(order.lines):
            title, _, spec = line.title.rpartition(" ")
            items.append(
                {
                    "oi_id": int(order.oid) * 10 + i,
                    "sku_id": line.sku,
                    "i_id": line.sku.rsplit("-", 1)[0],
                    "shop_sku_id": line.sku,
                    "name": title or line.title,
                    "properties_value": spec if title else "",
                    "qty": line.qty,
                    "price": _yuan_number(line.price),
                    "base_price": _yuan_number(line.price),
                    "amount": _yuan_number(line.price * line.qty),
                    "outer_oi_id": f"{number}{i + 1:02d}",
                    "raw_so_id": number,
                    "is_gift": line.gift,
                }
            )
        body = {
            "o_id": int(order.oid),
            "so_id": number,
            "co_id": 11_053_062,
            "shop_id": shop_id,
            "shop_name": shop_name,
            "status": status,
            "shop_status": _SHOP_STATUS[st.stage],
            "type": "普通订单",
            "order_from": "MERGE" if mark == 5 else "SPLIT" if mark == 10 else "open",
            "order_date": cst_text(order.created),
            "created": cst_text(order.created),
            "pay_date": cst_text(st.paid_at) if st.paid_at else "",
            "send_date": cst_text(st.shipped_at) if shipped and st.shipped_at else "",
            "end_time": cst_text(st.finished_at) if st.finished_at else "",
            "modified": cst_text(st.modified),
            "pay_amount": _yuan_number(order.total),
            "paid_amount": _yuan_number(order.total) if st.paid_at else 0,
            "freight": f"{order.post_fee // 100}.{order.post_fee % 100:02d}",
            "free_amount": _yuan_number(order.discount),
            "buyer_message": order.note,
            "remark": st.memo,
            "receiver_name": order.name,
            "receiver_mobile": order.virtual if order.phone_style == "virtual" else order.mobile,
            "receiver_phone": "",
            "receiver_state": order.province,
            "receiver_city": order.city,
            "receiver_district": order.district,
            "receiver_town": order.town,
            "receiver_address": order.detail,
            "l_id": st.waybill if shipped else "",
            "lc_id": LC_IDS.get(st.carrier, "") if shipped else "",
            "logistics_company": CARRIERS[st.carrier][0] if shipped else "",
            "question_type": _QUESTIONS[order.serial % len(_QUESTIONS)] if status == "Question" else "",
            "question_desc": "",
            "link_o_id": self.link(order) if status in ("Merged", "Split") else "",
            "merge_so_id": f"{int(number) + 1},{int(number) + 2}" if mark == 5 else "",
            "is_merge": mark == 5,
            "is_split": mark == 10,
            "labels": "",
            "items": items,
        }
        if st.after != "none":
            body["as_id"] = int(order.oid) + 500_000_000
            body["as_status"] = _AS_STATUS[st.after]
        return body

    def rate_limited(self, retry_after: int) -> dict:
        return _reply(199, "调用太频繁，请稍后再试")

    def unavailable(self) -> dict:
        return _reply(150, "内部处理异常，请稍后再试")

    def routes(self, world: World) -> list[Route]:
        async def query(request: Request) -> Response:
            params = await request_params(request)
            return await answer(world, "orders.single.query", lambda: self._call(world, params))

        async def refresh(request: Request) -> Response:
            params = await request_params(request)
            world.count("openWeb.auth.refreshToken")
            with world.lock:
                return JSONResponse(self._refresh(world, params))

        return [
            Route("/open/orders/single/query", query, methods=["POST"]),
            Route("/openWeb/auth/refreshToken", refresh, methods=["POST"]),
        ]

    def _refresh(self, world: World, p: dict[str, str]) -> dict:
        if p.get("app_key") != world.app_key:
            return _reply(100, "app_key 不存在")
        if not p.get("sign") or p["sign"] != _sign(p, world.app_secret):
            return _reply(120, "签名错误")
        if p.get("grant_type") != "refresh_token":
            return _reply(140, "grant_type 须为 refresh_token")
        fresh = world.refresh(p.get("refresh_token"))
        if fresh is None:
            return _reply(140, "refresh_token 无效或已使用")
        return _reply(0, "执行成功", {
            "access_token": fresh["access_token"], "expires_in": self.token_ttl,
            "refresh_token": fresh["refresh_token"], "scope": "all",
        })

    # -- one call, under the world's lock -------------------------------------------------------

    def _call(self, world: World, p: dict[str, str]) -> dict:
        for name in ("app_key", "access_token", "timestamp", "charset", "version", "sign"):
            if not p.get(name):
                return _reply(140, f"参数不符合规范：缺少 {name}")
        if p["app_key"] != world.app_key:
            return _reply(100, "app_key 不存在")
        if p["sign"] != _sign(p, world.app_secret):
            return _reply(120, "签名错误")
        shop, problem = world.authorise(p["access_token"])
        if shop is None:
            return _reply(100, f"token 超时或无效（{problem}）")
        try:
            biz = json.loads(p.get("biz") or "{}")
            if not isinstance(biz, dict):
                raise TypeError
            begin_text, end_text = biz.get("modified_begin"), biz.get("modified_end")
            if (begin_text is None) != (end_text is None) or begin_text is None:
                return _reply(140, "参数不符合规范：modified_begin 和 modified_end 须同时传入")
            start, end = _cst_epoch(str(begin_text)), _cst_epoch(str(end_text))
            page_index = int(biz.get("page_index", 1))
            page_size = int(biz.get("page_size", 30))
        except (TypeError, ValueError):
            return _reply(140, "参数不符合规范：时间格式 yyyy-MM-dd HH:mm:ss，page_index、page_size 须为整数")
        if end <= start or end - start > 7 * DAY:
            return _reply(140, "参数不符合规范：修改起始时间和结束时间须先后有序，且相差不能超过七天")
        if page_index < 1 or not 1 <= page_size <= 100:
            return _reply(140, "参数不符合规范：page_index 从 1 开始，page_size 取值 1-100")
        world.shift(shop, start, end)
        rows = [world.visible(o) for o in world.window(shop, start, end)]
        if biz.get("status"):
            rows = [r for r in rows if r["status"] == biz["status"]]
        total = len(rows)
        begin = (page_index - 1) * page_size
        chunk = rows[begin : begin + page_size]
        if chunk and world.faults.happens("dup"):
            chunk = chunk + (rows[begin + page_size : begin + page_size + 1] or rows[max(0, begin - 1) : begin] or chunk[:1])
        pages = -(-total // page_size)
        return _reply(0, "执行成功", {
            "page_size": page_size, "page_index": page_index, "data_count": total, "page_count": pages,
            "has_next": page_index < pages, "orders": chunk,
        })


def _cst_epoch(value: str) -> int:
    return int(datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST).timestamp())


PLATFORM = JstPlatform
