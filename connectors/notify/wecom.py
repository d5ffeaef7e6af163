"""WeCom (企业微信) group robots: ``POST …/cgi-bin/webhook/send?key=KEY``, no signature.

The webhook URL with its ``key`` is the secret. Bodies, as the platform defines them::

    {"msgtype": "text", "text": {"content": "…", "mentioned_list": ["userid", "@all"],
                                 "mentioned_mobile_list": ["13800000000"]}}      # content ≤ 2048 bytes
    {"msgtype": "markdown", "markdown": {"content": "**…** <@userid>"}}          # content ≤ 4096 bytes

``text`` (the default) is the only format that can @ by mobile number; ``markdown`` @s user ids
inside the content (``<@userid>``) and colours the title by level (``<font color="warning">``).
Limit: 20 messages a minute per robot. Answers: ``{"errcode": 0, "errmsg": "ok"}``; 45009 "api freq
out of limit" (the robot waits out the minute), 93000 invalid webhook URL (a wrong key), 40008
invalid message type, 40058 invalid parameter (content too long), 44004 empty content, -1 system
busy (retried).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connectors.http import PermanentError, TransientError
from connectors.notify.base import (
    Notice,
    Robot,
    RobotMuted,
    answer_code,
    is_all,
    layout,
    mention_id,
    mobile,
    neutral,
)

TEXT_BYTES = 2048
MARKDOWN_BYTES = 4096
#: errcode for "api freq out of limit": the per-minute window must pass.
FREQ_LIMIT = 45009
BUSY = -1
_COLOURS = {0: "info", 1: "warning", 2: "warning", 3: "warning"}


class WeComRobot(Robot):
    """A WeCom group robot (see the module doc)."""

    kind = "wecom"
    formats = ("text", "markdown")
    limits = ((20, 60.0),)
    signs = False

    def render(self, notices: Sequence[Notice]) -> dict[str, Any]:
        """``text`` or ``markdown`` webhook JSON for ``notices``."""
        parts = layout(notices, self.language)
        users = [("@all" if is_all(m) else m) for m in parts.mentions if mobile(m) is None]
        mobiles = [number for m in parts.mentions if (number := mobile(m)) is not None]
        if self.format == "markdown":
            colour = _COLOURS[parts.level]
            lines = [f'**<font color="{colour}">{neutral(parts.title)}</font>**']
            for heading, body in parts.sections:
                if heading is not None:
                    lines.append(f"**{neutral(heading)}**")
                lines.extend(f"> {neutral(line)}" for line in body)
            # Markdown @s by userid only; mobile numbers need the text format (the config says so).
            tags = " ".join(f"<@{mention_id(u)}>" for u in users if u != "@all")
            if tags:
                lines.append(tags)
            return {"msgtype": "markdown", "markdown": {"content": "\n".join(lines)}}
        lines = [parts.title]
        for heading, body in parts.sections:
            if heading is not None:
                lines.append(f"▶ {heading}")
            lines.extend(f"  {line}" if heading is not None else line for line in body)
        text: dict[str, Any] = {"content": "\n".join(lines)}
        if users:
            text["mentioned_list"] = users
        if mobiles:
            text["mentioned_mobile_list"] = mobiles
        return {"msgtype": "text", "text": text}

    def fits(self, body: Mapping[str, Any]) -> bool:
        """Content within 2048 bytes (text) or 4096 bytes (markdown)."""
        kind = body["msgtype"]
        limit = MARKDOWN_BYTES if kind == "markdown" else TEXT_BYTES
        return len(body[kind]["content"].encode("utf-8")) <= limit

    def check(self, answer: Any) -> None:
        """``errcode`` 0 is success; see the module doc for the rest."""
        code, message = answer_code(answer, "errcode")
        if code == 0:
            return
        if code is None:
            raise PermanentError(f"{self.label}: unexpected answer (no errcode)")
        detail = f"{self.label}: errcode {code} {message[:120]}".rstrip()
        if code == FREQ_LIMIT:
            raise RobotMuted(f"{detail} — sending too fast; waiting out the minute", seconds=60.0, code=code)
        if code == BUSY:
            raise TransientError(detail)
        raise PermanentError(detail, code=code)
