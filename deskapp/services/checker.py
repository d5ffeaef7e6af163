"""Run the order checks on every order waiting for them, off the UI loop.

:class:`Checker` reads a batch of orders waiting to be checked (``db.checks.pending``: new orders,
and orders a channel or a person changed), runs ``deskapp.services.checks.check_order`` on them in a
worker thread, and records what it found (``db.checks.record``): codes on the order, a ``check``
event when they change, and a hold (异常, a ``held`` event) for a blocking problem on an order not
yet handed to the warehouse. :meth:`Checker.run_forever` polls on an interval (a cheap indexed
query when nothing waits) — the in-app sync and ``deskapp sync`` both run it, so an order is checked
within a second of arriving whichever process synced it. A failure is logged and retried on the
next round; it never stops the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from db import checks as pool
from db.store import Store, normalise_sku
from deskapp.services.checks import CheckContext, LineFacts, OrderFacts, check_order

log = logging.getLogger(__name__)

#: Orders checked per round (one read, one thread hop, one write transaction).
BATCH = 1000


@dataclass
class CheckReport:
    checked: int = 0
    held: int = 0


def facts(row: pool.CheckRow) -> OrderFacts:
    """An order as the pool holds it → what the checks read."""
    return OrderFacts(
        order_no=row.order_no, status=row.status, receiver_name=row.receiver_name,
        receiver_phone=row.receiver_phone, province=row.province, city=row.city, district=row.district,
        address_detail=row.address_detail, total_fen=row.total_fen, paid_fen=row.paid_fen,
        buyer_note=row.buyer_note, seller_memo=row.seller_memo, tags=row.tags, presale=row.presale,
        presale_ship_at=row.presale_ship_at, ship_by=row.ship_by, carrier=row.carrier,
        lines=tuple(LineFacts(sku, title, quantity, price, gift) for sku, title, quantity, price, gift in row.lines),
    )


def check_rows(rows: list[pool.CheckRow], context: CheckContext) -> list[pool.Found]:
    """The checks over a batch (pure: runs in a worker thread)."""
    out = []
    for row in rows:
        problems = check_order(facts(row), context)
        out.append(pool.Found(row.id, row.updated_at, tuple((p.code, p.severity, p.message) for p in problems)))
    return out


class Checker:
    """Checks waiting orders in batches; ``not_served``: carrier → provinces/cities it does not serve."""

    def __init__(self, store: Store, *, not_served: Mapping[str, frozenset[str]] | None = None,
                 batch: int = BATCH) -> None:
        self.store = store
        self.not_served = dict(not_served or {})
        self.batch = batch

    async def _context(self, rows: list[pool.CheckRow]) -> CheckContext:
        skus = {normalise_sku(line[0]) for row in rows for line in row.lines}
        return CheckContext(usual_price=await pool.usual_prices(self.store, sorted(skus)),
                            not_served=self.not_served)

    async def check(self, rows: list[pool.CheckRow], *, at: datetime | None = None) -> CheckReport:
        """Check these orders now and record the results."""
        if not rows:
            return CheckReport()
        context = await self._context(rows)
        found = await asyncio.to_thread(check_rows, rows, context)
        recorded, held = await pool.record(self.store, found, at=at or datetime.now(UTC))
        return CheckReport(recorded, held)

    async def run_once(self) -> CheckReport:
        """Check every order waiting now, batch after batch."""
        total = CheckReport()
        while True:
            rows = await pool.pending(self.store, self.batch)
            if not rows:
                return total
            report = await self.check(rows)
            total.checked += report.checked
            total.held += report.held
            if report.checked == 0:  # every one changed under us: let the writers finish first
                return total

    async def run_forever(self, interval: float, stop: asyncio.Event) -> None:
        """Check waiting orders every ``interval`` seconds until ``stop`` is set; never raises."""
        while not stop.is_set():
            try:
                report = await self.run_once()
                if report.held:
                    log.info("order checks: %d checked, %d held", report.checked, report.held)
            except Exception:  # noqa: BLE001 - logged; the next round tries again
                log.exception("order checks failed; retrying")
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass
