"""The warehouse rules file: what each kind of rule decides, which wins, why, and what a team lead
is told when the file is wrong — while the previous rules keep working."""

from __future__ import annotations

import hashlib
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deskapp.services.rules import (
    DEFAULT_PRIORITY,
    OrderFacts,
    RulesError,
    RulesFile,
    RulesWatcher,
    queue_key,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deskapp.rules.example.toml"
NOW = datetime(2026, 11, 11, 12, tzinfo=UTC)  # 20:00 in China, inside the example's 双11 window
PROMO_END = datetime(2026, 11, 11, 16, tzinfo=UTC)  # 2026-11-12 00:00 China time


def order(**changes: object) -> OrderFacts:
    """A plain paid order no example rule matches; tests change what they are about."""
    values: dict = {"channel": "taobao", "shop": "tb-main", "amount_fen": 9900, "created_at": NOW - timedelta(hours=3),
                    "paid_at": NOW - timedelta(hours=3)}
    values.update(changes)
    return OrderFacts(**values)


@pytest.fixture(scope="module")
def example() -> RulesFile:
    return RulesFile.load(EXAMPLE)


def problems_of(text: str) -> list:
    with pytest.raises(RulesError) as caught:
        RulesFile.from_text(text)
    return caught.value.problems


# -- the example file --------------------------------------------------------------------------


def test_the_example_file_loads_with_its_version_from_the_content(example: RulesFile) -> None:
    assert example.version == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()[:12]
    assert {r.kind for r in example.rules} == {"priority", "tag", "hold", "merge"}
    assert len(example.rules) == 10
    assert example.version in example.version_label


def test_an_order_no_rule_matches_gets_the_default_level_and_says_so(example: RulesFile) -> None:
    decision = example.evaluate(order(), NOW)
    assert decision.priority == DEFAULT_PRIORITY == "C"
    assert (decision.tags, decision.hold, decision.merge_hint, decision.reasons) == ((), None, None, ())
    assert "默认" in decision.explain()[0]
    assert "default" in decision.explain("en")[0]


def test_every_documented_field_can_be_used_and_is_in_the_example_file() -> None:
    from deskapp.services.rules import FIELDS

    names = [f.name for f in FIELDS]
    rules = RulesFile.from_text(f"[[tag]]\nid = \"all\"\ntext = \"全\"\nwhen = 'size([{', '.join(names)}]) > 0'\n")
    assert rules.evaluate(order(), NOW).tag_texts == ("全",)
    documented = EXAMPLE.read_text(encoding="utf-8")
    assert [n for n in names if n not in documented] == []


# -- each kind of rule -------------------------------------------------------------------------


def test_vip_big_order_is_s_and_the_card_can_say_why(example: RulesFile) -> None:
    decision = example.evaluate(order(vip_level="A", amount_fen=600_000), NOW)
    assert decision.priority == "S"
    (why,) = decision.because
    assert (why.rule_id, why.rule_name) == ("vip-big", "VIP 大单")
    assert why.condition_text == 'vip_level in ["S", "A"] && amount > 5000'
    assert why.line is not None and "vip-big" in EXAMPLE.read_text().splitlines()[why.line]
    assert decision.rules_version == example.version
    assert "VIP 大单" in decision.explain()[0] and "amount > 5000" in decision.explain()[0]


@pytest.mark.parametrize(
    ("changes", "level"),
    [
        pytest.param({"vip_level": "B", "amount_fen": 600_000}, "B", id="VIP below A: only the big-order rule"),
        pytest.param({"vip_level": "A", "amount_fen": 500_000}, "B", id="exactly 5000 yuan is not over 5000"),
        pytest.param({"buyer_note": "麻烦加急，谢谢"}, "A", id="加急 in the buyer note"),
        pytest.param({"seller_memo": "客户要求加急"}, "A", id="加急 in the seller memo"),
        pytest.param({"skus": ("SKU-1", "FRESH-MILK")}, "A", id="a fresh SKU"),
        pytest.param({"is_live": True, "created_at": PROMO_END - timedelta(minutes=8)}, "B",
                     id="live order in the promotion's last 10 minutes"),
        pytest.param({"is_live": True, "created_at": PROMO_END - timedelta(minutes=30)}, "C",
                     id="live order 30 minutes before the end"),
        pytest.param({"is_live": False, "created_at": PROMO_END - timedelta(minutes=8)}, "C",
                     id="not live, last 10 minutes"),
        pytest.param({"is_live": True, "created_at": PROMO_END + timedelta(minutes=5)}, "C",
                     id="live, after the promotion"),
    ],
)
def test_priority_rules(example: RulesFile, changes: dict, level: str) -> None:
    assert example.evaluate(order(**changes), NOW).priority == level


def test_the_highest_level_wins_over_file_order(example: RulesFile) -> None:
    # matches urgent-note (A), big-order (B) and vip-big (S); vip-big is first in the file but
    # also the highest: reorder so a lower rule comes first and the S still wins
    text = EXAMPLE.read_text(encoding="utf-8")
    vip, rest = text.split('[[priority]]\nid = "fresh"', 1)
    head, vip_rule = vip.split('[[priority]]\nid = "vip-big"', 1)
    reordered = RulesFile.from_text(head + '[[priority]]\nid = "fresh"' + rest + '\n[[priority]]\nid = "vip-big"' + vip_rule)
    facts = order(vip_level="S", amount_fen=800_000, buyer_note="加急")
    for rules in (example, reordered):
        decision = rules.evaluate(facts, NOW)
        assert decision.priority == "S"
        assert [r.rule_id for r in decision.because] == ["vip-big"]


def test_rules_of_the_same_level_are_all_named_in_file_order(example: RulesFile) -> None:
    decision = example.evaluate(order(buyer_note="加急", skus=("FRESH-FISH",)), NOW)
    assert decision.priority == "A"
    assert [r.rule_id for r in decision.because] == ["fresh", "urgent-note"]


def test_every_matching_tag_applies_with_a_plain_text_fallback(example: RulesFile) -> None:
    decision = example.evaluate(order(is_live=True, channel_tags=("社群团购",), presale=True), NOW)
    assert decision.tag_texts == ("直播", "社群团购", "预售")
    live = decision.tags[0]
    assert live.label(emoji=True) == "📺 直播"
    assert live.label(emoji=False) == "[直播]"
    assert [r.kind for r in decision.reasons] == ["tag", "tag", "tag"]


def test_a_tag_from_the_channel_or_from_the_live_flag_is_the_same_tag(example: RulesFile) -> None:
    assert example.evaluate(order(channel_tags=("直播",)), NOW).tag_texts == ("直播",)
    assert example.evaluate(order(channel="miniapp"), NOW).tag_texts == ("社群团购",)


@pytest.mark.parametrize(("returns", "held"), [(2, False), (3, True), (7, True)])
def test_hold_for_review_after_three_returns_in_30_days(example: RulesFile, returns: int, held: bool) -> None:
    decision = example.evaluate(order(returns_30d=returns), NOW)
    assert (decision.hold is not None) == held
    if held:
        assert "退货" in decision.hold
        assert [r.rule_id for r in decision.reasons] == ["many-returns"]


@pytest.mark.parametrize(("orders", "hinted"), [(1, False), (2, False), (3, True)])
def test_merge_hint_from_three_orders_to_the_same_address(example: RulesFile, orders: int, hinted: bool) -> None:
    decision = example.evaluate(order(orders_24h_same_address=orders), NOW)
    assert (decision.merge_hint is not None) == hinted


def test_first_matching_hold_gives_the_reason_and_all_are_listed() -> None:
    rules = RulesFile.from_text("""
[[hold]]
id = "first"
when = 'returns_30d >= 3'
reason = "退货多"
[[hold]]
id = "second"
when = 'amount > 1000'
reason = "金额大"
""")
    decision = rules.evaluate(order(returns_30d=4, amount_fen=200_000), NOW)
    assert decision.hold == "退货多"
    assert [r.rule_id for r in decision.reasons] == ["first", "second"]


def test_default_priority_and_vip_ranks_are_configurable() -> None:
    rules = RulesFile.from_text("""
default_priority = "B"
[vip]
levels = ["钻石", "铂金", "黄金"]
[[priority]]
id = "gold-up"
when = 'vip_rank >= 1 && vip_rank < 3'
level = "A"
""")
    assert rules.evaluate(order(), NOW).priority == "B"
    assert rules.evaluate(order(vip_level="黄金"), NOW).priority == "A"
    assert rules.evaluate(order(vip_level="钻石"), NOW).priority == "B"


def test_a_disabled_rule_is_checked_but_does_not_fire() -> None:
    text = """
[[priority]]
id = "off"
enabled = false
when = 'amount > 1'
level = "S"
"""
    assert RulesFile.from_text(text).evaluate(order(), NOW).priority == "C"
    assert problems_of(text.replace("amount > 1", "amout > 1"))


def test_time_facts_are_computed_at_now() -> None:
    rules = RulesFile.from_text("""
[[priority]]
id = "waiting"
when = 'hours_since_paid > 20'
level = "A"
[[tag]]
id = "night"
when = 'paid_hour >= 22 || (paid_hour >= 0 && paid_hour < 6)'
text = "夜单"
""")
    paid = datetime(2026, 11, 10, 15, 30, tzinfo=UTC)  # 23:30 in China
    facts = order(paid_at=paid, created_at=paid)
    assert rules.evaluate(facts, paid + timedelta(hours=2)).priority == "C"
    decision = rules.evaluate(facts, paid + timedelta(hours=21))
    assert decision.priority == "A"
    assert decision.tag_texts == ("夜单",)


def test_a_rule_that_fails_on_one_order_counts_as_not_matching_and_is_reported() -> None:
    rules = RulesFile.from_text("""
[[priority]]
id = "early-promise"
when = 'promised_ship_at < now + duration("4h")'
level = "A"
[[tag]]
id = "all"
when = 'true'
text = "全部"
""")
    decision = rules.evaluate(order(promised_ship_at=None), NOW)  # a null time cannot be compared
    assert decision.priority == "C"
    assert decision.tag_texts == ("全部",)  # the other rules still run
    (failure,) = decision.errors
    assert failure.rule_id == "early-promise"
    assert "null" in failure.text()
    assert rules.evaluate(order(promised_ship_at=NOW + timedelta(hours=1)), NOW).priority == "A"


def test_evaluate_many_keeps_the_input_order_and_matches_evaluate(example: RulesFile) -> None:
    facts = [order(vip_level="S", amount_fen=900_000), order(), order(buyer_note="加急"), order(returns_30d=5),
             order(is_live=True, created_at=PROMO_END - timedelta(minutes=1))]
    many = example.evaluate_many(facts, NOW)
    assert [d.priority for d in many] == ["S", "C", "A", "C", "B"]
    assert many == [example.evaluate(f, NOW) for f in facts]


def test_evaluation_runs_in_a_worker_thread(example: RulesFile) -> None:
    # the app evaluates off the UI loop; the compiled rules must be usable from another thread
    result: list = []
    worker = threading.Thread(target=lambda: result.extend(example.evaluate_many([order(buyer_note="加急")], NOW)))
    worker.start()
    worker.join()
    assert [d.priority for d in result] == ["A"]


def test_naive_now_is_refused(example: RulesFile) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        example.evaluate(order(), datetime(2026, 11, 11, 12))


def test_queue_order_is_priority_then_deadline_with_no_deadline_last() -> None:
    early, late = NOW + timedelta(hours=1), NOW + timedelta(hours=5)
    queue = [("B", early), ("A", late), ("S", None), ("A", early), ("S", late), ("C", early)]
    assert sorted(queue, key=lambda item: queue_key(*item)) == [
        ("S", late), ("S", None), ("A", early), ("A", late), ("B", early), ("C", early)]


# -- a broken file: every problem, in plain words, naming the rule --------------------------------


def test_toml_syntax_error_names_the_line_and_the_usual_cause() -> None:
    (problem,) = problems_of('[[priority]]\nid = "x"\nwhen = amount > 5000\nlevel = "S"\n')
    assert problem.line == 3
    assert problem.code == "toml"
    assert "第 3 行" in problem.text() and "单引号" in problem.text() and "when = amount > 5000" in problem.text()
    assert "line 3" in problem.text("en")


def test_unknown_field_names_the_rule_the_line_and_a_suggestion() -> None:
    (problem,) = problems_of("""
[[priority]]
id = "vip-big"
name = "VIP 大单"
when = 'vip_level == "A" && amout > 5000'
level = "S"
""")
    assert (problem.code, problem.rule, problem.line, problem.where) == ("unknown_field", "vip-big", 5,
                                                                         "priority[1].when")
    assert "「amout」" in problem.text() and "「amount」" in problem.text() and "vip-big" in problem.text()
    assert "did you mean 'amount'" in problem.text("en")


def test_names_bound_inside_a_condition_are_not_unknown_fields() -> None:
    RulesFile.from_text("""
[[tag]]
id = "fresh"
when = 'skus.exists(sku, sku.startsWith("FRESH-")) && channel_tags.all(t, t != "x")'
text = "生鲜"
""")


@pytest.mark.parametrize(
    ("when", "code", "words"),
    [
        pytest.param("amount > \"5000\"", "evaluation", ["类型不匹配", "数字不要加引号"], id="number in quotes"),
        pytest.param("\"加急\" in notes", "evaluation", ["notes.contains"], id="in on text"),
        pytest.param("amount + 1 > 10.0", "evaluation", ["amount + 1.0"], id="int plus double"),
        pytest.param("amount > 5000 and is_live", "syntax", ["&&"], id="and instead of &&"),
        pytest.param("channel = \"pdd\"", "syntax", ["=="], id="single equals"),
        pytest.param("amount ≥ 5000", "syntax", ["半角"], id="full-width symbol"),
        pytest.param("amount", "not_boolean", ["true 或 false"], id="not a comparison"),
        pytest.param("is_live && amount > \"1\"", "evaluation", ["类型不匹配"], id="error behind a flag"),
        pytest.param("!is_live && amount > \"1\"", "evaluation", ["类型不匹配"], id="error behind a negated flag"),
    ],
)
def test_a_bad_condition_is_explained(when: str, code: str, words: list[str]) -> None:
    (problem,) = problems_of(f"[[priority]]\nid = \"r1\"\nwhen = '{when}'\nlevel = \"A\"\n")
    assert (problem.code, problem.rule, problem.line) == (code, "r1", 3)
    for word in words:
        assert word in problem.text()
    assert problem.text("en") != problem.text()


def test_unknown_priority_and_wrong_types_are_named() -> None:
    problems = problems_of("""
[[priority]]
id = "p1"
when = 'amount > 1'
level = "SS"
[[tag]]
id = "t1"
when = 5000
text = "x"
[[hold]]
id = "h1"
when = 'true'
reason = "r"
enabled = "yes"
[sla]
hours = "48"
""")
    by_rule = {(p.rule, p.key): p for p in problems}
    assert "S、A、B、C" in by_rule[("p1", "level")].text()
    assert "应为文字" in by_rule[("t1", "when")].text()
    assert "true 或 false" in by_rule[("h1", "enabled")].text()
    assert by_rule[(None, "hours")].where == "sla.hours" and "数字" in by_rule[(None, "hours")].text()
    assert len(problems) == 4


def test_every_problem_is_listed_at_once() -> None:
    problems = problems_of("""
default_priority = "Z"
colour = "red"
[[priority]]
id = "dup"
when = 'amount > 1'
level = "S"
[[priority]]
id = "dup"
when = 'amount > 2'
level = "A"
[[merge]]
id = "m"
when = 'orders_24h_same_address >= 3'
[board]
red_hours = 8
yellow_hours = 6
""")
    codes = sorted(p.code for p in problems)
    assert codes == ["duplicate_id", "missing", "order", "unknown_key", "unknown_priority"]
    missing = next(p for p in problems if p.code == "missing")
    assert (missing.rule, missing.key) == ("m", "hint")
    error = RulesError(problems, Path("deskapp.rules.toml"))
    assert error.text().count("\n") == 5 and "仍按原来的规则执行" in error.text()


def test_unknown_key_suggests_the_close_one() -> None:
    (problem,) = problems_of("[[tag]]\nid = \"t\"\nwhen = 'true'\ntext = \"x\"\nemojii = \"📺\"\n")
    assert "「emoji」" in problem.text() and problem.line == 5


def test_a_missing_file_is_a_rules_error() -> None:
    with pytest.raises(RulesError) as caught:
        RulesFile.load("/nonexistent/deskapp.rules.toml")
    assert "找不到" in caught.value.text()


# -- reloading while the app runs ------------------------------------------------------------------

RULE = """
[[priority]]
id = "urgent"
name = "加急"
when = 'notes.contains("{word}")'
level = "{level}"
"""


def write(path: Path, text: str, bump: int) -> None:
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))  # a later mtime, however fast


def test_watcher_reloads_a_changed_file_and_keeps_the_old_rules_when_it_breaks(tmp_path: Path) -> None:
    path = tmp_path / "deskapp.rules.toml"
    write(path, RULE.format(word="加急", level="A"), 0)
    watcher = RulesWatcher(path)
    urgent = order(buyer_note="加急")

    first = watcher.check()
    assert first.changed and first.error is None
    assert first.rules.evaluate(urgent, NOW).priority == "A"
    assert not watcher.check().changed  # nothing changed on disk

    write(path, RULE.format(word="加急", level="S"), 1)
    second = watcher.check()
    assert second.changed and second.rules.version != first.rules.version
    assert watcher.rules.evaluate(urgent, NOW).priority == "S"

    write(path, RULE.format(word="加急", level="SS"), 2)  # a typo while editing
    broken = watcher.check()
    assert not broken.changed
    assert broken.error is not None and "SS" in broken.error.text() and "urgent" in broken.error.text()
    assert broken.rules is second.rules
    assert watcher.rules.evaluate(urgent, NOW).priority == "S"  # the old rules keep working
    assert watcher.check().error is broken.error  # still shown until the file is fixed

    write(path, RULE.format(word="急", level="B"), 3)
    fixed = watcher.check()
    assert fixed.changed and fixed.error is None and watcher.error is None
    assert watcher.rules.evaluate(order(buyer_note="急件"), NOW).priority == "B"


def test_watcher_ignores_a_touch_that_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "deskapp.rules.toml"
    write(path, RULE.format(word="加急", level="A"), 0)
    watcher = RulesWatcher(path)
    before = watcher.check().rules
    write(path, RULE.format(word="加急", level="A"), 5)
    again = watcher.check()
    assert not again.changed and again.rules is before


def test_watcher_starts_with_default_rules_when_the_file_is_missing(tmp_path: Path) -> None:
    watcher = RulesWatcher(tmp_path / "absent.toml")
    result = watcher.check()
    assert not result.changed and result.error is not None
    assert result.rules.evaluate(order(buyer_note="加急"), NOW).priority == DEFAULT_PRIORITY
    write(tmp_path / "absent.toml", RULE.format(word="加急", level="A"), 0)
    assert watcher.check().changed
    assert watcher.rules.evaluate(order(buyer_note="加急"), NOW).priority == "A"
