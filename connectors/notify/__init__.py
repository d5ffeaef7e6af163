"""Group-robot notifications: WeCom, DingTalk and Feishu webhooks, signed, batched, retried.

::

    from connectors.notify import Notice, RobotSpec, make_robot
    from connectors.config import SecretRef

    robot = make_robot(RobotSpec("dingtalk", "managers", SecretRef("DESK_DT_HOOK"), SecretRef("DESK_DT_SECRET")),
                       client=http)
    delivery = await robot.send([Notice("2 张加急单超时未发货", ("S TB123 已等待 45 分钟",), level=2,
                                        mentions=("13800000000",))])

One module per platform (``wecom``, ``dingtalk``, ``feishu``) defines its JSON, signature, size and
rate limits and error answers; ``base`` holds what they share (see its module doc for batching and
secrets). ``connectors.emulators.robots`` is a local receiver speaking all three for tests.
"""

from __future__ import annotations

from typing import Any

import httpx

from connectors.notify.base import (
    MENTION_ALL,
    Delivery,
    Notice,
    Robot,
    RobotMuted,
    RobotSpec,
    is_all,
    mobile,
)
from connectors.notify.dingtalk import DingTalkRobot
from connectors.notify.feishu import FeishuRobot
from connectors.notify.wecom import WeComRobot

#: Robot classes by kind.
ROBOTS: dict[str, type[Robot]] = {"wecom": WeComRobot, "dingtalk": DingTalkRobot, "feishu": FeishuRobot}
KINDS: tuple[str, ...] = tuple(ROBOTS)


def make_robot(spec: RobotSpec, *, client: httpx.AsyncClient, **options: Any) -> Robot:
    """The :class:`Robot` for ``spec.kind`` (``options`` go to :class:`Robot`: clock, wall, policy …)."""
    cls = ROBOTS.get(spec.kind)
    if cls is None:
        raise ValueError(f"unknown robot kind {spec.kind!r}; known: {', '.join(KINDS)}")
    return cls(spec, client=client, **options)


__all__ = [
    "KINDS",
    "MENTION_ALL",
    "ROBOTS",
    "Delivery",
    "DingTalkRobot",
    "FeishuRobot",
    "Notice",
    "Robot",
    "RobotMuted",
    "RobotSpec",
    "WeComRobot",
    "is_all",
    "make_robot",
    "mobile",
]
