"""The Connectors screen (F4): health per connector, and the quarantine with inspect / retry / discard.

Quarantined payloads are fed through ``db.ingest.ingest`` exactly as the sync runner stores them,
with a stranger's text in them: markup, escape sequences and a bidi override must show as inert
literal text (or not at all), never run, style or reach the terminal.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from connectors.emulators.core import Clock, World, make_platform
from db.engine import make_engine
from db.ingest import CursorUpdate, QuarantineItem, cursor_record_error, ingest, quarantine_get, quarantine_list
from db.store import Store
from db.views import Actor
from deskapp.__main__ import make_app
from deskapp.screens.connectors import ConnectorsScreen
from deskapp.screens.lookup import LookupScreen
from deskapp.screens.quarantine import ConfirmScreen, PayloadScreen, QuarantineScreen, pretty_payload
from deskapp.services.demo import DEMO_NOW
from deskapp.settings import Settings
from tests.appkit import OPERATOR, OPERATOR_NAME, fixed_clock, screen_text
from widgets.i18n import set_language

MARKUP = "[bold red]x[/]"
HOSTILE = f"{MARKUP} \x1b[2J清屏 \u202e反向 [@click=app.quit]点我[/]"
DANGEROUS = ["\x1b", "\u202e", "\x9b", "\x07"]
CONNECTOR = "taobao:evil"


@pytest.fixture(autouse=True)
def chinese() -> None:
    set_language("zh")


def taobao_payload() -> dict:
    """A real Taobao order as the emulator's API renders it (so the adapter maps it)."""
    world = World(make_platform("taobao"), orders=1, seed=3, shops=("evil",), clock=Clock(DEMO_NOW, 0))
    return world.visible(next(iter(world.orders.values())))


async def _feed(db: Path) -> tuple[dict, dict]:
    """A cursor that failed, and two quarantined payloads: a hostile one and a mappable one."""
    hostile = {"tid": "evil-1", "status": HOSTILE, "receiver_name": HOSTILE, "note": "\x9b2J\x07"}
    good = taobao_payload()
    store = Store(make_engine(db))
    actor = Actor("connector", CONNECTOR)
    try:
        await ingest(store, [], actor=actor, at=DEMO_NOW - timedelta(minutes=30),
                     cursor=CursorUpdate(CONNECTOR, DEMO_NOW - timedelta(minutes=33)))
        await cursor_record_error(store, CONNECTOR, "the platform answered 503: " + HOSTILE,
                                  at=DEMO_NOW - timedelta(minutes=4))
        await ingest(store, [], actor=actor, at=DEMO_NOW - timedelta(minutes=20), quarantined=[
            QuarantineItem(CONNECTOR, "taobao", "evil", hostile, "unknown status " + HOSTILE, "unknown_status",
                           external_id="evil-1" + MARKUP),
        ])
        await ingest(store, [], actor=actor, at=DEMO_NOW - timedelta(minutes=10), quarantined=[
            QuarantineItem(CONNECTOR, "taobao", "evil", good, "status map was missing", "unknown_status",
                           external_id=str(good["tid"])),
        ])
    finally:
        await store.close()
    return hostile, good


def _app(db: Path):  # noqa: ANN202
    settings = Settings(db=str(db), operator=OPERATOR, language="zh")
    return make_app(Store(make_engine(db)), settings, operator_name=OPERATOR_NAME, clock=fixed_clock)


async def _settle(pilot) -> None:  # noqa: ANN001
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def _inert(app) -> str:  # noqa: ANN001
    """The screen as text, after checking that no control character reaches the terminal."""
    text = screen_text(app)
    svg = app.export_screenshot()
    for char in DANGEROUS:
        assert char not in text
        assert char not in svg
    return text


async def test_connectors_show_health_and_hostile_text_stays_inert(sqlite_template: Path, tmp_path: Path) -> None:
    db = tmp_path / "pool.db"
    db.write_bytes(sqlite_template.read_bytes())
    await _feed(db)
    app = _app(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await _settle(pilot)
        assert isinstance(app.screen, ConnectorsScreen)
        text = _inert(app)
        assert "淘宝 evil" in text and "异常" in text  # the last run failed
        assert "4分钟前" in text and MARKUP in text  # the last error, literally, with its age
        assert "2" in text.split("淘宝 evil", 1)[1].splitlines()[0]  # two payloads to handle

        await pilot.press("q")
        await _settle(pilot)
        assert isinstance(app.screen, QuarantineScreen)
        text = _inert(app)
        assert "2 条待处理" in text
        assert "evil-1[bold red]x[/]" in text  # the external id, literally
        await pilot.press("down")  # the older one: the hostile payload
        await pilot.pause()
        assert "unknown status [bold red]x[/]" in _inert(app)

        await pilot.press("i")
        await pilot.pause()
        assert isinstance(app.screen, PayloadScreen)
        text = _inert(app)
        assert '"receiver_name"' in text and MARKUP in text and "\\u001b[2J" in text  # ESC shown as text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, QuarantineScreen)
        assert app.is_running


async def test_discard_asks_first_and_records_the_operator(sqlite_template: Path, tmp_path: Path) -> None:
    db = tmp_path / "pool.db"
    db.write_bytes(sqlite_template.read_bytes())
    await _feed(db)
    app = _app(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await _settle(pilot)
        await pilot.press("enter")
        await _settle(pilot)
        screen = app.screen
        assert isinstance(screen, QuarantineScreen)
        await pilot.press("down")
        await pilot.pause()
        target = screen.highlighted
        assert target is not None and target.external_id.startswith("evil-1")

        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "丢弃这条隔离数据" in _inert(app)
        await pilot.press("n")  # changed my mind
        await _settle(pilot)
        store = await app.full_store()
        assert (await quarantine_get(store, target.id)).state == "open"

        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await _settle(pilot)
        entry = await quarantine_get(store, target.id)
        assert entry.state == "discarded"
        assert entry.resolved_by == f"operator:{OPERATOR}"
        assert len(screen.entries) == 1 and "1 条待处理" in _inert(app)


async def test_retry_maps_a_fixed_payload_and_reports_one_that_still_fails(
    sqlite_template: Path, tmp_path: Path,
) -> None:
    db = tmp_path / "pool.db"
    db.write_bytes(sqlite_template.read_bytes())
    _, good = await _feed(db)
    app = _app(db)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(QuarantineScreen(CONNECTOR, "taobao", "evil"))
        await _settle(pilot)
        screen = app.screen
        assert screen.highlighted.external_id == str(good["tid"])  # the newest first

        await pilot.press("r")  # the Taobao adapter maps it now: it becomes an order
        await _settle(pilot)
        await _settle(pilot)
        store = await app.full_store()
        assert await store.order_id_by_no(str(good["tid"])) is not None
        assert [e.external_id for e in await quarantine_list(store, "open", CONNECTOR)] == ["evil-1" + MARKUP]
        assert any("重试成功" in str(n.message) for n in app._notifications)  # noqa: SLF001

        assert screen.highlighted.external_id.startswith("evil-1")
        await pilot.press("r")  # still not an order: back in the quarantine with the new reason
        await _settle(pilot)
        await _settle(pilot)
        (entry,) = await quarantine_list(store, "open", CONNECTOR)
        assert entry.attempts == 2
        assert any("重试仍失败" in str(n.message) for n in app._notifications)  # noqa: SLF001
        _inert(app)

        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, LookupScreen)


async def test_f4_from_the_quarantine_goes_back_to_the_connectors(sqlite_template: Path, tmp_path: Path) -> None:
    db = tmp_path / "pool.db"
    db.write_bytes(sqlite_template.read_bytes())
    await _feed(db)
    app = _app(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await _settle(pilot)
        await pilot.press("q")
        await _settle(pilot)
        await pilot.press("f4")
        await pilot.pause()
        assert isinstance(app.screen, ConnectorsScreen)
        assert sum(isinstance(s, ConnectorsScreen) for s in app.screen_stack) == 1
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, LookupScreen)
        assert "未配置" in screen_text(app)  # no config: the header says so


def test_payloads_are_pretty_printed_and_cleaned() -> None:
    shown = pretty_payload(json.dumps({"名字": "张三\u202e", "n": [1, 2], "esc": "\x1b[2J", "c1": "\x9b2J"}))
    assert '"名字": "张三"' in shown  # CJK as is, the bidi override gone
    assert '"esc": "\\u001b[2J"' in shown  # a C0 control is escaped by JSON: inert text
    assert "\x9b" not in shown and "\x1b" not in shown
    assert pretty_payload("cut short {\x1b[2J") == "cut short {"  # not JSON: shown as cleaned text


def test_a_shop_switched_off_in_the_config_shows_as_paused(tmp_path: Path) -> None:
    from deskapp.screens.connectors import merge_rows, row_cells
    from deskapp.services.livesync import LiveSync

    config = tmp_path / "deskapp.toml"
    config.write_text("""
[channels.pdd]
base_url = "http://127.0.0.1:9"
app_key = "k"
secret_env = "UNSET_PDD_SECRET"
[[channels.pdd.shops]]
code = "off1"
enabled = false
access_token_env = "UNSET_PDD_TOKEN"
""", encoding="utf-8")
    live = LiveSync.from_config(config)
    assert not live.problems
    (row,) = merge_rows([], live)
    assert (row.connector, row.state) == ("pdd:off1", "paused")
    assert row_cells(row, DEMO_NOW)[1].plain == "已暂停"


@pytest.mark.parametrize(("lang", "words"), [("zh", "没有隔离数据"), ("en", "Nothing in quarantine")])
async def test_an_empty_quarantine_says_so_instead_of_an_empty_table(
    sqlite_template: Path, tmp_path: Path, lang: str, words: str,
) -> None:
    db = tmp_path / "pool.db"
    db.write_bytes(sqlite_template.read_bytes())
    set_language(lang)
    try:
        app = _app(db)
        async with app.run_test(size=(80, 24)) as pilot:
            app.push_screen(QuarantineScreen("pdd:shop1", "pdd", "shop1"))
            await _settle(pilot)
            text = screen_text(app)
            assert words in text
            assert "外部单号" not in text and "External id" not in text  # no column headers over nothing
            assert "丢弃" not in text and "Discard" not in text  # nor keys that have nothing to act on
            await pilot.press("escape")  # the keys still work
            await pilot.pause()
            assert isinstance(app.screen, LookupScreen)
    finally:
        set_language("zh")


async def test_discarding_the_last_payload_leaves_the_empty_message(sqlite_template: Path, tmp_path: Path) -> None:
    db = tmp_path / "pool.db"
    db.write_bytes(sqlite_template.read_bytes())
    store = Store(make_engine(db))
    try:
        await ingest(store, [], actor=Actor("connector", "jd:j1"), at=DEMO_NOW, quarantined=[
            QuarantineItem("jd:j1", "jd", "j1", {"orderId": "1"}, "缺少收货地址", "missing_field", external_id="1")])
    finally:
        await store.close()
    app = _app(db)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(QuarantineScreen("jd:j1", "jd", "j1"))
        await _settle(pilot)
        assert "没有隔离数据" not in screen_text(app) and "缺少收货地址" in screen_text(app)
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await _settle(pilot)
        assert "没有隔离数据" in screen_text(app)
