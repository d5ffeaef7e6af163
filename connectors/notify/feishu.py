"""Feishu (飞书) custom bots: ``POST …/open-apis/bot/v2/hook/ID`` — the hook id in the path is the secret.

With 签名校验 switched on, the *body* carries ``timestamp`` (epoch seconds as a string, within an
hour of Feishu's clock) and ``sign`` = base64(HmacSHA256(key=timestamp + "\\n" + secret, msg=""))
— the string-to-sign is the HMAC *key* and the message is empty, the reverse of DingTalk
(:func:`sign`). Bodies, as the platform defines them::

    {"msg_type": "post", "content": {"post": {"zh_cn": {"title": "…", "content": [
        [{"tag": "text", "text": "…"}], [{"tag": "at", "user_id": "ou_xxx"}]]}}}}
    {"msg_type": "text", "content": {"text": "… <at user_id=\\"ou_xxx\\"></at>"}}

``post`` (rich text, the default) keeps untrusted text in ``text`` elements that Feishu never parses;
``text`` parses ``<at>`` tags, so ``<`` and ``>`` in notices become look-alikes there. Mentions are
open_ids (``ou_…``), user ids, or ``all`` — Feishu cannot @ by mobile number.

Limits: 100 messages a minute and 5 a second per bot; the request body at most 20 KB. Answers:
``{"code": 0, "msg": "success", "data": {}, "StatusCode": 0, "StatusMessage": "success"}`` (the
``StatusCode`` pair is kept for old clients); 11232 "frequency limited" and the gateway's 99991400
(retried after a second); 19021 bad signature or a timestamp more than an hour off; 19022 IP not
allowed; 19024 keyword not found; 9499 "Bad Request" (a malformed or oversized body).
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
    answer_code,
    is_all,
    json_bytes,
    layout,
    mention_id,
    neutral,
)

#: The request body limit (20 KB), less room for the timestamp and signature added at send time.
BODY_BYTES = 20 * 1024 - 128
#: "frequency limited" (system pressure, typically on the hour and half hour) and the gateway's limit.
FREQUENCY_LIMITED = (11232, 99991400)


def sign(secret: str, timestamp_s: int | str) -> str:
    """Feishu's signature: base64(HmacSHA256(key=f"{timestamp}\\n{secret}", msg=b""))."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class FeishuRobot(Robot):
    """A Feishu custom bot (see the module doc)."""

    kind = "feishu"
    formats = ("post", "text")
    limits = ((100, 60.0), (5, 1.0))
    signs = True

    def render(self, notices: Sequence[Notice]) -> dict[str, Any]:
        """``post`` or ``text`` webhook JSON for ``notices``."""
        parts = layout(notices, self.language)
        ids = ["all" if is_all(m) else m for m in parts.mentions]
        if self.format == "post":
            rows: list[list[dict[str, Any]]] = []
            for heading, body in parts.sections:
                if heading is not None:
                    rows.append([{"tag": "text", "text": f"▶ {heading}"}])
                rows += [[{"tag": "text", "text": line}] for line in body]
            if ids:
                rows.append([{"tag": "at", "user_id": user_id} for user_id in ids])
            locale = "en_us" if self.language == "en" else "zh_cn"
            return {"msg_type": "post", "content": {"post": {locale: {"title": parts.title, "content": rows}}}}
        lines = [neutral(parts.title)]
        for heading, body in parts.sections:
            if heading is not None:
                lines.append(f"▶ {neutral(heading)}")
            lines.extend(f"  {neutral(line)}" if heading is not None else neutral(line) for line in body)
        tags = "".join(f'<at user_id="{mention_id(i)}"></at>' for i in ids)
        if tags:
            lines.append(tags)
        return {"msg_type": "text", "content": {"text": "\n".join(lines)}}

    def fits(self, body: Mapping[str, Any]) -> bool:
        """The whole request body within 20 KB."""
        return len(json_bytes(body)) <= BODY_BYTES

    def sign_request(self, url: httpx.URL, body: dict[str, Any], secret: str | None) -> tuple[httpx.URL, dict]:
        """Put ``timestamp`` (seconds, now) and ``sign`` in the body when the bot has a secret."""
        if secret is None:
            return url, body
        timestamp = str(int(self._wall()))
        return url, {"timestamp": timestamp, "sign": sign(secret, timestamp), **body}

    def check(self, answer: Any) -> None:
        """``code`` (or the older ``StatusCode``) 0 is success; see the module doc for the rest."""
        code, message = answer_code(answer, "code", "StatusCode")
        if code == 0:
            return
        if code is None:
            raise PermanentError(f"{self.label}: unexpected answer (no code)")
        detail = f"{self.label}: code {code} {message[:120]}".rstrip()
        if code in FREQUENCY_LIMITED:
            raise TransientError(detail, retry_after=1.0)
        raise PermanentError(detail, code=code)
