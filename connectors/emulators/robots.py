"""A local receiver for group robots: WeCom, DingTalk and Feishu webhooks on 127.0.0.1, for tests.

One Starlette app speaks all three platforms' endpoints (see ``connectors/notify/*`` for the formats):

``POST /cgi-bin/webhook/send?key=KEY``                        WeCom: no signature
``POST /robot/send?access_token=T[&timestamp=MS&sign=S]``     DingTalk: signed in the query
``POST /open-apis/bot/v2/hook/ID``                            Feishu: ``timestamp`` + ``sign`` in the body

Register robots with :meth:`RobotReceiver.add` (a robot given a ``secret`` requires signed requests)
and point clients at :meth:`RobotReceiver.webhook`. Each request is checked the way the platform
checks it, and refused with the platform's own answer (HTTP 200 with an error code):

* unknown robot — WeCom 93000, DingTalk 300001, Feishu 19001;
* signature — the timestamp must be within an hour of the receiver's clock and the sign must match,
  computed here independently of the client code: DingTalk 310000 ("invalid timestamp" / "sign not
  match"), Feishu 19021;
* body — message type, required fields, size: WeCom 40008 / 44004 / 40058 (2048 bytes of text, 4096
  of markdown), DingTalk 40035 / 460101 (20,000 bytes, second-hand), Feishu 9499 (20 KB body);
* rate — sliding windows: WeCom 20 a minute → 45009; DingTalk 20 a minute → 130101 and the robot stays
  muted for 10 minutes; Feishu 5 a second or 100 a minute → 11232.

Accepted messages are kept in :attr:`RobotReceiver.received`, refusals in :attr:`RobotReceiver.refused`.
Faults on demand (:meth:`RobotReceiver.fail_next`): ``500`` / ``502`` / ``503`` answer that HTTP status;
``timeout`` answers only after ``slow_seconds`` (with 504, recording nothing). The clock is real time
plus :meth:`RobotReceiver.advance` jumps, so tests can age a signature or wait out a window at once.
The secrets here are the receiver's own made-up ones.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PLATFORMS: tuple[str, ...] = ("wecom", "dingtalk", "feishu")
#: How far a signature's timestamp may be from the receiver's clock (both platforms: one hour).
SIGN_WINDOW_S = 3600
#: Sliding-window limits per platform: (messages, seconds).
LIMITS: dict[str, tuple[tuple[int, float], ...]] = {
    "wecom": ((20, 60.0),),
    "dingtalk": ((20, 60.0),),
    "feishu": ((5, 1.0), (100, 60.0)),
}
DINGTALK_MUTE_S = 600.0
WECOM_TEXT_BYTES = 2048
WECOM_MARKDOWN_BYTES = 4096
DINGTALK_CONTENT_BYTES = 20_000
FEISHU_BODY_BYTES = 20 * 1024
FAULTS: tuple[str, ...] = ("500", "502", "503", "timeout")


@dataclass
class Bot:
    """One registered robot: its platform, id (WeCom key / DingTalk access_token / Feishu hook id), secret."""

    platform: str
    id: str
    secret: str | None = None
    accepted: deque[float] = field(default_factory=deque)
    muted_until: float = 0.0


@dataclass(frozen=True)
class Received:
    """One accepted message: the parsed JSON body as sent, and the query string."""

    platform: str
    robot: str
    body: dict
    query: dict
    at: float


@dataclass(frozen=True)
class Refused:
    """One refused request and the platform's error code for it."""

    platform: str
    robot: str
    code: int
    message: str
    at: float


class RobotReceiver:
    """The three platforms' robot endpoints in one app (``app``); see the module doc."""

    def __init__(self, *, slow_seconds: float = 0.5, clock: Callable[[], float] = time.time) -> None:
        self.slow_seconds = slow_seconds
        self._clock = clock
        self.offset = 0.0
        self.bots: dict[tuple[str, str], Bot] = {}
        self.received: list[Received] = []
        self.refused: list[Refused] = []
        self.calls: dict[str, int] = defaultdict(int)
        self._faults: dict[tuple[str, str | None], list[str]] = defaultdict(list)
        self.app = Starlette(routes=[
            Route("/cgi-bin/webhook/send", self._wecom, methods=["POST"]),
            Route("/robot/send", self._dingtalk, methods=["POST"]),
            Route("/open-apis/bot/v2/hook/{hook}", self._feishu, methods=["POST"]),
        ])

    # -- driving -----------------------------------------------------------------------------------

    def now(self) -> float:
        """The receiver's clock, epoch seconds."""
        return self._clock() + self.offset

    def advance(self, seconds: float) -> float:
        """Move the receiver's clock forward (signatures age, windows and mutes pass)."""
        self.offset += max(0.0, float(seconds))
        return self.now()

    def add(self, platform: str, *, id: str | None = None, secret: str | None = None) -> Bot:
        """Register a robot (a made-up id when none is given); with ``secret`` it requires signatures."""
        if platform not in PLATFORMS:
            raise ValueError(f"unknown platform {platform!r}; known: {', '.join(PLATFORMS)}")
        if secret is not None and platform == "wecom":
            raise ValueError("WeCom robots do not sign")
        bot = Bot(platform, id or secrets.token_hex(16), secret)
        self.bots[(platform, bot.id)] = bot
        return bot

    @staticmethod
    def webhook(base_url: str, bot: Bot) -> str:
        """The webhook URL a platform would hand out for ``bot``, on this receiver."""
        base = base_url.rstrip("/")
        if bot.platform == "wecom":
            return f"{base}/cgi-bin/webhook/send?key={bot.id}"
        if bot.platform == "dingtalk":
            return f"{base}/robot/send?access_token={bot.id}"
        return f"{base}/open-apis/bot/v2/hook/{bot.id}"

    def fail_next(self, platform: str, *faults: str, bot: Bot | None = None) -> None:
        """The next requests to ``platform`` (or only to ``bot``) get these faults, one each, in order."""
        for fault in faults:
            if fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        self._faults[(platform, bot.id if bot else None)].extend(faults)

    def busy(self, bot: Bot, messages: int) -> None:
        """Pretend another sender already sent ``messages`` through ``bot`` just now (uses its budget)."""
        now = self.now()
        bot.accepted.extend([now] * messages)

    def messages(self, platform: str | None = None, bot: Bot | None = None) -> list[dict]:
        """Bodies of the accepted messages, oldest first (filtered by platform / robot)."""
        return [r.body for r in self.received
                if (platform is None or r.platform == platform) and (bot is None or r.robot == bot.id)]

    def codes(self, platform: str | None = None) -> list[int]:
        """Error codes of the refused requests, oldest first."""
        return [r.code for r in self.refused if platform is None or r.platform == platform]

    # -- shared checks -------------------------------------------------------------------------------

    async def _fault(self, platform: str, robot: str) -> Response | None:
        self.calls[platform] += 1
        for key in ((platform, robot), (platform, None)):
            queue = self._faults.get(key)
            if queue:
                fault = queue.pop(0)
                if fault == "timeout":
                    await asyncio.sleep(self.slow_seconds)
                    return Response("gateway timeout", status_code=504)
                return Response("server error", status_code=int(fault))
        return None

    def _refuse(self, platform: str, robot: str, code: int, message: str, shape: Callable[[int, str], dict]) -> JSONResponse:
        self.refused.append(Refused(platform, robot, code, message, self.now()))
        return JSONResponse(shape(code, message))

    def _admit(self, bot: Bot) -> bool:
        """Whether the rate limit lets one more message through now (and count it if so)."""
        now = self.now()
        longest = max(period for _, period in LIMITS[bot.platform])
        while bot.accepted and bot.accepted[0] <= now - longest:
            bot.accepted.popleft()
        for count, period in LIMITS[bot.platform]:
            if sum(1 for t in bot.accepted if t > now - period) >= count:
                return False
        bot.accepted.append(now)
        return True

    def _record(self, bot: Bot, body: dict, query: dict) -> None:
        self.received.append(Received(bot.platform, bot.id, body, query, self.now()))

    # -- WeCom ---------------------------------------------------------------------------------------

    async def _wecom(self, request: Request) -> Response:
        key = request.query_params.get("key", "")
        if (fault := await self._fault("wecom", key)) is not None:
            return fault

        def refuse(code: int, message: str) -> JSONResponse:
            return self._refuse("wecom", key, code, message, lambda c, m: {"errcode": c, "errmsg": m})

        bot = self.bots.get(("wecom", key))
        if bot is None:
            return refuse(93000, "invalid webhook url, hint: [emulated], more info at "
                                 "https://open.work.weixin.qq.com/devtool/query?e=93000")
        body = _json(await request.body())
        if not isinstance(body, dict):
            return refuse(40058, "invalid Request Parameter")
        kind = body.get("msgtype")
        if kind not in ("text", "markdown"):
            return refuse(40008, "invalid message type")
        part = body.get(kind)
        content = part.get("content") if isinstance(part, dict) else None
        if not isinstance(content, str) or not content:
            return refuse(44004, "empty content")
        limit = WECOM_TEXT_BYTES if kind == "text" else WECOM_MARKDOWN_BYTES
        if len(content.encode()) > limit:
            return refuse(40058, f"{kind}.content exceed max length {limit}. invalid Request Parameter")
        for name in ("mentioned_list", "mentioned_mobile_list"):
            value = part.get(name, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return refuse(40058, f"{name} invalid. invalid Request Parameter")
        if not self._admit(bot):
            return refuse(45009, "api freq out of limit")
        self._record(bot, body, dict(request.query_params))
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    # -- DingTalk ------------------------------------------------------------------------------------

    async def _dingtalk(self, request: Request) -> Response:
        query = dict(request.query_params)
        token = query.get("access_token", "")
        if (fault := await self._fault("dingtalk", token)) is not None:
            return fault

        def refuse(code: int, message: str) -> JSONResponse:
            return self._refuse("dingtalk", token, code, message, lambda c, m: {"errcode": c, "errmsg": m})

        bot = self.bots.get(("dingtalk", token))
        if bot is None:
            return refuse(300001, "token is not exist")
        if bot.secret is not None:
            stamp = query.get("timestamp", "")
            if not stamp.isdigit() or abs(self.now() * 1000 - int(stamp)) > SIGN_WINDOW_S * 1000:
                return refuse(310000, "invalid timestamp, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]")
            expected = base64.b64encode(
                hmac.new(bot.secret.encode(), f"{stamp}\n{bot.secret}".encode(), hashlib.sha256).digest()
            ).decode()
            if not hmac.compare_digest(expected, query.get("sign", "")):
                return refuse(310000, "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]")
        if self.now() < bot.muted_until:
            return refuse(130101, "send too fast, exceed 20 times per minute")
        body = _json(await request.body())
        problem = _dingtalk_problem(body)
        if problem is not None:
            return refuse(*problem)
        if not self._admit(bot):
            bot.muted_until = self.now() + DINGTALK_MUTE_S
            return refuse(130101, "send too fast, exceed 20 times per minute")
        self._record(bot, body, query)
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    # -- Feishu --------------------------------------------------------------------------------------

    async def _feishu(self, request: Request) -> Response:
        hook = request.path_params["hook"]
        if (fault := await self._fault("feishu", hook)) is not None:
            return fault

        def refuse(code: int, message: str) -> JSONResponse:
            return self._refuse("feishu", hook, code, message, lambda c, m: {"code": c, "data": {}, "msg": m})

        bot = self.bots.get(("feishu", hook))
        if bot is None:
            return refuse(19001, "param invalid: incoming webhook access token invalid")
        raw = await request.body()
        body = _json(raw)
        if len(raw) > FEISHU_BODY_BYTES or not isinstance(body, dict):
            return refuse(9499, "Bad Request")
        if bot.secret is not None:
            stamp = str(body.get("timestamp", ""))
            fresh = stamp.isdigit() and abs(self.now() - int(stamp)) <= SIGN_WINDOW_S
            expected = base64.b64encode(
                hmac.new(f"{stamp}\n{bot.secret}".encode(), b"", hashlib.sha256).digest()
            ).decode()
            if not fresh or not hmac.compare_digest(expected, str(body.get("sign", ""))):
                return refuse(19021, "sign match fail or timestamp is not within one hour from current time")
        if not _feishu_ok(body):
            return refuse(9499, "Bad Request")
        if not self._admit(bot):
            return refuse(11232, "frequency limited psm[lark.oapi.app_platform_runtime]appID[emulated]")
        self._record(bot, body, dict(request.query_params))
        return JSONResponse({"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"})


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _dingtalk_problem(body: Any) -> tuple[int, str] | None:
    if not isinstance(body, dict):
        return 40035, "缺少参数 json"
    kind = body.get("msgtype")
    if kind == "text":
        part = body.get("text")
        content = part.get("content") if isinstance(part, dict) else None
        if not isinstance(content, str) or not content:
            return 40035, "缺少参数 text.content"
        size = len(content.encode())
    elif kind == "markdown":
        part = body.get("markdown")
        if not isinstance(part, dict) or not all(isinstance(part.get(k), str) and part.get(k) for k in ("title", "text")):
            return 40035, "缺少参数 markdown.title / markdown.text"
        size = len(part["title"].encode()) + len(part["text"].encode())
    else:
        return 40035, "缺少参数 msgtype"
    at = body.get("at", {})
    if not isinstance(at, dict) or not _strings(at.get("atMobiles", [])) or not _strings(at.get("atUserIds", [])) \
            or not isinstance(at.get("isAtAll", False), bool):
        return 40035, "参数 at 格式错误"
    if size > DINGTALK_CONTENT_BYTES:
        return 460101, f"message too long, exceed {DINGTALK_CONTENT_BYTES} bytes"
    return None


_FEISHU_TAGS = {"text": "text", "a": "text", "at": "user_id", "img": "image_key", "emotion": "emoji_type"}


def _feishu_ok(body: dict) -> bool:
    kind, content = body.get("msg_type"), body.get("content")
    if not isinstance(content, dict):
        return False
    if kind == "text":
        return isinstance(content.get("text"), str) and bool(content["text"])
    if kind != "post":
        return False
    post = content.get("post")
    if not isinstance(post, dict) or not post:
        return False
    for locale in post.values():
        if not isinstance(locale, dict) or not isinstance(locale.get("title", ""), str):
            return False
        rows = locale.get("content")
        if not isinstance(rows, list) or not rows:
            return False
        for row in rows:
            if not isinstance(row, list):
                return False
            for element in row:
                if not isinstance(element, dict) or element.get("tag") not in _FEISHU_TAGS:
                    return False
                if not isinstance(element.get(_FEISHU_TAGS[element["tag"]]), str):
                    return False
    return True


@contextlib.asynccontextmanager
async def serve_robots(receiver: RobotReceiver, port: int = 0) -> AsyncIterator[str]:
    """Serve ``receiver`` on 127.0.0.1 in this event loop until the block ends; yields the base URL."""
    from connectors.emulators.kuaidi100 import serve

    async with serve(receiver.app, port=port) as url:
        yield url
