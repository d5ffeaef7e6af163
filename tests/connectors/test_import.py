"""CSV / Excel import: encodings, default Chinese headers, per-row errors, idempotent ingest, the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.importer import ImportFileError, plan_import, run_import
from db.codes import ActorKind
from db.ingest import quarantine_list
from db.models import TimelineEvent
from db.store import Store
from db.views import Actor
from deskapp.__main__ import main

HEADER = "订单号,订单状态,付款时间,收货人,手机,省,市,区,详细地址,商品编码,商品名称,数量,单价,实付金额,买家留言"
ROWS = [
    "P1001,待发货,2025-03-01 10:00:00,张三,13812345678,浙江省,杭州市,西湖区,文三路1号,A-1,杯子,2,19.90,49.80,",
    "P1001,,,,,,,,,B-2,盖子,1,10,,",  # the order's second line: order-level cells left empty
    'P1002,已发货,2025/3/2 9:05,李四,="13900001111",江苏省,南京市,鼓楼区,中山路2号,A-1,杯子,1,19.9,19.9,尽快发货',
    "P1003,火星状态,2025-03-02 10:00:00,王五,13700002222,上海,上海市,浦东新区,世纪大道3号,C-3,碗,1,5,5,",
    "P1004,待发货,2025-03-02 10:00:00,赵六,13700002222,上海,上海市,浦东新区,世纪大道3号,C-3,碗,0,5,5,",
    ",待发货,2025-03-02 10:00:00,孙八,13700002222,上海,上海市,浦东新区,世纪大道3号,C-3,碗,1,5,5,",
    "P1006,待发货,2025-03-02 10:00:00,周九,13700002222,上海,上海市,浦东新区,世纪大道3号,C-3,碗,1,5,5,",
    "P1006,待发货,2025-03-02 10:00:00,吴十,13700002222,上海,上海市,浦东新区,世纪大道3号,C-4,碟,1,5,5,",
    "P1007,交易成功,2025-03-03 08:00:00,郑一,\x1b]52;c;aGk=\x0713700003333,广东省,深圳市,南山区,科技园,D-1,盘,1,12.5,12.5,好评",
]
OPERATOR = Actor(ActorKind.OPERATOR, "alice")


def write_csv(tmp_path: Path, rows: list[str], encoding: str = "gb18030", name: str = "orders.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(("\r\n".join([HEADER, *rows]) + "\r\n").encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8", "utf-8-sig"])
def test_plan_reads_chinese_exports_in_any_common_encoding(tmp_path: Path, encoding: str) -> None:
    plan = plan_import(write_csv(tmp_path, ROWS, encoding), channel="pos", shop_code="store-1")
    assert plan.rows == 9
    assert [o.channel_order_id for o in plan.orders] == ["P1001", "P1002", "P1007"]
    first, second, third = plan.orders
    assert plan.order_rows == [(2, 3), (4,), (10,)]
    assert [(l.sku, l.quantity, l.price_fen) for l in first.lines] == [("A-1", 2, 1990), ("B-2", 1, 1000)]
    assert (first.status, first.raw_status, first.paid_fen, first.total_fen) == ("paid", "待发货", 4980, 4980)
    assert first.created_at == datetime(2025, 3, 1, 2, 0, tzinfo=UTC) == first.paid_at
    assert (first.province, first.city, first.district, first.address_detail) == ("浙江省", "杭州市", "西湖区", "文三路1号")
    assert second.receiver_phone == "13900001111"  # the ="…" export wrapper is gone
    assert second.status == "shipped" and second.buyer_note == "尽快发货"
    assert third.receiver_phone == "13700003333" and third.status == "completed"  # OSC 52 stripped
    problems = {p.rows: p for p in plan.problems}
    assert set(problems) == {(5,), (6,), (7,), (8, 9)}
    assert "火星状态" in problems[(5,)].reason and "status" in problems[(5,)].reason
    assert "quantity" in problems[(6,)].reason and "第 1 个商品" in problems[(6,)].reason
    assert "缺少订单号" in problems[(7,)].reason
    assert "收货人" in problems[(8, 9)].reason and "周九" in problems[(8, 9)].reason
    assert all(p.reason_en for p in plan.problems)


async def test_ingest_is_idempotent_and_quarantines_bad_rows(store: Store, tmp_path: Path) -> None:
    plan = plan_import(write_csv(tmp_path, ROWS), channel="pos", shop_code="store-1")
    await store.ensure_operator("alice")
    seen: list[tuple[int, int]] = []
    first = await run_import(store, plan, actor=OPERATOR, progress=lambda done, total: seen.append((done, total)))
    assert (first.inserted, first.updated, first.quarantined) == (3, 0, 4)
    assert seen[-1] == (3, 3)
    again = await run_import(store, plan_import(write_csv(tmp_path, ROWS), channel="pos", shop_code="store-1"),
                             actor=OPERATOR)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    assert await store.count_orders() == 3
    entries = await quarantine_list(store)
    assert len(entries) == 4 and {e.connector for e in entries} == {"import:pos:store-1"}
    assert any("火星状态" in e.reason and e.external_id == "P1003" for e in entries)
    order_id = await store.order_id_by_no("P1001")
    t = TimelineEvent.__table__.c
    async with store.engine.connect() as conn:
        authors = set((await conn.execute(select(t.actor_kind, t.actor_id).where(t.order_id == order_id))).all())
    assert authors == {("operator", "alice")}


def test_excel_files_with_numbers_dates_and_a_mapping(tmp_path: Path) -> None:
    import xlsxwriter

    path = tmp_path / "distributor.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("订单")
    when = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    sheet.write_row(0, 0, ["单号", "状况", "时间", "客户", "电话", "收货地址", "货号", "件数", "价格(分)"])
    sheet.write_row(1, 0, [88001, "OK"])
    sheet.write_datetime(1, 2, datetime(2025, 3, 1, 10, 0), when)
    sheet.write_row(1, 3, ["张三", 13812345678, "杭州西湖区文三路1号", "A-1", 2, 1990])
    sheet.write_row(2, 0, [2.0**60, "OK"])  # an order number Excel could not keep exactly
    sheet.write_datetime(2, 2, datetime(2025, 3, 1, 10, 0), when)
    sheet.write_row(2, 3, ["李四", 13900001111, "南京", "B-2", 1, 500])
    book.close()
    mapping = tmp_path / "distributor.toml"
    mapping.write_text(
        '[amount]\nunit = "分"\n[fields]\norder_id = "单号"\nstatus = "状况"\ncreated_at = "时间"\n'
        'receiver_name = "客户"\nreceiver_phone = "电话"\naddress_detail = "收货地址"\nwaybill = "运单"\n'
        '[lines]\nsku = "货号"\nquantity = "件数"\nprice = "价格(分)"\n[status]\nOK = "paid"\n', encoding="utf-8")
    plan = plan_import(path, channel="distributor", mapping=mapping)
    assert plan.kind == "xlsx" and plan.unused_mapped == ["运单"]
    [order] = plan.orders
    assert (order.channel_order_id, order.receiver_phone, order.total_fen) == ("88001", "13812345678", 3980)
    assert order.created_at == datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
    [problem] = plan.problems
    assert problem.rows == (3,) and "失真" in problem.reason


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("missing.csv", None, "找不到文件"),
        ("orders.pdf", b"%PDF-1.4", "不支持的文件类型"),
        ("empty.csv", b"", "空的"),
        ("renamed.csv", b"PK\x03\x04\x00\x00\x00binary", "CSV"),
        ("broken.xlsx", b"not a zip at all", "无法读取 Excel"),
        ("nostatus.csv", "订单号,付款时间\nP1,2025-03-01 10:00\n".encode(), "订单状态"),
    ],
)
def test_a_bad_file_is_one_clear_error(tmp_path: Path, name: str, content: bytes | None, words: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImportFileError) as caught:
        plan_import(path, channel="pos")
    assert words in caught.value.zh and caught.value.en


def test_cli_previews_confirms_and_never_shows_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "desk.db")
    csv_path = str(write_csv(tmp_path, ROWS))
    # no terminal and no --yes: preview only, nothing written
    assert main(["--db", db, "--operator", "bob", "import", csv_path, "--channel", "pos"]) == 1
    out = capsys.readouterr()
    assert "可导入 3 个订单" in out.out and "第 5 行" in out.out and "--yes" in out.err
    assert "张*" in out.out and "138****5678" in out.out  # the preview is masked (db.privacy)
    assert "张三" not in out.out and "13812345678" not in out.out and "文三路" not in out.out
    assert main(["--db", db, "--operator", "bob", "import", csv_path, "--channel", "pos", "--yes"]) == 0
    assert "新增 3" in capsys.readouterr().out
    assert main(["--db", db, "--operator", "bob", "--lang", "en", "import", csv_path, "--channel", "pos",
                 "--yes"]) == 0
    assert "0 new, 0 updated, 3 unchanged" in capsys.readouterr().out
    assert main(["--db", db, "--operator", "eve", "import", csv_path, "--channel", "pos", "--yes"]) == 2
    assert "eve 还不是本库的操作员" in capsys.readouterr().err  # bob, the first, is its admin; eve is nobody
    assert main(["--db", db, "import", str(tmp_path / "nope.xlsx"), "--channel", "pos"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "找不到文件" in err and "Traceback" not in err
    assert main(["--db", db, "import", csv_path, "--channel", "Bad Channel!"]) == 1
    assert "渠道代码" in capsys.readouterr().err
