"""Escalation against a real database, as ``deskapp sync`` and the app run it: one sender per
database, the timeline as the record and the feed, the S breaker seen by every process.

A real SQLite file (and PostgreSQL, see conftest) and the robot receiver of
connectors/emulators/robots.py over real HTTP on 127.0.0.1; every clock is passed in.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import stamina
from sqlalchemy import select, update

from connectors.emulators.robots import Bot, RobotReceiver, serve_robots
from db.codes import ActorKind
from db.ingest import ingest, lease_holder
from db.models import Customer, Order, TimelineEvent
from db.store import NewLine, NewOrder, Store
from db.views import Actor
from deskapp.__main__ import main
from deskapp.commands.sync import run_sync
from deskapp.services.escalation import Toast, parse_config
from deskapp.services.escalation_runner import ESCALATION_LEASE, EscalationRunner, load
from deskapp.services.queue import S_BREAKER_LEASE, QueueService
from deskapp.services.rules import RulesFile
from deskapp.settings import Settings

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)  # 14:00 in China
SYNC = Actor(ActorKind.CONNECTOR, "taobao:tb1")
DT_SECRET = "SEC-escalation-runner-dingtalk"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_retry_waits() -> object:
    with stamina.set_testing(True, attempts=3):
        yield


@dataclass
class Rig:
    receiver: RobotReceiver
    floor: Bot  # WeCom: the group lead
    boss: Bot  # DingTalk, signed: the supervisor
    environ: dict[str, str]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    receiver = RobotReceiver()
    async with serve_robots(receiver) as url:
        floor, boss = receiver.add("wecom"), receiver.add("dingtalk", secret=DT_SECRET)
        environ = {"HOOK_FLOOR": receiver.webhook(url, floor), "HOOK_BOSS": receiver.webhook(url, boss),
                   "SECRET_BOSS": DT_SECRET}
        yield Rig(receiver, floor, boss, environ)


CONFIG = """
[escalation]
interval_seconds = 60
[escalation.robots.floor]
kind = "wecom"
webhook_env = "HOOK_FLOOR"
[escalation.robots.boss]
kind = "dingtalk"
webhook_env = "HOOK_BOSS"
secret_env = "SECRET_BOSS"
[escalation.people.lead]
name = "王组长"
robot = "floor"
mentions = ["13800000001"]
[escalation.people.supervisor]
name = "李主管"
robot = "boss"
mentions = ["13800000002"]
[[escalation.levels]]
name = "组长"
after_minutes = {{ S = {first} }}
notify = ["lead"]
[[escalation.levels]]
name = "主管"
after_minutes = {{ S = {second} }}
notify = ["supervisor"]
"""
BREAKER = """
[escalation.breaker]
max_s_waiting = 2
cooldown_minutes = 30
notify = ["supervisor"]
"""


def config(rig: Rig, *, first: int = 30, second: int = 60, breaker: bool = False):
    text = CONFIG.format(first=first, second=second) + (BREAKER if breaker else "")
    parsed, problems = parse_config(tomllib.loads(text), environ=rig.environ)
    assert parsed is not None and problems == []
    return parsed


def runner(store: Store, rig: Rig, holder: str, *, sends: bool = True, **options) -> tuple[EscalationRunner, list[Toast]]:
    toasts: list[Toast] = []

    async def get_store() -> Store:
        return store

    cfg = options.pop("config", None) or config(rig)
    return EscalationRunner(cfg, get_store, sends=sends, holder=holder, on_toast=toasts.append,
                            environ=rig.environ, clock=lambda: T0, **options), toasts


async def another(store: Store) -> Store:
    """The same database through connections of its own, as another process would open it."""
    return await Store.open(store.engine.url.render_as_string(hide_password=False))


def order(no: str, priority: str, paid_minutes_ago: float, **fields) -> NewOrder:
    paid = T0 - timedelta(minutes=paid_minutes_ago)
    fields.setdefault("receiver_phone", "13900001111")
    return NewOrder("taobao", "tb1", no, paid - timedelta(minutes=1), order_no=no, paid_at=paid, modified_at=paid,
                    priority=priority, receiver_name="顾客", province="浙江省", city="杭州市", district="西湖区",
                    address_detail=f"文三路{no}", lines=[NewLine("SKU-1", "杯子", 1, 100)], **fields)


async def escalation_events(store: Store) -> list[tuple]:
    t, o = TimelineEvent.__table__.c, Order.__table__.c
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(o.order_no, t.actor_kind, t.actor_id, t.from_value, t.to_value)
            .join(Order.__table__, o.id == t.order_id).where(t.kind == "escalated").order_by(t.id))
        return [tuple(r) for r in rows]


# -- one sender per database -------------------------------------------------------------------------


async def test_an_overdue_s_order_is_posted_once_by_one_sender_and_a_restart_sends_nothing_again(
        store: Store, rig: Rig) -> None:
    await ingest(store, [order("TB-S1", "S", 31), order("TB-S2", "S", 10), order("TB-A1", "A", 300),
                         order("TB-S3", "S", 90, status="shipped")], actor=SYNC, at=T0)
    first, first_toasts = runner(store, rig, "host-a:1")

    tick = await first.tick(T0)

    assert first.holding and (await lease_holder(store, ESCALATION_LEASE, now=T0))[0] == "host-a:1"
    assert [(e.order.order_no, e.level) for e in tick.escalations] == [("TB-S1", 1)]
    (message,) = rig.receiver.messages("wecom")  # WeCom's own text format, @ by mobile
    assert message["msgtype"] == "text" and "TB-S1" in message["text"]["content"]
    assert message["text"]["mentioned_mobile_list"] == ["13800000001"]
    assert rig.receiver.messages("dingtalk") == []
    assert await escalation_events(store) == [("TB-S1", "system", "escalation", "0", "1")]
    assert [(t.title, t.severity) for t in first_toasts] == [("一级升级（组长）：1 张加急单超时未发货", "information")]

    await first.tick(T0 + timedelta(minutes=5))
    assert len(rig.receiver.received) == 1  # once per level

    # A second process on the same database: not the sender, so it sends and writes nothing ...
    other_store = await another(store)
    try:
        second, second_toasts = runner(other_store, rig, "host-b:2")
        assert await second.tick(T0 + timedelta(minutes=5)) is None and not second.holding
        assert second_toasts == []  # ... and it started after that escalation: no old toast

        # 31 minutes on: TB-S2 reaches level 1, TB-S1 level 2 (the supervisor, on DingTalk, signed)
        later = T0 + timedelta(minutes=31)
        await first.tick(later)
        await second.tick(later)
        assert len(rig.receiver.messages("wecom")) == 2 and "TB-S2" in rig.receiver.messages("wecom")[1]["text"]["content"]
        (boss,) = rig.receiver.messages("dingtalk")
        assert "TB-S1" in boss["markdown"]["text"] and boss["at"]["atMobiles"] == ["13800000002"]
        assert rig.receiver.refused == []
        # every session toasts them, the sender and the other alike, by level
        expected = [("一级升级（组长）：1 张加急单超时未发货", "information", "TB-S2；已通知 王组长"),
                    ("二级升级（主管）：1 张加急单超时未发货", "warning", "TB-S1；已通知 李主管")]
        assert [(t.title, t.severity, t.message) for t in second_toasts] == expected
        assert [(t.title, t.severity, t.message) for t in first_toasts[1:]] == expected

        # the sender stops cleanly: the lease goes back, and the next process takes over from the timeline
        await first.close()
        assert await lease_holder(store, ESCALATION_LEASE, now=later) is None
        restarted, _ = runner(other_store, rig, "host-c:3")
        tick = await restarted.tick(later + timedelta(minutes=1))
        assert restarted.holding and tick.escalations == ()
        assert len(rig.receiver.received) == 3  # nothing sent again
        assert [e[0] for e in await escalation_events(store)] == ["TB-S1", "TB-S2", "TB-S1"]
        await restarted.close()
    finally:
        await other_store.close()


async def test_a_listen_only_session_never_takes_the_lease_but_toasts(store: Store, rig: Rig) -> None:
    await ingest(store, [order("TB-S1", "S", 20)], actor=SYNC, at=T0)
    listener, heard = runner(store, rig, "agent:1", sends=False)
    await listener.tick(T0)  # the first look: where this session starts
    sender, _ = runner(store, rig, "server:1")
    await sender.tick(T0 + timedelta(minutes=11))

    await listener.tick(T0 + timedelta(minutes=11))

    assert not listener.holding and (await lease_holder(store, ESCALATION_LEASE, now=T0))[0] == "server:1"
    assert [t.message for t in heard] == ["TB-S1；已通知 王组长"]
    assert len(rig.receiver.received) == 1


async def test_a_sender_that_lost_its_lease_mid_check_sends_nothing(store: Store, rig: Rig) -> None:
    await ingest(store, [order("TB-S1", "S", 31)], actor=SYNC, at=T0)
    slow, _ = runner(store, rig, "slow:1")
    await slow.tick(T0 - timedelta(minutes=10))  # holds the lease, nothing due yet
    # it stalls past its lease; another process takes over meanwhile
    taker, _ = runner(store, rig, "taker:1")
    assert await taker.tick(T0 + timedelta(hours=1)) is not None and taker.holding
    sent = len(rig.receiver.received)

    await slow.worker.tick(T0 + timedelta(hours=1))  # the stalled check goes on: its record is refused

    assert len(rig.receiver.received) == sent and not slow.holding
    assert [e[0] for e in await escalation_events(store)] == ["TB-S1"]


# -- the S breaker -----------------------------------------------------------------------------------------

RULES = """
[[priority]]
id = "vip-big"
name = "VIP 大单"
when = 'vip_level in ["S", "A"] && amount > 5000'
level = "S"
"""


async def test_the_breaker_alerts_once_and_the_rules_grant_a_during_the_cooldown_then_s_again(
        store: Store, rig: Rig) -> None:
    # three VIP orders the rules make S (the limit is two), one more VIP order arriving later
    await ingest(store, [order(f"VIP-{n}", "C", 5, total_fen=800_000) for n in (1, 2, 3)], actor=SYNC, at=T0)
    async with store.write() as conn:
        await conn.execute(update(Customer.__table__).values(vip_level="A"))
    now = [T0]

    async def get_store() -> Store:
        return store

    rules = QueueService(get_store, rules=RulesFile.from_text(RULES), clock=lambda: now[0])
    await rules.recompute()
    listener, heard = runner(store, rig, "agent:1", sends=False)
    await listener.tick(T0)
    sender, _ = runner(store, rig, "server:1", config=config(rig, first=600, second=700, breaker=True))

    await sender.tick(T0)
    await sender.tick(T0 + timedelta(minutes=1))  # still over the limit: no second alert

    (alert,) = rig.receiver.messages("dingtalk")
    assert "熔断" in alert["markdown"]["title"] and "3 张" in alert["markdown"]["title"]
    assert alert["at"]["atMobiles"] == ["13800000002"]
    holder = await lease_holder(store, S_BREAKER_LEASE, now=T0 + timedelta(minutes=1))
    assert holder is not None and holder[1] == T0 + timedelta(minutes=30)
    await listener.tick(T0 + timedelta(minutes=1))
    assert [(t.title, t.severity) for t in heard] == [("熔断：S 级待发订单超过上限", "error")]
    assert "14:30" in heard[0].message

    # a new VIP order during the cool-down: A, and why — the ones already S keep S
    now[0] = T0 + timedelta(minutes=10)
    await ingest(store, [order("VIP-4", "C", 1, total_fen=800_000)], actor=SYNC, at=now[0])
    await rules.recompute()
    got = await priorities(store)
    assert got["VIP-4"] == ("A", "S 通道已满（熔断至 14:30），按 A 处理：VIP 大单（vip-big）")
    assert {got[f"VIP-{n}"][0] for n in (1, 2, 3)} == {"S"}
    assert rules.s_breaker(now[0]) == T0 + timedelta(minutes=30)

    # the cool-down ends: the next recompute grants S again; every session hears of the reset
    now[0] = T0 + timedelta(minutes=31)
    await rules.recompute()
    assert (await priorities(store))["VIP-4"] == ("S", "VIP 大单（vip-big）")
    await listener.tick(now[0])
    assert [(t.title, t.severity) for t in heard[1:]] == [("熔断已解除", "information")]


async def priorities(store: Store) -> dict[str, tuple[str, str | None]]:
    o = Order.__table__.c
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(o.order_no, o.priority, o.priority_why))
        return {no: (p, why) for no, p, why in rows}


async def test_a_sender_taking_over_keeps_the_tripped_breaker(store: Store, rig: Rig) -> None:
    await ingest(store, [order(f"S-{n}", "S", 5) for n in range(3)], actor=SYNC, at=T0)
    cfg = config(rig, first=600, second=700, breaker=True)
    first, _ = runner(store, rig, "a:1", config=cfg)
    await first.tick(T0)
    await first.close()
    second, _ = runner(store, rig, "b:1", config=cfg)

    tick = await second.tick(T0 + timedelta(minutes=5))

    assert tick.breaker is None and second.escalator.breaker_until == T0 + timedelta(minutes=30)
    assert len(rig.receiver.messages("dingtalk")) == 1  # the one alert, not a second from the new sender


# -- the file -------------------------------------------------------------------------------------------------


BROKEN = """
[escalation]
interval_seconds = 5
[[escalation.levels]]
after_minutes = { X = 10 }
"""


def test_unset_robot_variables_make_a_listen_only_config_and_anything_else_breaks_it(tmp_path: Path) -> None:
    example = ROOT / "deskapp.escalation.example.toml"
    loaded = load(example, environ={})
    assert loaded.config is not None and not loaded.sends
    assert {p.code for p in loaded.problems} == {"missing_env"}
    broken = tmp_path / "esc.toml"
    broken.write_text(BROKEN, encoding="utf-8")
    bad = load(broken, environ={})
    assert bad.config is None and len(bad.problems) == 2


async def test_deskapp_sync_with_a_broken_escalation_file_prints_every_problem_and_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "esc.toml"
    broken.write_text(BROKEN, encoding="utf-8")
    args = argparse.Namespace(config=str(tmp_path / "deskapp.toml"), once=False, db=None, escalation=str(broken))

    assert await run_sync(args, Settings(db=str(tmp_path / "pool.db"))) == 2

    err = capsys.readouterr().err
    assert "interval_seconds" in err and "未知的优先级「X」" in err and "Traceback" not in err
    assert not (tmp_path / "pool.db").exists()  # it stopped before anything started


def test_config_check_checks_the_escalation_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from tests.connectors.test_config import EXAMPLE, SECRETS

    monkeypatch.setenv("DESKAPP_LOG_FILE", str(tmp_path / "deskapp.log"))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    esc = ROOT / "deskapp.escalation.example.toml"
    assert main(["config", "check", "--config", str(EXAMPLE), "--escalation", str(esc)]) == 1
    err = capsys.readouterr().err
    assert "升级提醒配置有" in err and "DESK_WECOM_WAREHOUSE" in err  # an unset robot variable is a problem here

    for name, url in {"DESK_WECOM_WAREHOUSE": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
                      "DESK_DINGTALK_MANAGERS": "https://oapi.dingtalk.com/robot/send?access_token=t",
                      "DESK_DINGTALK_MANAGERS_SECRET": "SECx",
                      "DESK_FEISHU_OWNER": "https://open.feishu.cn/open-apis/bot/v2/hook/h",
                      "DESK_FEISHU_OWNER_SECRET": "fs"}.items():
        monkeypatch.setenv(name, url)
    assert main(["config", "check", "--config", str(EXAMPLE), "--escalation", str(esc)]) == 0
    out = capsys.readouterr().out
    assert "升级提醒：3 级，3 个群机器人，S 级待发超过 20 张熔断" in out

    broken = tmp_path / "esc.toml"
    broken.write_text(BROKEN, encoding="utf-8")
    assert main(["config", "check", "--config", str(EXAMPLE), "--escalation", str(broken)]) == 1
    assert "未知的优先级「X」" in capsys.readouterr().err
