"""The warehouse rules file: priorities, tags, holds and merge hints a team lead edits without code.

A TOML file (``deskapp.rules.example.toml`` at the top of the repository is the documented
example) holds four kinds of rule, each with an ``id``, a ``name`` and a condition (``when``)::

    [[priority]]                       # highest matching level wins: S > A > B > C
    id = "vip-big"
    name = "VIP 大单"
    when = 'vip_level in ["S", "A"] && amount > 5000'
    level = "S"

    [[tag]]                            # every matching tag applies
    id = "live"
    when = 'is_live'
    text = "直播"
    emoji = "📺"                        # terminals without emoji show ``plain`` (or ``text``)

    [[hold]]                           # first matching hold (file order) gives the reason
    id = "returns"
    when = 'returns_30d >= 3'
    reason = "30 天内退货 3 次以上，请人工审核"

    [[merge]]                          # first matching hint (file order)
    id = "same-address"
    when = 'orders_24h_same_address >= 3'
    hint = "同一收件人同一地址 24 小时内 3 单以上，建议合并发货"

plus ``default_priority`` (``C`` unless set), ``[vip] levels``, ``[[promotion]]`` windows and the
``[sla]`` / ``[board]`` sections read into :mod:`deskapp.services.sla`.

Conditions are `CEL <https://cel.dev>`_ (the Common Expression Language, evaluated by the Rust
``common-expression-language`` bindings): no ``eval``, no parser of ours. They see the names in
:data:`FIELDS`, computed from an :class:`OrderFacts`. Measured on ~10 rules (``bench/rules.py``),
CEL costs ~20 µs per order; ``rule-engine`` (pure Python) cost ~145 µs and ``cel-python`` ~1.7 ms,
both over the 2-second budget for re-prioritising 50,000 open orders.

Loading checks everything a team lead can get wrong and reports *all* of it at once, in Chinese
and English, naming the rule and the line (:class:`RulesError` / :class:`Problem`): TOML syntax,
unknown or missing keys, wrong types, an unknown priority level, a condition that does not parse,
names an unknown field, compares text with a number, or does not give true/false (each condition
is compiled, checked for unknown names, and tried on sample orders). Every :class:`Decision`
carries the rules-file version (a SHA-256 prefix of the file's bytes) and a :class:`Reason` per rule
that fired (rule id, name, condition text), so the card can say why an order is S.

:class:`RulesWatcher` re-reads the file when it changes on disk and keeps the last good rules when
the new file is broken, returning the problems for display. Nothing here touches the UI or the
database; evaluation is CPU work to run off the UI loop (a thread worker).
"""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from db.codes import DEFAULT_PRIORITY as _DB_DEFAULT_PRIORITY
from db.sanitize import clean_text
from deskapp.services.sla import (
    CHINA,
    DEFAULT_HOURS,
    BoardThresholds,
    Deadline,
    Promise,
    SlaPolicy,
)
from deskapp.services.sla import deadline as sla_deadline

#: Priority levels, most urgent first.
PRIORITIES: tuple[str, ...] = ("S", "A", "B", "C")
#: Sort rank of a level (S = 0); unknown levels sort last.
PRIORITY_RANK: Mapping[str, int] = MappingProxyType({p: i for i, p in enumerate(PRIORITIES)})
#: The level of an order no priority rule matched, unless the file sets ``default_priority``; new
#: orders start with it too (db.codes), so a first recompute rewrites nothing it does not decide.
DEFAULT_PRIORITY = _DB_DEFAULT_PRIORITY
#: The rule kinds, as the file's array-of-tables names.
KINDS: tuple[str, ...] = ("priority", "tag", "hold", "merge")

_KIND_ZH = {"priority": "优先级", "tag": "标签", "hold": "暂扣", "merge": "合并"}
_KIND_EN = {"priority": "priority", "tag": "tag", "hold": "hold", "merge": "merge"}


# -- what rules see ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What the rules (and the SLA) know about one order; build one per open order.

    Amounts are integers in fen; rules see ``amount`` in yuan. Times are timezone-aware UTC.
    Fields marked *new* have no column yet and default to "unknown": ``vip_level`` (the
    customer's membership level), ``is_live`` (placed in a live stream), ``presale_ship_at``
    (the presale ship date). ``promised_ship_at`` is the platform's own promise, which
    connectors store in ``orders.ship_by`` today. ``returns_30d`` and
    ``orders_24h_same_address`` (this order included) are counted by the caller's query.
    """

    channel: str
    shop: str  # the shop code
    amount_fen: int
    created_at: datetime
    paid_at: datetime | None = None
    order_id: int | None = None
    vip_level: str = ""  # new
    buyer_note: str = ""
    seller_memo: str = ""
    channel_tags: tuple[str, ...] = ()
    presale: bool = False
    presale_ship_at: datetime | None = None  # new
    promised_ship_at: datetime | None = None
    is_live: bool = False  # new
    skus: tuple[str, ...] = ()
    item_count: int = 0  # total quantity; 0 = unknown (rules then see the number of SKUs)
    province: str = ""
    city: str = ""
    warehouse: str = ""
    returns_30d: int = 0
    orders_24h_same_address: int = 1


@dataclass(frozen=True, slots=True)
class FieldDoc:
    """One name a condition can use: its CEL type and what it means."""

    name: str
    type: str
    zh: str
    en: str


#: The names conditions can use, in the order the example file lists them.
FIELDS: tuple[FieldDoc, ...] = (
    FieldDoc("channel", "string", "渠道代码：taobao pdd douyin …", "channel code: taobao pdd douyin …"),
    FieldDoc("shop", "string", "店铺代码", "shop code"),
    FieldDoc("amount", "double", "订单金额（元）", "order amount in yuan"),
    FieldDoc("amount_fen", "int", "订单金额（分）", "order amount in fen"),
    FieldDoc("vip_level", "string", "会员等级，如 \"A\"；没有为 \"\"", "membership level, e.g. \"A\"; \"\" if none"),
    FieldDoc("vip_rank", "int", "会员等级的名次：[vip] levels 第一个最高；没有为 0",
             "rank of the level: the first of [vip] levels is highest; 0 if none"),
    FieldDoc("buyer_note", "string", "买家留言", "buyer's note"),
    FieldDoc("seller_memo", "string", "卖家备注", "seller's memo"),
    FieldDoc("notes", "string", "买家留言和卖家备注合在一起", "buyer note and seller memo together"),
    FieldDoc("channel_tags", "list(string)", "平台给的标签", "tags the channel sent"),
    FieldDoc("presale", "bool", "是否预售", "is a presale order"),
    FieldDoc("is_live", "bool", "是否直播间下单", "placed in a live stream"),
    FieldDoc("skus", "list(string)", "商品编码列表", "SKU codes"),
    FieldDoc("item_count", "int", "商品件数", "number of items"),
    FieldDoc("province", "string", "收件省份", "receiver's province"),
    FieldDoc("city", "string", "收件城市", "receiver's city"),
    FieldDoc("warehouse", "string", "发货仓库", "shipping warehouse"),
    FieldDoc("returns_30d", "int", "这位顾客 30 天内的退货次数", "the customer's returns in the last 30 days"),
    FieldDoc("orders_24h_same_address", "int", "同一收件人同一地址 24 小时内的订单数（含本单）",
             "orders to the same receiver and address in 24 hours (this one included)"),
    FieldDoc("created_at", "timestamp", "下单时间", "when the order was placed"),
    FieldDoc("paid_at", "timestamp|null", "付款时间；未付款为 null", "when it was paid; null if unpaid"),
    FieldDoc("presale_ship_at", "timestamp|null", "预售发货时间", "presale ship date"),
    FieldDoc("promised_ship_at", "timestamp|null", "平台承诺的发货时间", "the platform's promised ship time"),
    FieldDoc("now", "timestamp", "现在", "now"),
    FieldDoc("hours_since_paid", "double", "付款后过了多少小时；未付款为 0", "hours since payment; 0 if unpaid"),
    FieldDoc("paid_hour", "int", "付款时刻（北京时间 0–23 点）；未付款为 -1", "hour of payment (UTC+8, 0–23); -1 if unpaid"),
    FieldDoc("promo", "string", "下单时所在的大促名称；不在大促为 \"\"", "the promotion the order was placed in; \"\" if none"),
    FieldDoc("promo_minutes_left", "double", "下单时离大促结束还有几分钟；不在大促为无穷大",
             "minutes from placing the order to the end of its promotion; infinity if none"),
)
_FIELD_NAMES = frozenset(f.name for f in FIELDS)
# Names whose value may be None: a None from the resolver falls through to these null variables.
_NULLABLE = ("paid_at", "presale_ship_at", "promised_ship_at")


@dataclass(frozen=True, slots=True)
class Promotion:
    """A promotion window (双11, 618 …); rules see which one an order was placed in."""

    id: str
    name: str
    start: datetime
    end: datetime


# -- what rules decide ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TagMark:
    """A tag a rule puts on an order: text, an optional emoji, and a plain-text fallback."""

    id: str
    text: str
    emoji: str = ""
    plain: str = ""

    def label(self, emoji: bool = True) -> str:
        """What to show: ``"📺 直播"`` where emoji render, else ``plain`` (or the text alone)."""
        if emoji and self.emoji:
            return f"{self.emoji} {self.text}"
        return self.plain or self.text


@dataclass(frozen=True, slots=True)
class Reason:
    """Why something was decided: the rule that fired, its condition, and what it gave."""

    kind: str  # priority tag hold merge
    rule_id: str
    rule_name: str
    condition_text: str
    outcome: str  # the level, tag text, hold reason or merge hint
    line: int | None = None  # of the rule in the rules file

    def text(self, language: str = "zh") -> str:
        """One line for the card, e.g. ``优先级 S ← VIP 大单（vip-big）：amount > 5000``."""
        if language == "en":
            return f"{self.kind} {self.outcome} ← {self.rule_name} ({self.rule_id}): {self.condition_text}"
        return f"{_KIND_ZH[self.kind]} {self.outcome} ← {self.rule_name}（{self.rule_id}）：{self.condition_text}"


@dataclass(frozen=True, slots=True)
class RuleFailure:
    """A rule that could not be evaluated for one order (it then counts as not matching)."""

    rule_id: str
    zh: str
    en: str

    def text(self, language: str = "zh") -> str:
        return f"{self.rule_id}: {self.en if language == 'en' else self.zh}"


@dataclass(frozen=True, slots=True)
class Decision:
    """What the rules decided for one order, and why.

    ``reasons`` lists every rule that fired: the priority rule(s) that set the level first (several
    when more than one rule of the winning level matched), then tags, holds and merge hints in
    file order. No priority reason means the level is the default.
    """

    priority: str
    tags: tuple[TagMark, ...] = ()
    hold: str | None = None  # the hold reason; None = not held
    merge_hint: str | None = None
    reasons: tuple[Reason, ...] = ()
    rules_version: str = ""
    errors: tuple[RuleFailure, ...] = ()

    @property
    def because(self) -> tuple[Reason, ...]:
        """The rules that set the priority (empty: the default level)."""
        return tuple(r for r in self.reasons if r.kind == "priority")

    @property
    def tag_texts(self) -> tuple[str, ...]:
        """The tags' texts, as they would be stored on the order."""
        return tuple(t.text for t in self.tags)

    def explain(self, language: str = "zh") -> list[str]:
        """Lines for the card: why this level (or that it is the default), then the other rules."""
        lines = [r.text(language) for r in self.reasons]
        if not self.because:
            lines.insert(0, f"优先级 {self.priority}：没有规则命中，默认级别" if language != "en"
                         else f"priority {self.priority}: no rule matched, the default level")
        return lines


def priority_rank(level: str) -> int:
    """Sort rank of a priority level: S = 0 … C = 3; anything else after C."""
    return PRIORITY_RANK.get(level, len(PRIORITIES))


_FAR = datetime.max.replace(tzinfo=UTC)


def queue_key(level: str, due: Deadline | datetime | None) -> tuple[int, datetime]:
    """The warehouse queue's order: priority first, then the earliest deadline; none last."""
    at = due.at if isinstance(due, Deadline) else due
    return priority_rank(level), at if at is not None else _FAR


# -- problems ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the rules file, in plain words (Chinese and English).

    ``section`` is the table (``priority``, ``sla.channels.douyin`` …), ``index`` the 1-based
    position of a rule in its ``[[…]]`` list, ``key`` the setting, ``rule`` the rule's id.
    """

    zh: str
    en: str
    section: str = ""
    index: int | None = None
    key: str = ""
    rule: str | None = None
    line: int | None = None
    code: str = "invalid"

    @property
    def where(self) -> str:
        """Machine-readable place: ``priority[2].when``, ``sla.hours``."""
        place = self.section + (f"[{self.index}]" if self.index is not None else "")
        return ".".join(p for p in (place, self.key) if p)

    def text(self, language: str = "zh") -> str:
        """The message with its place first: line, rule, key."""
        en = language == "en"
        parts = []
        if self.line is not None:
            parts.append(f"line {self.line}" if en else f"第 {self.line} 行")
        if self.index is not None and self.section in KINDS:
            kind = f"[[{self.section}]] #{self.index}" if en else f"[[{self.section}]] 第 {self.index} 条"
            if self.rule:
                parts.append(f"rule '{self.rule}' ({kind})" if en else f"规则「{self.rule}」（{kind}）")
            else:
                parts.append(kind)
            if self.key:
                parts.append(self.key)
        elif self.where:
            parts.append(self.where)
        message = self.en if en else self.zh
        return (" · ".join(parts) + (": " if en else "：") + message) if parts else message


class RulesError(Exception):
    """The rules file cannot be used as it is; ``problems`` lists everything wrong with it."""

    def __init__(self, problems: list[Problem], path: Path | None = None) -> None:
        super().__init__("; ".join(p.text("en") for p in problems))
        self.problems = problems
        self.path = path

    def text(self, language: str = "zh") -> str:
        """All problems, one per line, with a heading naming the file."""
        name = str(self.path) if self.path else ("rules" if language == "en" else "规则")
        head = (f"{name}: {len(self.problems)} problem(s); the previous rules stay in force"
                if language == "en" else f"{name}：有 {len(self.problems)} 处问题，仍按原来的规则执行")
        return "\n".join([head, *(f"  - {p.text(language)}" for p in self.problems)])


# -- compiled rules ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    """One compiled rule of the file."""

    kind: str
    id: str
    name: str
    when: str
    outcome: str  # level / tag text / hold reason / merge hint
    enabled: bool
    line: int | None
    reason: Reason
    program: Any = field(repr=False)  # cel.Program
    tag: TagMark | None = None
    rank: int = 0  # priority_rank of a priority rule's level (read on every evaluation)


@dataclass(frozen=True, eq=False)
class RulesFile:
    """A loaded, validated, compiled rules file. Immutable: a reload builds a new one.

    ``version`` is the first 12 hex digits of the SHA-256 of the file's bytes: the same rules
    have the same version however often the file is touched; ``modified_at`` is the file's
    modification time (for display beside the version).
    """

    version: str
    path: Path | None = None
    modified_at: datetime | None = None
    default_priority: str = DEFAULT_PRIORITY
    vip_levels: tuple[str, ...] = ()
    promotions: tuple[Promotion, ...] = ()
    rules: tuple[Rule, ...] = ()
    sla: SlaPolicy = field(default_factory=SlaPolicy)
    board: BoardThresholds = field(default_factory=BoardThresholds)
    _cache: dict = field(default_factory=dict, repr=False)

    # -- loading

    @classmethod
    def load(cls, path: str | Path) -> RulesFile:
        """Read, validate and compile a rules file; raises :class:`RulesError` listing every problem."""
        path = Path(path)
        try:
            raw = path.read_bytes()
            mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except FileNotFoundError:
            raise RulesError([Problem("找不到规则文件", "rules file not found", code="missing_file")], path) from None
        except OSError as error:
            raise RulesError([Problem(f"无法读取规则文件（{error.strerror}）",
                                      f"cannot read the rules file ({error.strerror})", code="unreadable")],
                             path) from None
        return cls.from_bytes(raw, path=path, modified_at=mtime)

    @classmethod
    def from_text(cls, text: str, *, path: Path | None = None, modified_at: datetime | None = None) -> RulesFile:
        """Rules from TOML text (tests, a file already read)."""
        return cls.from_bytes(text.encode("utf-8"), path=path, modified_at=modified_at)

    @classmethod
    def from_bytes(cls, raw: bytes, *, path: Path | None = None, modified_at: datetime | None = None) -> RulesFile:
        """Rules from the file's bytes; raises :class:`RulesError` listing every problem."""
        version = hashlib.sha256(raw).hexdigest()[:12]
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise RulesError([Problem("规则文件不是 UTF-8 编码", "the rules file is not UTF-8 text", code="encoding")],
                             path) from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise RulesError([_toml_problem(error, text)], path) from None
        reader = _Reader(text)
        parts = reader.read(data)
        if reader.problems:
            raise RulesError(reader.problems, path)
        return cls(version=version, path=path, modified_at=modified_at, **parts)

    @classmethod
    def default(cls) -> RulesFile:
        """No rules: every order at the default level, default SLA and board."""
        return cls(version="default")

    # -- looking things up

    def rule(self, rule_id: str) -> Rule | None:
        """The rule with this id, or None."""
        return next((r for r in self.rules if r.id == rule_id), None)

    @property
    def version_label(self) -> str:
        """``3f2a9c1b7d0e · 11-10 20:05`` (modification time in UTC+8) for a status line."""
        if self.modified_at is None:
            return self.version
        return f"{self.version} · {self.modified_at.astimezone(CHINA):%m-%d %H:%M}"

    def deadline(self, facts: OrderFacts) -> Deadline | None:
        """The order's ship-by deadline under this file's ``[sla]`` section."""
        return sla_deadline(facts, self.sla)

    # -- evaluating

    def evaluate(self, facts: OrderFacts, now: datetime) -> Decision:
        """Decide one order's priority, tags, hold and merge hint; ``now`` is aware UTC."""
        return self.evaluate_many((facts,), now)[0]

    def evaluate_many(self, facts: Iterable[OrderFacts], now: datetime) -> list[Decision]:
        """Decisions for many orders, in the same order (CPU-bound: run it in a thread worker).

        Thread-safe: each call has its own evaluation context. A rule that fails for an order
        (a null time compared, say) counts as not matching and is listed in ``Decision.errors``.
        """
        if now.tzinfo is None:
            raise ValueError("now must be a timezone-aware datetime")
        return _Evaluator(self, now).run(facts)

    def _compiled(self) -> tuple[tuple[Rule, ...], ...]:
        """Enabled rules by kind; priority rules most urgent first (file order within a level)."""
        plan = self._cache.get("plan")
        if plan is None:
            enabled = [r for r in self.rules if r.enabled]
            by_kind = {k: [r for r in enabled if r.kind == k] for k in KINDS}
            by_kind["priority"].sort(key=lambda r: r.rank)  # stable: file order within a level
            plan = self._cache["plan"] = tuple(tuple(by_kind[k]) for k in KINDS)
        return plan


class _Evaluator:
    """One evaluation pass: a CEL context whose variables are computed from the current order."""

    def __init__(self, rules: RulesFile, now: datetime) -> None:
        import cel  # ~0.13 s (the package imports its CLI): paid in the worker that evaluates

        self.rules = rules
        self.priority, self.tags, self.holds, self.merges = rules._compiled()
        self.now = now
        self.getters = _getters(rules, now)
        self.current: OrderFacts | None = None
        self.context = cel.Context()
        for name in _NULLABLE:
            self.context.add_variable(name, None)
        self.context.set_variable_resolver(self._resolve)
        self.decisions: dict[tuple, Decision] = rules._cache.setdefault("decisions", {})
        # A rule broken by the data (a null time compared) fails the same way on thousands of
        # orders: explain each distinct failure once.
        self.failures: dict[tuple[str, str], RuleFailure] = {}

    def _resolve(self, name: str) -> Any:
        getter = self.getters.get(name)
        return None if getter is None else getter(self.current)

    def _test(self, rule: Rule, errors: list[RuleFailure]) -> bool:
        try:
            hit = rule.program.execute(self.context)
        except Exception as error:  # noqa: BLE001 - any failure of one rule on one order is reported, not raised
            key = (rule.id, f"{type(error).__name__}: {error}")
            failure = self.failures.get(key)
            if failure is None:
                failure = self.failures[key] = RuleFailure(rule.id, *_runtime_message(error, rule.when))
            errors.append(failure)
            return False
        if hit is True or hit is False:
            return hit
        zh, en = _cel_type(hit)
        errors.append(RuleFailure(rule.id, f"条件的结果应为 true 或 false，得到的是{zh}",
                                  f"the condition should give true or false, it gave {en}"))
        return False

    def run(self, facts: Iterable[OrderFacts]) -> list[Decision]:
        out = []
        test = self._test
        for order in facts:
            self.current = order
            errors: list[RuleFailure] = []
            fired: list[Rule] = []
            best = None
            for rule in self.priority:
                if best is not None and rule.rank > best:
                    break  # a lower level can no longer win
                if test(rule, errors):
                    best = rule.rank
                    fired.append(rule)
            for group in (self.tags, self.holds, self.merges):
                for rule in group:
                    if test(rule, errors):
                        fired.append(rule)
            out.append(self._decision(tuple(fired), tuple(errors)))
        self.current = None
        return out

    def _decision(self, fired: tuple[Rule, ...], errors: tuple[RuleFailure, ...]) -> Decision:
        key = tuple(id(r) for r in fired)
        if not errors:
            known = self.decisions.get(key)
            if known is not None:
                return known  # decisions are immutable: orders that fired the same rules share one
        level = self.rules.default_priority
        tags: list[TagMark] = []
        hold = merge = None
        for rule in fired:
            if rule.kind == "priority":
                level = rule.outcome
            elif rule.kind == "tag" and rule.tag is not None and rule.tag.text not in {t.text for t in tags}:
                tags.append(rule.tag)
            elif rule.kind == "hold" and hold is None:
                hold = rule.outcome
            elif rule.kind == "merge" and merge is None:
                merge = rule.outcome
        decision = Decision(level, tuple(tags), hold, merge, tuple(r.reason for r in fired),
                            self.rules.version, errors)
        if not errors and len(self.decisions) < 10_000:
            self.decisions[key] = decision
        return decision


def _getters(rules: RulesFile, now: datetime) -> dict[str, Callable[[OrderFacts], Any]]:
    """How each name in :data:`FIELDS` is computed from an order, at ``now``."""
    ranks = {level: len(rules.vip_levels) - i for i, level in enumerate(rules.vip_levels)}
    promotions = rules.promotions

    def promo(f: OrderFacts) -> Promotion | None:
        current = [p for p in promotions if p.start <= f.created_at < p.end]
        return min(current, key=lambda p: p.end) if current else None

    def promo_left(f: OrderFacts) -> float:
        p = promo(f)
        return math.inf if p is None else (p.end - f.created_at).total_seconds() / 60

    def since_paid(f: OrderFacts) -> float:
        return 0.0 if f.paid_at is None else (now - f.paid_at).total_seconds() / 3600

    getters: dict[str, Callable[[OrderFacts], Any]] = {
        "channel": lambda f: f.channel,
        "shop": lambda f: f.shop,
        "amount": lambda f: f.amount_fen / 100,
        "amount_fen": lambda f: f.amount_fen,
        "vip_level": lambda f: f.vip_level,
        "vip_rank": lambda f: ranks.get(f.vip_level, 0),
        "buyer_note": lambda f: f.buyer_note,
        "seller_memo": lambda f: f.seller_memo,
        "notes": lambda f: f"{f.buyer_note}\n{f.seller_memo}",
        "channel_tags": lambda f: f.channel_tags,
        "presale": lambda f: f.presale,
        "is_live": lambda f: f.is_live,
        "skus": lambda f: f.skus,
        "item_count": lambda f: f.item_count or len(f.skus),
        "province": lambda f: f.province,
        "city": lambda f: f.city,
        "warehouse": lambda f: f.warehouse,
        "returns_30d": lambda f: f.returns_30d,
        "orders_24h_same_address": lambda f: f.orders_24h_same_address,
        "created_at": lambda f: f.created_at,
        "paid_at": lambda f: f.paid_at,
        "presale_ship_at": lambda f: f.presale_ship_at,
        "promised_ship_at": lambda f: f.promised_ship_at,
        "now": lambda f: now,
        "hours_since_paid": since_paid,
        "paid_hour": lambda f: -1 if f.paid_at is None else f.paid_at.astimezone(CHINA).hour,
        "promo": lambda f: "" if (p := promo(f)) is None else p.name,
        "promo_minutes_left": promo_left,
    }
    return getters


# -- reading the file -------------------------------------------------------------------------

_TOP_KEYS = ("default_priority", "vip", "promotion", *KINDS, "sla", "board")
_COMMON_RULE_KEYS = ("id", "name", "when", "enabled", "comment")
_RULE_KEYS = {
    "priority": (*_COMMON_RULE_KEYS, "level"),
    "tag": (*_COMMON_RULE_KEYS, "text", "emoji", "plain"),
    "hold": (*_COMMON_RULE_KEYS, "reason"),
    "merge": (*_COMMON_RULE_KEYS, "hint"),
}
_OUTCOME_KEY = {"priority": "level", "tag": "text", "hold": "reason", "merge": "hint"}
_PROMISE_KEYS = ("hours", "platform_promise")
_MAX_HOURS = 24 * 60  # a promise longer than 60 days is a typo


class _Lines:
    """Where things are in the file's text, for messages: the line of each ``[[kind]]`` entry and of
    each key in it, and of each key under a ``[table]``. A line scan, not a parser: TOML was
    already parsed by tomllib; this only finds line numbers for the usual one-key-a-line layout."""

    _ARRAY = re.compile(r"^\s*\[\[\s*([^\]]+?)\s*\]\]")
    _TABLE = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_-]+|\"[^\"]*\")\s*=")

    def __init__(self, text: str) -> None:
        self.entries: dict[tuple[str, int], int] = {}
        self.keys: dict[tuple[str, int | None, str], int] = {}
        counts: dict[str, int] = {}
        section, index = "", None
        in_string = None
        for number, line in enumerate(text.splitlines(), 1):
            if in_string is not None:
                if line.count(in_string) % 2:
                    in_string = None
                continue
            if m := self._ARRAY.match(line):
                section = m.group(1).replace(" ", "")
                index = counts[section] = counts.get(section, 0) + 1
                self.entries[(section, index)] = number
            elif m := self._TABLE.match(line):
                section, index = m.group(1).replace(" ", "").replace('"', ""), None
            elif m := self._KEY.match(line):
                self.keys.setdefault((section, index, m.group(1).strip('"')), number)
                for quote in ("'''", '"""'):
                    if line.count(quote) % 2:
                        in_string = quote

    def of(self, section: str, index: int | None = None, key: str = "") -> int | None:
        if key and (found := self.keys.get((section, index, key))) is not None:
            return found
        return self.entries.get((section, index)) if index is not None else None


class _Reader:
    """Walks the parsed TOML once, building typed objects and collecting every problem."""

    def __init__(self, text: str) -> None:
        self.lines = _Lines(text)
        self.problems: list[Problem] = []
        self.trial: _Evaluator | None = None  # tries each condition on sample orders

    def problem(self, zh: str, en: str, *, section: str = "", index: int | None = None, key: str = "",
                rule: str | None = None, code: str = "invalid") -> None:
        # Messages quote the file (keys, ids, conditions): clean them like any text from outside.
        line = self.lines.of(section, index, key)
        self.problems.append(Problem(clean_text(zh, multiline=True), clean_text(en, multiline=True),
                                     clean_text(section), index, clean_text(key), clean_text(rule) or rule, line,
                                     code))

    def unknown_keys(self, table: Mapping, allowed: Iterable[str], *, section: str, index: int | None = None,
                     rule: str | None = None) -> None:
        allowed = tuple(allowed)
        for key in table:
            if key in allowed:
                continue
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint_zh = f"，是不是「{close[0]}」？" if close else f"；可用的设置：{'、'.join(allowed)}"
            hint_en = f" — did you mean '{close[0]}'?" if close else f"; allowed: {', '.join(allowed)}"
            self.problem(f"未知的设置「{key}」{hint_zh}", f"unknown setting '{key}'{hint_en}",
                         section=section, index=index, key=key, rule=rule, code="unknown_key")

    # -- values

    def text(self, table: Mapping, key: str, *, default: str | None = None, required: bool = False,
             **where: Any) -> str | None:
        if key not in table:
            if required:
                self.problem(f"缺少「{key}」", f"'{key}' is missing", key=key, code="missing", **where)
            return default
        value = table[key]
        if not isinstance(value, str):
            self.problem("应为文字（用引号括起来）", "should be text (in quotes)", key=key, code="type", **where)
            return default
        if required and not value.strip():
            self.problem(f"「{key}」不能为空", f"'{key}' must not be empty", key=key, code="empty", **where)
            return default
        return value

    def flag(self, table: Mapping, key: str, default: bool | None, **where: Any) -> bool | None:
        value = table.get(key, default)
        if value is not None and not isinstance(value, bool):
            self.problem("应为 true 或 false（不加引号）", "should be true or false (no quotes)", key=key,
                         code="type", **where)
            return default
        return value

    def hours(self, table: Mapping, key: str, default: float | None, *, low: float = 0, high: float = _MAX_HOURS,
              allow_zero: bool = False, **where: Any) -> float | None:
        if key not in table:
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem("应为数字（小时，不加引号）", "should be a number of hours (no quotes)", key=key,
                         code="type", **where)
            return default
        if not (low <= value <= high) or (value == low and not allow_zero):
            edge = "大于" if not allow_zero else "不小于"
            self.problem(f"{value:g} 超出范围：应{edge} {low:g} 且不大于 {high:g} 小时",
                         f"{value:g} is out of range: it should be {'over' if not allow_zero else 'at least'} "
                         f"{low:g} and at most {high:g} hours", key=key, code="out_of_range", **where)
            return default
        return float(value)

    # -- sections

    def read(self, data: Mapping[str, Any]) -> dict[str, Any]:
        self.unknown_keys(data, _TOP_KEYS, section="")
        default = data.get("default_priority", DEFAULT_PRIORITY)
        if default not in PRIORITIES:
            self.problem(*_level_message(default), key="default_priority", code="unknown_priority")
            default = DEFAULT_PRIORITY
        vip_levels = self.vip(data.get("vip", {}))
        promotions = self.promotions(data.get("promotion", []))
        rules: list[Rule] = []
        seen: dict[str, tuple[str, int]] = {}
        for kind in KINDS:
            entries = data.get(kind, [])
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                self.problem(f"规则要写成 [[{kind}]] 表（每条规则一段）",
                             f"rules are written as [[{kind}]] tables (one per rule)", key=kind, code="type")
                continue
            for index, entry in enumerate(entries, 1):
                rule = self.rule(kind, index, entry)
                if rule is None:
                    continue
                if rule.id in seen:
                    other_kind, other_index = seen[rule.id]
                    self.problem(f"规则 id「{rule.id}」重复（[[{other_kind}]] 第 {other_index} 条已经用过）",
                                 f"rule id '{rule.id}' is used twice (also [[{other_kind}]] #{other_index})",
                                 section=kind, index=index, key="id", rule=rule.id, code="duplicate_id")
                    continue
                seen[rule.id] = (kind, index)
                rules.append(rule)
        sla = self.sla(data.get("sla", {}))
        board = self.board(data.get("board", {}))
        return {"default_priority": default, "vip_levels": vip_levels, "promotions": promotions,
                "rules": tuple(rules), "sla": sla, "board": board}

    def vip(self, table: Any) -> tuple[str, ...]:
        if not isinstance(table, dict):
            self.problem("应写成 [vip] 表", "should be a [vip] table", key="vip", code="type")
            return ()
        self.unknown_keys(table, ("levels",), section="vip")
        levels = table.get("levels", [])
        if not isinstance(levels, list) or not all(isinstance(x, str) and x.strip() for x in levels):
            self.problem('应为文字列表，最高的等级写在最前面，如 ["S", "A", "B"]',
                         'should be a list of level names, highest first, e.g. ["S", "A", "B"]',
                         section="vip", key="levels", code="type")
            return ()
        if len(set(levels)) != len(levels):
            self.problem("等级重复", "a level is listed twice", section="vip", key="levels", code="duplicate")
        return tuple(levels)

    def promotions(self, entries: Any) -> tuple[Promotion, ...]:
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            self.problem("大促要写成 [[promotion]] 表", "promotions are written as [[promotion]] tables",
                         key="promotion", code="type")
            return ()
        found = []
        for index, entry in enumerate(entries, 1):
            where = {"section": "promotion", "index": index}
            self.unknown_keys(entry, ("id", "name", "start", "end"), **where)
            pid = self.text(entry, "id", required=True, **where)
            name = self.text(entry, "name", default=pid, **where)
            start = self.moment(entry, "start", **where)
            end = self.moment(entry, "end", **where)
            if start and end and start >= end:
                self.problem("结束时间应晚于开始时间", "end should be after start", key="end", code="order", **where)
            elif pid and start and end:
                found.append(Promotion(pid, clean_text(name or pid), start, end))
        return tuple(found)

    def moment(self, table: Mapping, key: str, **where: Any) -> datetime | None:
        """A TOML date-time (with or without offset; without = China time) or a date (00:00 China)."""
        if key not in table:
            self.problem(f"缺少「{key}」", f"'{key}' is missing", key=key, code="missing", **where)
            return None
        value = table[key]
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                pass
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=CHINA)).astimezone(UTC)
        if isinstance(value, date):
            return datetime.combine(value, time(), CHINA).astimezone(UTC)
        self.problem("应为时间，如 2026-11-11T00:00:00+08:00（不带时区按北京时间）",
                     "should be a date-time, e.g. 2026-11-11T00:00:00+08:00 (no offset = China time)",
                     key=key, code="type", **where)
        return None

    def rule(self, kind: str, index: int, entry: Mapping[str, Any]) -> Rule | None:
        raw_id = entry.get("id")
        rule_id = raw_id.strip() if isinstance(raw_id, str) and raw_id.strip() else None
        where = {"section": kind, "index": index, "rule": rule_id}
        before = len(self.problems)
        self.unknown_keys(entry, _RULE_KEYS[kind], **where)
        self.text(entry, "id", required=True, **where)
        name = self.text(entry, "name", default=rule_id, **where) or rule_id or ""
        self.text(entry, "comment", **where)
        enabled = self.flag(entry, "enabled", True, **where)
        when = self.text(entry, "when", required=True, **where)
        outcome_key = _OUTCOME_KEY[kind]
        outcome = self.text(entry, outcome_key, required=True, **where)
        if kind == "priority" and outcome is not None and outcome not in PRIORITIES:
            self.problem(*_level_message(outcome), key="level", code="unknown_priority", **where)
            outcome = None
        tag = None
        if kind == "tag":
            emoji = self.text(entry, "emoji", default="", **where) or ""
            plain = self.text(entry, "plain", default="", **where) or ""
            if outcome is not None and rule_id is not None:
                tag = TagMark(rule_id, clean_text(outcome.strip()), clean_text(emoji.strip()), clean_text(plain.strip()))
        program = self.condition(when, section=kind, index=index, rule=rule_id) if when is not None else None
        if len(self.problems) > before or rule_id is None or program is None or outcome is None:
            return None
        line = self.lines.of(kind, index)
        shown_when = clean_text(" ".join(when.split()))
        shown_outcome = tag.text if tag is not None else clean_text(outcome.strip())
        reason = Reason(kind, rule_id, clean_text(name), shown_when, shown_outcome, line)
        rank = priority_rank(outcome) if kind == "priority" else 0
        return Rule(kind, rule_id, clean_text(name), when, shown_outcome, bool(enabled), line, reason, program, tag,
                    rank)

    def condition(self, when: str, **where: Any) -> Any:
        """Compile a condition, check its names, and try it on sample orders; None if it is unusable."""
        import cel

        key = {"key": "when", **where}
        try:
            program = cel.compile(when)
        except ValueError as error:
            self.problem(*_syntax_message(str(error), when), code="syntax", **key)
            return None
        bound = set(_BINDER.findall(_STRINGS.sub('""', when)))
        unknown = [n for n in program.variables() if n not in _FIELD_NAMES and n not in bound]
        for name in unknown:
            self.problem(*_unknown_field_message(name), code="unknown_field", **key)
        if unknown:
            return None
        if self.trial is None:
            self.trial = _Evaluator(RulesFile.default(), _SAMPLE_NOW)
        evaluator = self.trial
        for sample in _samples():
            evaluator.current = sample
            try:
                result = program.execute(evaluator.context)
            except Exception as error:  # noqa: BLE001 - every failure is a problem to report
                self.problem(*_runtime_message(error, when), code="evaluation", **key)
                return None
            if not isinstance(result, bool):
                zh, en = _cel_type(result)
                self.problem(f"条件的结果应为 true 或 false，现在得到的是{zh}（是不是少了比较，如 amount > 5000？）",
                             f"the condition should give true or false, it gives {en} "
                             "(a comparison missing, like amount > 5000?)", code="not_boolean", **key)
                return None
        return program

    def sla(self, table: Any) -> SlaPolicy:
        if not isinstance(table, dict):
            self.problem("应写成 [sla] 表", "should be an [sla] table", key="sla", code="type")
            return SlaPolicy()
        self.unknown_keys(table, (*_PROMISE_KEYS, "channels"), section="sla")
        hours = self.hours(table, "hours", DEFAULT_HOURS, section="sla")
        platform = self.flag(table, "platform_promise", True, section="sla")
        channels: dict[str, Promise] = {}
        shops: dict[tuple[str, str], Promise] = {}
        entries = table.get("channels", {})
        if not isinstance(entries, dict):
            self.problem("应写成 [sla.channels.渠道代码] 表", "should be [sla.channels.<code>] tables",
                         section="sla", key="channels", code="type")
            entries = {}
        for code, promise in entries.items():
            section = f"sla.channels.{code}"
            if not isinstance(promise, dict):
                self.problem("应写成表，如 [sla.channels.douyin] 下写 hours = 24",
                             "should be a table, e.g. hours = 24 under [sla.channels.douyin]",
                             section="sla.channels", key=code, code="type")
                continue
            self.unknown_keys(promise, (*_PROMISE_KEYS, "shops"), section=section)
            channels[code] = Promise(self.hours(promise, "hours", None, section=section),
                                     self.flag(promise, "platform_promise", None, section=section))
            shop_entries = promise.get("shops", {})
            if not isinstance(shop_entries, dict):
                self.problem(f"应写成 [{section}.shops.店铺代码] 表", f"should be [{section}.shops.<code>] tables",
                             section=section, key="shops", code="type")
                continue
            for shop, shop_promise in shop_entries.items():
                shop_section = f"{section}.shops.{shop}"
                if not isinstance(shop_promise, dict):
                    self.problem("应写成表，下面写 hours = 24", "should be a table with hours = 24 under it",
                                 section=f"{section}.shops", key=shop, code="type")
                    continue
                self.unknown_keys(shop_promise, _PROMISE_KEYS, section=shop_section)
                shops[(code, shop)] = Promise(self.hours(shop_promise, "hours", None, section=shop_section),
                                              self.flag(shop_promise, "platform_promise", None, section=shop_section))
        return SlaPolicy(hours or DEFAULT_HOURS, True if platform is None else platform,
                         MappingProxyType(channels), MappingProxyType(shops))

    def board(self, table: Any) -> BoardThresholds:
        if not isinstance(table, dict):
            self.problem("应写成 [board] 表", "should be a [board] table", key="board", code="type")
            return BoardThresholds()
        self.unknown_keys(table, ("red_hours", "yellow_hours"), section="board")
        default = BoardThresholds()
        red = self.hours(table, "red_hours", default.red_hours, allow_zero=True, section="board")
        yellow = self.hours(table, "yellow_hours", default.yellow_hours, allow_zero=True, section="board")
        if red is not None and yellow is not None and red > yellow:
            self.problem(f"red_hours（{red:g}）不应大于 yellow_hours（{yellow:g}）",
                         f"red_hours ({red:g}) should not be more than yellow_hours ({yellow:g})",
                         section="board", key="red_hours", code="order")
        return BoardThresholds(red if red is not None else default.red_hours,
                               yellow if yellow is not None else default.yellow_hours)


# -- plain-language messages ------------------------------------------------------------------

# A quoted CEL string (so words inside quotes are not mistaken for operators or binders).
_STRINGS = re.compile(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"")
# The variable a comprehension macro binds: tags.exists(t, t == "直播") binds t.
_BINDER = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
_CEL_POSITION = re.compile(r"<input>:(\d+):(\d+): Syntax error: ([^\n]*)")
_UNDEFINED = re.compile(r"Undefined variable or function: '([^']+)'")
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def _level_message(value: object) -> tuple[str, str]:
    shown = value if isinstance(value, str) else repr(value)
    return (f"未知的优先级「{shown}」，应为 {'、'.join(PRIORITIES)} 之一（S 最急）",
            f"unknown priority '{shown}': it should be one of {', '.join(PRIORITIES)} (S is the most urgent)")


def _unknown_field_message(name: str) -> tuple[str, str]:
    close = difflib.get_close_matches(name, sorted(_FIELD_NAMES), n=1, cutoff=0.6)
    if close:
        return (f"条件里用了未知的字段「{name}」，是不是「{close[0]}」？",
                f"the condition uses an unknown field '{name}' — did you mean '{close[0]}'?")
    names = "、".join(f.name for f in FIELDS)
    return (f"条件里用了未知的字段「{name}」；可用的字段：{names}（文字要用引号括起来）",
            f"the condition uses an unknown field '{name}'; fields: {', '.join(f.name for f in FIELDS)} (text goes in quotes)")


def _hints(when: str) -> tuple[list[str], list[str]]:
    """Common slips in a condition, as hints in both languages."""
    bare = _STRINGS.sub('""', when)
    zh, en = [], []
    if re.search(r"\b(and|or|not)\b", bare):
        zh.append("“并且”写 &&，“或者”写 ||，“不是”写 !")
        en.append("write && for and, || for or, ! for not")
    if re.search(r"(?<![=!<>])=(?!=)", bare):
        zh.append("比较相等写 ==（两个等号）")
        en.append("compare with == (two equals signs)")
    if re.search(r"[“”‘’≥≤＞＜＝（）！，：]", when):
        zh.append("请用英文半角符号：引号 \" \"、>= <= == ( ) !")
        en.append("use ASCII symbols: quotes \" \", >= <= == ( ) !")
    if re.search(r"""(?:==|!=|>=|<=|>|<)\s*["']-?\d+(?:\.\d+)?["']""", when):
        zh.append("数字不要加引号，如 amount > 5000")
        en.append("numbers go without quotes, e.g. amount > 5000")
    if re.search(r"""["'][^"']*["']\s+in\s+(notes|buyer_note|seller_memo|city|province|channel|shop)\b""", when):
        zh.append("文字里是否包含某个词请写 notes.contains(\"加急\")")
        en.append('to test whether text contains a word write notes.contains("加急")')
    return zh, en


def _syntax_message(error: str, when: str) -> tuple[str, str]:
    found = _CEL_POSITION.search(error)
    snippet = [line for line in error.splitlines() if line.startswith("|")][:2]
    hints_zh, hints_en = _hints(when)
    where_zh = where_en = ""
    detail = ""
    if found:
        line, column, detail = int(found.group(1)), int(found.group(2)), found.group(3)
        detail = detail.split(" expecting ")[0]
        where_zh = f"（条件第 {line} 行第 {column} 个字符附近）" if line > 1 else f"（第 {column} 个字符附近）"
        where_en = f" (condition line {line}, column {column})" if line > 1 else f" (near column {column})"
    shown = "\n".join("    " + line for line in snippet)
    zh = f"条件写法有误{where_zh}" + (f"：{'；'.join(hints_zh)}" if hints_zh else "") + (f"\n{shown}" if shown else "")
    en = f"the condition does not parse{where_en}: {detail or 'syntax error'}" + (
        f"; {'; '.join(hints_en)}" if hints_en else "") + (f"\n{shown}" if shown else "")
    return zh, en


def _runtime_message(error: Exception, when: str) -> tuple[str, str]:
    text = str(error)
    if (found := _UNDEFINED.search(text)) is not None:
        name = found.group(1)
        if name in _FIELD_NAMES:  # a field used as a function, e.g. amount()
            return (f"「{name}」是字段，不是函数", f"'{name}' is a field, not a function")
        return (f"不支持的函数或字段「{name}」", f"unsupported function or field '{name}'")
    if isinstance(error, TypeError):
        hints_zh, hints_en = _hints(when)
        if "Unsupported operation" in text:
            hints_zh.append("整数和小数不能直接混算，请写成小数，如 amount + 1.0")
            hints_en.append("int and double do not mix in arithmetic: write amount + 1.0")
        hints_zh.append("文字要加引号，数字不加引号；null（空）的时间不能比较")
        hints_en.append("text goes in quotes, numbers without; a null time cannot be compared")
        return (f"类型不匹配：{'；'.join(hints_zh)}", f"type mismatch: {'; '.join(hints_en)}")
    if isinstance(error, ZeroDivisionError):
        return ("除以零", "division by zero")
    return (f"计算出错：{text}", f"evaluation failed: {text}")


def _cel_type(value: object) -> tuple[str, str]:
    """The CEL type of a value, in words (zh, en)."""
    if value is None:
        return "null（空）", "null"
    zh, en = {str: ("文字", "text (string)"), int: ("整数", "a whole number (int)"),
              float: ("数字", "a number (double)"), list: ("列表", "a list"), dict: ("映射", "a map")}.get(
        type(value), (type(value).__name__, type(value).__name__))
    return zh, en


def _toml_problem(error: tomllib.TOMLDecodeError, text: str) -> Problem:
    message = str(error)
    found = _TOML_POSITION.search(message)
    line = int(found.group(1)) if found else None
    bare = _TOML_POSITION.sub("", message).strip()
    table = {
        "Invalid value": "值的写法有误：文字要用引号括起来，条件请用单引号，如 when = 'amount > 5000'",
        "Unterminated string": "引号没有配对（少了结尾的引号）",
        "Expected '=' after a key in a key/value pair": "缺少「=」：每一行写成 名字 = 值",
        "Cannot overwrite a value": "同一个设置写了两次",
        "Expected newline or end of document after a statement":
            "一行只能写一个设置；条件整体要用单引号括起来，如 when = 'a && b'",
        "Unclosed array": "方括号 [ ] 没有配对",
    }
    zh = next((v for k, v in table.items() if bare.startswith(k)), None)
    if zh is None:
        zh = "同一个表写了两次" if bare.startswith("Cannot declare") else "TOML 格式错误"
    shown = ""
    if line is not None:
        lines = text.splitlines()
        if 0 < line <= len(lines):
            shown = clean_text(lines[line - 1].strip())[:120]
    return Problem(zh + (f"\n  {shown}" if shown else ""), f"not valid TOML: {bare}" + (f"\n  {shown}" if shown else ""),
                   line=line, code="toml")


# Sample orders every condition is tried on at load time: every field set (so nothing is null by
# accident), once with every flag true and once false (so both sides of && and || are evaluated).
_SAMPLE_NOW = datetime(2026, 11, 11, 12, tzinfo=UTC)


def _samples() -> tuple[OrderFacts, ...]:
    base = {
        "channel": "taobao", "shop": "tb-main", "amount_fen": 12345, "created_at": _SAMPLE_NOW - timedelta(hours=2),
        "paid_at": _SAMPLE_NOW - timedelta(hours=1), "vip_level": "A", "buyer_note": "加急", "seller_memo": "备注",
        "channel_tags": ("直播",), "presale_ship_at": _SAMPLE_NOW + timedelta(days=3),
        "promised_ship_at": _SAMPLE_NOW + timedelta(hours=20), "skus": ("SKU-1",), "item_count": 2,
        "province": "浙江省", "city": "杭州市", "warehouse": "杭州仓", "returns_30d": 1, "orders_24h_same_address": 2,
    }
    return (OrderFacts(**base, presale=True, is_live=True), OrderFacts(**base, presale=False, is_live=False))


# -- watching the file ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reload:
    """What a :meth:`RulesWatcher.check` found.

    ``changed``: new rules are in force (re-prioritise the open orders). ``rules``: the rules in
    force now. ``error``: why the file on disk is not in force (the previous rules are kept);
    None when the file in force is the file on disk.
    """

    changed: bool
    rules: RulesFile
    error: RulesError | None = None


class RulesWatcher:
    """Re-reads a rules file when it changes; keeps the last good rules while the file is broken.

    Call :meth:`check` on an interval (every second, say, from a thread worker: loading compiles
    the conditions). A change is noticed by modification time, size or inode (an editor that
    saves by renaming a new file); a file whose bytes did not change (touched) is not reloaded.
    Until a file has loaded, the rules are :meth:`RulesFile.default`.
    """

    def __init__(self, path: str | Path, *, rules: RulesFile | None = None) -> None:
        self.path = Path(path)
        self._rules = rules or RulesFile.default()
        self._error: RulesError | None = None
        self._stat: tuple[int, int, int] | None = None

    @property
    def rules(self) -> RulesFile:
        """The rules in force."""
        return self._rules

    @property
    def error(self) -> RulesError | None:
        """Why the file on disk is not in force, or None."""
        return self._error

    def check(self, *, force: bool = False) -> Reload:
        """Load the file if it changed since the last check (or if ``force``)."""
        try:
            st = os.stat(self.path)
            stat = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stat = None
        if stat is not None and stat == self._stat and not force:
            return Reload(False, self._rules, self._error)
        self._stat = stat
        try:
            rules = RulesFile.load(self.path)
        except RulesError as error:
            self._error = error
            return Reload(False, self._rules, error)
        self._error = None
        if rules.version == self._rules.version and not force:
            return Reload(False, self._rules)
        self._rules = rules
        return Reload(True, rules)
