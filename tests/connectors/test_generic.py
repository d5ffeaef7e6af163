"""The generic mapped adapter and JSON source: a team's own API through a mapping file, over real HTTP."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import stamina
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Quarantine, Window
from connectors.config import SecretRef, ShopConfig
from connectors.emulators.kuaidi100 import serve
from connectors.generic import (
    FieldError,
    GenericSource,
    MappedAdapter,
    load_mapping,
    mapping_problems,
    parse_mapping,
)
from connectors.http import PermanentError, TruncatedRead
from db.store import NewOrder

MINIAPP = Path(__file__).resolve().parents[2] / "connectors/mappings/miniapp.toml"
RAW = {
    "id": "MP-20250301-0001",
    "order_sn": "20250301000001",
    "status": "WAIT_DELIVER",
    "refund_status": "NONE",
    "created_at": "2025-03-01 09:58:00",
    "paid_at": "2025-03-01 10:00:00",
    "updated_at": "2025-03-01 10:00:05",
    "amount": {"total": "129.00", "paid": 119, "freight": "10", "discount": "¥20.00"},
    "remark": "请周末送\n谢谢",
    "receiver": {"name": "张三\x1b[2J", "mobile": "138****1234", "province": "浙江省", "city": "杭州市",
                 "district": "西湖区", "address": "文三路 1 号"},
    "items": [{"id": 11, "sku_code": "CUP-1", "title": "杯子", "qty": 2, "price": "59.5"},
              {"id": 12, "sku_code": "LID-1", "title": "盖子", "qty": 1, "price": 0}],
    "delivery": {"company": "顺丰", "tracking_no": "SF1001, SF1002"},
}


@pytest.fixture(scope="module")
def adapter() -> MappedAdapter:
    return MappedAdapter(load_mapping(MINIAPP), channel="miniapp")


def test_a_payload_maps_to_the_canonical_order(adapter: MappedAdapter) -> None:
    order = adapter.to_order(RAW, shop_code="mall")
    assert isinstance(order, NewOrder)
    assert (order.channel, order.shop_code, order.channel_order_id, order.order_no) == (
        "miniapp", "mall", "MP-20250301-0001", "20250301000001")
    assert (order.status, order.raw_status, order.after_sale) == ("paid", "WAIT_DELIVER", "none")
    assert order.created_at == datetime(2025, 3, 1, 1, 58, tzinfo=UTC)  # UTC+8 → UTC
    assert adapter.modified_at(RAW) == datetime(2025, 3, 1, 2, 0, 5, tzinfo=UTC)
    assert adapter.external_id(RAW) == "MP-20250301-0001"
    assert (order.total_fen, order.paid_fen, order.post_fee_fen, order.discount_fen) == (12900, 11900, 1000, 2000)
    assert order.receiver_name == "张三"  # the escape sequence is gone
    assert order.receiver_phone == "138****1234"  # masked: stored as delivered
    assert order.buyer_note == "请周末送\n谢谢"
    assert [(l.sku, l.quantity, l.price_fen, l.channel_line_id) for l in order.lines] == [
        ("CUP-1", 2, 5950, "11"), ("LID-1", 1, 0, "12")]
    assert [(p.waybill_no, p.carrier) for p in order.parcels] == [("SF1001", "SF"), ("SF1002", "SF")]


def test_inline_and_config_status_tables_win_over_the_packaged_one() -> None:
    raw = dict(RAW, status="WAIT_GROUP")
    assert MappedAdapter(load_mapping(MINIAPP), channel="miniapp").to_order(raw, shop_code="m").status == "pending_payment"
    overridden = MappedAdapter(load_mapping(MINIAPP), channel="miniapp", status_overrides={"WAIT_DELIVER": "review"})
    assert overridden.to_order(RAW, shop_code="m").status == "review"


def _broken(path: str, value: object) -> dict:
    raw = copy.deepcopy(RAW)
    node = raw
    *head, last = path.split(".")
    for key in head:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is KeyError:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return raw


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("id", KeyError, ["order_id", "id", "缺少"]),
        ("status", "TELEPORTED", ["status", "TELEPORTED", "[status]"]),
        ("refund_status", "MAYBE", ["after_sale", "MAYBE"]),
        ("amount.paid", "12.345", ["paid", "amount.paid", "12.345", "两位小数"]),
        ("amount.total", "-5", ["total", "-5", "负"]),
        ("created_at", "03/01/2025 10:00", ["created_at", "03/01/2025", "年-月-日"]),
        ("created_at", "2025-02-30 10:00:00", ["created_at", "有效的日期"]),
        ("items.0.qty", 1.5, ["quantity", "1.5", "第 1 个商品"]),
        ("items.1.sku_code", KeyError, ["sku", "第 2 个商品"]),
        ("items", "nope", ["items", "列表"]),
        ("receiver.name", {"x": 1}, ["receiver_name", "文字"]),
        ("id", 2.0**60, ["order_id", "失真"]),
        ("receiver.mobile", "\x1b]52;c;ZXZpbA==\x07138", ["receiver_phone"]),
    ],
)
def test_bad_values_are_quarantined_with_the_field_and_value(adapter: MappedAdapter, path: str, value: object,
                                                              words: list[str]) -> None:
    raw = _broken(path, value)
    if path == "receiver.mobile":  # not an error: cleaned and stored as delivered
        assert adapter.to_order(raw, shop_code="m").receiver_phone == "138"
        return
    with pytest.raises(Quarantine) as caught:
        adapter.to_order(raw, shop_code="m")
    error = caught.value
    assert isinstance(error, FieldError)
    for word in words:
        assert word in error.reason, (word, error.reason)
    assert "\x1b" not in error.reason and error.reason_en


def test_other_time_and_amount_conventions() -> None:
    fieldmap, problems = parse_mapping({
        "time": {"format": "epoch_ms"}, "amount": {"unit": "分"},
        "fields": {"order_id": "no", "status": "st", "created_at": "ts",
                   "paid_at": {"path": "paid", "format": "%Y%m%d%H%M%S", "timezone": "+09:00"},
                   "total": "fee", "receiver_name": ["name", "nick"]},
        "status": {"1": "paid"},
    })
    assert problems == [] and fieldmap is not None
    adapter = MappedAdapter(fieldmap, channel="pos")
    order = adapter.to_order({"no": 77, "st": 1, "ts": 1740794400000, "paid": "20250301110000", "fee": 990,
                              "nick": "阿明"}, shop_code="s")
    assert order.channel_order_id == "77" and order.total_fen == 990 and order.receiver_name == "阿明"
    assert order.created_at == datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
    assert order.paid_at == datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
    with pytest.raises(FieldError, match="整数"):
        adapter.to_order({"no": 1, "st": 1, "ts": 1740794400000, "fee": 9.5}, shop_code="s")
    with pytest.raises(FieldError, match="2000 到 2100"):
        adapter.to_order({"no": 1, "st": 1, "ts": 1740794400}, shop_code="s")  # seconds given as ms


def test_mapping_problems_are_plain_words(tmp_path: Path) -> None:
    assert mapping_problems(MINIAPP) == []
    bad = tmp_path / "m.toml"
    bad.write_text(
        '[time]\ntimezone = "Mars/Olympus"\n[fields]\norder_id = "id"\nstatus = "s"\ncreated_at = 5\n'
        'colour = "c"\n[status]\nX = "teleported"\n[source]\npaging = "cursor"\npath = "/o"\n', encoding="utf-8")
    found = {(p.where, p.code) for p in mapping_problems(bad)}
    assert {("time.timezone", "bad_mapping"), ("fields.created_at", "bad_mapping"), ("fields.colour", "unknown_key"),
            ("status.X", "unknown_status"), ("source.next_cursor", "missing"),
            ("fields.modified_at", "missing_field")} <= found
    assert mapping_problems(tmp_path / "absent.toml")[0].code == "missing_mapping"


# -- the source over HTTP -------------------------------------------------------------------------


class OwnApi:
    """A team's own order API: page/size or cursor paging, a bearer token, faults on demand."""

    def __init__(self, orders: list[dict]) -> None:
        self.orders = orders
        self.calls: list[dict] = []
        self.lie_about_total = 0
        self.fail_first = 0

    def app(self):  # noqa: ANN201
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def orders(request):  # noqa: ANN001, ANN202
            q = dict(request.query_params)
            self.calls.append(q)
            if self.fail_first:
                self.fail_first -= 1
                return JSONResponse({"code": 500}, status_code=503)
            if request.headers.get("authorization") != "Bearer tok-1":
                return JSONResponse({"code": 401, "msg": "bad token"})
            start, end = int(q["updated_from"]), int(q["updated_to"])
            rows = [o for o in self.orders if start <= o["_ts"] < end]
            size = int(q["size"])
            if "cursor" in q or q.get("mode") == "cursor":
                at = int(q.get("cursor") or 0)
                page = rows[at : at + size]
                more = at + size < len(rows)
                return JSONResponse({"code": 0, "data": {"list": page, "next": str(at + size) if more else ""}})
            page_no = int(q["page"])
            page = rows[(page_no - 1) * size : page_no * size]
            return JSONResponse({"code": 0, "data": {"list": page, "total": len(rows) + self.lie_about_total}})

        return Starlette(routes=[Route("/open/orders", orders)])


T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _orders(n: int) -> list[dict]:
    out = []
    for i in range(n):
        raw = copy.deepcopy(RAW)
        raw["id"] = f"MP-{i:04d}"
        raw["_ts"] = int((T0 + timedelta(minutes=i)).timestamp())
        out.append(raw)
    return out


@pytest.fixture
async def api() -> AsyncIterator[tuple[OwnApi, str]]:
    own = OwnApi(_orders(23))
    async with serve(own.app()) as url:
        yield own, url


def _shop(url: str) -> ShopConfig:
    return ShopConfig(channel="miniapp", code="mall", name="mall", kind="generic", base_url=url,
                      credentials={"token": SecretRef("OWN_API_TOKEN_FOR_TEST")})


async def _read_all(source: GenericSource, window: Window) -> list[dict]:
    return [row for page in [p async for p in source.pages(window)] for row in page]


async def test_source_pages_through_a_window(api: tuple[OwnApi, str], monkeypatch: pytest.MonkeyPatch) -> None:
    own, url = api
    monkeypatch.setenv("OWN_API_TOKEN_FOR_TEST", "tok-1")
    fieldmap = load_mapping(MINIAPP)
    fieldmap = type(fieldmap)(**{**fieldmap.__dict__, "source": type(fieldmap.source)(**{**fieldmap.source.__dict__, "page_size": 10})})
    async with httpx.AsyncClient() as client:
        source = GenericSource(fieldmap, _shop(url), client=client)
        rows = await _read_all(source, Window(T0, T0 + timedelta(hours=1)))
        assert [r["id"] for r in rows] == [f"MP-{i:04d}" for i in range(23)]
        assert [c["page"] for c in own.calls] == ["1", "2", "3"]
        assert own.calls[0]["updated_from"] == str(int(T0.timestamp()))
        part = await _read_all(source, Window(T0 + timedelta(minutes=5), T0 + timedelta(minutes=8)))
        assert [r["id"] for r in part] == ["MP-0005", "MP-0006", "MP-0007"]
        adapter = MappedAdapter(fieldmap, channel="miniapp")
        assert all(adapter.to_order(r, shop_code="mall").status == "paid" for r in rows)

        own.lie_about_total = 5  # the answer promises rows it never serves: must not look complete
        with pytest.raises(TruncatedRead, match="23 orders but the answer says 28"):
            await _read_all(source, Window(T0, T0 + timedelta(hours=1)))
        own.lie_about_total = 0

        with stamina.set_testing(True, attempts=3):
            own.fail_first = 1  # a 503 is retried
            assert len(await _read_all(source, Window(T0, T0 + timedelta(hours=1)))) == 23
        monkeypatch.setenv("OWN_API_TOKEN_FOR_TEST", "wrong")
        with pytest.raises(PermanentError, match="bad token"):
            await _read_all(source, Window(T0, T0 + timedelta(hours=1)))


async def test_source_follows_a_cursor(api: tuple[OwnApi, str], monkeypatch: pytest.MonkeyPatch) -> None:
    own, url = api
    monkeypatch.setenv("OWN_API_TOKEN_FOR_TEST", "tok-1")
    base = load_mapping(MINIAPP)
    spec = type(base.source)(**{**base.source.__dict__, "paging": "cursor", "next_cursor": "data.next",
                                "total": None, "page_size": 7, "params": {"mode": "cursor"}})
    fieldmap = type(base)(**{**base.__dict__, "source": spec})
    async with httpx.AsyncClient() as client:
        rows = await _read_all(GenericSource(fieldmap, _shop(url), client=client), Window(T0, T0 + timedelta(hours=1)))
    assert len(rows) == 23 and len({r["id"] for r in rows}) == 23
    assert [c.get("cursor") for c in own.calls] == [None, "7", "14", "21"]


# -- never a crash ----------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(["id", "status", "refund_status", "created_at", "updated_at", "amount", "amount.paid",
                          "amount.total", "receiver", "receiver.mobile", "items", "items.0", "items.0.qty",
                          "items.0.price", "items.0.sku_code", "delivery", "delivery.tracking_no", "remark"]),
    value=_json,
)
def test_any_malformed_payload_is_mapped_or_quarantined(adapter: MappedAdapter, path: str, value: object) -> None:
    raw = _broken(path, value)
    try:
        order = adapter.to_order(raw, shop_code="m")
    except Quarantine as error:
        assert error.reason and "\x1b" not in error.reason
    else:
        assert order.channel_order_id and order.created_at.tzinfo is not None
