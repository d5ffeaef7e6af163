"""Two settings of ``deskapp.toml`` that used to be ignored: ``db`` and ``initial_lookback_days``.

* ``db`` is the database the config's shops sync into: ``deskapp sync`` uses it unless ``--db`` (or
  ``DESKAPP_DB``) names another, and then says so in one line; a relative path is relative to the
  config file. (The app's side — it never syncs into another database — is in
  tests/pilot/test_sync_elsewhere.py.)
* ``initial_lookback_days`` says how far back a shop's first sync reads, per channel with a
  per-shop override, checked by ``deskapp config check`` in plain words.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from connectors.config import check, load
from connectors.emulators import RunningEmulator, start_emulator
from connectors.wiring import build_workers
from db.store import Store
from deskapp.commands.sync import run_sync
from deskapp.settings import Settings, choose_db, same_db
from tests.connectors.conftest import NOW

# -- initial_lookback_days --------------------------------------------------------------------------


def test_lookback_is_inherited_overridden_and_explained(tmp_path: Path) -> None:
    path = tmp_path / "deskapp.toml"
    path.write_text("""
[sync]
initial_lookback_days = 2
[channels.jd]
base_url = "http://127.0.0.1:9"
app_key = "k"
initial_lookback_days = 7
[[channels.jd.shops]]
code = "a"
[[channels.jd.shops]]
code = "b"
initial_lookback_days = 0.5
[channels.pdd]
base_url = "http://127.0.0.1:9"
app_key = "k"
[[channels.pdd.shops]]
code = "c"
""", encoding="utf-8")
    shops = {s.actor_id: s for s in load(path, require_env=False).shops()}
    assert shops["jd:a"].initial_lookback == timedelta(days=7)  # the channel's
    assert shops["jd:b"].initial_lookback == timedelta(hours=12)  # the shop's own
    assert shops["pdd:c"].initial_lookback == timedelta(days=2)  # [sync]'s

    path.write_text("""
[channels.jd]
base_url = "http://127.0.0.1:9"
app_key = "k"
initial_lookback_days = 200
[[channels.jd.shops]]
code = "a"
initial_lookback_days = "7d"
""", encoding="utf-8")
    found = {p.where: p for p in check(path) if "initial_lookback" in p.where}
    channel, shop = found["channels.jd.initial_lookback_days"], found["channels.jd.shops[0].initial_lookback_days"]
    assert channel.code == "out_of_range"
    assert "200 天超出范围" in channel.zh and "0.1 到 90 天" in channel.zh and "约 3 个月" in channel.zh
    assert "200 days is out of range" in channel.en
    assert "应为天数" in shop.zh and "首次同步" in shop.zh and "number of days" in shop.en


@pytest.mark.parametrize("days", [0.5, 2])
async def test_a_first_sync_reads_exactly_the_configured_lookback(
    emulator, sqlite_template: Path, tmp_path: Path, days: float,
) -> None:
    emu = emulator("jd", orders=60, days=3, shops=("j1",))
    creds = emu.credentials("j1")
    env = {"JD_T_SECRET": creds["app_secret"], "JD_T_TOKEN": creds["access_token"]}
    path = tmp_path / "deskapp.toml"
    path.write_text(f"""
[sync]
lag_minutes = 0
[channels.jd]
base_url = "{emu.url}"
app_key = "{creds["app_key"]}"
secret_env = "JD_T_SECRET"
initial_lookback_days = 30
[[channels.jd.shops]]
code = "j1"
access_token_env = "JD_T_TOKEN"
initial_lookback_days = {days}
""", encoding="utf-8")
    db = tmp_path / "pool.db"
    shutil.copyfile(sqlite_template, db)
    store = await Store.open(db)
    try:
        async with httpx.AsyncClient() as client:
            (worker,), _ = build_workers(store, load(path, environ=env), client, environ=env,
                                         clock=lambda: NOW, lease=None, max_windows_per_run=None)
            assert (await worker.runner.run_once()).ok
        async with store.engine.connect() as conn:
            from sqlalchemy import text

            pooled = {row[0] for row in await conn.execute(text("SELECT channel_order_id FROM orders"))}
    finally:
        await store.close()
    since = (NOW - timedelta(days=days)).timestamp()
    truth = emu.truth()
    expected = {entry["id"] for entry in truth if entry["modified"] >= since}
    assert pooled == expected
    assert len(expected) < len(truth)  # older orders exist: the lookback is what kept them out


# -- db ----------------------------------------------------------------------------------------------


def test_the_database_is_chosen_flag_then_environment_then_config_then_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.delenv("DESKAPP_DB", raising=False)
    plain = Settings()
    assert plain.db_origin == "default"
    assert choose_db(plain, "/srv/pool.db") == "/srv/pool.db" and plain.db_origin == "config"
    flagged = Settings(db="mine.db", db_origin="flag")
    assert choose_db(flagged, "/srv/pool.db") == "mine.db"
    monkeypatch.setenv("DESKAPP_DB", "/env/pool.db")
    from_env = Settings()
    assert choose_db(from_env, "/srv/pool.db") == "/env/pool.db" and from_env.db_origin == "env"
    assert choose_db(Settings(db="x.db", db_origin="default"), None) == "x.db"

    path = tmp_path / "conf" / "deskapp.toml"
    path.parent.mkdir()
    path.write_text('db = "data/pool.db"\n', encoding="utf-8")
    assert load(path).db == str(tmp_path / "conf" / "data" / "pool.db")  # relative to the config file
    path.write_text('db = "postgresql+asyncpg://desk@db/desk"\n', encoding="utf-8")
    assert load(path).db == "postgresql+asyncpg://desk@db/desk"
    monkeypatch.chdir(tmp_path)
    assert same_db("conf/data/pool.db", str(tmp_path / "conf" / "data" / "pool.db"))
    assert not same_db("a.db", "b.db")


@pytest.fixture
def taobao() -> Iterator[RunningEmulator]:
    emu = start_emulator("taobao", 0, orders=8, seed=5, days=0.2, shops=("live1",))
    yield emu
    emu.stop()


async def _count(db: Path) -> int:
    store = await Store.open(db)
    try:
        return await store.count_orders()
    finally:
        await store.close()


async def test_deskapp_sync_uses_the_configs_database_unless_told_otherwise_and_says_so(
    taobao: RunningEmulator, sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    creds = taobao.credentials("live1")
    monkeypatch.setenv("DB_T_SECRET", creds["app_secret"])
    monkeypatch.setenv("DB_T_SESSION", creds["access_token"])
    monkeypatch.delenv("DESKAPP_DB", raising=False)
    (tmp_path / "data").mkdir()
    configured, other = tmp_path / "data" / "pool.db", tmp_path / "other.db"
    for db in (configured, other):
        shutil.copyfile(sqlite_template, db)
    path = tmp_path / "deskapp.toml"
    path.write_text(f"""
db = "data/pool.db"
[sync]
lag_minutes = 0
[channels.taobao]
base_url = "{taobao.url}"
app_key = "{creds["app_key"]}"
secret_env = "DB_T_SECRET"
[[channels.taobao.shops]]
code = "live1"
session_env = "DB_T_SESSION"
""", encoding="utf-8")

    args = argparse.Namespace(config=str(path), once=True, db=None)
    assert await run_sync(args, Settings()) == 0
    said = capsys.readouterr()
    assert "syncing into" not in said.err
    synced = await _count(configured)
    assert synced > 0 and await _count(other) == 0  # the config's database, found from the config's folder

    flagged = Settings(db=str(other), db_origin="flag")
    assert await run_sync(argparse.Namespace(config=str(path), once=True, db=str(other)), flagged) == 0
    said = capsys.readouterr()
    (line,) = [line for line in said.err.splitlines() if "--db" in line]
    assert f"syncing into {other} (--db), not db = {configured}" in line
    assert await _count(other) == synced  # --db wins, and it said so in one line
