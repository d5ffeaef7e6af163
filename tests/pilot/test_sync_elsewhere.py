"""The app honours ``db`` in ``deskapp.toml``: it opens that database, and never syncs the config's
shops into another one it was pointed at — it says so instead, in one line.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.emulators import RunningEmulator, start_emulator
from db.engine import make_engine
from db.store import Store
from deskapp.__main__ import make_app, sync_for_app
from deskapp.settings import Settings
from tests.appkit import OPERATOR, OPERATOR_NAME, screen_text
from widgets.i18n import set_language


@pytest.fixture(autouse=True)
def chinese() -> None:
    set_language("zh")


@pytest.fixture
def taobao() -> Iterator[RunningEmulator]:
    emulator = start_emulator("taobao", 0, orders=6, seed=5, days=0.2, shops=("live1",))
    yield emulator
    emulator.stop()


def _config(tmp_path: Path, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    creds = emulator.credentials("live1")
    monkeypatch.setenv("ELSE_TB_SECRET", creds["app_secret"])
    monkeypatch.setenv("ELSE_TB_SESSION", creds["access_token"])
    monkeypatch.delenv("DESKAPP_DB", raising=False)
    path = tmp_path / "deskapp.toml"
    path.write_text(f"""
db = "shared/pool.db"
[sync]
poll_seconds = 1
lag_minutes = 0
[channels.taobao]
base_url = "{emulator.url}"
app_key = "{creds["app_key"]}"
secret_env = "ELSE_TB_SECRET"
[[channels.taobao.shops]]
code = "live1"
session_env = "ELSE_TB_SESSION"
""", encoding="utf-8")
    return path


def test_without_db_the_app_opens_the_configs_database_and_syncs_it(
    taobao: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _config(tmp_path, taobao, monkeypatch)
    settings = Settings()
    sync = sync_for_app(settings, str(config))
    assert settings.db == str(tmp_path / "shared" / "pool.db") and settings.db_origin == "config"
    assert sync.configured and sync.elsewhere is None


async def test_opened_on_another_database_the_app_syncs_nothing_and_says_why(
    taobao: RunningEmulator, sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _config(tmp_path, taobao, monkeypatch)
    other = tmp_path / "backup.db"
    shutil.copyfile(sqlite_template, other)
    settings = Settings(db=str(other), db_origin="flag", operator=OPERATOR, language="zh")  # deskapp --db backup.db
    sync = sync_for_app(settings, str(config))
    assert settings.db == str(other)
    app = make_app(Store(make_engine(other)), settings, operator_name=OPERATOR_NAME, sync=sync)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert "同步：不在此库" in screen_text(app)
        (notice,) = [str(n.message) for n in app._notifications]
        assert "\n" not in notice
        assert str(tmp_path / "shared" / "pool.db") in notice and str(other) in notice and "不同步" in notice
        assert not sync.running and not sync.configured  # no sync worker was started here
        await pilot.press("f4")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "所以这里不同步" in screen_text(app)  # the Connectors screen says why too
        assert await (await app.full_store()).count_orders() == 0
    assert sum(taobao.world.calls.values()) == 0  # the platform was never asked
