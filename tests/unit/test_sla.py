"""Ship-by deadlines per channel, shop, presale and platform promise; time left; board colours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deskapp.services.rules import OrderFacts, RulesFile
from deskapp.services.sla import (
    Basis,
    BoardThresholds,
    Colour,
    Promise,
    SlaPolicy,
    board_colour,
    board_counts,
    deadline,
    time_left,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "deskapp.rules.example.toml"
PAID = datetime(2026, 11, 11, 2, tzinfo=UTC)  # 10:00 in China
NOW = PAID + timedelta(hours=10)

POLICY = SlaPolicy(
    hours=48,
    channels={"douyin": Promise(hours=24), "pdd": Promise(platform_promise=False)},
    shops={("douyin", "dy-slow"): Promise(hours=72), ("pdd", "pdd-main"): Promise(platform_promise=True),
           ("taobao", "tb-flagship"): Promise(hours=12)},
)


def order(**changes: object) -> OrderFacts:
    values: dict = {"channel": "taobao", "shop": "tb-main", "amount_fen": 9900, "created_at": PAID, "paid_at": PAID}
    values.update(changes)
    return OrderFacts(**values)


@pytest.mark.parametrize(
    ("changes", "hours", "source"),
    [
        pytest.param({}, 48, "default", id="default 48 h"),
        pytest.param({"channel": "douyin", "shop": "dy-main"}, 24, "channel:douyin", id="channel 24 h"),
        pytest.param({"channel": "douyin", "shop": "dy-slow"}, 72, "shop:douyin/dy-slow", id="shop beats channel"),
        pytest.param({"channel": "taobao", "shop": "tb-flagship"}, 12, "shop:taobao/tb-flagship", id="shop beats default"),
        pytest.param({"channel": "pdd", "shop": "tb-flagship"}, 48, "default",
                     id="a shop code on another channel is another shop"),
    ],
)
def test_hours_after_payment_per_channel_and_shop(changes: dict, hours: float, source: str) -> None:
    due = deadline(order(**changes), POLICY)
    assert due is not None
    assert (due.at, due.basis, due.source, due.hours) == (PAID + timedelta(hours=hours), Basis.HOURS, source, hours)


def test_the_platforms_promise_wins_when_it_sends_one() -> None:
    promised = PAID + timedelta(hours=20)
    due = deadline(order(channel="douyin", shop="dy-main", promised_ship_at=promised), POLICY)
    assert (due.at, due.basis) == (promised, Basis.PLATFORM)
    assert "平台承诺" in due.explain()


def test_a_channel_can_ignore_the_platform_promise_and_a_shop_can_take_it_back() -> None:
    promised = PAID + timedelta(hours=20)
    ignored = deadline(order(channel="pdd", shop="pdd-other", promised_ship_at=promised), POLICY)
    assert (ignored.at, ignored.basis) == (PAID + timedelta(hours=48), Basis.HOURS)
    trusted = deadline(order(channel="pdd", shop="pdd-main", promised_ship_at=promised), POLICY)
    assert (trusted.at, trusted.basis) == (promised, Basis.PLATFORM)


def test_presale_orders_ship_by_the_presale_date() -> None:
    ship = PAID + timedelta(days=7)
    due = deadline(order(presale=True, presale_ship_at=ship), POLICY)
    assert (due.at, due.basis) == (ship, Basis.PRESALE)
    assert deadline(order(presale=True), POLICY) is None  # no date: the 48 h promise does not apply


def test_unpaid_orders_have_no_deadline() -> None:
    assert deadline(order(paid_at=None), POLICY) is None


def test_deadline_explains_itself_in_china_time() -> None:
    due = deadline(order(channel="douyin", shop="dy-main"), POLICY)
    assert due.explain() == "11-12 10:00 前发货（付款后 24 小时，渠道 douyin）"
    assert due.explain("en") == "ship by 11-12 10:00 (24 h after payment, channel douyin)"


def test_sla_section_of_the_rules_file() -> None:
    rules = RulesFile.load(EXAMPLE)
    assert rules.deadline(order(shop="tb-flagship")).at == PAID + timedelta(hours=24)
    assert rules.deadline(order(channel="kuaishou", shop="ks")).at == PAID + timedelta(hours=48)
    custom = RulesFile.from_text("""
[sla]
hours = 36
platform_promise = false
[sla.channels.douyin]
platform_promise = true
[sla.channels.douyin.shops.dy-main]
hours = 6
""")
    promised = PAID + timedelta(hours=20)
    assert custom.deadline(order(promised_ship_at=promised)).at == PAID + timedelta(hours=36)
    assert custom.deadline(order(channel="douyin", shop="dy-x", promised_ship_at=promised)).at == promised
    assert custom.deadline(order(channel="douyin", shop="dy-main")).at == PAID + timedelta(hours=6)


def test_bad_sla_and_board_settings_are_explained() -> None:
    from deskapp.services.rules import RulesError

    with pytest.raises(RulesError) as caught:
        RulesFile.from_text("[sla]\nhours = -1\n[sla.channels.douyin]\nhour = 24\n[board]\nred_hours = 3\nyellow_hours = 1\n")
    text = caught.value.text()
    assert "sla.hours" in text and "超出范围" in text
    assert "「hours」" in text  # the typo `hour` gets a suggestion
    assert "red_hours" in text and "yellow_hours" in text


def test_time_left_is_negative_once_overdue() -> None:
    due = deadline(order(), POLICY)
    assert time_left(due, NOW) == timedelta(hours=38)
    assert time_left(due, PAID + timedelta(hours=50)) == timedelta(hours=-2)
    assert time_left(None, NOW) is None


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        time_left(PAID + timedelta(hours=1), datetime(2026, 11, 11, 12))
    with pytest.raises(ValueError, match="paid_at"):
        deadline(order(paid_at=datetime(2026, 11, 11, 2)), POLICY)


@pytest.mark.parametrize(
    ("hours_left", "printed", "picked", "colour"),
    [
        pytest.param(1.5, False, False, Colour.RED, id="under 2 h, not printed: red"),
        pytest.param(-3, False, False, Colour.RED, id="overdue, not printed: red"),
        pytest.param(1.5, True, False, Colour.YELLOW, id="under 2 h, printed, not picked: yellow"),
        pytest.param(1.5, True, True, Colour.GREEN, id="under 2 h, printed and picked: green"),
        pytest.param(2.0, False, False, Colour.YELLOW, id="exactly 2 h is not under 2 h"),
        pytest.param(5.9, False, False, Colour.YELLOW, id="under 6 h, not picked: yellow"),
        pytest.param(5.9, False, True, Colour.GREEN, id="under 6 h, picked: green"),
        pytest.param(6.0, False, False, Colour.GREEN, id="6 h left: green"),
        pytest.param(30, False, False, Colour.GREEN, id="plenty of time: green"),
    ],
)
def test_board_colour(hours_left: float, printed: bool, picked: bool, colour: Colour) -> None:
    due = NOW + timedelta(hours=hours_left)
    assert board_colour(due, NOW, printed=printed, picked=picked) is colour


def test_no_deadline_is_green() -> None:
    assert board_colour(None, NOW, printed=False, picked=False) is Colour.GREEN


def test_thresholds_come_from_the_board_section() -> None:
    board = RulesFile.from_text("[board]\nred_hours = 1\nyellow_hours = 3\n").board
    assert board == BoardThresholds(1, 3)
    due = NOW + timedelta(hours=1.5)
    assert board_colour(due, NOW, printed=False, picked=False) is Colour.RED  # default thresholds
    assert board_colour(due, NOW, printed=False, picked=False, board=board) is Colour.YELLOW
    assert board_colour(NOW + timedelta(hours=4), NOW, printed=False, picked=False, board=board) is Colour.GREEN


def test_colour_counts_name_every_colour_and_add_up() -> None:
    items = [(NOW + timedelta(hours=1), False, False), (NOW + timedelta(hours=1), True, False),
             (NOW + timedelta(hours=1), True, True), (None, False, False), (NOW - timedelta(hours=5), False, False)]
    assert board_counts(items, NOW) == {Colour.RED: 2, Colour.YELLOW: 1, Colour.GREEN: 2}
    assert board_counts([], NOW) == {Colour.RED: 0, Colour.YELLOW: 0, Colour.GREEN: 0}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.one_of(st.none(), st.integers(-48 * 60, 96 * 60)), st.booleans(), st.booleans()),
             max_size=60),
    st.floats(0, 12), st.floats(0, 12),
)
def test_colour_counts_always_add_up_to_the_total(rows: list, a: float, b: float) -> None:
    board = BoardThresholds(min(a, b), max(a, b))
    items = [(None if m is None else NOW + timedelta(minutes=m), printed, picked) for m, printed, picked in rows]
    counts = board_counts(items, NOW, board)
    assert set(counts) == set(Colour)
    assert sum(counts.values()) == len(items)
