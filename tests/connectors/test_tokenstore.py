"""Rotated tokens survive a restart: the token file (``connectors.tokenstore``).

Kuaishou's refresh tokens rotate — each refresh hands out a new pair and the old refresh token dies.
Against the Kuaishou emulator over real HTTP: a sync refreshes an expired token, the new pair lands
in a 0600 file, a *new process* (``deskapp sync --once``) starts from that pair and syncs without a
refresh, while the pair in the environment is refused by the platform. No token value appears in
what ``deskapp sync`` or ``deskapp config check`` print, nor in the logs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from connectors.base import Window
from connectors.config import load
from connectors.emulators import RunningEmulator, start_emulator
from connectors.http import PermanentError
from connectors.platforms import Tokens, make_source
from connectors.tokenstore import TokenFile, TokenFileError, choose, fingerprint
from connectors.wiring import build_workers
from db.store import Store
from deskapp.commands.config_check import run_config_check
from deskapp.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def kuaishou() -> Iterator[RunningEmulator]:
    """A Kuaishou emulator on real time (a sync in another process uses the host's clock), shop ks1."""
    emu = start_emulator("kuaishou", 0, orders=20, seed=4, days=0.5, shops=("ks1",))
    yield emu
    emu.stop()


def write_config(tmp_path: Path, emu: RunningEmulator) -> tuple[Path, dict[str, str]]:
    """deskapp.toml for the emulator's shop (token file beside it) and the environment it names."""
    creds = emu.credentials("ks1")
    env = {"KS_TEST_SECRET": creds["app_secret"], "KS_TEST_TOKEN": creds["access_token"],
           "KS_TEST_REFRESH": creds["refresh_token"]}
    path = tmp_path / "deskapp.toml"
    path.write_text(f"""
[sync]
lag_minutes = 0
initial_lookback_days = 1
token_file = "secrets/tokens.json"
log_file = "sync.log"

[channels.kuaishou]
base_url = "{emu.url}"
app_key = "{creds["app_key"]}"
secret_env = "KS_TEST_SECRET"

[[channels.kuaishou.shops]]
code = "ks1"
access_token_env = "KS_TEST_TOKEN"
refresh_token_env = "KS_TEST_REFRESH"
""", encoding="utf-8")
    return path, env


async def test_a_refreshed_pair_is_kept_and_a_new_process_starts_from_it(
    kuaishou: RunningEmulator, sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config_path, env = write_config(tmp_path, kuaishou)
    token_path = tmp_path / "secrets" / "tokens.json"
    db = tmp_path / "pool.db"
    shutil.copyfile(sqlite_template, db)
    config = load(config_path, environ=env)
    kuaishou.world.expire_tokens()  # the environment's access token is refused from now on

    store = await Store.open(db)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            (worker,), failed = build_workers(store, config, client, environ=env, lease=None)
            assert failed == []
            report = await worker.runner.run_once()
            assert report.ok, report.error
            assert report.fetched > 0  # it synced, after one refresh mid-run
            assert kuaishou.world.refreshes == 1
            rotated = kuaishou.credentials("ks1")
            assert rotated["refresh_token"] != env["KS_TEST_REFRESH"]

            # The pair is kept, readable by this user only, written whole (no temporary file left).
            assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
            kept = json.loads(token_path.read_text(encoding="utf-8"))["tokens"]["kuaishou:ks1"]
            assert (kept["access_token"], kept["refresh_token"]) == (rotated["access_token"], rotated["refresh_token"])
            assert not {env["KS_TEST_TOKEN"], env["KS_TEST_REFRESH"]} & set(kept.values())  # only a hash of those
            assert sorted(p.name for p in token_path.parent.iterdir()) == ["tokens.json", "tokens.json.lock"]

            # The environment's pair is dead on the platform: its refresh token was used up.
            stale = make_source("kuaishou", kuaishou.url, shop_code="ks1", app_key=rotated["app_key"],
                                app_secret=env["KS_TEST_SECRET"], access_token=env["KS_TEST_TOKEN"],
                                refresh_token=env["KS_TEST_REFRESH"], client=client)
            now = datetime.now(UTC)
            with pytest.raises(PermanentError, match="refresh refused"):
                async for _ in stale.pages(Window(now - timedelta(hours=1), now)):
                    pass
    finally:
        await store.close()

    # A restarted sync — a new process with the same environment — starts from the kept pair.
    process_env = {k: v for k, v in os.environ.items() if k != "DESKAPP_TOKEN_FILE"}
    process_env.update(env, DESKAPP_LOG_FILE=str(tmp_path / "deskapp.log"), DESKAPP_LANG="en")
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "deskapp", "--db", str(db), "sync", "--once", "--config", str(config_path)],
        cwd=ROOT, env=process_env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "kuaishou:ks1: ok" in done.stdout
    assert kuaishou.world.refreshes == 1  # no refresh was needed: the kept access token is valid

    # `deskapp config check` names the token file and how many shops it holds, never a token.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DESKAPP_TOKEN_FILE")
    assert await run_config_check(argparse.Namespace(config=str(config_path)), Settings()) == 0
    check = capsys.readouterr()
    assert str(token_path) in check.out and "1" in check.out.split(str(token_path))[1]

    printed = done.stdout + done.stderr + check.out + check.err
    logs = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "sync.log", tmp_path / "deskapp.log")
                   if p.exists())
    assert "tokens rotated at" in logs  # the restart said which pair it used ...
    secrets = {*env.values(), rotated["access_token"], rotated["refresh_token"]}
    for secret in secrets:  # ... and no token or secret is printed or logged
        assert secret not in printed and secret not in logs


async def test_a_newly_authorised_pair_in_the_environment_wins_over_the_kept_one(
    kuaishou: RunningEmulator, sqlite_template: Path, tmp_path: Path,
) -> None:
    config_path, env = write_config(tmp_path, kuaishou)
    token_path = tmp_path / "secrets" / "tokens.json"
    # A pair kept from an earlier authorisation, long since revoked.
    TokenFile(token_path).save("kuaishou", "ks1", "old-access", "old-refresh", origin=fingerprint("a", "b"))
    db = tmp_path / "pool.db"
    shutil.copyfile(sqlite_template, db)
    store = await Store.open(db)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            (worker,), _ = build_workers(store, load(config_path, environ=env), client, environ=env, lease=None)
            assert worker.runner.source.tokens.access_token == env["KS_TEST_TOKEN"]
            assert (await worker.runner.run_once()).ok
    finally:
        await store.close()


async def test_a_token_file_others_can_read_is_refused_in_plain_words(
    kuaishou: RunningEmulator, sqlite_template: Path, tmp_path: Path,
) -> None:
    config_path, env = write_config(tmp_path, kuaishou)
    token_path = tmp_path / "secrets" / "tokens.json"
    TokenFile(token_path).save("kuaishou", "ks1", "a", "r", origin="o")
    token_path.chmod(0o644)
    store = await Store.open(tmp_path / "pool.db")
    try:
        async with httpx.AsyncClient() as client:
            workers, failed = build_workers(store, load(config_path, environ=env), client, environ=env)
    finally:
        await store.close()
    assert workers == []
    (item,) = failed
    assert item.connector == "kuaishou:ks1" and f"chmod 600 {token_path}" in item.reason
    with pytest.raises(TokenFileError) as refused:
        TokenFile(token_path).save("kuaishou", "ks1", "a2", "r2", origin="o")  # not written into either
    assert refused.value.code == "insecure"


def test_saves_from_several_writers_at_once_all_survive(tmp_path: Path) -> None:
    """Read, change, write under the lock: no writer's shop is lost to another's write."""
    tokens = TokenFile(tmp_path / "t" / "tokens.json")
    errors: list[BaseException] = []

    def writer(shop: int) -> None:
        try:
            mine = TokenFile(tokens.path)  # each with its own lock object, as separate processes would be
            for turn in range(15):
                mine.save("pdd", f"s{shop}", f"at-{shop}-{turn}", f"rt-{shop}-{turn}", origin="o")
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    saved = tokens.read_all()
    assert {shop for _, shop in saved} == {f"s{n}" for n in range(6)}
    assert all(saved["pdd", f"s{n}"].refresh_token == f"rt-{n}-14" for n in range(6))
    assert stat.S_IMODE(tokens.path.stat().st_mode) == 0o600


def test_choice_corruption_and_reprs(tmp_path: Path) -> None:
    tokens = TokenFile(tmp_path / "tokens.json")
    assert tokens.read_all() == {}  # no file yet: nothing kept
    tokens.save("pdd", "p1", "AT-2", "RT-2", origin=fingerprint("AT-1", "RT-1"))
    kept = tokens.get("pdd", "p1")
    assert choose(kept, "AT-1", "RT-1").access_token == "AT-2"  # rotated from the environment's pair
    assert choose(kept, "AT-9", "RT-9").access_token == "AT-9"  # the environment holds a newer pair
    assert choose(None, "AT-1", "RT-1").source == "env"
    shown = repr(kept) + repr(choose(kept, "AT-1", "RT-1")) + repr(Tokens("AT-2", "RT-2")) + repr(tokens)
    assert "AT-" not in shown and "RT-" not in shown

    tokens.path.write_text("{ half a file", encoding="utf-8")
    tokens.path.chmod(0o600)
    with pytest.raises(TokenFileError) as broken:
        tokens.read_all()
    assert broken.value.code == "corrupt" and "delete it" in broken.value.en
