"""Group robots over real HTTP: WeCom, DingTalk and Feishu webhooks against the local receiver.

The receiver (connectors/emulators/robots.py) runs on a free 127.0.0.1 port and checks each request
the way its platform does — signature, timestamp, body, rate limit — computing signatures on its own.
Retries keep happening but stamina's waits are removed. Nothing is mocked.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import stamina

from connectors.config import SecretRef
from connectors.emulators.robots import Bot, RobotReceiver, serve_robots
from connectors.notify import Notice, Robot, RobotSpec, make_robot
from connectors.notify.dingtalk import sign as dingtalk_sign
from deskapp.services.escalation import (
    EscalationWorker,
    Escalator,
    NotifySender,
    OpenOrder,
    Routed,
    Tick,
    Toast,
    build_robots,
    parse_config,
)

DT_SECRET = "SEC0123456789abcdef-dingtalk"
FS_SECRET = "feishu-signing-secret-42"


class FakeClock:
    """Monotonic seconds that tests move by hand (the robot's mute timer)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Rig:
    receiver: RobotReceiver
    url: str
    http: httpx.AsyncClient
    environ: dict[str, str]
    clock: FakeClock

    def robot(self, kind: str, bot: Bot, *, secret: str | None = None, fmt: str | None = None,
              name: str = "ops", language: str = "zh", **options: object) -> Robot:
        """A robot wired to ``bot`` on the receiver, its secrets in a private environment."""
        hook_env, secret_env = f"HOOK_{name.upper()}", f"SECRET_{name.upper()}"
        self.environ[hook_env] = self.receiver.webhook(self.url, bot)
        if secret is not None:
            self.environ[secret_env] = secret
        spec = RobotSpec(kind, name, SecretRef(hook_env), SecretRef(secret_env) if secret is not None else None,
                         fmt, language)
        options = {"environ": self.environ, "clock": self.clock, "timeout": 0.25, **options}
        return make_robot(spec, client=self.http, **options)


@pytest.fixture(autouse=True)
def no_retry_waits() -> object:
    """Three attempts per message, without the waits between them."""
    with stamina.set_testing(True, attempts=3):
        yield


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    receiver = RobotReceiver(slow_seconds=0.5)
    async with serve_robots(receiver) as url, httpx.AsyncClient() as http:
        yield Rig(receiver, url, http, {}, FakeClock())


def notice(no: str = "TB1001", *, level: int = 2, mentions: tuple[str, ...] = ()) -> Notice:
    return Notice(f"二级升级（主管）：{no} 超时未发货", (f"S 级 {no}：已等待 1 小时 5 分",), level, mentions)


def texts(receiver: RobotReceiver) -> str:
    """Everything the receiver accepted, as one string (to look for order numbers)."""
    return "\n".join(repr(body) for body in receiver.messages())


# -- formats ---------------------------------------------------------------------------------------------


async def test_wecom_text_is_the_platform_json_with_mentions_by_mobile_and_userid(rig: Rig) -> None:
    bot = rig.receiver.add("wecom")
    robot = rig.robot("wecom", bot)
    delivery = await robot.send([notice(mentions=("13800000001", "+86 13800000002", "wangwu", "all"))])

    assert delivery.ok and delivery.messages == 1 and delivery.queued == 0
    assert rig.receiver.messages() == [{
        "msgtype": "text",
        "text": {
            "content": "二级升级（主管）：TB1001 超时未发货\nS 级 TB1001：已等待 1 小时 5 分",
            "mentioned_list": ["wangwu", "@all"],
            "mentioned_mobile_list": ["13800000001", "13800000002"],
        },
    }]


async def test_wecom_markdown_colours_by_level_and_markup_in_order_data_stays_text(rig: Rig) -> None:
    bot = rig.receiver.add("wecom")
    robot = rig.robot("wecom", bot, fmt="markdown")
    hostile = Notice("加急 [点我](http://evil.example) **x**", ("S 级 TB\x1b]52;c;aGk=\x07 <@all>",), 3, ("wangwu",))
    await robot.send([hostile])

    (body,) = rig.receiver.messages()
    content = body["markdown"]["content"]
    assert body["msgtype"] == "markdown"
    assert content.startswith('**<font color="warning">')
    assert content.endswith("<@wangwu>")
    # The untrusted text cannot make a link, bold, a mention or a terminal escape.
    assert "](http" not in content and "**x**" not in content and "<@all>" not in content
    assert "\x1b" not in content and "\x07" not in content
    assert "点我" in content and "evil.example" in content  # still readable


async def test_dingtalk_markdown_is_signed_in_the_query_and_ats_by_mobile(rig: Rig) -> None:
    bot = rig.receiver.add("dingtalk", secret=DT_SECRET)
    robot = rig.robot("dingtalk", bot, secret=DT_SECRET)
    delivery = await robot.send([notice(mentions=("13800000002", "manager01"))])

    assert delivery.ok, delivery.error
    (received,) = rig.receiver.received
    assert received.body == {
        "msgtype": "markdown",
        "markdown": {
            "title": "二级升级（主管）：TB1001 超时未发货",
            "text": "#### 二级升级（主管）：TB1001 超时未发货\n\n- S 级 TB1001：已等待 1 小时 5 分\n\n@13800000002 @manager01",
        },
        "at": {"atMobiles": ["13800000002"], "atUserIds": ["manager01"], "isAtAll": False},
    }
    assert received.query["timestamp"].isdigit() and received.query["sign"]


async def test_a_dingtalk_signature_with_plus_and_slash_survives_url_encoding(rig: Rig) -> None:
    """base64 has + and /; sent raw in a query, + reads back as a space and the sign fails."""
    now_ms = int(rig.receiver.now() * 1000)
    stamp = next(t for t in range(now_ms, now_ms + 5000) if {"+", "/"} <= set(dingtalk_sign(DT_SECRET, t)))
    bot = rig.receiver.add("dingtalk", secret=DT_SECRET)
    robot = rig.robot("dingtalk", bot, secret=DT_SECRET, fmt="text", wall=lambda: stamp / 1000)

    delivery = await robot.send([notice()])

    assert delivery.ok, delivery.error
    assert rig.receiver.received[0].query["sign"] == dingtalk_sign(DT_SECRET, stamp)
    assert rig.receiver.messages()[0]["msgtype"] == "text"


async def test_feishu_post_is_signed_in_the_body_and_ats_by_open_id(rig: Rig) -> None:
    bot = rig.receiver.add("feishu", secret=FS_SECRET)
    robot = rig.robot("feishu", bot, secret=FS_SECRET)
    delivery = await robot.send([notice(mentions=("ou_abc123", "all"))])

    assert delivery.ok, delivery.error
    (body,) = rig.receiver.messages()
    assert body["timestamp"].isdigit() and body["sign"]
    assert {k: v for k, v in body.items() if k not in ("timestamp", "sign")} == {
        "msg_type": "post",
        "content": {"post": {"zh_cn": {
            "title": "二级升级（主管）：TB1001 超时未发货",
            "content": [
                [{"tag": "text", "text": "S 级 TB1001：已等待 1 小时 5 分"}],
                [{"tag": "at", "user_id": "ou_abc123"}, {"tag": "at", "user_id": "all"}],
            ],
        }}},
    }


async def test_feishu_text_cannot_be_made_to_at_everyone_by_order_data(rig: Rig) -> None:
    bot = rig.receiver.add("feishu")
    robot = rig.robot("feishu", bot, fmt="text")
    await robot.send([Notice('单号 <at user_id="all">所有人</at>', ("S 级 TB1",), 1, ("ou_lead",))])

    text = rig.receiver.messages()[0]["content"]["text"]
    assert '<at user_id="all">' not in text
    assert text.endswith('<at user_id="ou_lead"></at>')


async def test_english_digests_use_the_english_locale(rig: Rig) -> None:
    bot = rig.receiver.add("feishu")
    robot = rig.robot("feishu", bot, language="en")
    await robot.send([notice("TB1"), notice("TB2"), notice("TB3")])  # 3 notices, 2 slots: 1 + a digest of 2
    bodies = rig.receiver.messages()
    assert [list(b["content"]["post"]) for b in bodies] == [["en_us"], ["en_us"]]
    assert bodies[1]["content"]["post"]["en_us"]["title"] == "2 notices"


# -- signatures and keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "secret", "code"), [("dingtalk", DT_SECRET, 310000), ("feishu", FS_SECRET, 19021)])
async def test_a_wrong_secret_is_refused_with_the_platforms_code_and_not_retried(
    rig: Rig, kind: str, secret: str, code: int
) -> None:
    bot = rig.receiver.add(kind, secret=secret)
    robot = rig.robot(kind, bot, secret="not-the-secret")
    delivery = await robot.send([notice()])

    assert rig.receiver.codes() == [code]
    assert rig.receiver.received == [] and rig.receiver.calls[kind] == 1  # a bad sign is permanent
    assert not delivery.ok and str(code) in (delivery.error or "")
    assert delivery.dropped == 1 and delivery.queued == 0


@pytest.mark.parametrize(("kind", "secret", "code"), [("dingtalk", DT_SECRET, 310000), ("feishu", FS_SECRET, 19021)])
async def test_a_timestamp_over_an_hour_off_is_refused(rig: Rig, kind: str, secret: str, code: int) -> None:
    bot = rig.receiver.add(kind, secret=secret)
    robot = rig.robot(kind, bot, secret=secret)
    rig.receiver.advance(3601 + 5)  # the receiver's clock is an hour ahead of the sender's

    delivery = await robot.send([notice()])

    assert rig.receiver.codes() == [code] and not delivery.ok
    if kind == "dingtalk":
        assert rig.receiver.refused[0].message.startswith("invalid timestamp")


async def test_a_signed_robot_refuses_unsigned_requests(rig: Rig) -> None:
    bot = rig.receiver.add("dingtalk", secret=DT_SECRET)
    delivery = await rig.robot("dingtalk", bot).send([notice()])  # no secret configured here
    assert rig.receiver.codes() == [310000] and not delivery.ok


async def test_a_wrong_wecom_key_is_refused_with_93000(rig: Rig) -> None:
    rig.receiver.add("wecom")
    ghost = Bot("wecom", "no-such-key")
    delivery = await rig.robot("wecom", ghost).send([notice()])
    assert rig.receiver.codes() == [93000]
    assert "93000" in (delivery.error or "") and delivery.dropped == 1


async def test_a_missing_environment_variable_keeps_the_notice_and_names_the_variable(rig: Rig) -> None:
    spec = RobotSpec("wecom", "ops", SecretRef("DESK_NOT_SET_ANYWHERE"))
    robot = make_robot(spec, client=rig.http, environ={})
    delivery = await robot.send([notice()])
    assert delivery.error is not None and "DESK_NOT_SET_ANYWHERE" in delivery.error
    assert delivery.queued == 1 and rig.receiver.calls == {}


# -- sizes -------------------------------------------------------------------------------------------------


async def test_a_notice_too_long_for_wecom_text_is_cut_to_fit_instead_of_refused(rig: Rig) -> None:
    bot = rig.receiver.add("wecom")
    long = Notice("三级升级（老板）：200 张加急单超时未发货", tuple(f"S 级 TB{i:06d}：已等待 3 小时" for i in range(200)), 3)
    delivery = await rig.robot("wecom", bot).send([long])

    assert delivery.ok and rig.receiver.codes() == []
    content = rig.receiver.messages()[0]["text"]["content"]
    assert len(content.encode()) <= 2048
    assert "TB000000" in content and "行）" in content  # the head is kept, the cut is said


# -- rate limits -------------------------------------------------------------------------------------------


async def test_over_the_limit_notices_are_batched_into_a_digest_and_none_is_lost(rig: Rig) -> None:
    bot = rig.receiver.add("wecom")
    robot = rig.robot("wecom", bot)
    burst = [notice(f"TB{i:04d}") for i in range(25)]

    delivery = await robot.send(burst)

    # 20 a minute: the robot spends at most half the minute's budget at once (see notify.base).
    assert delivery.ok and delivery.sent == 25 and delivery.queued == 0
    assert delivery.messages == 10 and delivery.batched == 16
    assert len(rig.receiver.received) == 10 and rig.receiver.codes() == []  # never 45009
    assert all(f"TB{i:04d}" in texts(rig.receiver) for i in range(25))
    digest = rig.receiver.messages()[-1]["text"]["content"]
    assert digest.startswith("共 16 条提醒")


async def test_the_same_alert_twice_goes_out_once(rig: Rig) -> None:
    bot = rig.receiver.add("wecom")
    delivery = await rig.robot("wecom", bot).send([notice("TB1"), notice("TB1"), notice("TB2")])
    assert delivery.sent == 2 and texts(rig.receiver).count("TB1 超时未发货") == 1


async def test_feishu_keeps_under_five_a_second(rig: Rig) -> None:
    bot = rig.receiver.add("feishu")
    delivery = await rig.robot("feishu", bot).send([notice(f"TB{i}") for i in range(8)])
    assert delivery.ok and delivery.sent == 8 and len(rig.receiver.received) == 2
    assert rig.receiver.codes() == []  # 11232 never seen


async def test_dingtalk_too_fast_mutes_the_robot_and_the_notices_wait_then_go_out(rig: Rig) -> None:
    bot = rig.receiver.add("dingtalk", secret=DT_SECRET)
    robot = rig.robot("dingtalk", bot, secret=DT_SECRET)
    rig.receiver.busy(bot, 20)  # another program used this robot's minute

    first = await robot.send([notice("TB1"), notice("TB2")])
    assert rig.receiver.codes() == [130101] and rig.receiver.calls["dingtalk"] == 1  # not hammered
    assert first.muted_for == 600 and first.queued == 2 and "130101" in (first.error or "")

    calls = rig.receiver.calls["dingtalk"]
    second = await robot.send([notice("TB3")])  # still muted: nothing is sent, nothing is lost
    assert rig.receiver.calls["dingtalk"] == calls and second.queued == 3

    rig.receiver.advance(601)
    rig.clock.t += 601
    third = await robot.send()
    assert third.ok and third.sent == 3 and third.queued == 0
    assert all(no in texts(rig.receiver) for no in ("TB1", "TB2", "TB3"))


async def test_wecom_freq_limit_waits_out_the_minute(rig: Rig) -> None:
    bot = rig.receiver.add("wecom")
    robot = rig.robot("wecom", bot)
    rig.receiver.busy(bot, 20)
    delivery = await robot.send([notice()])
    assert rig.receiver.codes() == [45009] and delivery.muted_for == 60 and delivery.queued == 1


# -- faults ------------------------------------------------------------------------------------------------


async def test_server_errors_are_retried_and_the_message_arrives_once(rig: Rig) -> None:
    bot = rig.receiver.add("wecom")
    rig.receiver.fail_next("wecom", "503", "502")
    delivery = await rig.robot("wecom", bot).send([notice()])
    assert delivery.ok and rig.receiver.calls["wecom"] == 3 and len(rig.receiver.received) == 1


async def test_a_timeout_is_retried(rig: Rig) -> None:
    bot = rig.receiver.add("feishu", secret=FS_SECRET)
    rig.receiver.fail_next("feishu", "timeout")  # answers after 0.5 s; the robot waits 0.25 s
    delivery = await rig.robot("feishu", bot, secret=FS_SECRET).send([notice()])
    assert delivery.ok and len(rig.receiver.received) == 1


async def test_errors_that_outlive_the_retries_keep_the_notice_for_the_next_send(rig: Rig) -> None:
    bot = rig.receiver.add("dingtalk")
    robot = rig.robot("dingtalk", bot)
    rig.receiver.fail_next("dingtalk", "500", "500", "500")
    failed = await robot.send([notice("TB9")])
    assert not failed.ok and failed.queued == 1 and rig.receiver.received == []

    later = await robot.send()
    assert later.ok and later.sent == 1 and "TB9" in texts(rig.receiver)


# -- secrets -----------------------------------------------------------------------------------------------


async def test_secrets_never_reach_logs_reprs_or_errors(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    wecom = rig.receiver.add("wecom", id="wecom-key-SECRET-1")
    dingtalk = rig.receiver.add("dingtalk", id="dt-token-SECRET-2", secret=DT_SECRET)
    feishu = rig.receiver.add("feishu", id="fs-hook-SECRET-3", secret=FS_SECRET)
    robots = [rig.robot("wecom", wecom, name="a"), rig.robot("dingtalk", dingtalk, secret="wrong-SECRET-4", name="b"),
              rig.robot("feishu", feishu, secret=FS_SECRET, name="c")]
    secrets = ["wecom-key-SECRET-1", "dt-token-SECRET-2", "fs-hook-SECRET-3", "wrong-SECRET-4", DT_SECRET, FS_SECRET]
    caplog.set_level(logging.DEBUG)
    # The app keeps httpx's per-request INFO line (it prints the full URL) out of its log; so here.
    caplog.set_level(logging.WARNING, logger="httpx")

    rig.receiver.fail_next("wecom", "503", "503", "503")  # retries logged by stamina, then an error
    rig.receiver.fail_next("feishu", "timeout", "timeout", "timeout")
    deliveries = [await robot.send([notice()]) for robot in robots]  # wecom 5xx, dingtalk bad sign, feishu timeouts

    seen = [repr(r) for r in robots] + [repr(r.spec) for r in robots] + [repr(d) for d in deliveries]
    seen += [record.getMessage() + repr(record.__dict__) for record in caplog.records]
    assert all(not d.ok for d in deliveries) and caplog.records
    for text in seen:
        for secret in secrets:
            assert secret not in text, f"secret leaked into: {text[:200]}"


# -- the escalation worker end to end ---------------------------------------------------------------------


async def test_the_worker_escalates_through_real_robots_and_toasts(rig: Rig) -> None:
    lead_bot = rig.receiver.add("wecom")
    boss_bot = rig.receiver.add("dingtalk", secret=DT_SECRET)
    env = {"HOOK_W": rig.receiver.webhook(rig.url, lead_bot), "HOOK_D": rig.receiver.webhook(rig.url, boss_bot),
           "SECRET_D": DT_SECRET}
    config, problems = parse_config({"escalation": {
        "robots": {"floor": {"kind": "wecom", "webhook_env": "HOOK_W"},
                   "boss": {"kind": "dingtalk", "webhook_env": "HOOK_D", "secret_env": "SECRET_D"}},
        "people": {"lead": {"name": "王组长", "robot": "floor", "mentions": ["13800000001"]},
                   "owner": {"name": "张总", "robot": "boss", "mentions": ["13800000009"]}},
        "levels": [{"name": "组长", "after_minutes": {"S": 30}, "notify": ["lead"]},
                   {"name": "老板", "after_minutes": {"S": 60}, "notify": ["owner"]}],
    }}, environ=env)
    assert config is not None and problems == []
    t0 = datetime(2026, 11, 11, 2, tzinfo=UTC)
    queue = [OpenOrder("TB777", "S", "paid", t0)]
    toasts: list[Toast] = []
    events: list[dict] = []
    sender = NotifySender(build_robots(config, client=rig.http, environ=env, clock=rig.clock), toasts.append)
    worker = EscalationWorker(Escalator(config), lambda: queue, sender,
                              on_tick=lambda tick: events.extend(e.event() for e in tick.escalations))

    await worker.tick(t0 + timedelta(minutes=31))
    await worker.tick(t0 + timedelta(minutes=45))  # nothing new
    await worker.tick(t0 + timedelta(minutes=61))

    (lead_msg,) = rig.receiver.messages("wecom")
    (boss_msg,) = rig.receiver.messages("dingtalk")
    assert "TB777" in lead_msg["text"]["content"] and lead_msg["text"]["mentioned_mobile_list"] == ["13800000001"]
    assert "TB777" in boss_msg["markdown"]["text"] and boss_msg["at"]["atMobiles"] == ["13800000009"]
    assert [t.title for t in toasts] == ["一级升级（组长）：1 张加急单超时未发货", "二级升级（老板）：1 张加急单超时未发货"]
    assert [(e["from_value"], e["to_value"]) for e in events] == [("0", "1"), ("1", "2")]


async def test_a_failing_robot_is_told_once_as_a_toast(rig: Rig) -> None:
    bot = rig.receiver.add("dingtalk", secret=DT_SECRET)
    robots = {"boss": rig.robot("dingtalk", bot, secret="wrong")}
    toasts: list[Toast] = []
    sender = NotifySender(robots, toasts.append)

    def tick(no: str) -> Tick:
        return Tick(datetime.now(UTC), 1, 1, notices=(Routed("boss", notice(no)),))

    await sender.deliver(tick("TB1"))
    await sender.deliver(tick("TB2"))  # the same failure again: no second toast
    failures = [t for t in toasts if "发送失败" in t.title]
    assert len(failures) == 1 and "310000" in failures[0].message
