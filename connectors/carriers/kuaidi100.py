"""Kuaidi100 (快递100) tracking: subscribe, receive pushes, query, and hand scans to ``db.tracking``.

The format (``shared/CHANNELS.md`` "Carrier tracking"):

* **Subscribe** — POST ``{base}/poll``, form ``schema=json&param=<json>`` with ``company``,
  ``number``, ``key`` and ``parameters{callbackurl, salt, resultv2, phone}`` (SF wants the phone or
  its last four digits). Answer ``{"result": true, "returnCode": "200", …}``; ``501`` = already
  subscribed (fine).
* **Push** — Kuaidi100 form-POSTs ``param=<json>&sign=MD5(param + salt)`` (upper-case hex) to the
  callback URL; ``param.lastResult.data[]`` is the *full* history, newest first. We answer
  ``{"result": true, "returnCode": "200", "message": "成功"}``, or Kuaidi100 pushes again.
  :func:`push_app` is the receiver: a bad sign is rejected and logged, never applied.
* **Query** (pull mode) — POST ``{base}/poll/query.do``, form ``customer``, ``param`` and
  ``sign = MD5(param + key + customer)``; :meth:`Kuaidi100Client.query`, and :func:`poll_once`
  to refresh every parcel on the road.
* ``state``: 0 在途, 1 揽收, 2 疑难, 3 签收, 4 退签, 5 派件, 6 退回, 7 转投, 8 清关, 14 拒签; with
  ``resultv2`` the sub-states 101…1003 roll up to these.

A scan's identity is a hash of (``ftime``, ``context``) — never the free-text place alone — so a
push repeated, or the whole history pushed again, lands once (``db.tracking.apply_tracking``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx

from db.codes import ActorKind
from db.sanitize import clean_text
from db.tracking import (
    CarrierEvent,
    TrackingResult,
    TrackState,
    apply_tracking,
    event_key,
    parcels_to_track,
)
from db.views import Actor

log = logging.getLogger(__name__)

CHINA = timezone(timedelta(hours=8), "UTC+8")
SUCCESS_REPLY = {"result": True, "returnCode": "200", "message": "成功"}
#: A push is one waybill's history: far below this. Bigger bodies are refused unread.
MAX_PUSH_BYTES = 1_000_000

#: deskapp carrier codes (upper case, as parcels store them) → Kuaidi100 company codes.
COMPANIES: dict[str, str] = {
    "SF": "shunfeng", "ZTO": "zhongtong", "YTO": "yuantong", "YD": "yunda", "STO": "shentong",
    "JD": "jd", "JT": "jtexpress", "EMS": "ems", "DBL": "debangkuaidi", "YZPY": "youzhengguonei",
}
CARRIERS: dict[str, str] = {company: code for code, company in COMPANIES.items()}
#: Companies that only answer with the receiver's phone (or its last four digits).
NEEDS_PHONE = frozenset({"shunfeng", "shunfengkuaiyun"})

STATES: dict[int, TrackState] = {
    0: TrackState.IN_TRANSIT, 1: TrackState.COLLECTED, 2: TrackState.PROBLEM, 3: TrackState.DELIVERED,
    4: TrackState.RETURN_SIGNED, 5: TrackState.DELIVERING, 6: TrackState.RETURNING, 7: TrackState.REDIRECTED,
    8: TrackState.IN_TRANSIT, 10: TrackState.IN_TRANSIT, 11: TrackState.IN_TRANSIT, 12: TrackState.IN_TRANSIT,
    13: TrackState.PROBLEM, 14: TrackState.REFUSED,
}
#: The words Kuaidi100 writes in ``data[].status`` (resultv2) for each state.
STATE_WORDS: dict[str, TrackState] = {
    "在途": TrackState.IN_TRANSIT, "揽收": TrackState.COLLECTED, "疑难": TrackState.PROBLEM,
    "签收": TrackState.DELIVERED, "退签": TrackState.RETURN_SIGNED, "派件": TrackState.DELIVERING,
    "退回": TrackState.RETURNING, "转投": TrackState.REDIRECTED, "拒签": TrackState.REFUSED,
    "清关": TrackState.IN_TRANSIT, "待清关": TrackState.IN_TRANSIT, "清关中": TrackState.IN_TRANSIT,
    "已清关": TrackState.IN_TRANSIT, "清关异常": TrackState.PROBLEM, "投柜": TrackState.DELIVERING,
    "待取件": TrackState.DELIVERING, "已下单": TrackState.COLLECTED, "待揽收": TrackState.COLLECTED,
    "已揽收": TrackState.COLLECTED, "派件中": TrackState.DELIVERING, "已签收": TrackState.DELIVERED,
}


def state_of(code: Any) -> TrackState:
    """The tracking state of a Kuaidi100 ``state`` code, sub-states (101, 1001 …) rolled up."""
    try:
        number = int(str(code).strip())
    except ValueError:
        return TrackState.UNKNOWN
    if 1000 <= number < 1100:
        number = 0  # 1001 到达派件城市, 1002 干线, 1003 转递: all 在途
    elif 100 <= number < 1000:
        number //= 100
    return STATES.get(number, TrackState.UNKNOWN)


def sign(*parts: str) -> str:
    """Kuaidi100's signature: MD5 of the parts run together, upper-case hex."""
    return hashlib.md5("".join(parts).encode("utf-8")).hexdigest().upper()  # noqa: S324 - their format


def carrier_for(company: str) -> str:
    """The deskapp carrier code of a Kuaidi100 company code ("" when we do not know it)."""
    return CARRIERS.get((company or "").strip().lower(), "")


def company_for(carrier: str) -> str | None:
    """The Kuaidi100 company code of a deskapp carrier code (None when we do not know it)."""
    code = (carrier or "").strip().upper()
    return COMPANIES.get(code) or (code.lower() if code.lower() in CARRIERS else None)


class PushError(ValueError):
    """A push or query answer that cannot be read; the message says what is wrong."""


@dataclass(frozen=True)
class Tracking:
    """One waybill's tracking as Kuaidi100 reports it (a push's ``lastResult`` or a query answer)."""

    company: str
    number: str
    state: TrackState
    checked: bool  # ischeck: the carrier considers it finished (signed for)
    events: tuple[CarrierEvent, ...]  # newest first, as delivered
    push_status: str = ""  # polling / shutdown / abort / updateall (pushes only)
    message: str = ""

    @property
    def carrier(self) -> str:
        """The deskapp carrier code ("" if unknown)."""
        return carrier_for(self.company)


def parse_result(result: Mapping[str, Any], *, push_status: str = "", message: str = "") -> Tracking:
    """A :class:`Tracking` from a ``lastResult`` / query answer; raises :class:`PushError`."""
    if not isinstance(result, Mapping):
        raise PushError("lastResult is not an object")
    number = clean_text(str(result.get("nu") or "")).strip()
    if not number:
        raise PushError("the waybill number (nu) is missing")
    data = result.get("data") or []
    if not isinstance(data, list):
        raise PushError("data is not a list")
    top = state_of(result.get("state"))
    events: list[CarrierEvent] = []
    for index, item in enumerate(data):
        if not isinstance(item, Mapping):
            raise PushError(f"data[{index}] is not an object")
        when = str(item.get("ftime") or item.get("time") or "").strip()
        context = clean_text(str(item.get("context") or "")).strip()
        if not when or not context:
            raise PushError(f"data[{index}] has no time or no context")
        try:
            at = datetime.strptime(when, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA).astimezone(UTC)
        except ValueError:
            raise PushError(f"data[{index}] time {clean_text(when)[:30]!r} is not YYYY-MM-DD HH:MM:SS") from None
        state = TrackState.UNKNOWN
        if item.get("statusCode") not in (None, ""):
            state = state_of(item.get("statusCode"))
        if state is TrackState.UNKNOWN:
            state = STATE_WORDS.get(str(item.get("status") or "").strip(), TrackState.UNKNOWN)
        if index == 0 and state is TrackState.UNKNOWN:
            state = top  # the newest scan is in the state the answer reports
        events.append(CarrierEvent(
            at=at, text=context, state=state, area=clean_text(str(item.get("areaName") or "")),
            key=event_key(number, when, context),
        ))
    return Tracking(
        company=str(result.get("com") or "").strip().lower(), number=number, state=top,
        checked=str(result.get("ischeck") or "0") == "1", events=tuple(events),
        push_status=push_status, message=message,
    )


def verify_push(param: str, signature: str, salt: str) -> bool:
    """Whether ``signature`` is MD5(param + salt), compared in constant time."""
    return hmac.compare_digest(sign(param, salt), (signature or "").strip().upper())


def parse_push(param: str) -> Tracking:
    """A push's ``param`` JSON as :class:`Tracking`; raises :class:`PushError`."""
    try:
        body = json.loads(param)
    except ValueError:
        raise PushError("param is not JSON") from None
    if not isinstance(body, Mapping):
        raise PushError("param is not a JSON object")
    return parse_result(body.get("lastResult") or {}, push_status=str(body.get("status") or ""),
                        message=clean_text(str(body.get("message") or "")))


def carrier_actor(carrier: str) -> Actor:
    """The author of carrier scans on the timeline: the carrier code (or kuaidi100 when unknown)."""
    return Actor(ActorKind.CARRIER, carrier or "kuaidi100")


async def apply(store, tracking: Tracking, *, payload: Any = None) -> TrackingResult:  # noqa: ANN001
    """Apply a tracking report to the pool; an unknown waybill is quarantined with the payload."""
    result = await apply_tracking(store, tracking.carrier, tracking.number, tracking.events,
                                  actor=carrier_actor(tracking.carrier))
    if not result.found:
        await quarantine(
            store, payload if payload is not None else tracking_payload(tracking), number=tracking.number,
            reason=f"没有运单号为 {tracking.number} 的包裹（{tracking.company or '未知快递'}）；"
                   f"no parcel has waybill {tracking.number}",
            code="unknown_waybill", carrier=tracking.carrier,
        )
    return result


def tracking_payload(tracking: Tracking) -> dict:
    """A JSON-able record of a report, for the quarantine."""
    return {"com": tracking.company, "nu": tracking.number, "status": tracking.push_status,
            "data": [{"time": e.at.isoformat(), "context": e.text, "state": str(e.state)} for e in tracking.events]}


async def quarantine(store, payload: Any, *, number: str | None, reason: str, code: str, carrier: str = "") -> None:  # noqa: ANN001
    """Keep a report we cannot apply, with the reason, for a person (the Connectors screen)."""
    from db.ingest import QuarantineItem, ingest

    item = QuarantineItem(connector="kuaidi100", channel="kuaidi100", shop_code=carrier, payload=payload,
                          reason=reason, code=code, external_id=number)
    await ingest(store, [], actor=Actor(ActorKind.CARRIER, "kuaidi100"), quarantined=[item])


# -- the push receiver ------------------------------------------------------------------------------


def read_form(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (UTF-8) as a dict; raises ValueError.

    Parsed here rather than by Starlette's ``request.form()``, which needs python-multipart.
    """
    from urllib.parse import parse_qsl

    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          max_num_fields=16))


def push_app(store, salt: str | Callable[[], str], *, path: str = "/kuaidi100/push",  # noqa: ANN001
             on_push: Callable[[Tracking, TrackingResult], Any] | None = None):  # noqa: ANN201
    """A Starlette app receiving Kuaidi100 pushes at ``path`` and applying them to ``store``.

    ``salt`` may be a function (read from the environment per push, never kept). A bad sign is
    answered ``result: false`` with HTTP 400 and logged; nothing is applied. A malformed but
    signed push is quarantined and acknowledged (pushing it again would not mend it). A database
    failure is answered HTTP 500 so Kuaidi100 pushes again later.
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def reply(ok: bool, message: str, status: int = 200) -> JSONResponse:
        body = SUCCESS_REPLY if ok else {"result": False, "returnCode": str(status), "message": message}
        return JSONResponse(body, status_code=status)

    async def receive(request: Request) -> JSONResponse:
        if int(request.headers.get("content-length") or 0) > MAX_PUSH_BYTES:
            log.warning("kuaidi100 push refused: %s bytes from %s", request.headers.get("content-length"),
                        request.client)
            return reply(False, "内容过大", 413)
        try:
            form = read_form(await request.body())
        except ValueError:  # an unreadable body is a bad request, never a crash
            log.warning("kuaidi100 push: unreadable form body from %s", request.client)
            return reply(False, "无法读取表单", 400)
        param, signature = form.get("param"), form.get("sign")
        if not isinstance(param, str) or not isinstance(signature, str):
            log.warning("kuaidi100 push without param or sign from %s", request.client)
            return reply(False, "缺少 param 或 sign", 400)
        try:
            secret = salt() if callable(salt) else salt
        except Exception as error:  # noqa: BLE001 - e.g. the salt's environment variable is unset
            log.error("kuaidi100 push cannot be verified: %s", error)
            return reply(False, "服务器错误", 500)
        if not verify_push(param, signature, secret):
            log.warning("kuaidi100 push rejected: bad sign from %s (%d bytes)", request.client, len(param))
            return reply(False, "签名错误", 400)
        try:
            tracking = parse_push(param)
        except PushError as error:
            log.warning("kuaidi100 push unreadable: %s", error)
            try:
                await quarantine(store, param, number=None, reason=f"快递100推送无法解析：{error}; unreadable push: {error}",
                                 code="bad_push")
            except Exception:  # noqa: BLE001
                log.exception("kuaidi100 push: could not quarantine")
                return reply(False, "服务器错误", 500)
            return reply(True, "")
        if tracking.push_status == "abort":
            log.info("kuaidi100 stopped tracking %s: %s", tracking.number, tracking.message)
        try:
            result = await apply(store, tracking, payload=param)
        except Exception:  # noqa: BLE001 - Kuaidi100 pushes again; details go to the log
            log.exception("kuaidi100 push for %s could not be applied", tracking.number)
            return reply(False, "服务器错误", 500)
        if on_push is not None:
            try:
                on_push(tracking, result)
            except Exception:  # noqa: BLE001 - a listener's failure is not the push's
                log.exception("kuaidi100 push listener failed")
        return reply(True, "")

    return Starlette(routes=[Route(path, receive, methods=["POST"])])


# -- the API client ----------------------------------------------------------------------------------


@dataclass
class Kuaidi100Client:
    """Subscribe and query over HTTP. ``key``/``customer`` are functions or values read at call time.

    Build from config with :meth:`from_config` (secrets stay in the environment until a call).
    """

    client: httpx.AsyncClient
    key: Callable[[], str]
    customer: Callable[[], str] | None = None
    base_url: str = "https://poll.kuaidi100.com"
    policy: Any = None
    limiter: Any = None
    _ok_codes: frozenset[str] = field(default=frozenset({"200", "501"}), repr=False)

    @classmethod
    def from_config(cls, config, client: httpx.AsyncClient) -> Kuaidi100Client:  # noqa: ANN001
        """From a ``connectors.config.Kuaidi100Config``."""
        return cls(client=client, key=config.key.value,
                   customer=config.customer.value if config.customer else None, base_url=config.base_url)

    async def _post(self, path: str, form: Mapping[str, str] | Callable[[], Mapping[str, str]],
                    check: Callable[[Any], None]) -> Any:
        from connectors.http import DEFAULT_POLICY, request_json

        return await request_json(self.client, "POST", self.base_url.rstrip("/") + path, data=form,
                                  policy=self.policy or DEFAULT_POLICY, limiter=self.limiter, check=check)

    async def subscribe(self, carrier: str, number: str, *, callback_url: str, salt: str = "",
                        phone: str = "") -> bool:
        """Ask for pushes about one waybill. True when subscribed (or already subscribed)."""
        from connectors.http import PermanentError, TransientError

        company = company_for(carrier)
        if company is None:
            raise PermanentError(f"Kuaidi100 has no company code for carrier {carrier!r}")
        parameters = {"callbackurl": callback_url, "resultv2": "1"}
        if salt:
            parameters["salt"] = salt
        if phone:
            parameters["phone"] = phone
        param = {"company": company, "number": number, "key": self.key(), "parameters": parameters}

        def check(body: Any) -> None:
            code = str(body.get("returnCode", "")) if isinstance(body, Mapping) else ""
            if code in self._ok_codes:
                return
            message = clean_text(str(body.get("message", "")))[:200] if isinstance(body, Mapping) else ""
            if code in ("500", "502"):
                raise TransientError(f"Kuaidi100 subscribe: {code} {message}")
            raise PermanentError(f"Kuaidi100 subscribe refused: {code} {message}", code=code)

        await self._post("/poll", {"schema": "json", "param": json.dumps(param, ensure_ascii=False)}, check)
        return True

    async def query(self, carrier: str, number: str, *, phone: str = "") -> Tracking | None:
        """The waybill's tracking now (pull mode); None when Kuaidi100 has no record yet."""
        from connectors.http import PermanentError, TransientError

        if self.customer is None:
            raise PermanentError("Kuaidi100 query needs the customer id (customer_env)")
        company = company_for(carrier)
        if company is None:
            raise PermanentError(f"Kuaidi100 has no company code for carrier {carrier!r}")
        param = {"com": company, "num": number, "resultv2": "1"}
        if phone:
            param["phone"] = phone
        text = json.dumps(param, ensure_ascii=False)
        customer = self.customer

        def form() -> dict[str, str]:  # read the secrets per attempt; never kept on the client
            key, cust = self.key(), customer()
            return {"customer": cust, "param": text, "sign": sign(text, key, cust)}

        def check(body: Any) -> None:
            if not isinstance(body, Mapping):
                raise PermanentError("Kuaidi100 query answer is not an object")
            if str(body.get("status", "")) == "200":
                return
            code = str(body.get("returnCode", ""))
            message = clean_text(str(body.get("message", "")))[:200]
            if code == "500" and "无结果" in message:
                return  # no record yet: an answer, not an error
            if code in ("500", "501", "502"):
                raise TransientError(f"Kuaidi100 query: {code} {message}")
            raise PermanentError(f"Kuaidi100 query refused: {code} {message}", code=code)

        body = await self._post("/poll/query.do", form, check)
        if str(body.get("status", "")) != "200":
            return None
        try:
            return parse_result(body)
        except PushError as error:
            from connectors.http import TruncatedRead

            raise TruncatedRead(f"Kuaidi100 query answer for {number} unreadable: {error}") from None


@dataclass
class PollSummary:
    """What one :func:`poll_once` pass did."""

    queried: int = 0
    no_record: int = 0
    added: int = 0
    failed: int = 0
    status_changes: int = 0


async def poll_once(store, client: Kuaidi100Client, *, limit: int = 200) -> PollSummary:  # noqa: ANN001
    """Query every parcel on the road (oldest scan first, up to ``limit``) and apply the answers.

    One parcel failing is logged and counted; the pass goes on with the next.
    """
    summary = PollSummary()
    for carrier, waybill, phone in await parcels_to_track(store, limit=limit):
        if company_for(carrier) is None:
            continue
        digits = "".join(ch for ch in phone if ch.isdigit())
        try:
            tracking = await client.query(carrier, waybill, phone=digits[-4:] if len(digits) >= 4 else "")
        except Exception as error:  # noqa: BLE001 - one parcel's failure must not stop the pass
            summary.failed += 1
            log.warning("kuaidi100 query %s %s failed: %s", carrier, waybill, error)
            continue
        summary.queried += 1
        if tracking is None:
            summary.no_record += 1
            continue
        result = await apply(store, tracking)
        summary.added += result.added
        summary.status_changes += len(result.status_changes)
    return summary
