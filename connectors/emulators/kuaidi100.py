"""A Kuaidi100 emulator: the subscribe and query APIs over HTTP, and pushes to callback URLs.

Speaks the public format (see ``connectors/carriers/kuaidi100.py``): ``POST /poll`` subscribes
(returnCode 200; 501 already subscribed; 600 bad key; 700 bad request — SF without a phone, no
callback URL, unknown company), ``POST /poll/query.do`` answers a query signed
``MD5(param + key + customer)`` (503 bad sign; 500 "查询无结果" before the first scan; 408 phone
check failed). Pushes go out as ``param=<json>&sign=MD5(param + salt)`` with the *full* history,
newest first, to the subscriber's callback URL; a push not acknowledged with ``result: true`` waits
in :attr:`Kuaidi100Emulator.pending` for :meth:`~Kuaidi100Emulator.retry_pending`.

Driven from Python (tests, ``deskapp demo``): :meth:`~Kuaidi100Emulator.ship` registers a waybill,
:meth:`~Kuaidi100Emulator.scan` adds a scan, :meth:`~Kuaidi100Emulator.push` delivers the current
history. Faults on demand: a push with a bad sign, the same push twice, an *older* snapshot pushed
after a newer one (out of order), and 5xx answers from the query/subscribe API
(:meth:`~Kuaidi100Emulator.fail_next`). :func:`serve` runs any ASGI app on 127.0.0.1 in the
current event loop (port 0: a free port).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx

from connectors.carriers.kuaidi100 import CARRIERS, NEEDS_PHONE, read_form, sign

CHINA = timezone(timedelta(hours=8), "UTC+8")
STATE_WORDS = {0: "在途", 1: "揽收", 2: "疑难", 3: "签收", 4: "退签", 5: "派件", 6: "退回", 7: "转投",
               8: "清关", 14: "拒签"}


@dataclass
class Shipment:
    """One waybill the emulated carrier knows: its scans (oldest first) and its subscriber."""

    company: str
    number: str
    phone: str = ""
    scans: list[dict] = field(default_factory=list)
    callback_url: str = ""
    salt: str = ""
    subscribed: bool = False
    snapshots: list[str] = field(default_factory=list)  # every param pushed, oldest first

    @property
    def state(self) -> int:
        return self.scans[-1]["state"] if self.scans else 0


@dataclass
class PushOutcome:
    """What the receiver answered to one push."""

    number: str
    status_code: int | None
    body: Any
    ok: bool


class Kuaidi100Emulator:
    """In-memory Kuaidi100: ``app`` is the HTTP API; the methods drive shipments and pushes."""

    def __init__(self, key: str = "emu-key", customer: str = "EMUCUSTOMER") -> None:
        self.key = key
        self.customer = customer
        self.shipments: dict[str, Shipment] = {}
        self.pending: list[tuple[str, str, str]] = []  # (number, param, sign) not acknowledged
        self.outcomes: list[PushOutcome] = []
        self.requests: list[str] = []  # "subscribe" / "query", for tests
        self._fail: dict[str, list[int]] = {"subscribe": [], "query": []}
        self.app = self._build_app()

    # -- driving ----------------------------------------------------------------------------

    def ship(self, company: str, number: str, *, phone: str = "") -> Shipment:
        """Register a waybill (the carrier has a label for it; no scans yet)."""
        shipment = self.shipments.get(number)
        if shipment is None:
            shipment = self.shipments[number] = Shipment(company=company, number=number, phone=phone)
        return shipment

    def scan(self, number: str, context: str, *, state: int = 0, at: datetime | None = None,
             area: str = "") -> dict:
        """Add a scan to a waybill's history (``at`` defaults to now)."""
        shipment = self.shipments[number]
        when = (at or datetime.now(UTC)).astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
        scan = {"context": context, "time": when, "ftime": when, "state": state, "area": area}
        shipment.scans.append(scan)
        shipment.scans.sort(key=lambda s: s["ftime"])
        return scan

    def fail_next(self, api: str, *statuses: int) -> None:
        """The next calls to ``api`` ("subscribe" or "query") answer these HTTP statuses (e.g. 502)."""
        self._fail[api].extend(statuses)

    def result(self, number: str) -> dict:
        """The ``lastResult`` of a waybill now: full history, newest first."""
        shipment = self.shipments[number]
        state = shipment.state
        data = [
            {"context": s["context"], "time": s["time"], "ftime": s["ftime"],
             "status": STATE_WORDS.get(s["state"], "在途"), "statusCode": str(s["state"]),
             "areaCode": "", "areaName": s["area"]}
            for s in reversed(shipment.scans)
        ]
        return {"message": "ok", "state": str(state), "status": "200", "condition": "F00",
                "ischeck": "1" if state == 3 else "0", "com": shipment.company, "nu": shipment.number,
                "data": data}

    def push_param(self, number: str) -> str:
        """The ``param`` of a push of the current history."""
        state = self.shipments[number].state
        status = "shutdown" if state in (3, 4) else "polling"
        return json.dumps({"status": status, "billstatus": "", "message": "", "autoCheck": "0", "comOld": "",
                           "comNew": "", "lastResult": self.result(number)}, ensure_ascii=False)

    async def push(self, number: str, *, bad_sign: bool = False, duplicate: bool = False,
                   param: str | None = None) -> list[PushOutcome]:
        """Push the waybill's history to its subscriber (``param`` replays an older snapshot).

        ``bad_sign`` signs with a wrong salt; ``duplicate`` sends the same push twice.
        """
        shipment = self.shipments[number]
        if not shipment.subscribed:
            raise LookupError(f"{number} has no subscriber")
        if param is None:
            param = self.push_param(number)
            shipment.snapshots.append(param)
        signature = sign(param, shipment.salt + ("x" if bad_sign else ""))
        outcomes = [await self._send(shipment, param, signature)]
        if duplicate:
            outcomes.append(await self._send(shipment, param, signature))
        return outcomes

    async def push_out_of_order(self, number: str, older: int = 0) -> list[PushOutcome]:
        """Push an older snapshot again (``older`` indexes :attr:`Shipment.snapshots`), as a late retry would."""
        return await self.push(number, param=self.shipments[number].snapshots[older])

    async def retry_pending(self) -> list[PushOutcome]:
        """Push again everything the receiver did not acknowledge."""
        pending, self.pending = self.pending, []
        return [await self._send(self.shipments[n], p, s) for n, p, s in pending]

    async def _send(self, shipment: Shipment, param: str, signature: str) -> PushOutcome:
        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0)) as client:
                response = await client.post(shipment.callback_url, data={"param": param, "sign": signature})
            try:
                body = response.json()
            except ValueError:
                body = response.text
            ok = response.status_code == 200 and isinstance(body, dict) and body.get("result") is True
            outcome = PushOutcome(shipment.number, response.status_code, body, ok)
        except httpx.HTTPError as error:
            outcome = PushOutcome(shipment.number, None, repr(error), False)
        if not outcome.ok:
            self.pending.append((shipment.number, param, signature))
        self.outcomes.append(outcome)
        return outcome

    # -- HTTP --------------------------------------------------------------------------------

    def _build_app(self):  # noqa: ANN202
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        def refuse(code: str, message: str) -> JSONResponse:
            return JSONResponse({"result": False, "returnCode": code, "message": message})

        def injected(api: str) -> JSONResponse | None:
            if self._fail[api]:
                status = self._fail[api].pop(0)
                return JSONResponse({"result": False, "returnCode": str(status), "message": "服务器错误"},
                                    status_code=status)
            return None

        async def subscribe(request: Request) -> JSONResponse:
            self.requests.append("subscribe")
            if (fault := injected("subscribe")) is not None:
                return fault
            form = read_form(await request.body())
            try:
                param = json.loads(str(form.get("param") or ""))
            except ValueError:
                return refuse("700", "订阅参数错误")
            if not isinstance(param, dict):
                return refuse("700", "订阅参数错误")
            if param.get("key") != self.key:
                return refuse("600", "您不是合法的订阅者（即授权Key出错）")
            company, number = str(param.get("company") or ""), str(param.get("number") or "")
            parameters = param.get("parameters") or {}
            if company not in CARRIERS or not number or len(number) > 32:
                return refuse("700", "不支持的快递公司或单号错误")
            if not isinstance(parameters, dict) or not parameters.get("callbackurl"):
                return refuse("700", "缺少回调地址")
            if company in NEEDS_PHONE and not parameters.get("phone"):
                return refuse("700", "顺丰单号需提供收、寄件人手机号或后四位")
            shipment = self.ship(company, number)
            if shipment.subscribed:
                return refuse("501", "重复订阅")
            shipment.subscribed = True
            shipment.callback_url = str(parameters["callbackurl"])
            shipment.salt = str(parameters.get("salt") or "")
            return JSONResponse({"result": True, "returnCode": "200", "message": "提交成功"})

        async def query(request: Request) -> JSONResponse:
            self.requests.append("query")
            if (fault := injected("query")) is not None:
                return fault
            form = read_form(await request.body())
            param_text = str(form.get("param") or "")
            if form.get("customer") != self.customer or sign(param_text, self.key, self.customer) != form.get("sign"):
                return refuse("503", "验证签名失败")
            try:
                param = json.loads(param_text)
            except ValueError:
                return refuse("400", "参数错误")
            number = str(param.get("num") or "")
            shipment = self.shipments.get(number)
            if shipment is None or not shipment.scans:
                return refuse("500", "查询无结果，请隔段时间再查")
            if str(param.get("com") or "") != shipment.company:
                return refuse("400", "找不到对应公司")
            if shipment.company in NEEDS_PHONE and shipment.phone:
                given = "".join(ch for ch in str(param.get("phone") or "") if ch.isdigit())
                if not given or not shipment.phone.endswith(given[-4:]):
                    return refuse("408", "手机号验证失败")
            return JSONResponse(self.result(number))

        return Starlette(routes=[Route("/poll", subscribe, methods=["POST"]),
                                 Route("/poll/query.do", query, methods=["POST"])])


class _Server:
    """uvicorn without its signal handlers: the process embedding it owns SIGINT/SIGTERM."""

    @staticmethod
    def make(app: Any, host: str, port: int):  # noqa: ANN205
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self):  # noqa: ANN202
                yield

        return Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                     access_log=False))


@contextlib.asynccontextmanager
async def serve(*apps: Any, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[Any]:
    """Serve ASGI apps in this event loop until the block ends; yields the base URL (or a list of
    URLs, one per app, when given several). ``port`` 0 picks free ports. They stop together."""
    servers = [_Server.make(app, host, port) for app in apps]
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    try:
        while not all(server.started for server in servers):
            for task in tasks:
                if task.done():
                    task.result()  # raises the start-up error
                    raise RuntimeError("server stopped before it started")
            await asyncio.sleep(0.005)
        urls = []
        for server in servers:
            bound = server.servers[0].sockets[0].getsockname()
            urls.append(f"http://{bound[0]}:{bound[1]}")
        yield urls[0] if len(urls) == 1 else urls
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
