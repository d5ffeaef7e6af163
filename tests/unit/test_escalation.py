"""Escalation levels, once per level, the S-order circuit breaker, the worker loop and config errors.

The decisions are pure (an injected ``now``); robots are left to tests/connectors/test_robots.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deskapp.services.escalation import (
    EscalationConfig,
    EscalationConfigError,
    EscalationWorker,
    Escalator,
    NotifySender,
    OpenOrder,
    Tick,
    Toast,
    duration,
    load_config,
    parse_config,
    read_config,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "deskapp.escalation.example.toml"
ENV = {
    "DESK_WECOM_WAREHOUSE": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k-1",
    "DESK_DINGTALK_MANAGERS": "https://oapi.dingtalk.com/robot/send?access_token=t-2",
    "DESK_DINGTALK_MANAGERS_SECRET": "SECabc",
    "DESK_FEISHU_OWNER": "https://open.feishu.cn/open-apis/bot/v2/hook/h-3",
    "DESK_FEISHU_OWNER_SECRET": "fs",
}
T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)  # 10:00 in China


@pytest.fixture(scope="module")
def config() -> EscalationConfig:
    """The documented example: levels S 30/60/120 min, A 120/240/480 min; breaker > 20 S, 30 min."""
    return load_config(EXAMPLE, environ=ENV)


def order(no: str = "TB1", priority: str = "S", status: str = "paid", *, since: datetime = T0,
          due: datetime | None = None, warehouse: str = "") -> OpenOrder:
    return OpenOrder(no, priority, status, since, sla_due=due, warehouse=warehouse)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# -- levels ------------------------------------------------------------------------------------------------


def test_the_documented_example_is_valid(config: EscalationConfig) -> None:
    assert [lv.name for lv in config.levels] == ["组长", "主管", "老板"]
    assert config.thresholds("S") == (timedelta(minutes=30), timedelta(minutes=60), timedelta(minutes=120))
    assert config.thresholds("B") == ()
    assert set(config.robots) == {"warehouse", "managers", "owner"}
    assert config.breaker is not None and config.breaker.max_s_waiting == 20


def test_an_s_order_climbs_the_levels_once_each_to_the_right_people(config: EscalationConfig) -> None:
    escalator = Escalator(config)
    queue = [order("TB1", due=at(90))]

    assert escalator.decide(queue, at(29)).escalations == ()
    first = escalator.decide(queue, at(31))
    assert [(e.order.order_no, e.level, e.level_name) for e in first.escalations] == [("TB1", 1, "组长")]
    assert [(r.robot, r.notice.mentions) for r in first.notices] == [("warehouse", ("13800000001",))]
    assert first.notices[0].notice.title == "一级升级（组长）：1 张加急单超时未发货"
    assert first.notices[0].notice.lines == ("S 级 TB1：已等待 31 分，距承诺发货还剩 59 分", "请 王组长 处理")

    assert escalator.decide(queue, at(45)).escalations == ()  # once per level
    second = escalator.decide(queue, at(61))
    assert [e.level for e in second.escalations] == [2]
    # level 2 names the supervisor (DingTalk) and the lead (WeCom): one notice per robot
    assert {r.robot: r.notice.mentions for r in second.notices} == {"managers": ("13800000002",),
                                                                     "warehouse": ("13800000001",)}
    third = escalator.decide(queue, at(125))
    assert [(r.robot, r.notice.level) for r in third.notices] == [("owner", 3)]
    assert "已超过承诺发货 35 分" in third.notices[0].notice.lines[0]
    assert third.toasts[0].severity == "error"
    assert escalator.decide(queue, at(600)).escalations == ()  # nothing above level 3


def test_an_order_first_seen_late_goes_straight_to_the_level_it_reached(config: EscalationConfig) -> None:
    escalator = Escalator(config)
    tick = escalator.decide([order("TB9")], at(180))
    (escalation,) = tick.escalations
    assert (escalation.level, escalation.previous) == (3, 0)
    assert [r.robot for r in tick.notices] == ["owner"]  # not three notices at once
    assert escalation.event()["to_value"] == "3" and escalation.event()["kind"] == "escalated"


def test_a_priorities_own_thresholds_apply_and_others_never_escalate(config: EscalationConfig) -> None:
    escalator = Escalator(config)
    queue = [order("S1", "S"), order("A1", "A"), order("B1", "B"), order("C1", "C")]
    assert [e.order.order_no for e in escalator.decide(queue, at(90)).escalations] == ["S1"]
    tick = escalator.decide(queue, at(121))
    assert sorted((e.order.order_no, e.level) for e in tick.escalations) == [("A1", 1), ("S1", 3)]


def test_shipped_cancelled_and_held_orders_are_left_alone(config: EscalationConfig) -> None:
    queue = [order("SH", status="shipped"), order("CX", status="cancelled"), order("HD", status="hold"),
             order("PK", status="picking")]  # a warehouse step still waits
    tick = Escalator(config).decide(queue, at(45))
    assert [e.order.order_no for e in tick.escalations] == ["PK"] and tick.waiting == 1

    held_too = dataclasses.replace(config, include_held=True)
    assert {e.order.order_no for e in Escalator(held_too).decide(queue, at(45)).escalations} == {"PK", "HD"}


def test_state_restored_from_the_timeline_is_not_sent_again(config: EscalationConfig) -> None:
    escalator = Escalator(config)
    escalator.remember("TB1", 2)
    assert escalator.decide([order("TB1")], at(90)).escalations == ()
    assert [e.level for e in escalator.decide([order("TB1")], at(121)).escalations] == [3]


def test_an_order_that_leaves_the_queue_is_forgotten(config: EscalationConfig) -> None:
    escalator = Escalator(config)
    escalator.decide([order("TB1")], at(31))
    assert escalator.level_of("TB1") == 1
    escalator.decide([], at(32))  # shipped
    assert escalator.level_of("TB1") == 0


def test_many_orders_at_one_level_share_one_notice_and_one_toast(config: EscalationConfig) -> None:
    queue = [order(f"TB{i}", since=at(-i)) for i in range(5)]
    tick = Escalator(config).decide(queue, at(31))
    assert len(tick.notices) == 1 and len(tick.notices[0].notice.lines) == 6  # 5 orders + "请 … 处理"
    assert tick.notices[0].notice.lines[0].startswith("S 级 TB4：已等待 35 分")  # longest wait first
    (toast,) = tick.toasts
    assert toast.message == "TB4、TB3、TB2 等 5 张；已通知 王组长"


def test_order_numbers_from_platforms_lose_terminal_controls(config: EscalationConfig) -> None:
    tick = Escalator(config).decide([order("TB\x1b]52;c;aGk=\x07\u202e1")], at(31))
    text = " ".join(tick.notices[0].notice.lines) + tick.toasts[0].message
    assert "\x1b" not in text and "\u202e" not in text and "TB" in text


def test_english_wording() -> None:
    config, problems = parse_config({"escalation": {"language": "en", "levels": [
        {"name": "lead", "after_minutes": {"S": 30}, "notify": [{"name": "Wang"}]}]}}, environ={})
    assert problems == [] and config is not None
    tick = Escalator(config).decide([order("TB1", due=at(20))], at(95))
    assert tick.toasts[0].title == "Level 1 escalation (lead): 1 urgent order(s) not shipped"
    assert tick.toasts[0].message == "TB1 — told Wang"
    assert tick.notices == ()  # Wang has no robot: in-app only
    assert duration(timedelta(hours=26), "en") == "1d 2h" and duration(timedelta(seconds=20)) == "不到 1 分"


# -- the circuit breaker -------------------------------------------------------------------------------------


def s_orders(count: int, minutes: float) -> list[OpenOrder]:
    """``count`` S orders waiting since a minute before ``at(minutes)``: counted, not yet escalating."""
    return [order(f"S{i}", since=at(minutes - 1)) for i in range(count)]


def test_more_than_the_limit_of_s_orders_trips_once_then_resets_after_the_cooldown(config: EscalationConfig) -> None:
    escalator = Escalator(config)
    assert escalator.decide(s_orders(20, 11), at(11)).breaker is None  # 20 is the limit, not over it
    assert escalator.grants_s(at(11))

    tripped = escalator.decide(s_orders(21, 12), at(12))
    assert tripped.breaker is not None and tripped.breaker.kind == "tripped"
    assert tripped.breaker.until == at(42)
    assert {r.robot for r in tripped.notices} == {"managers", "owner"}
    assert tripped.notices[0].notice.title == "熔断：S 级待发订单 21 张，超过上限 20 张"
    assert "暂停新增 S 级 30 分钟，10:42（北京时间）恢复" in tripped.notices[0].notice.lines
    assert [t.severity for t in tripped.toasts] == ["error"]

    assert not escalator.grants_s(at(13)) and not escalator.grants_s(at(41.9))
    again = escalator.decide(s_orders(25, 20), at(20))
    assert again.breaker is None and again.notices == ()  # one alert per trip

    assert escalator.grants_s(at(42))  # the cool-down is over even before the next check
    reset = escalator.decide(s_orders(3, 43), at(43))
    assert reset.breaker is not None and reset.breaker.kind == "reset"
    assert [t.severity for t in reset.toasts] == ["information"] and reset.notices == ()
    assert escalator.grants_s(at(43)) and escalator.breaker_until is None


def test_still_over_the_limit_after_the_cooldown_trips_again(config: EscalationConfig) -> None:
    escalator = Escalator(config)
    escalator.decide(s_orders(30, 12), at(12))
    later = escalator.decide(s_orders(30, 43), at(43))
    assert later.breaker is not None and later.breaker.kind == "tripped" and later.breaker.until == at(73)
    assert not escalator.grants_s(at(44))


def test_only_waiting_s_orders_count_toward_the_breaker(config: EscalationConfig) -> None:
    queue = s_orders(20, 11) + [order("A1", "A"), order("SX", status="shipped")]
    tick = Escalator(config).decide(queue, at(11))
    assert tick.s_waiting == 20 and tick.breaker is None


# -- the worker --------------------------------------------------------------------------------------------


async def test_the_worker_never_raises_and_keeps_going(config: EscalationConfig) -> None:
    reads = iter([RuntimeError("database is locked"), [order("TB1")]])

    async def fetch() -> list[OpenOrder]:
        item = next(reads)
        if isinstance(item, Exception):
            raise item
        return item

    def broken_toast(toast: Toast) -> None:
        raise ValueError("no screen")

    ticks: list[Tick] = []

    async def on_tick(tick: Tick) -> None:
        ticks.append(tick)
        raise RuntimeError("timeline write failed")

    worker = EscalationWorker(Escalator(config), fetch, NotifySender({}, broken_toast), on_tick=on_tick)
    assert await worker.tick(at(31)) is None
    tick = await worker.tick(at(31))
    assert tick is not None and [e.level for e in tick.escalations] == [1]
    assert ticks == [tick] and worker.failures == 2


async def test_the_worker_runs_on_its_interval_until_stopped(config: EscalationConfig) -> None:
    stop = asyncio.Event()
    toasts: list[Toast] = []
    calls = 0

    def fetch() -> list[OpenOrder]:
        nonlocal calls
        calls += 1
        if calls == 3:
            stop.set()
        return [order("TB1", since=datetime.now(UTC) - timedelta(minutes=31))]

    worker = EscalationWorker(Escalator(config), fetch, NotifySender({}, toasts.append), interval=0.01)
    await asyncio.wait_for(worker.run(stop), timeout=5)
    assert calls == 3 and [t.title for t in toasts] == ["一级升级（组长）：1 张加急单超时未发货"]


# -- config errors -------------------------------------------------------------------------------------------


BROKEN = """
[escalation]
interval_seconds = 2
langauge = "zh"

[escalation.robots.floor]
kind = "wecom"
webhook = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=LITERAL-KEY-123"
secret_env = "FLOOR_SECRET"

[escalation.robots.boss]
kind = "feishu"
webhook_env = "BOSS_HOOK"

[escalation.robots.pager]
kind = "slack"
webhook_env = "PAGER_HOOK"

[escalation.people.owner]
name = "张总"
robot = "boss"
mentions = ["13800000009"]

[[escalation.levels]]
after_minutes = { S = 60, X = 10 }
notify = ["owner", "nobody"]

[[escalation.levels]]
after_minutes = { S = 30, A = 90 }

[escalation.breaker]
max_s_waiting = 0
"""


def test_every_mistake_is_reported_at_once_in_chinese_and_english() -> None:
    _, problems = parse_config(tomllib.loads(BROKEN), environ={"BOSS_HOOK": "not a url SECRETVALUE"})
    found = {(p.where, p.code) for p in problems}
    assert found >= {
        ("escalation.interval_seconds", "out_of_range"),
        ("escalation.langauge", "unknown_key"),
        ("escalation.robots.floor.webhook", "literal_secret"),
        ("escalation.robots.floor.webhook_env", "missing"),
        ("escalation.robots.floor.secret_env", "invalid"),
        ("escalation.robots.boss.webhook_env", "bad_webhook"),
        ("escalation.robots.pager.kind", "unknown_kind"),
        ("escalation.people.owner.mentions", "invalid"),  # Feishu cannot @ by mobile
        ("escalation.levels[0].after_minutes.X", "unknown_priority"),
        ("escalation.levels[0].notify[1]", "unknown_person"),
        ("escalation.levels[1].after_minutes.S", "not_increasing"),
        ("escalation.levels[1].after_minutes.A", "skipped_level"),
        ("escalation.breaker.max_s_waiting", "out_of_range"),
    }, sorted(found)
    by_where = {p.where: p for p in problems}
    assert "language" in by_where["escalation.langauge"].text("en")  # did you mean …
    assert "是不是 language" in by_where["escalation.langauge"].text("zh")
    assert "不签名" in by_where["escalation.robots.floor.secret_env"].zh
    for problem in problems:
        assert problem.zh and problem.en
        for language in ("zh", "en"):  # the secrets in the file and the environment are never repeated
            assert "LITERAL-KEY-123" not in problem.text(language) and "SECRETVALUE" not in problem.text(language)


def test_an_unset_environment_variable_is_a_problem_unless_allowed(tmp_path: Path) -> None:
    path = tmp_path / "esc.toml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    _, problems = read_config(path, environ={})
    assert {p.code for p in problems} == {"missing_env"} and len(problems) == 5
    assert any("DESK_DINGTALK_MANAGERS_SECRET" in p.en for p in problems)
    with pytest.raises(EscalationConfigError):
        load_config(path, environ={})
    assert load_config(path, environ={}, require_env=False).robots["owner"].kind == "feishu"


def test_wecom_markdown_cannot_at_by_mobile() -> None:
    _, problems = parse_config({"escalation": {
        "robots": {"w": {"kind": "wecom", "webhook_env": "W", "format": "markdown"}},
        "people": {"lead": {"name": "王", "robot": "w", "mentions": ["13800000001", "wang01"]}},
        "levels": [{"after_minutes": {"S": 30}, "notify": ["lead"]}],
    }}, environ={"W": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"})
    assert [(p.where, "format = \"text\"" in p.en) for p in problems] == [("escalation.people.lead.mentions", True)]


def test_files_that_are_not_toml_or_lack_the_section_say_so(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[escalation\n", encoding="utf-8")
    assert [p.code for p in read_config(bad)[1]] == ["toml"]
    empty = tmp_path / "empty.toml"
    empty.write_text("[sync]\npoll_seconds = 30\n", encoding="utf-8")
    assert [p.code for p in read_config(empty)[1]] == ["missing"]
    assert [p.code for p in read_config(tmp_path / "absent.toml")[1]] == ["missing_file"]
    levels = [{"after_minutes": {"S": minutes}} for minutes in (10, 20, 30, 40)]
    _, problems = parse_config({"escalation": {"levels": levels}}, environ={})
    assert [(p.where, p.code) for p in problems] == [("escalation.levels", "out_of_range")]
