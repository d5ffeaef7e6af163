"""DingTalk (钉钉) custom robots: ``POST …/robot/send?access_token=T&timestamp=MS&sign=S``.

With 加签 switched on, every request carries ``timestamp`` (epoch milliseconds, within an hour of
DingTalk's clock) and ``sign`` = urlencode(base64(HmacSHA256(key=secret, msg=timestamp + "\\n" +
secret))) as query parameters (:func:`sign` gives the base64; httpx percent-encodes it, ``+`` and
``/`` included). Bodies, as the platform defines them::

    {"msgtype": "text", "text": {"content": "… @13800000000"},
     "at": {"atMobiles": ["13800000000"], "atUserIds": ["user123"], "isAtAll": false}}
    {"msgtype": "markdown", "markdown": {"title": "…", "text": "#### … @13800000000"}, "at": {…}}

An @ shows only when the mobile / user id also appears as ``@…`` in the content, so the renderers
add them at the end. ``markdown`` is the default (a digest reads better); ``text`` is plain.

Limit: 20 messages a minute per robot; past that DingTalk answers 130101 "send too fast, exceed 20
times per minute" and mutes the robot for 10 minutes — the robot here waits those 10 minutes with
its notices queued. Other answers: ``{"errcode": 0, "errmsg": "ok"}``; 310000 for a bad signature,
a stale timestamp, a missing keyword or a disallowed IP (``errmsg`` says which); 300001 unknown
access_token; -1 system busy (retried). Content is kept under 20,000 bytes (second-hand limit).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

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

CONTENT_BYTES = 20_000
#: "send too fast, exceed 20 times per minute": the robot is muted for 10 minutes.
TOO_FAST = 130101
MUTE_SECONDS = 600.0
BUSY = -1


def sign(secret: str, timestamp_ms: int | str) -> str:
    """DingTalk's signature: base64(HmacSHA256(key=secret, msg=f"{timestamp}\\n{secret}")), not yet URL-encoded."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class DingTalkRobot(Robot):
    """A DingTalk custom robot (see the module doc)."""

    kind = "dingtalk"
    formats = ("markdown", "text")
    limits = ((20, 60.0),)
    signs = True

    def render(self, notices: Sequence[Notice]) -> dict[str, Any]:
        """``markdown`` or ``text`` webhook JSON for ``notices``."""
        parts = layout(notices, self.language)
        everyone = any(is_all(m) for m in parts.mentions)
        mobiles = [number for m in parts.mentions if (number := mobile(m)) is not None]
        users = [m for m in parts.mentions if mobile(m) is None and not is_all(m)]
        at: dict[str, Any] = {"atMobiles": mobiles, "atUserIds": users, "isAtAll": everyone}
        if self.format == "markdown":
            lines = [f"#### {neutral(parts.title)}", ""]
            for heading, body in parts.sections:
                if heading is not None:
                    lines += [f"**{neutral(heading)}**", ""]
                lines += [f"- {neutral(line)}" for line in body]
                lines.append("")
            tags = " ".join(f"@{mention_id(m)}" for m in (*mobiles, *users))
            if tags:
                lines.append(tags)
            return {"msgtype": "markdown", "markdown": {"title": neutral(parts.title), "text": "\n".join(lines).strip()},
                    "at": at}
        lines = [parts.title]
        for heading, body in parts.sections:
            if heading is not None:
                lines.append(f"▶ {heading}")
            lines.extend(f"  {line}" if heading is not None else line for line in body)
        tags = " ".join(f"@{m}" for m in (*mobiles, *users))
        if tags:
            lines.append(tags)
        return {"msgtype": "text", "text": {"content": "\n".join(lines)}, "at": at}

    def fits(self, body: Mapping[str, Any]) -> bool:
        """Content (text) or title + text (markdown) within 20,000 bytes."""
        if body["msgtype"] == "markdown":
            size = len(body["markdown"]["text"].encode()) + len(body["markdown"]["title"].encode())
        else:
            size = len(body["text"]["content"].encode())
        return size <= CONTENT_BYTES

    def sign_request(self, url: httpx.URL, body: dict[str, Any], secret: str | None) -> tuple[httpx.URL, dict]:
        """Add ``timestamp`` (ms, now) and ``sign`` to the query when the robot has a secret."""
        if secret is None:
            return url, body
        timestamp = str(int(self._wall() * 1000))
        return url.copy_merge_params({"timestamp": timestamp, "sign": sign(secret, timestamp)}), body

    def check(self, answer: Any) -> None:
        """``errcode`` 0 is success; see the module doc for the rest."""
        code, message = answer_code(answer, "errcode")
        if code == 0:
            return
        if code is None:
            raise PermanentError(f"{self.label}: unexpected answer (no errcode)")
        detail = f"{self.label}: errcode {code} {message[:120]}".rstrip()
        if code == TOO_FAST:
            raise RobotMuted(f"{detail} — muted by DingTalk for 10 minutes", seconds=MUTE_SECONDS, code=code)
        if code == BUSY:
            raise TransientError(detail)
        raise PermanentError(detail, code=code)
