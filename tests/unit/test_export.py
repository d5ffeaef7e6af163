"""``deskapp export``: masked by default, formulas neutralised, who may export, and every export on record."""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from db import access, exports
from db.codes import ActorKind
from db.ingest import ingest
from db.roles import Refused
from db.store import NewLine, NewOrder, NewParcel, Store
from db.views import Actor
from deskapp.__main__ import main
from deskapp.services.export import (
    ExportError,
    ExportRequest,
    export_orders,
    neutralise,
)
from widgets.i18n import set_language

SYNC = Actor(ActorKind.CONNECTOR, "taobao:tb1")
CS, WAREHOUSE, SUPERVISOR, ADMIN = (Actor(ActorKind.OPERATOR, login) for login in ("li", "qian", "zhou", "ma"))
# 2025-03-10 10:00 in China
T0 = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)
HOSTILE_NAME = '=HYPERLINK("http://x","点我")'
PHONE = "13987654321"
STREET = "文三路478号华星时代广场B座1203室"


def order(no: str, created: datetime, **fields) -> NewOrder:
    values = {"receiver_name": "欧阳娜娜", "receiver_phone": "13800001111", "province": "浙江省", "city": "杭州市",
              "district": "西湖区", "address_detail": "文二路2号", "total_fen": 12900, "paid_fen": 12900,
              "paid_at": created, "modified_at": created, "lines": [NewLine("SKU-1", "杯子", 2, 6450)]}
    values.update(fields)
    return NewOrder(values.pop("channel", "taobao"), "tb1", no, created, order_no=no, **values)


async def _build(path: Path) -> None:
    store = await Store.open(path)
    try:
        for login, name, role in (("li", "李霞", "cs"), ("qian", "钱小库", "warehouse"), ("zhou", "周主管", "supervisor"),
                                  ("ma", "马青", "admin")):
            await store.ensure_operator(login, name, role=role)
        await ingest(store, [
            order("X-1", T0, receiver_name=HOSTILE_NAME, receiver_phone=PHONE, address_detail=STREET,
                  buyer_note=f"+86 {PHONE} 请尽快", parcels=[NewParcel("SF100", "SF", "杭州仓", T0, ["SKU-1"])],
                  status="shipped"),
            order("X-2", T0 + timedelta(days=1), status="hold", hold_reason="手机号号段不存在：19912345678",
                  channel="jd", discount_fen=-300, seller_memo="＝SUM(A1:A9)"),
            order("X-3", T0 + timedelta(days=2), seller_memo="-1 件，@仓库 注意", receiver_name="Tom"),
        ], actor=SYNC, at=T0)
    finally:
        await store.close()


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    path = tmp_path / "orders.db"
    asyncio.run(_build(path))
    return path


@pytest.fixture(autouse=True)
def _environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESKAPP_LOG_FILE", str(tmp_path / "deskapp.log"))
    monkeypatch.delenv("DESKAPP_LANG", raising=False)
    monkeypatch.chdir(tmp_path)
    set_language("zh")


async def _export(pool: Path, request: ExportRequest, actor: Actor, **kw) -> object:
    store = await Store.open(pool)
    try:
        return await export_orders(store, request, actor, **kw)
    finally:
        await store.close()


async def _log(pool: Path, kind: str | None = None) -> list[access.AccessRecord]:
    store = await Store.open(pool)
    try:
        return list(reversed(await access.recent(store, 100, kind=kind)))
    finally:
        await store.close()


def _csv(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel on Chinese Windows reads UTF-8 right
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


def _xlsx(path: Path) -> list[dict[str, object]]:
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
    return [dict(zip(rows[0], row, strict=False)) for row in rows[1:]]


def test_formula_triggers_are_neutralised_and_other_text_is_not() -> None:
    for trigger in ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠"):
        assert neutralise(trigger + "1+1") == "'" + trigger + "1+1"
    assert neutralise("张三 =1") == "张三 =1" and neutralise("") == ""


def test_a_csv_export_is_masked_neutralised_and_on_record(pool: Path) -> None:
    out = pool.parent / "orders.csv"
    result = asyncio.run(_export(pool, ExportRequest(out), SUPERVISOR))
    assert (result.rows, result.revealed) == (3, False)
    rows = _csv(out)
    assert [row["订单号"] for row in rows] == ["X-1", "X-3", "X-2"]  # by id: ingest numbers taobao's before jd's
    assert list(rows[0]) == ["订单号", "渠道", "店铺", "状态", "售后", "下单时间", "付款时间", "订单金额", "实付金额",
                             "运费", "优惠", "收货人", "手机", "省份", "城市", "区县", "详细地址", "商品", "运单",
                             "买家留言", "卖家备注", "异常原因", "标签"]
    x1, x3, x2 = rows
    assert (x1["订单号"], x1["收货人"], x1["手机"], x1["详细地址"]) == ("X-1", "'=***", "139****4321", "****")
    assert x1["买家留言"] == "'+86 139****4321 请尽快"  # masked, and not a formula
    assert (x1["下单时间"], x1["订单金额"], x1["运单"], x1["商品"]) == ("2025-03-10 10:00:00", "129.00", "SF SF100",
                                                                   "SKU-1×2 杯子")
    assert (x2["收货人"], x2["状态"], x2["优惠"], x2["卖家备注"]) == ("欧***", "异常", "-3.00", "'＝SUM(A1:A9)")
    assert x2["异常原因"] == "手机号号段不存在：199****5678"
    assert (x3["收货人"], x3["卖家备注"]) == ("T**", "'-1 件，@仓库 注意")
    text = out.read_text(encoding="utf-8-sig")
    for secret in (PHONE, "欧阳娜娜", "文三路", "HYPERLINK"):
        assert secret not in text
    (record,) = asyncio.run(_log(pool, "export"))
    assert (record.operator_id, record.kind, record.reason) == ("zhou", "export", "")
    assert record.detail == {"filter": {}, "rows": 3, "file": str(out.resolve()), "format": "csv",
                             "revealed": False}


def test_a_revealed_xlsx_export_is_for_an_admin_with_a_reason(pool: Path) -> None:
    out = pool.parent / "full.xlsx"
    with pytest.raises(ExportError):  # no reason
        asyncio.run(_export(pool, ExportRequest(out, reveal=True), ADMIN))
    result = asyncio.run(_export(pool, ExportRequest(out, reveal=True, reason="物流理赔"), ADMIN))
    assert (result.rows, result.revealed) == (3, True)
    x1, x3, x2 = _xlsx(out)
    assert x1["收货人"] == "'" + HOSTILE_NAME  # text, never a formula, in Excel and when saved as CSV
    assert (x1["手机"], x1["详细地址"], x1["买家留言"]) == (PHONE, STREET, f"'+86 {PHONE} 请尽快")
    assert x1["订单金额"] == 129.0 and x2["优惠"] == -3.0  # amounts stay numbers, a negative one too
    assert x1["下单时间"] == datetime(2025, 3, 10, 10, 0)  # China time, a real date cell
    assert (x2["收货人"], x3["收货人"]) == ("欧阳娜娜", "Tom")
    (record,) = asyncio.run(_log(pool, "export"))
    assert (record.operator_id, record.reason) == ("ma", "物流理赔")
    assert record.detail["revealed"] is True and record.detail["rows"] == 3 and record.detail["format"] == "xlsx"


@pytest.mark.parametrize(("actor", "reveal", "action"), [
    (CS, False, "export"), (WAREHOUSE, False, "export"), (CS, True, "export"), (SUPERVISOR, True, "export_revealed"),
])
def test_who_may_not_export_is_refused_and_nothing_is_written(pool: Path, actor: Actor, reveal: bool,
                                                              action: str) -> None:
    out = pool.parent / "orders.csv"
    with pytest.raises(Refused) as refused:
        asyncio.run(_export(pool, ExportRequest(out, reveal=reveal, reason="看看"), actor))
    assert refused.value.action == action
    assert not out.exists() and not list(pool.parent.glob(".orders.csv.*"))
    records = asyncio.run(_log(pool))
    assert [(r.kind, r.operator_id, r.detail["action"]) for r in records] == [("refused", actor.id, action)]


def test_filters_select_the_orders(pool: Path) -> None:
    def numbers(**kw) -> list[str]:
        out = pool.parent / "f.csv"
        asyncio.run(_export(pool, ExportRequest(out, **kw), SUPERVISOR))
        return [row["订单号"] for row in _csv(out)]

    assert numbers(status="hold") == ["X-2"]
    assert numbers(channel="taobao") == ["X-1", "X-3"]
    assert numbers(since=date(2025, 3, 11)) == ["X-3", "X-2"]
    assert numbers(since=date(2025, 3, 10), until=date(2025, 3, 11)) == ["X-1", "X-2"]
    assert numbers(query="欧阳") == ["X-2"]  # search matches the real name; the file shows it masked
    assert numbers(query="4321") == ["X-1"]
    assert numbers(query="没有这个人") == []
    (record, *_) = asyncio.run(_log(pool, "export"))
    assert record.detail["filter"] == {"status": "hold"}


def test_big_exports_stream_in_chunks_with_progress(pool: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def more() -> None:
        store = await Store.open(pool)
        try:
            await ingest(store, [order(f"Y-{i:03}", T0 + timedelta(minutes=i)) for i in range(25)], actor=SYNC, at=T0)
        finally:
            await store.close()

    asyncio.run(more())
    monkeypatch.setattr(exports, "CHUNK", 4)  # seven chunks, never the whole pool at once
    seen: list[tuple[int, int]] = []
    out = pool.parent / "all.xlsx"
    result = asyncio.run(_export(pool, ExportRequest(out), SUPERVISOR, progress=lambda d, t: seen.append((d, t))))
    assert result.rows == 28 and len(_xlsx(out)) == 28
    assert seen == [(min(n, 28), 28) for n in range(4, 29, 4)]
    out = pool.parent / "some.csv"
    asyncio.run(_export(pool, ExportRequest(out, query="欧阳"), SUPERVISOR, progress=lambda d, t: None))
    assert len(_csv(out)) == 26  # X-2 and the 25 new ones, read in chunks of ids


def test_the_command_says_what_is_wrong_in_one_line(pool: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run(*args: str) -> tuple[int, str, str]:
        code = main(["export", "--db", str(pool), *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out, err = run("--operator", "zhou", "--out", "a.csv")
    assert code == 0 and out.strip() == "已导出 3 单 → a.csv（客户信息已脱敏）" and err == ""
    assert run("--operator", "zhou", "--out", "a.csv", "--since", "2025-02-30")[2] == \
        "deskapp: 日期应为 YYYY-MM-DD：2025-02-30\n"
    assert run("--operator", "zhou", "--out", "no/such/dir/a.csv")[2] == \
        "deskapp: 无法写入 no/such/dir/a.csv：文件夹不存在\n"
    assert run("--operator", "zhou", "--out", "a.txt")[2] == "deskapp: 只能导出 .csv 或 .xlsx 文件：a.txt\n"
    assert run("--operator", "li", "--out", "a.csv")[:3:2] == (2, "deskapp: 客服不能导出订单（需要 主管或管理员）\n")
    assert run("--operator", "zhou", "--out", "a.csv", "--reveal", "--reason", "x")[:3:2] == (
        2, "deskapp: 主管不能导出未打码的客户信息（需要 管理员）\n")
    assert run("--operator", "ma", "--out", "a.csv", "--reveal")[2] == \
        "deskapp: 导出完整客户信息需要填写原因：--reason \"…\"\n"
    assert run("--operator", "ma", "--out", "a.xlsx", "--status", "held")[2].startswith("deskapp: 未知状态 held")
    code, out, _ = run("--operator", "ma", "--out", "b.xlsx", "--reveal", "--reason", "理赔")
    assert code == 0 and "含完整客户信息" in out
