"""Scan-to-confirm: a barcode scan advances an order one warehouse step, or is refused loudly.

The steps, each ended by one scan of the order no. or a waybill no. of the order:

====  ===========  =====================================  ============================
step  name         moves the order                        measured from
====  ===========  =====================================  ============================
1     配货 allocate  已付款 → 配货中                           payment (time waiting for the warehouse)
2     拣货 pick      配货中 → 配货中 · picked (拣货完成)        step 1's scan (or when it entered 配货中)
3     打包 pack      picked → packed                        step 2's scan
4     出库 ship      packed → 已出库 (its waybilled parcels)  step 3's scan
====  ===========  =====================================  ============================

**Where orders enter 配货中:** the first scan of a *paid* order (step 1) — a team without an ERP
releases orders to the warehouse by scanning the pick list. An order 审核中 (in review) cannot be
scanned: customer service finishes the review first, and the refusal says so. Orders a channel
or an ERP already put in 配货中 start at step 2.

Every scan runs in **one write transaction** (``Store.write()``): the order is looked up and
checked inside it, so two scanners racing on one order cannot both advance it. A step writes the
order's ``status`` / ``wh_step`` and one timeline event under the signed-in operator — kind
``allocate`` / ``pick`` / ``pack`` / ``ship`` (the card already names them), ``from_value`` →
``to_value`` the progress before and after, and ``detail`` = ``{"source": "scan", "step",
"scanned", "started_at", "ended_at", "seconds", "started_by", "station"}`` so step durations can be
measured (``started_at`` is when the step before ended; None when nobody recorded it).

A refused scan (:data:`REFUSALS`) writes nothing at all — except, when the operator's role may not
confirm warehouse steps (``refused``: ``advance_step`` in ``db.roles``), one access-log record of
the attempt. ``station``: a scanner set to one step
(a packing bench) refuses an order whose next step is another one (``wrong_step``), so an order
that skipped picking cannot be packed by mistake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from db import queue as dbq
from db.codes import AfterSale, Status
from db.fields import normalise_query
from db.roles import Refused, permit
from db.sanitize import clean_text

if TYPE_CHECKING:
    from db.store import Store
    from db.views import Actor


class Step(StrEnum):
    """A warehouse step, named by what its scan confirms."""

    ALLOCATE = "allocate"  # 配货
    PICK = "pick"  # 拣货完成
    PACK = "pack"  # 打包
    SHIP = "ship"  # 出库


#: The steps in working order.
STEPS: tuple[Step, ...] = (Step.ALLOCATE, Step.PICK, Step.PACK, Step.SHIP)

#: Why a scan can be refused (each has a message saying what to do: ``scan.err.<code>``).
REFUSALS = ("empty", "unknown", "ambiguous", "unpaid", "review", "held", "cancelled", "shipped", "refund",
            "wrong_step", "no_waybill", "changed", "refused")

#: After-sale states that stop an unshipped order at the warehouse door.
_STOPPING = frozenset({AfterSale.REFUND_REQUESTED, AfterSale.REFUNDING, AfterSale.REFUNDED,
                       AfterSale.RETURN_REQUESTED, AfterSale.RETURNING, AfterSale.RETURNED})
_STATUSES = frozenset(s.value for s in Status)
_SHIPPED = frozenset({Status.SHIPPED, Status.IN_TRANSIT, Status.DELIVERED, Status.COMPLETED})
_ZH = {Step.ALLOCATE: "配货开始", Step.PICK: "拣货完成", Step.PACK: "打包完成", Step.SHIP: "出库"}
_SPACES = re.compile(r"\s+")
#: The longest code a scan may be (a longer one is a gun that did not send Enter).
MAX_CODE = 64


@dataclass(frozen=True)
class ScanResult:
    """What a scan did: a step (``ok``) or a refusal (``code`` in :data:`REFUSALS`)."""

    ok: bool
    code: str  # the step done, or why it was refused
    scanned: str  # the code as looked up (normalised)
    order_id: int | None = None
    order_no: str = ""
    step: Step | None = None  # the step done
    next_step: Step | None = None  # the order's next step (after this one; or, refused, the one due)
    seconds: float | None = None  # how long the step took, when its start is known
    before: str = ""  # the order's progress before: paid review allocating picked packed hold shipped …
    detail: str = ""  # the hold reason, the after-sale state, the number of orders found …
    refused: Refused | None = None  # code "refused": the operator may not confirm warehouse steps

    def message(self) -> str:
        """The line the scan screen shows, in the interface language (plain text)."""
        from widgets.i18n import language, tr

        if self.refused is not None:
            return tr("scan.err.refused", detail=self.refused.text(language()))
        if self.ok:
            text = tr(f"scan.ok.{self.code}", no=clean_text(self.order_no))
            if self.seconds is not None:
                text += " · " + tr("scan.took", t=_duration(self.seconds, tr))
            if self.next_step is not None:
                text += " · " + tr("scan.next", step=tr(f"scan.step.{self.next_step}"))
            return text
        values = {"no": clean_text(self.order_no or self.scanned)[:MAX_CODE], "detail": clean_text(self.detail),
                  "status": tr(f"status.{self.before}") if self.before in _STATUSES else self.before,
                  "step": tr(f"scan.step.{self.next_step}") if self.next_step else "",
                  "station": tr(f"scan.step.{self.detail}") if self.code == "wrong_step" else "",
                  "aftersale": tr(f"aftersale.{self.detail}") if self.code == "refund" else ""}
        return tr(f"scan.err.{self.code}", **values)


def normalise_code(raw: str) -> str:
    """A scanned code as stored: full-width folded (a Chinese IME), spaces and controls dropped."""
    return _SPACES.sub("", clean_text(normalise_query(raw or "")))


def next_step(status: str, wh_step: str | None) -> Step | None:
    """The step an order in this state is waiting for (None: not one a scan can do)."""
    if status == Status.PAID:
        return Step.ALLOCATE
    if status == Status.ALLOCATING:
        return {None: Step.PICK, dbq.PICKED: Step.PACK, dbq.PACKED: Step.SHIP}.get(wh_step)
    return None


def _progress(status: str, wh_step: str | None) -> str:
    return wh_step if status == Status.ALLOCATING and wh_step else status


async def advance(store: Store, raw: str, actor: Actor, *, station: Step | None = None,
                  at: datetime | None = None) -> ScanResult:
    """Advance the order a scanned code names by one step, or refuse; one write transaction."""
    code = normalise_code(raw)
    if not code or len(code) > MAX_CODE:
        return ScanResult(False, "empty" if not code else "unknown", code[:MAX_CODE])
    at = at or datetime.now(UTC)
    async with store.write() as conn:
        # Who may scan is read inside this transaction (db.roles); a refusal commits only its
        # access-log record.
        refused = await permit(conn, actor, "advance_step", at=at)
        if refused is not None:
            return ScanResult(False, "refused", code, refused=refused)
        ids = await dbq.scan_targets(conn, code)
        if not ids and code.upper() != code:
            code = code.upper()  # a waybill typed or scanned in lower case
            ids = await dbq.scan_targets(conn, code)
        if not ids:
            return ScanResult(False, "unknown", code)
        if len(ids) > 1:
            return ScanResult(False, "ambiguous", code, detail=str(len(ids)))
        row = await dbq.scan_row(conn, ids[0])
        if row is None:
            return ScanResult(False, "unknown", code)
        refused = _refusal(row, code, station)
        if refused is not None:
            return refused
        step = next_step(row.status, row.wh_step)
        assert step is not None  # _refusal covered every state without a next step
        started = await _started(conn, row, step)
        status, wh_step, ship = row.status, row.wh_step, []
        if step is Step.ALLOCATE:
            status, wh_step = Status.ALLOCATING.value, None
        elif step is Step.PICK:
            wh_step = dbq.PICKED
        elif step is Step.PACK:
            wh_step = dbq.PACKED
        else:
            status, wh_step = Status.SHIPPED.value, None
            ship = [pid for pid, _, _ in row.waybills]
        if not await dbq.set_step(conn, row.id, status=status, wh_step=wh_step, at=at, ship_parcels=ship):
            return ScanResult(False, "changed", code, row.id, row.order_no)
        seconds = (at - started[0]).total_seconds() if started is not None else None
        before, after = _progress(row.status, row.wh_step), _progress(status, wh_step)
        message = _ZH[step]
        if step is Step.SHIP and row.waybills:
            _, waybill, carrier = row.waybills[0]
            message = f"出库：{clean_text(carrier)} {clean_text(waybill)}".replace("  ", " ")
        if seconds is not None:
            message += f" · 用时 {_zh_duration(seconds)}"
        from db.store import append_event

        await append_event(
            conn, row.id, actor, step.value, at=at, from_value=before, to_value=after, message=message,
            detail={"source": "scan", "step": step.value, "scanned": code,
                    "started_at": started[0].isoformat() if started else None, "ended_at": at.isoformat(),
                    "seconds": round(seconds) if seconds is not None else None,
                    "started_by": started[1] if started else None, "station": station.value if station else None},
        )
        following = STEPS[STEPS.index(step) + 1] if step is not Step.SHIP else None
        return ScanResult(True, step.value, code, row.id, row.order_no, step, following, seconds, before)


def _refusal(row: dbq.ScanRow, code: str, station: Step | None) -> ScanResult | None:
    def no(reason: str, detail: str = "", step: Step | None = None) -> ScanResult:
        return ScanResult(False, reason, code, row.id, row.order_no, next_step=step,
                          before=_progress(row.status, row.wh_step), detail=detail)

    if row.status == Status.HOLD:
        return no("held", row.hold_reason or "")
    if row.status == Status.CANCELLED:
        return no("cancelled")
    if row.status in _SHIPPED:
        return no("shipped")
    if row.status == Status.PENDING_PAYMENT:
        return no("unpaid")
    if row.status == Status.REVIEW:
        return no("review")
    if row.after_sale in _STOPPING:
        return no("refund", row.after_sale)
    step = next_step(row.status, row.wh_step)
    if step is None:
        return no("unknown")
    if station is not None and step is not station:
        return no("wrong_step", station.value, step)
    if step is Step.SHIP and not row.waybills:
        return no("no_waybill", step=step)
    return None


async def _started(conn, row: dbq.ScanRow, step: Step) -> tuple[datetime, str] | None:
    """When the step now ending began (the previous step's end), and who ended that one."""
    if step is Step.ALLOCATE:
        return (row.paid_at, "") if row.paid_at is not None else None
    previous = {Step.PICK: ("allocate",), Step.PACK: ("pick",), Step.SHIP: ("pack",)}[step]
    return await dbq.step_started(conn, row.id, previous,
                                  to_status=Status.ALLOCATING.value if step is Step.PICK else None)


def _zh_duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    hours, mins = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}天{hours}小时" if hours else f"{days}天"
    if hours:
        return f"{hours}小时{mins}分钟" if mins else f"{hours}小时"
    return f"{mins}分钟" if mins else f"{int(seconds)}秒"


def _duration(seconds: float, tr) -> str:
    minutes = int(seconds // 60)
    hours, mins = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return tr("q.dur.d", n=days) + (tr("q.dur.h", n=hours) if hours else "")
    if hours:
        return tr("q.dur.h", n=hours) + (tr("q.dur.m", n=mins) if mins else "")
    return tr("q.dur.m", n=mins) if mins else tr("dur.s", n=int(seconds))
