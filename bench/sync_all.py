"""Every emulator at once, faults on: does ``deskapp sync`` get every order exactly once, and how fast?

    .venv/bin/python bench/sync_all.py [--orders 100000] [--faults SPEC] [--channels taobao,pdd,...]

1. Starts one ``deskapp emulate CHANNEL`` process per channel (separate processes: the emulators
   must not share this process's CPU), ``--orders`` split evenly, each with the fault SPEC
   (default: 20 % of calls fail in some way).
2. Runs ``deskapp sync --once`` (a real process, as a shared server would) on a new SQLite file
   until a pass reads nothing new (at most 4 passes, faults on). Then the emulators settle
   (``/_emu/settle``: clocks stop — they run in real time, orders would keep changing while we
   compare — faults off, late changes visible); ``deskapp sync --once --reconcile 1`` reads the day
   again, as the nightly reconciliation does, then plain passes until nothing is new.
3. Compares the pool with every emulator's ground truth, order by order (per-order checksum over
   the canonical fields) and counts the ``created`` events: exactly once means equal counts and
   no checksum difference. Orders the order checks put on hold (异常 is the desk's own status)
   are compared by the status their channel delivered.

Prints orders/s of the first pass (the bulk of the work) beside the number of orders, and ends
with one JSON line. The floor for the write part is in ``bench/ingest.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from _common import ROOT

#: 20 % of calls: 15 % failed answers, 5 % pages whose rows move or repeat; and 3 % of order changes
#: visible to list queries only 1–10 minutes late (as Taobao lags in a promotion)
DEFAULT_FAULTS = "429=0.04,500=0.04,timeout=0.02,truncate=0.03,limit=0.02,dup=0.03,shift=0.02,late=0.03"


def start_emulators(channels: list[str], orders: int, faults: str, env: dict) -> tuple[list, dict]:
    procs, urls = [], {}
    for channel in channels:
        proc = subprocess.Popen(
            # --days 0.9: a first sync reads the last day (SyncRunner.initial_lookback); older orders
            # would be outside what it is asked to fetch
            [sys.executable, "-m", "deskapp", "emulate", channel, "--orders", str(orders), "--faults", faults,
             "--days", "0.9"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        procs.append(proc)
        head = proc.stdout.readline()
        match = re.search(r"on (http://\S+)", head)
        if not match:
            raise SystemExit(f"{channel} emulator did not start: {head}{proc.stdout.read()}")
        urls[channel] = match.group(1)
        creds = {}
        while True:
            line = proc.stdout.readline()
            if line.strip().startswith("control:"):
                break
            shop, _, rest = line.strip().partition(": ")
            creds[shop] = dict(kv.split("=", 1) for kv in rest.split())
        urls[channel] = (match.group(1), creds)
    return procs, urls


def write_config(path: Path, emulators: dict, env: dict) -> None:
    lines = ["[sync]", "poll_seconds = 1", "overlap_minutes = 5", "lag_minutes = 0", ""]
    for channel, (url, creds) in emulators.items():
        first = next(iter(creds.values()))
        lines += [f"[channels.{channel}]", f'base_url = "{url}"', f'app_key = "{first["app_key"]}"',
                  f'secret_env = "B_{channel.upper()}_SECRET"', ""]
        env[f"B_{channel.upper()}_SECRET"] = first["app_secret"]
        for shop, c in creds.items():
            key = f"B_{channel.upper()}_{shop.upper()}"
            env[key + "_TOKEN"], env[key + "_REFRESH"] = c["access_token"], c["refresh_token"]
            lines += [f"[[channels.{channel}.shops]]", f'code = "{shop}"', f'name = "{shop}"',
                      f'access_token_env = "{key}_TOKEN"', f'refresh_token_env = "{key}_REFRESH"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def sync_once(db: Path, config: Path, env: dict, *extra: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "deskapp", "--db", str(db), "sync", "--once", "--config", str(config),
                           *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    return time.perf_counter() - started, done.stdout + done.stderr


async def compare(db: Path, emulators: dict) -> dict:
    import dataclasses

    from sqlalchemy import func, select, text

    from connectors.checksum import order_checksum
    from db.models import Order, TimelineEvent
    from db.privacy import FIELDS
    from db.store import Store

    truth: dict[tuple[str, str], str] = {}
    async with httpx.AsyncClient(timeout=120) as client:
        for channel, (url, _) in emulators.items():
            await client.post(f"{url}/_emu/faults", json={"spec": ""})
            for entry in (await client.get(f"{url}/_emu/truth")).json()["orders"]:
                truth[(channel, entry["id"])] = entry.get("checksum")
    store = await Store.open(db)
    try:
        async with store.engine.connect() as conn:
            rows = (await conn.execute(select(Order.__table__.c.id))).all()
            created = (await conn.execute(select(func.count()).select_from(TimelineEvent.__table__)
                                          .where(TimelineEvent.__table__.c.kind == "created"))).scalar_one()
            # what the channel delivered last, for the orders the desk itself has put on hold
            held = dict((await conn.execute(text(
                "SELECT o.id, s.snapshot FROM orders o JOIN order_source s ON s.order_id = o.id "
                "WHERE o.status = 'hold'"))).all())
        pool = {}
        for (order_id,) in rows:
            card = await store.order_card(order_id, reveal=FIELDS)  # compared whole, never masked
            if order_id in held:  # held by the order checks: the channel's own status is compared
                snapshot = held[order_id] if isinstance(held[order_id], dict) else json.loads(held[order_id])
                card = dataclasses.replace(card, status=snapshot["status"])
            pool[(card.channel, card.channel_order_id)] = order_checksum(card)
    finally:
        await store.close()
    missing = [k for k in truth if k not in pool]
    by_channel: dict[str, int] = {}
    for channel, _ in missing:
        by_channel[channel] = by_channel.get(channel, 0) + 1
    extra = [k for k in pool if k not in truth]
    differ = [k for k in truth if k in pool and pool[k] != truth[k]]
    for channel, order_id in (missing + extra + differ)[:10]:  # enough to start looking
        print(f"  not exactly once: {channel} {order_id}", file=sys.stderr)
    return {"truth": len(truth), "pool": len(pool), "held_by_checks": len(held), "created_events": created, "missing": len(missing),
            "extra": len(extra), "different": len(differ), "missing_by_channel": by_channel, "exactly_once": not (missing or extra or differ)
            and created == len(truth)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000, help="orders across all emulators")
    parser.add_argument("--faults", default=DEFAULT_FAULTS)
    parser.add_argument("--channels", help="comma list (default: every emulator there is)")
    args = parser.parse_args()
    from connectors.emulators import CHANNELS

    channels = args.channels.split(",") if args.channels else list(CHANNELS)
    tmp = Path(tempfile.mkdtemp(prefix="deskapp-sync-bench-"))
    env = dict(os.environ, DESKAPP_LOG_FILE=str(tmp / "deskapp.log"))
    print(f"  starting {len(channels)} emulators, {args.orders:,} orders, faults {args.faults}", file=sys.stderr)
    procs, emulators = start_emulators(channels, args.orders // len(channels), args.faults, env)
    try:
        config = tmp / "deskapp.toml"
        write_config(config, emulators, env)
        db = tmp / "pool.db"
        first, out = sync_once(db, config, env)
        print(out.strip(), file=sys.stderr)
        passes = 1
        for _ in range(3):  # windows a fault broke are read again by the next pass
            _, out = sync_once(db, config, env)
            passes += 1
            if _quiet(out):
                break
        # The emulators' clocks run in real time (orders keep moving while we compare): stop them,
        # faults off, the late-visible lag over; then one reconcile pass reads the day again, as the
        # nightly reconciliation does, and plain passes until nothing is new.
        asyncio.run(_settle(emulators))
        _, out = sync_once(db, config, env, "--reconcile", "1")
        passes += 1
        for _ in range(3):
            _, out = sync_once(db, config, env)
            passes += 1
            if _quiet(out):
                break
        result = asyncio.run(compare(db, emulators))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)
    rate = result["pool"] / first if first else 0
    print(f"\nSync of {result['truth']:,} orders from {len(channels)} emulators, faults {args.faults}")
    print(f"first pass {first:.1f} s = {rate:,.0f} orders/s (HTTP, adapters, ingest; SQLite synchronous=FULL)")
    print(f"passes {passes} · missing {result['missing']} · extra {result['extra']} · different {result['different']}"
          f" · created events {result['created_events']:,} · exactly once: {result['exactly_once']}")
    print(json.dumps({"bench": "sync_all", "channels": channels, "faults": args.faults, **result,
                      "first_pass_s": round(first, 1), "orders_per_s": round(rate), "passes": passes}))


def _quiet(out: str) -> bool:
    """A pass that fetched nothing and had no failed shop."""
    fetched = [int(n) for n in re.findall(r"fetched (\d+)", out)]
    return bool(fetched) and not any(fetched) and all(": ok " in line for line in out.splitlines() if "fetched" in line)


async def _settle(emulators: dict) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        for url, _ in emulators.values():
            (await client.post(f"{url}/_emu/settle")).raise_for_status()


if __name__ == "__main__":
    main()
