"""The warehouse queue: the rules applied to the open orders, and the queue and board they give.

:class:`QueueService` keeps the open orders' stored priority, tags, ship-by deadline, "why" and
holds in step with the rules file (:mod:`deskapp.services.rules`) — no UI here; the app drives it
from a timer and the sync's "orders changed" news (``deskapp.screens.queue.QueueRunner``), and
``deskapp queue --apply-rules`` runs it once.

A recompute reads the open orders' facts (``db.queue.fact_rows``, one read snapshot), evaluates
the rules in a worker thread (CEL is CPU work: ~20 µs an order), and writes back **only the
orders whose decision changed**, in batched write transactions, each with a timeline event by
the rules (actor kind ``rule``, actor id the rules-file version) saying old → new priority and
the rule that set it, and what else changed (tags, deadline). A hold (a ``[[hold]]`` rule) moves
the order to 异常 with the rule's reason and a ``hold`` event; held orders are off the queue and
are not evaluated again — releasing a hold is a person's decision, as it is for a channel's hold.
Before writing, each order is read again inside the write transaction: an order the sync shipped
or changed meanwhile is judged on what is stored now, never overwritten with a stale view.

What is stored, and why that way:

- ``priority`` / ``priority_why`` (the winning rule's name and id; NULL for the default level) /
  ``sla_due`` (``RulesFile.deadline``) / ``rules_version``: the version of the rules that last
  *changed* the order's decision. A new rules file that decides the same for an order writes
  nothing to it (so a rule edit costs writes in proportion to what it changes).
- ``tags``: the rules' tags are added to the stored ones. For an order a channel delivered (its
  ``order_source`` snapshot holds the channel's tags) a tag the rules gave before and no longer
  give is removed, unless the channel sent it too; tags of the desk (``疑似重复``, an operator's)
  stay. Orders with no snapshot (demo data, manual entry) only ever gain rule tags: nothing tells
  the channel's tags from the rules' there. "Gave before" means: named by a rules file this
  process has loaded.

Rules that read ``now`` (``hours_since_paid``) change only when a recompute runs: on a rule
change, on synced changes (the orders affected), and every :data:`FULL_EVERY_S` seconds.

**The S breaker.** While escalation's circuit breaker is tripped (too many S orders waiting; a
lease named :data:`S_BREAKER_LEASE` held until the cool-down ends, so every process sees it), a
recompute grants A where the rules would grant S to an order not already S, and its
``priority_why`` says so: "S 通道已满（熔断至 14:30），按 A 处理：VIP 大单（vip-big）". Orders already S
keep it. The first recompute after the cool-down grants S again (the app's runner recomputes
everything when it sees the breaker clear).
"""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from db import queue as dbq
from db.codes import ActorKind, Status
from db.queue import FactRow, QueueRow
from db.sanitize import clean_text
from db.views import Actor
from deskapp.services.rules import (
    Decision,
    OrderFacts,
    Reason,
    RulesError,
    RulesFile,
    RulesWatcher,
    priority_rank,
)
from deskapp.services.sla import CHINA, BoardThresholds, Colour, Deadline

if TYPE_CHECKING:
    from db.store import Store

log = logging.getLogger("deskapp.queue")

#: How often the app checks the rules file for changes (the issue: re-prioritised within 2 s).
POLL_S = 1.0
#: A full recompute at least this often, for rules that read ``now`` and for other processes' writes.
FULL_EVERY_S = 300.0
#: Orders per write transaction: the sync runner waits for the lock no longer than one batch.
WRITE_BATCH = 1000
_WHY_MAX = 256
#: The lease a tripped S breaker holds until its cool-down ends (``deskapp.services.escalation_runner``).
S_BREAKER_LEASE = "s-breaker"


def utc_now() -> datetime:
    """The default clock: aware UTC now."""
    return datetime.now(UTC)


# -- facts and decisions ----------------------------------------------------------------------


def facts_of(row: FactRow) -> OrderFacts:
    """The rules' view of one stored open order."""
    return OrderFacts(
        channel=row.channel, shop=row.shop, amount_fen=row.total_fen, created_at=row.created_at,
        paid_at=row.paid_at, order_id=row.id, vip_level=row.vip_level, buyer_note=row.buyer_note,
        seller_memo=row.seller_memo, channel_tags=row.channel_tags, presale=row.presale,
        presale_ship_at=row.presale_ship_at, promised_ship_at=row.ship_by, is_live=row.is_live, skus=row.skus,
        item_count=row.item_count, province=row.province, city=row.city, warehouse=row.warehouse,
        returns_30d=row.returns_30d, orders_24h_same_address=row.same_address_24h,
    )


class Outcome(NamedTuple):
    """What the rules decided for one open order, ready to compare with what is stored (a
    NamedTuple: a recompute builds one per open order)."""

    order_id: int
    priority: str
    why: str | None
    due: Deadline | None
    rule_tags: tuple[str, ...]
    channel_tags: tuple[str, ...]
    has_source: bool
    hold: str | None
    reasons: tuple[Reason, ...]
    held_back: datetime | None = None  # the S breaker gave A instead of S, until then

    @property
    def sla_due(self) -> datetime | None:
        return self.due.at if self.due is not None else None


def outcome_of(row: FactRow, decision: Decision, due: Deadline | None) -> Outcome:
    """The storable outcome of a decision."""
    because = decision.because
    why = None
    if because:
        first = because[0]
        why = clean_text(f"{first.rule_name}（{first.rule_id}）")[:_WHY_MAX]
    return Outcome(row.id, decision.priority, why, due, decision.tag_texts, row.channel_tags, row.has_source,
                   decision.hold, decision.reasons)


def hold_back_s(outcome: Outcome, stored_priority: str, until: datetime) -> Outcome:
    """While the S breaker is tripped (until ``until``): A instead of a new S, and why in plain words.
    An order already S keeps it; any other outcome is unchanged."""
    if outcome.priority != "S" or stored_priority == "S":
        return outcome
    why = f"S 通道已满（熔断至 {until.astimezone(CHINA):%H:%M}），按 A 处理：{outcome.why or '默认级别'}"
    return outcome._replace(priority="A", why=clean_text(why)[:_WHY_MAX], held_back=until)


def merge_tags(stored: Sequence[str], rule_tags: Sequence[str], known: Collection[str],
               channel_tags: Collection[str], has_source: bool) -> tuple[str, ...]:
    """The order's tags after the rules: see the module docstring."""
    if has_source:
        keep = [t for t in stored if t not in known or t in channel_tags]
    else:
        keep = list(stored)
    return tuple(keep + [t for t in rule_tags if t not in keep])


@dataclass(frozen=True, slots=True)
class Change:
    """The write one outcome needs against one stored state (None from :func:`plan` = nothing)."""

    order_id: int
    update: dict
    hold: dict | None
    events: tuple[dict, ...]


def differs(state: dbq.Current | FactRow, outcome: Outcome, known: Collection[str]) -> bool:
    """Whether ``outcome`` would change anything stored (cheap: no message is written)."""
    if state.rules_version is None or (outcome.hold is not None and state.status in dbq.OPEN):
        return True
    if state.priority != outcome.priority or state.priority_why != outcome.why or state.sla_due != outcome.sla_due:
        return True
    return tuple(state.tags) != merge_tags(state.tags, outcome.rule_tags, known, outcome.channel_tags,
                                           outcome.has_source)


def plan(state: dbq.Current | FactRow, outcome: Outcome, *, known: Collection[str], version: str,
         at: datetime) -> Change | None:
    """What to write for ``outcome`` given the stored ``state``; None when nothing changes."""
    if not differs(state, outcome, known):
        return None
    tags = merge_tags(state.tags, outcome.rule_tags, known, outcome.channel_tags, outcome.has_source)
    hold = outcome.hold if state.status in dbq.OPEN else None
    due = outcome.sla_due
    actor = Actor(ActorKind.RULE.value, version[:64])
    parts = []
    if state.priority != outcome.priority or state.priority_why != outcome.why:
        parts.append(f"优先级 {state.priority} → {outcome.priority}：" + (outcome.why or "没有规则命中，默认级别"))
    added = [t for t in tags if t not in state.tags]
    removed = [t for t in state.tags if t not in tags]
    if added or removed:
        parts.append("标签 " + " ".join([*(f"+{t}" for t in added), *(f"−{t}" for t in removed)]))
    if state.sla_due != due:
        parts.append("发货截止 " + (outcome.due.explain("zh") if outcome.due is not None else "无"))
    detail: dict = {
        "rules_version": version,
        "priority": [state.priority, outcome.priority],
        "reasons": [{"kind": r.kind, "rule": r.rule_id, "name": r.rule_name, "when": r.condition_text,
                     "outcome": r.outcome} for r in outcome.reasons],
    }
    if added or removed:
        detail["tags"] = [list(state.tags), list(tags)]
    if outcome.held_back is not None:
        detail["s_breaker_until"] = _iso(outcome.held_back)
    if state.sla_due != due:
        detail["sla_due"] = [_iso(state.sla_due), _iso(due)]
        if outcome.due is not None:
            detail["deadline"] = {"basis": str(outcome.due.basis), "source": outcome.due.source}
    events = [dbq.event_row(outcome.order_id, actor, "priority", at=at, from_value=state.priority,
                            to_value=outcome.priority, message="；".join(parts) or f"规则版本 {version}",
                            detail=detail)]
    hold_row = None
    if hold is not None:
        reason = clean_text(hold)[:256]
        hold_row = {"b_id": outcome.order_id, "hold_reason": reason, "updated_at": at}
        events.append(dbq.event_row(outcome.order_id, actor, "hold", at=at, from_value=state.status,
                                    to_value=Status.HOLD.value, message=reason,
                                    detail={"rules_version": version,
                                            "rules": [r.rule_id for r in outcome.reasons if r.kind == "hold"]}))
    update = {"b_id": outcome.order_id, "priority": outcome.priority, "tags": list(tags),
              "priority_why": outcome.why, "rules_version": version[:40], "sla_due": due, "updated_at": at}
    return Change(outcome.order_id, update, hold_row, tuple(events))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def decide(rules: RulesFile, rows: Sequence[FactRow], now: datetime) -> tuple[list[Outcome], int]:
    """Evaluate the rules for these orders (CPU-bound: call it in a thread); also how many orders
    had a rule that could not be evaluated (it counted as not matching)."""
    facts = [facts_of(row) for row in rows]
    decisions = rules.evaluate_many(facts, now)
    outcomes = [outcome_of(row, decision, rules.deadline(f))
                for row, decision, f in zip(rows, decisions, facts, strict=True)]
    return outcomes, sum(1 for d in decisions if d.errors)


def tag_texts(rules: RulesFile) -> set[str]:
    """Every tag text a rules file can give."""
    return {r.tag.text for r in rules.rules if r.kind == "tag" and r.tag is not None}


# -- the service ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RulesCheck:
    """What a look at the rules file found: new rules in force, and/or a (new) problem with it."""

    changed: bool
    error: RulesError | None
    new_error: bool  # an error not reported before (show it once)


@dataclass(frozen=True)
class Recomputed:
    """What one recompute did."""

    evaluated: int
    changed: tuple[int, ...]
    held: tuple[int, ...]
    version: str
    seconds: float
    rule_errors: int = 0


class QueueService:
    """The rules applied to the open orders; see the module docstring.

    ``get_store``: how to reach the full Store (the app's ``full_store``). ``rules_path``: the rules
    file to watch (None: the built-in defaults, nothing to watch).
    """

    def __init__(self, get_store: Callable[[], Awaitable[Store]], *, rules_path: Path | None = None,
                 clock: Callable[[], datetime] = utc_now, rules: RulesFile | None = None) -> None:
        self._get_store = get_store
        self.rules_path = rules_path
        self.watcher = RulesWatcher(rules_path, rules=rules) if rules_path is not None else None
        self.rules: RulesFile = rules or RulesFile.default()
        """The rules in force."""
        self.error: RulesError | None = None
        """Why the rules file on disk is not in force (the previous rules are), or None."""
        self.clock = clock
        self.last: Recomputed | None = None
        self.s_breaker_until: datetime | None = None
        """When the tripped S breaker ends, as last looked at (None: not tripped)."""
        self._known = tag_texts(self.rules)
        self._lock = asyncio.Lock()

    async def check_breaker(self) -> bool:
        """Look at the S breaker (a lease row every process sees); True when it changed since the
        last look (tripped, cleared, or tripped again with another end)."""
        from db.ingest import lease_holder

        store = await self._get_store()
        held = await lease_holder(store, S_BREAKER_LEASE, now=self.clock())
        until = held[1] if held is not None else None
        changed = until != self.s_breaker_until
        self.s_breaker_until = until
        return changed

    def s_breaker(self, now: datetime) -> datetime | None:
        """When the tripped S breaker ends, if it is still tripped at ``now``."""
        until = self.s_breaker_until
        return until if until is not None and now < until else None

    async def check_rules(self, *, force: bool = False) -> RulesCheck:
        """Look at the rules file (in a thread: loading compiles the conditions)."""
        if self.watcher is None:
            return RulesCheck(False, None, False)
        result = await asyncio.to_thread(self.watcher.check, force=force)
        new_error = result.error is not None and result.error is not self.error
        self.error = result.error
        if result.changed:
            self._known |= tag_texts(result.rules)
            self.rules = result.rules
            log.info("rules %s in force (%s)", result.rules.version, self.rules_path)
        elif new_error:
            log.warning("rules file rejected: %s", result.error)
        return RulesCheck(result.changed, result.error, new_error)

    async def recompute(self, ids: Collection[int] | None = None) -> Recomputed:
        """Evaluate the rules for every open order (``ids`` None) or those changes to ``ids`` affect,
        and write back what changed. One at a time: a second call waits for the first."""
        async with self._lock:
            started = time.perf_counter()
            store = await self._get_store()
            rules, now = self.rules, self.clock()
            wanted = None if ids is None else sorted(set(ids))
            if wanted is not None and not wanted:
                return Recomputed(0, (), (), rules.version, 0.0)
            rows = await dbq.read(store, dbq.fact_rows, wanted, store.dialect == "sqlite", now)
            known = frozenset(self._known)
            await self.check_breaker()
            until = self.s_breaker(now)

            def work() -> tuple[list[Outcome], int]:
                outcomes, errors = decide(rules, rows, now)
                if until is not None:
                    outcomes = [hold_back_s(o, row.priority, until) for row, o in zip(rows, outcomes, strict=True)]
                pending = [o for row, o in zip(rows, outcomes, strict=True) if differs(row, o, known)]
                return pending, errors

            pending, errors = await asyncio.to_thread(work)
            changed, held = await self._write(store, pending, known, rules.version, now)
            result = Recomputed(len(rows), tuple(changed), tuple(held), rules.version,
                                time.perf_counter() - started, errors)
            self.last = result
            if changed:
                log.info("rules %s: %d of %d open orders changed in %.2f s", rules.version, len(changed), len(rows),
                         result.seconds)
            return result

    async def _write(self, store: Store, pending: Sequence[Outcome], known: frozenset[str], version: str,
                     at: datetime) -> tuple[list[int], list[int]]:
        changed: list[int] = []
        held: list[int] = []
        for start in range(0, len(pending), WRITE_BATCH):
            batch = pending[start:start + WRITE_BATCH]
            async with store.write() as conn:
                current = await dbq.current_state(conn, [o.order_id for o in batch])
                updates, holds, events = [], [], []
                for outcome in batch:
                    state = current.get(outcome.order_id)
                    if state is None or state.status not in dbq.OPEN:
                        continue  # shipped, held or cancelled since the facts were read
                    change = plan(state, outcome, known=known, version=version, at=at)
                    if change is None:
                        continue
                    updates.append(change.update)
                    events.extend(change.events)
                    if change.hold is not None:
                        holds.append(change.hold)
                        held.append(outcome.order_id)
                    changed.append(outcome.order_id)
                await dbq.store_rule_changes(conn, updates, holds, events)
        return changed, held

    async def queue(self, ids: Sequence[int] | None = None) -> list[QueueRow]:
        """Every open order in queue order, as stored now (``ids``: those of these orders still open)."""
        store = await self._get_store()
        return await dbq.read(store, dbq.queue_rows, store.dialect == "sqlite", ids)

    async def changes(self, after: int | None) -> tuple[int, list[int] | None]:
        """The newest timeline event id and the orders changed after event ``after`` (see
        ``db.queue.changes_since``): how the queue screen follows every terminal's writes."""
        store = await self._get_store()
        return await dbq.read(store, dbq.changes_since, after)


# -- the board --------------------------------------------------------------------------------


class BoardIndex:
    """Board colours of a set of queue rows at any moment, without looking at every row.

    Each row turns yellow at ``due - yellow_hours`` (if not picked) and red at ``due - red_hours``
    (if not printed); the counts at ``now`` are binary searches in those sorted instants. The
    same colours as :func:`deskapp.services.sla.board_colour`, row for row (a unit test checks).
    Build one with :meth:`build` (optionally per group, e.g. per warehouse, in the same pass).
    """

    def __init__(self, board: BoardThresholds) -> None:
        self.board = board
        self.total = 0
        self._reds: list[float] = []  # when each unprinted order turns red
        self._yellows: list[float] = []  # when each unpicked order turns yellow (if not red)
        self._both: list[float] = []  # red instants of orders both unprinted and unpicked
        self._firsts: list[tuple[float, int, QueueRow]] = []  # when each order stops being green

    @classmethod
    def build(cls, rows: Iterable[QueueRow], board: BoardThresholds,
              group: Callable[[QueueRow], str] | None = None) -> tuple[BoardIndex, dict[str, BoardIndex]]:
        """The index of ``rows`` and, with ``group``, one per group — one pass over the rows."""
        index = cls(board)
        groups: dict[str, BoardIndex] = {}
        red_s, yellow_s = board.red_hours * 3600, board.yellow_hours * 3600
        picked_steps = (dbq.PICKED, dbq.PACKED)
        for row in rows:
            if group is None:
                targets: tuple[BoardIndex, ...] = (index,)
            else:
                key = group(row)
                sub = groups.get(key)
                if sub is None:
                    sub = groups[key] = cls(board)
                targets = (index, sub)
            for target in targets:
                target.total += 1
            due = row.due_ts
            if due is None:
                continue
            printed, picked = row.printed, row.wh_step in picked_steps
            if printed and picked:
                continue  # green whatever the time
            red = None if printed else due - red_s
            yellow = None if picked else due - yellow_s
            first = yellow if red is None else red if yellow is None or red < yellow else yellow
            for target in targets:
                if red is not None:
                    target._reds.append(red)
                    if yellow is not None:
                        target._both.append(red)
                if yellow is not None:
                    target._yellows.append(yellow)
                target._firsts.append((first, row.id, row))
        for target in (index, *groups.values()):
            target._reds.sort()
            target._yellows.sort()
            target._both.sort()
            target._firsts.sort()  # ids are unique: the row itself is never compared
        return index, groups

    def counts(self, now: datetime) -> dict[Colour, int]:
        """Orders per colour at ``now``; every colour a key; the counts add up to the total."""
        t = now.timestamp()
        red = bisect_left(self._reds, t)  # strictly before now: less than red_hours left
        yellow = bisect_left(self._yellows, t) - bisect_left(self._both, t)
        return {Colour.RED: red, Colour.YELLOW: yellow, Colour.GREEN: self.total - red - yellow}

    def urgent(self, now: datetime) -> list[QueueRow]:
        """The red and yellow orders at ``now``: red first, each colour by deadline."""
        t = now.timestamp()
        rows = [row for _, _, row in self._firsts[:bisect_left(self._firsts, (t,))]]
        return sorted(rows, key=lambda r: (colour_of(r, now, self.board) != Colour.RED, r.due_ts, r.id))


def colour_of(row: QueueRow, now: datetime, board: BoardThresholds) -> Colour:
    """One row's board colour at ``now``."""
    from deskapp.services.sla import board_colour

    return board_colour(row.due, now, printed=row.printed, picked=row.picked, board=board)


@dataclass
class Filters:
    """What the queue shows: None = everything; ``warehouse`` '' = no warehouse assigned yet."""

    warehouse: str | None = None
    channel: str | None = None
    progress: str | None = None  # paid review allocating picked packed
    tag: str | None = None

    def keep(self, row: QueueRow) -> bool:
        """Whether ``row`` passes every filter."""
        return ((self.warehouse is None or self.warehouse in (row.warehouses or ("",)))
                and (self.channel is None or row.channel == self.channel)
                and (self.progress is None or row.progress == self.progress)
                and (self.tag is None or self.tag in row.tags))

    def apply(self, rows: Iterable[QueueRow]) -> list[QueueRow]:
        """The rows that pass, in their order."""
        if self.warehouse is None and self.channel is None and self.progress is None and self.tag is None:
            return list(rows)
        return [row for row in rows if self.keep(row)]

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.warehouse, self.channel, self.progress, self.tag))


@dataclass(frozen=True)
class QueueView:
    """What the queue screen shows from one read: the filtered rows and their board, per warehouse."""

    all_rows: list[QueueRow]
    rows: list[QueueRow]  # those that pass the filters, in queue order
    index: BoardIndex  # of ``rows``
    houses: list[tuple[str, BoardIndex]]  # per first warehouse ('' = none yet), named ones first
    by_priority: dict[str, int]


def queue_view(rows: list[QueueRow], filters: Filters, board: BoardThresholds) -> QueueView:
    """Filter, count and index a read of the queue (CPU work: run it in a thread)."""
    shown = filters.apply(rows)
    index, groups = BoardIndex.build(shown, board, _first_warehouse)
    houses = [(house, groups[house]) for house in sorted(groups, key=lambda h: (h == "", h))]
    return QueueView(rows, shown, index, houses, dict(Counter(map(_priority, shown))))


_priority = attrgetter("priority")


def _first_warehouse(row: QueueRow) -> str:
    return row.warehouses[0] if row.warehouses else ""


#: The warehouse progress values, in working order.
PROGRESS: tuple[str, ...] = (Status.PAID.value, Status.REVIEW.value, Status.ALLOCATING.value, dbq.PICKED, dbq.PACKED)


@dataclass
class Choices:
    """The values each filter can take in a queue (for cycling through them)."""

    warehouses: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    progress: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


def choices(rows: Iterable[QueueRow]) -> Choices:
    """The warehouses, channels, progress values and tags present in ``rows``."""
    houses, channels, progress, tags = set(), set(), set(), set()
    for row in rows:
        houses.update(row.warehouses or ("",))
        channels.add(row.channel)
        progress.add(row.progress)
        tags.update(row.tags)
    ordered = [p for p in PROGRESS if p in progress] + sorted(progress - set(PROGRESS))
    return Choices(sorted(houses, key=lambda h: (h == "", h)), sorted(channels), ordered, sorted(tags))


def next_value(current: str | None, values: Sequence[str]) -> str | None:
    """Cycle: everything → the first value → … → the last → everything."""
    if not values:
        return None
    if current is None or current not in values:
        return values[0]
    index = values.index(current) + 1
    return values[index] if index < len(values) else None


def sort_key(row: QueueRow) -> tuple:
    """Queue order: priority, deadline (none last), id — exactly as ``db.queue.queue_rows`` sorts."""
    return (priority_rank(row.priority), row.due_ts is None, row.due_ts or 0.0, row.id)


def merge(rows: Sequence[QueueRow], fresh: Iterable[QueueRow], ids: Collection[int]) -> list[QueueRow]:
    """``rows`` (in queue order) with the orders ``ids`` replaced by their ``fresh`` rows (an order
    that left the queue has none), each put in its place: a change costs a pass, not a re-read."""
    gone = set(ids)
    kept = [row for row in rows if row.id not in gone]
    for row in fresh:
        insort(kept, row, key=sort_key)
    return kept


def row_json(row: QueueRow, now: datetime, board: BoardThresholds) -> dict:
    """One queue row for ``deskapp queue --json`` (plain values; no receiver details)."""
    left = None if row.due is None else int((row.due - now).total_seconds() // 60)
    return {
        "id": row.id, "order_no": clean_text(row.order_no), "channel": row.channel, "shop": clean_text(row.shop),
        "status": row.status, "wh_step": row.wh_step, "progress": row.progress, "priority": row.priority,
        "why": clean_text(row.why or "") or None, "sla_due": _iso(row.due), "minutes_left": left,
        "colour": str(colour_of(row, now, board)), "printed": row.printed, "picked": row.picked,
        "tags": [clean_text(t) for t in row.tags], "warehouses": [clean_text(w) for w in row.warehouses],
    }


def left_text(left: timedelta | None) -> str:
    """Time left, compact, in the interface language: '2小时13分', '超时 35分', '无期限' without a
    deadline (no ambiguous-width dash: it is two cells on some CJK terminals)."""
    from widgets.i18n import tr

    if left is None:
        return tr("q.no_due")
    overdue = left.total_seconds() < 0
    minutes = int(abs(left.total_seconds()) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        text = tr("q.dur.d", n=days) + (tr("q.dur.h", n=hours) if hours else "")
    elif hours:
        text = tr("q.dur.h", n=hours) + (tr("q.dur.m", n=mins) if mins else "")
    else:
        text = tr("q.dur.m", n=mins)
    return tr("q.overdue", t=text) if overdue else text
