"""``kill -9`` of ``deskapp sync`` at random moments loses and duplicates nothing.

A real ``deskapp sync`` process syncs a Douyin emulator (faults on) into a SQLite file and is
killed with SIGKILL at 24 random moments while new orders keep arriving and old ones change. A
last ``deskapp sync --once`` (which takes the dead process's lease over at once) must then leave
the pool equal to the platform, order by order, each order created exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.checksum import order_checksum
from connectors.emulators import start_emulator
from db.models import Order, TimelineEvent
from db.privacy import FIELDS
from db.store import Store

ROOT = Path(__file__).parents[2]
ROUNDS = 24
FAULTS = "429=0.03,500=0.03,timeout=0.01,truncate=0.03,dup=0.05"


def _config(path: Path, url: str, shops: list[str]) -> None:
    lines = [
        "[sync]", "poll_seconds = 1", "overlap_minutes = 5", "lag_minutes = 0", "",
        "[channels.douyin]", f'base_url = "{url}"', 'app_key = "7000000000000000001"', 'secret_env = "EMU_SECRET"',
    ]
    for shop in shops:
        lines += ["", "[[channels.douyin.shops]]", f'code = "{shop}"', f'name = "{shop}"',
                  f'access_token_env = "EMU_TOKEN_{shop.upper()}"', f'refresh_token_env = "EMU_REFRESH_{shop.upper()}"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _sync(db: Path, config: Path, env: dict, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "deskapp", "--db", str(db), "sync", "--config", str(config), *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


async def test_kill_9_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    # The platform's clock follows real time (the sync plans its windows by the host's clock, as
    # against a real platform); its orders go back 12 hours.
    emu = start_emulator("douyin", orders=1500, days=0.5, seed=11, faults=FAULTS, speed=1)
    try:
        shops = list(emu.world.shops)
        env = dict(os.environ, EMU_SECRET=emu.credentials(shops[0])["app_secret"],
                   DESKAPP_LOG_FILE=str(tmp_path / "deskapp.log"))
        for shop in shops:
            creds = emu.credentials(shop)
            env[f"EMU_TOKEN_{shop.upper()}"] = creds["access_token"]
            env[f"EMU_REFRESH_{shop.upper()}"] = creds["refresh_token"]
        config = tmp_path / "deskapp.toml"
        _config(config, emu.url, shops)
        db = tmp_path / "pool.db"
        await (await Store.open(db)).close()  # migrated before the first kill

        rng = random.Random(5)
        for _ in range(ROUNDS):
            emu.world.create(count=rng.randint(20, 60))  # new orders keep arriving ...
            for oid in rng.sample(list(emu.world.orders), 30):  # ... and old ones change
                emu.world.modify(oid, "touch")
            proc = _sync(db, config, env)
            time.sleep(rng.uniform(0.3, 2.5))  # start-up takes ~0.6 s: most kills land mid-sync
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)

        emu.world.set_faults("")  # the last pass reads a calm platform, so any gap is ours
        with emu.world.lock:
            emu.world.clock.freeze()  # nothing changes between the last pass and the truth
        for _ in range(2):
            done = _sync(db, config, env, "--once")
            out, _ = done.communicate(timeout=120)
            assert done.returncode == 0, out

        truth = {e["id"]: e["checksum"] for e in emu.truth()}
    finally:
        emu.stop()
    assert len(truth) > 1500 + ROUNDS * 20 - 1 and None not in truth.values()
    store = await Store.open(db)
    try:
        async with store.engine.connect() as conn:
            ids = [row[0] for row in await conn.execute(select(Order.__table__.c.id))]
            created = (await conn.execute(select(func.count()).select_from(TimelineEvent.__table__)
                                          .where(TimelineEvent.__table__.c.kind == "created"))).scalar_one()
            check = (await conn.exec_driver_sql("PRAGMA integrity_check")).scalar_one()
        pool = {}
        for order_id in ids:
            card = await store.order_card(order_id, reveal=FIELDS)  # compared whole, never masked
            pool[card.channel_order_id] = order_checksum(card)
    finally:
        await store.close()
    assert check == "ok"
    assert len(ids) == len(truth) == created  # nothing lost, nothing doubled
    assert pool == truth  # and every order as the platform holds it


pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
