"""Permissions are enforced in the service layer: every role × action through the real functions.

A refused action raises ``db.roles.Refused`` (a scan returns a refused ``ScanResult``), says why in
plain words, leaves every order, timeline event and parcel as it was, and is put on the access log.
The role is read from the database inside the write: changing it applies to the next action.

Every test that takes ``store`` runs on SQLite and on PostgreSQL (see conftest).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update

from db import checks as pool
from db.access import recent
from db.codes import ActorKind
from db.edits import AddressFields, save_address
from db.ingest import ingest
from db.models import NameGram, Operator, Order, Parcel, TimelineEvent
from db.roles import PERMISSIONS, ROLES, Refused, allowed, roles_for
from db.store import NewLine, NewOrder, Store
from db.views import Actor
from deskapp.services.checker import Checker
from deskapp.services.scan import advance
from widgets.i18n import set_language

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
SYNC = Actor(ActorKind.CONNECTOR, "taobao:tb1")
USER = Actor(ActorKind.OPERATOR, "u1")


@pytest.fixture(autouse=True)
def chinese():
    set_language("zh")


def new(no: str, **fields) -> NewOrder:
    values = {"receiver_name": "张三", "receiver_phone": f"138{sum(map(ord, no)) % 10**8:08d}", "province": "浙江省",
              "city": "杭州市", "district": "西湖区", "address_detail": "文三路100号", "total_fen": 12900,
              "paid_fen": 12900, "raw_status": "WAIT_SELLER_SEND_GOODS", "paid_at": T0, "modified_at": T0,
              "order_no": no, "lines": [NewLine("SKU-1", "连衣裙", 1, 12900)]}
    values.update(fields)
    return NewOrder("taobao", "tb1", no, T0, **values)


async def orders(store: Store) -> dict[str, int]:
    """One order per action: paid ones, one a channel held (no check codes), one the checks held."""
    await ingest(store, [new("A1"), new("A2", city="宁波市"), new("C1"), new("M1"), new("S1"),
                         new("H2", city="宁波市")], actor=SYNC, at=T0)
    await Checker(store).run_once()  # holds A2 and H2: 西湖区 is not in 宁波市
    await store.add_order(new("H1", status="hold", hold_reason="渠道标记异常"), actor=SYNC, at=T0)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(Order.__table__.c.order_no, Order.__table__.c.id))).all()
    return {no: order_id for no, order_id in rows}


async def everything(store: Store) -> tuple:
    """Every order row, parcel and name piece, and how many timeline events: what a refusal keeps."""
    async with store.engine.connect() as conn:
        rows = [tuple(r) for r in await conn.execute(select(Order.__table__).order_by(Order.__table__.c.id))]
        parcels = [tuple(r) for r in await conn.execute(select(Parcel.__table__).order_by(Parcel.__table__.c.id))]
        grams = sorted(tuple(r) for r in await conn.execute(select(NameGram.__table__)))
        events = (await conn.execute(select(func.count()).select_from(TimelineEvent.__table__))).scalar_one()
    return rows, parcels, grams, events


async def status(store: Store, order_id: int) -> str:
    async with store.engine.connect() as conn:
        return (await conn.execute(text("SELECT status FROM orders WHERE id = :i"), {"i": order_id})).scalar_one()


def _fields(**changes: str) -> AddressFields:
    base = AddressFields("张三", "13800000001", "浙江省", "杭州市", "西湖区", "文三路200号")
    return AddressFields(**{**base.as_dict(), **changes})


#: (what the person does, the actions db.roles checks — all are needed, the call). Each acts on its own order.
CASES: list[tuple[str, tuple[str, ...], Callable[[Store, dict[str, int]], Awaitable[object]]]] = [
    ("release a channel's hold", ("release_hold",),
     lambda s, ids: pool.release(s, ids["H1"], "客户确认", USER, at=T0 + timedelta(hours=1))),
    ("release a blocking check's hold", ("release_hold", "override_check"),
     lambda s, ids: pool.release(s, ids["H2"], "客户确认地址无误", USER, at=T0 + timedelta(hours=1))),
    ("cancel", ("cancel_order",), lambda s, ids: pool.cancel(s, ids["C1"], "客户要求取消", USER)),
    ("correct an address", ("edit_address",),
     lambda s, ids: save_address(s, ids["A1"], _fields(), USER, clean=True, at=T0 + timedelta(hours=1))),
    ("save an address despite a blocking problem", ("edit_address", "override_check"),
     lambda s, ids: save_address(s, ids["A2"], _fields(city="宁波市"), USER, override=True,
                                 at=T0 + timedelta(hours=1))),
    ("change the memo", ("edit_memo",), lambda s, ids: s.set_seller_memo(ids["M1"], "周末送", actor=USER)),
    ("scan a warehouse step", ("advance_step",), lambda s, ids: advance(s, "S1", USER, at=T0 + timedelta(hours=1))),
]


@pytest.mark.parametrize("role", ROLES)
async def test_every_role_may_do_exactly_what_the_table_says(store: Store, role: str) -> None:
    await store.ensure_operator("u1", "测试员", role=role)
    ids = await orders(store)
    for what, actions, call in CASES:
        before = await everything(store)
        missing = [a for a in actions if not allowed(role, a)]
        if not missing:
            result = await call(store, ids)
            assert getattr(result, "ok", True), (role, what, result)
            assert await everything(store) != before, (role, what)
            continue
        refused: Refused | None = None
        try:
            result = await call(store, ids)
        except Refused as error:
            refused = error
        else:  # a scan says so in its result, as every wrong scan does
            assert (result.ok, result.code) == (False, "refused"), (role, what)
            refused = result.refused
            assert refused.text() in result.message()
        action = missing[0]
        assert (refused.action, refused.role, refused.operator) == (action, role, "u1"), what
        assert await everything(store) == before, (role, what)  # nothing changed
        (last,) = await recent(store, 1)
        assert (last.kind, last.operator_id, last.detail["action"]) == ("refused", "u1", action)
        assert last.reason == refused.text("zh")


async def test_the_two_holds_need_different_roles(store: Store) -> None:
    """A channel's hold is customer service's to release; one a blocking check placed needs a supervisor."""
    await store.ensure_operator("u1", "客服", role="cs")
    ids = await orders(store)
    assert await pool.release(store, ids["H1"], "客户确认", USER) == "paid"
    with pytest.raises(Refused) as refused:
        await pool.release(store, ids["H2"], "客户确认", USER)
    assert refused.value.text() == "客服不能越过拦截检查（需要 主管或管理员）"
    assert await status(store, ids["H2"]) == "hold"
    await store.ensure_operator("boss", "主管", role="supervisor")
    assert await pool.release(store, ids["H2"], "客户确认地址无误", Actor("operator", "boss")) == "paid"
    async with store.engine.connect() as conn:
        detail = (await conn.execute(text("SELECT detail FROM timeline_event WHERE order_id = :i AND kind = 'released'"),
                                     {"i": ids["H2"]})).scalar_one()
    assert "address_conflict" in str(detail)  # the override is on the order's record


def test_refusals_say_why_in_plain_words() -> None:
    warehouse = Refused("release_hold", "warehouse", "zhaolei")
    assert warehouse.text("zh") == "仓库人员不能放行拦截单（需要 客服、主管或管理员）"
    assert warehouse.text("en") == "Warehouse staff cannot release a held order (needs customer service, supervisor or admin)"
    assert Refused("advance_step", "cs", "li").text() == "客服不能扫码确认仓库作业（需要 仓库人员、主管或管理员）"
    assert Refused("manage_operators", "supervisor", "x").text("en") == "A supervisor cannot manage operators (needs admin)"
    assert Refused("edit_memo", None, "ghost", "unknown").text() == "ghost 还不是本库的操作员，不能修改卖家备注"
    assert Refused("edit_memo", "cs", "old", "disabled").text("en") == "old is disabled and cannot change a seller memo"
    assert "\x1b" not in Refused("edit_memo", None, "x\x1b]52;c;aGk=\x07", "unknown").text()


def test_the_permission_table() -> None:
    assert roles_for("export_revealed") == ("admin",)
    assert roles_for("advance_step") == ("warehouse", "supervisor", "admin")
    assert roles_for("override_check") == ("supervisor", "admin")
    assert all("admin" in roles for roles in PERMISSIONS.values())
    assert not any(allowed("warehouse", a) for a in ("release_hold", "edit_address", "cancel_order", "reveal"))
    assert not allowed("cs", "advance_step") and not allowed("boss", "edit_memo")
    with pytest.raises(ValueError):
        allowed("cs", "fly")


async def test_unknown_disabled_and_non_person_actors_are_refused(store: Store) -> None:
    ids = await orders(store)
    with pytest.raises(Refused) as unknown:
        await store.set_seller_memo(ids["M1"], "x", actor=Actor("operator", "ghost"))
    assert unknown.value.reason == "unknown"
    await store.ensure_operator("old", "老员工", role="cs")
    async with store.write() as conn:
        await conn.execute(update(Operator.__table__).where(Operator.__table__.c.id == "old").values(active=False))
    with pytest.raises(Refused) as disabled:
        await pool.cancel(store, ids["C1"], "x", Actor("operator", "old"))
    assert disabled.value.reason == "disabled"
    with pytest.raises(Refused) as connector:
        await pool.release(store, ids["H1"], "x", SYNC)
    assert connector.value.text() == "connector:taobao:tb1 不能放行拦截单（只有操作员可以）"
    # a rule may release a hold (a channel's), never override a blocking check
    assert await pool.release(store, ids["H1"], "规则放行", Actor(ActorKind.RULE, "auto")) == "paid"
    with pytest.raises(Refused):
        await pool.release(store, ids["H2"], "规则放行", Actor(ActorKind.RULE, "auto"))
    assert [r.operator_id for r in await recent(store, 10, kind="refused")] == [
        "rule:auto", "connector:taobao:tb1", "old", "ghost"]


async def test_the_role_is_read_at_the_moment_of_the_action(store: Store) -> None:
    """A UI that still shows the old role cannot act on it: the write reads the table itself."""
    await store.ensure_operator("u1", "测试员", role="cs")
    ids = await orders(store)
    await store.set_seller_memo(ids["M1"], "第一次", actor=USER)
    async with store.write() as conn:
        await conn.execute(update(Operator.__table__).where(Operator.__table__.c.id == "u1").values(role="warehouse"))
    with pytest.raises(Refused):
        await store.set_seller_memo(ids["M1"], "第二次", actor=USER)
    result = await advance(store, "S1", USER, at=T0 + timedelta(hours=1))
    assert result.ok and result.step == "allocate"
