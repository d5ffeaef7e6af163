"""Douyin shop (抖店) emulator: ``/order/searchList`` and ``/token/refresh`` with hmac-sha256 signatures.

``order.searchList``: ``update_time_start``/``update_time_end`` epoch seconds (90-day lookback),
``page`` from 0, ``size`` 1–100, ``order_by`` create_time|update_time, ``order_asc``; at most
``max_rows`` (50,000) rows reachable per query — asking past that answers 40004. Amounts in 分.

Answers ``{"code", "msg", "sub_code", "sub_msg", "data", "log_id"}`` with the 抖店 codes published in
public SDKs (iMactool/jinritemai ``ErrorCode``): 10000 success, 20000 服务不可用 (``isp.service-error``),
40003 非法的参数（平台校验） with ``isv.signature-invalid`` / ``isv.access-token-expired``, 40004
非法的参数（业务校验）, 60000 触发限流，请稍后重试.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.emulators.core import CARRIERS, DAY, HOUR, EmuOrder, Generator, Platform, State, World, answer

_LOG_IDS = itertools.count(1)
_STATUS = {
    "pending": (1, "待支付"), "paid": (105, "已支付"), "stocking": (2, "备货中"), "shipped": (3, "已发货"),
    "signed": (3, "已发货"), "finished": (5, "已完成"), "closed": (4, "已取消"), "closed_refund": (4, "已取消"),
}
_AFTER = {
    "none": (0, 0), "refund_requested": (6, 1), "refunded": (12, 3), "return_requested": (6, 1),
    "returning": (7, 1), "returned": (12, 3), "rejected": (27, 0),
}


def _reply(code: int, msg: str, data: dict | None = None, sub_code: str = "", sub_msg: str = "") -> dict:
    return {
        "code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg, "data": data or {},
        "log_id": f"2026emu{next(_LOG_IDS):012d}",
    }


def _sign(app_key: str, method: str, body: str, timestamp: str, secret: str) -> str:
    pattern = secret + "app_key" + app_key + "method" + method + "param_json" + body + "timestamp" + timestamp + "v2" + secret
    return hmac.new(secret.encode("utf-8"), pattern.encode("utf-8"), hashlib.sha256).hexdigest()


def _place_id(name: str) -> int:
    return int(hashlib.md5(name.encode()).hexdigest()[:6], 16)


class DouyinPlatform(Platform):
    """The 抖店 emulator (``PLATFORM``)."""

    name = "douyin"
    close_minutes = 30
    stocks = True

    def new_order_id(self, gen: Generator, created: int) -> str:
        return f"69{gen.rng.randrange(10**17):017d}"

    def adapter(self):  # noqa: ANN201
        from connectors.platforms.douyin import DouyinAdapter

        return DouyinAdapter()

    def render(self, order: EmuOrder, st: State) -> dict:
        status, desc = _STATUS[st.stage]
        if st.raw_status:
            status = int(st.raw_status) if st.raw_status.isdigit() else st.raw_status
        after, refund = _AFTER[st.after]
        cipher_tel = "#" + order.cipher.strip("~") + "#"
        cipher_name = "#" + hashlib.md5(order.name.encode()).hexdigest() + "#"
        if order.phone_style == "cipher":
            tel, receiver = "", ""
        else:
            tel = order.virtual if order.phone_style == "virtual" else order.masked_mobile()
            receiver = order.shown_name()
        lines = []
        for i, line in enumerate(order.lines):
            lines.append(
                {
                    "order_id": f"{order.oid[:-2]}{i + 10:02d}",
                    "parent_order_id": order.oid,
                    "sku_id": 1_700_000_000_000 + int(hashlib.md5(line.sku.encode()).hexdigest()[:8], 16),
                    "out_sku_id": line.sku,
                    "code": line.sku,
                    "product_name": line.title,
                    "item_num": line.qty,
                    "goods_price": line.price,
                    "origin_amount": line.price * line.qty,
                    "pay_amount": line.price * line.qty,
                    "pre_sale_type": 1 if order.presale else 0,
                    "after_sale_info": {"after_sale_status": after, "refund_status": refund},
                }
            )
        body = {
            "order_id": order.oid,
            "order_status": status,
            "order_status_desc": desc,
            "main_status": status,
            "create_time": order.created,
            "update_time": st.modified,
            "pay_time": st.paid_at or 0,
            "finish_time": st.finished_at or 0,
            "exp_ship_time": (st.paid_at + 48 * HOUR + (7 * DAY if order.presale else 0)) if st.paid_at else 0,
            "order_amount": order.goods + order.post_fee,
            "pay_amount": order.total,
            "post_amount": order.post_fee,
            "promotion_amount": order.discount,
            "buyer_words": order.note,
            "seller_words": st.memo,
            "seller_remark_stars": 1 if st.memo else 0,
            "post_addr": {
                "province": {"name": order.province, "id": str(_place_id(order.province))},
                "city": {"name": order.city, "id": str(_place_id(order.city))},
                "town": {"name": order.district, "id": str(_place_id(order.district))},
                "street": {"name": order.town, "id": str(_place_id(order.town))},
                "detail": order.detail,
            },
            "post_receiver": receiver,
            "post_tel": tel,
            "encrypt_post_receiver": cipher_name,
            "encrypt_post_tel": cipher_tel,
            "logistics_info": [],
            "sku_order_list": lines,
        }
        if st.shipped_at:
            body["logistics_info"] = [
                {"tracking_no": st.waybill, "company": st.carrier, "company_name": CARRIERS[st.carrier][0], "ship_time": st.shipped_at}
            ]
        return body

    def rate_limited(self, retry_after: int) -> dict:
        return _reply(60000, "触发限流，请稍后重试", sub_code="isv.call-limited", sub_msg=f"请 {retry_after} 秒后重试")

    def unavailable(self) -> dict:
        return _reply(20000, "服务不可用", sub_code="isp.service-error", sub_msg="内部错误，请稍后重试")

    def routes(self, world: World) -> list[Route]:
        async def search(request: Request) -> Response:
            query, body = dict(request.query_params), await request.body()
            return await answer(world, "order.searchList", lambda: self._search(world, query, body))

        async def refresh(request: Request) -> Response:
            query, body = dict(request.query_params), await request.body()
            return await answer(world, "token.refresh", lambda: self._refresh(world, query, body), faults=False)

        return [
            Route("/order/searchList", search, methods=["POST"]),
            Route("/token/refresh", refresh, methods=["POST"]),
        ]

    def _verify(self, world: World, query: dict[str, str], raw: bytes, method: str) -> tuple[dict | None, dict | None]:
        """(params, None) when the call is well formed and signed, else (None, error reply)."""
        for name in ("app_key", "method", "timestamp", "sign"):
            if not query.get(name):
                return None, _reply(40001, "缺少必选参数（平台校验）", sub_code="isv.parameter-missing", sub_msg=f"缺少 {name}")
        if query["app_key"] != world.app_key:
            return None, _reply(40003, "非法的参数（平台校验）", sub_code="isv.app-id-invalid", sub_msg="认证失败，app_key 不正确")
        try:
            params = json.loads(raw or b"{}")
            if not isinstance(params, dict):
                raise ValueError
        except ValueError:
            return None, _reply(40003, "非法的参数（平台校验）", sub_code="isv.parameter-format-invalid", sub_msg="业务参数json解析失败")
        canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if query["method"] != method or query["sign"] != _sign(world.app_key, method, canonical, query["timestamp"], world.app_secret):
            return None, _reply(40003, "非法的参数（平台校验）", sub_code="isv.signature-invalid", sub_msg="签名校验失败")
        return params, None

    def _refresh(self, world: World, query: dict[str, str], raw: bytes) -> dict:
        params, error = self._verify(world, query, raw, "token.refresh")
        if error:
            return error
        fresh = world.refresh(params.get("refresh_token"))
        if fresh is None:
            return _reply(50001, "平台处理失败", sub_code="dop.token-generate-failed:token-invalid", sub_msg="生成token失败，token不存在")
        return _reply(
            10000, "success",
            {"access_token": fresh["access_token"], "refresh_token": fresh["refresh_token"], "expires_in": self.token_ttl,
             "shop_id": fresh["shop"], "shop_name": fresh["shop"]},
        )

    def _search(self, world: World, query: dict[str, str], raw: bytes) -> dict:  # noqa: PLR0911 - one return per check
        params, error = self._verify(world, query, raw, "order.searchList")
        if error:
            return error
        shop, problem = world.authorise(query.get("access_token"))
        if shop is None:
            sub = "isv.access-token-expired" if problem == "expired" else "isv.access-token-no-existed"
            return _reply(40003, "非法的参数（平台校验）", sub_code=sub, sub_msg="access_token已过期" if problem == "expired" else "access_token不存在")
        try:
            start = int(params.get("update_time_start", params.get("create_time_start", 0)))
            end = int(params.get("update_time_end", params.get("create_time_end", 0)))
            page, size = int(params.get("page", 0)), int(params.get("size", 10))
        except (TypeError, ValueError):
            return _reply(40004, "非法的参数（业务校验）", sub_code="isv.business-failed:param", sub_msg="时间与分页参数须为整数")
        now = world.clock.now()
        if not start or not end or end <= start or start < now - 90 * DAY:
            return _reply(40004, "非法的参数（业务校验）", sub_code="isv.business-failed:time", sub_msg="查询时间须在90天内，且结束时间晚于开始时间")
        if page < 0 or not 1 <= size <= 100:
            return _reply(40004, "非法的参数（业务校验）", sub_code="isv.business-failed:page", sub_msg="page 从 0 开始，size 取值 1-100")
        if (page + 1) * size > world.max_rows:
            return _reply(
                40004, "非法的参数（业务校验）", sub_code="isv.business-failed:over-limit",
                sub_msg=f"单次查询最多返回{world.max_rows}条，请缩小查询时间范围",
            )
        world.shift(shop, start, end)
        found = world.window(shop, start, end)
        if params.get("order_by", "create_time") == "create_time":
            found = sorted(found, key=lambda o: (o.created, o.oid))
        if not params.get("order_asc", False):
            found = list(reversed(found))
        total = len(found)
        chunk = found[page * size : (page + 1) * size]
        if chunk and world.faults.happens("dup"):
            chunk = chunk + (found[(page + 1) * size : (page + 1) * size + 1] or found[max(0, page * size - 1) : page * size] or chunk[:1])
        return _reply(10000, "success", {"shop_order_list": [world.visible(o) for o in chunk], "total": total, "page": page, "size": size})


PLATFORM = DouyinPlatform
