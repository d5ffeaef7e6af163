"""Customer data in CLI output is masked; ``deskapp show --reveal`` shows it to whom it may, on record."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db import access
from db.codes import ActorKind
from db.edits import AddressFields, save_address
from db.ingest import ingest
from db.store import NewLine, NewOrder, Store
from db.views import Actor
from deskapp.__main__ import main
from widgets.i18n import set_language

NAME, PHONE, STREET = "欧阳娜娜", "13987654321", "文三路478号华星时代广场B座1203室"
#: What must never be printed unless revealed: the full name, the full phone, its middle, the street.
SECRETS = (NAME, "阳娜", PHONE, "9876", "文三路", "华星时代")


@pytest.fixture(autouse=True)
def _environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESKAPP_LOG_FILE", str(tmp_path / "deskapp.log"))
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.delenv("DESKAPP_LANG", raising=False)
    monkeypatch.delenv("DESKAPP_RULES", raising=False)
    monkeypatch.chdir(tmp_path)
    set_language("zh")


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    path = tmp_path / "orders.db"
    now = datetime.now(UTC) - timedelta(hours=1)

    async def build() -> None:
        store = await Store.open(path)
        try:
            await store.ensure_operator("li", "李霞", role="cs")
            await store.ensure_operator("qian", "钱小库", role="warehouse")
            await ingest(store, [NewOrder(
                "taobao", "tb1", "M-1", now, order_no="M-1", paid_at=now, modified_at=now, receiver_name=NAME,
                receiver_phone=PHONE, province="浙江省", city="杭州市", district="西湖区", address_detail=STREET,
                buyer_note=f"到了打{PHONE}", seller_memo=f"客户说手机 {PHONE[:3]} {PHONE[3:7]} {PHONE[7:]}",
                lines=[NewLine("SKU-1", "杯子", 1, 100)],
            )], actor=Actor(ActorKind.CONNECTOR, "taobao:tb1"), at=now)
            # the timeline records old → new receiver and address: masked on the way out too
            await save_address(store, await store.order_id_by_no("M-1"), AddressFields(
                NAME, PHONE, "浙江省", "杭州市", "西湖区", STREET.replace("1203", "1204")), Actor(ActorKind.OPERATOR, "li"))
        finally:
            await store.close()

    asyncio.run(build())
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _masked(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret


def test_lookup_show_and_queue_print_customer_data_masked(pool: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(pool)
    code, out, _ = _run(capsys, "lookup", NAME, "--db", db)  # found by the real name …
    assert code == 0 and "M-1" in out and "欧***" in out and "139****4321" in out
    _masked(out)  # … shown masked
    code, out, _ = _run(capsys, "lookup", "4321", "--db", db, "--json")
    (hit,) = json.loads(out)
    assert (hit["order_no"], hit["receiver_name"], hit["receiver_phone"]) == ("M-1", "欧***", "139****4321")
    _masked(out)
    code, out, _ = _run(capsys, "show", "M-1", "--db", db)
    assert code == 0 and "浙江省 杭州市 西湖区 ****" in out and "到了打139****4321" in out
    _masked(out)
    code, out, _ = _run(capsys, "show", "M-1", "--db", db, "--json")
    card = json.loads(out)
    assert (card["receiver_name"], card["receiver_phone"], card["address_detail"]) == ("欧***", "139****4321", "****")
    assert card["seller_memo"] == "客户说手机 139****4321"
    (edit,) = [e for e in card["timeline"] if e["kind"] == "address"]
    assert (edit["from_value"], edit["to_value"]) == ("欧*** 139****4321 浙江省杭州市西湖区****",) * 2
    assert card["customer"]["name"] == "欧***"
    _masked(out)
    for args in (("queue", "--db", db), ("queue", "--db", db, "--json")):
        code, out, _ = _run(capsys, *args)
        assert code == 0 and "M-1" in out
        _masked(out)


def test_show_reveal_prints_the_fields_asked_for_and_records_each(pool: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "show", "M-1", "--db", str(pool), "--operator", "li", "--json",
                          "--reveal", "name,phone", "--reason", "回访客户要求")
    assert (code, err) == (0, "")
    card = json.loads(out)
    assert (card["receiver_name"], card["receiver_phone"], card["address_detail"]) == (NAME, PHONE, "****")
    assert card["buyer_note"] == f"到了打{PHONE}"  # phone numbers in the notes come with the phone
    records = asyncio.run(_records(pool))
    assert [(r.kind, r.operator_id, r.order_id, r.field, r.reason, r.detail) for r in records] == [
        ("reveal", "li", card["id"], "name", "回访客户要求", {"via": "cli"}),
        ("reveal", "li", card["id"], "phone", "回访客户要求", {"via": "cli"}),
    ]
    code, out, _ = _run(capsys, "show", "M-1", "--db", str(pool), "--operator", "li", "--reveal", "address",
                        "--reason", "核对地址")
    assert code == 0 and STREET.replace("1203", "1204") in out and NAME not in out and PHONE not in out


def test_show_reveal_is_refused_without_permission_or_reason(pool: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(pool)
    code, out, err = _run(capsys, "show", "M-1", "--db", db, "--operator", "qian", "--reveal", "phone",
                          "--reason", "想看看")
    assert (code, out, err) == (2, "", "deskapp: 仓库人员不能查看完整的客户信息（需要 客服、主管或管理员）\n")
    assert _run(capsys, "show", "M-1", "--db", db, "--operator", "li", "--reveal", "phone")[2] == \
        "deskapp: 查看完整信息需要填写原因：--reason \"…\"\n"
    assert _run(capsys, "show", "M-1", "--db", db, "--operator", "li", "--reveal", "phone,id_card",
                "--reason", "x")[2] == "deskapp: 无法显示的字段：id_card（可选：name,phone,address）\n"
    records = asyncio.run(_records(pool))
    assert [(r.kind, r.operator_id, r.detail["action"]) for r in records] == [("refused", "qian", "reveal")]


async def _records(path: Path) -> list[access.AccessRecord]:
    store = await Store.open(path)
    try:
        return list(reversed(await access.recent(store, 50)))
    finally:
        await store.close()
