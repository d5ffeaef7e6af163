"""Address + phone check rate, next to a raw lookup floor, and what it costs a UI loop beside it.

    .venv/bin/python bench/checks.py [--orders 20000] [--seed 7]

Orders come from the demo generator (``deskapp.services.demo``; not timed): its province / city /
district / detail, a receiver phone as the platforms deliver it (plain, masked, virtual relay,
ciphertext, the odd landline: 010/021/020/0571/0574/0755, so mostly not the order's city) and 1 %
real conflicts (a district of another city in the same province). Measured, one
core, in this process:

1. **Ingest path**: ``check_address(province=…, city=…, district=…, detail=…)`` + ``check_phone``
   per order — what runs on every ingested order.
2. **Paste path**: ``check(text)`` on the same orders written as one pasted line
   (``name phone province city district detail``) — name and phone split off, then both checked.
3. **Floor**: the same orders through a plain ``dict`` membership test of the district in its
   city and a ``str.find`` of the city in the pasted line — what any check must at least cost.
4. **Off the UI loop**: the ingest-path checks run in a worker thread while an asyncio loop ticks
   every 10 ms; the loop's lateness p50 / p99 / max is what a Textual app would feel.
5. **The order checks through the pool** (``deskapp.services.checker.Checker.run_once``): the same
   orders ingested into a new SQLite file (not timed), then read back, every check of
   ``deskapp.services.checks`` run in a worker thread, results and holds written with their
   timeline events — next to a raw ``sqlite3`` floor that reads the same rows and marks them
   checked with one ``executemany``.

Ends with one JSON line of all figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from _common import ROOT, pct  # noqa: F401 - puts the repository on sys.path

from deskapp.services.address import check, check_address, verdict_of
from deskapp.services.address import warm_up as warm_address
from deskapp.services.phone import check_phone
from deskapp.services.phone import warm_up as warm_phone

LANDLINE_AREAS = ("010", "021", "020", "0571", "0574", "0755")


def make_orders(n: int, seed: int) -> list[tuple[str, str, str, str, str, str, bool]]:
    """``(province, city, district, detail, phone, pasted line, planted conflict)`` for n demo orders."""
    from deskapp.services.demo import DEMO_NOW, _Demo, _mask

    demo = _Demo(max(n, 1000), seed, DEMO_NOW)
    rand = demo.rng.random
    orders = []
    for i in range(n):
        province, city, district = demo._place()
        detail = demo._detail((province, city, district))
        mobile = demo._mobile()
        r = rand()
        phone = (mobile if r < 0.45 else _mask(mobile) if r < 0.80 else demo._virtual() if r < 0.90
                 else demo._cipher() if r < 0.95 else f"{LANDLINE_AREAS[int(rand() * 6)]}-6{int(rand() * 10**7):07d}")
        planted = i % 100 == 0 and province != city and bool(demo.city_districts.get((province, city)))
        if planted:
            district = demo._conflict(province, city)[0]
        name = demo.names[int(rand() * len(demo.names))]
        shown_city = "" if city == province else city
        line = f"{name} {phone if '~' not in phone else mobile} {province}{shown_city}{district}{detail}"
        orders.append((province, city, district, detail, phone, line, planted))
    return orders


def timed(fn, items) -> tuple[float, list[float]]:
    """Total seconds and per-item seconds of ``fn`` over ``items``."""
    samples = []
    clock = time.perf_counter
    gc.collect()
    started = clock()
    for item in items:
        t0 = clock()
        fn(item)
        samples.append(clock() - t0)
    return clock() - started, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    t = time.perf_counter()
    warm_address()
    warm_phone()
    warm_s = time.perf_counter() - t
    t = time.perf_counter()
    orders = make_orders(args.orders, args.seed)
    print(f"  {len(orders):,} demo orders prepared in {time.perf_counter() - t:.1f} s (not timed); "
          f"tables built in {warm_s:.2f} s", file=sys.stderr)

    def ingest_path(o: tuple) -> str:
        result = check_address(province=o[0], city=o[1], district=o[2], detail=o[3])
        phone = check_phone(o[4], city=result.city, province=result.province)
        return verdict_of([*result.problems, *phone.problems])

    def paste_path(o: tuple) -> str:
        return check(o[5])["verdict"]

    city_districts: dict[tuple[str, str], set[str]] = {}
    for province, city, district, *_ in orders:
        city_districts.setdefault((province, city), set()).add(district)

    def floor(o: tuple) -> bool:
        return o[2] in city_districts.get((o[0], o[1]), ()) and o[5].find(o[1]) >= 0

    n = len(orders)
    ingest_s, ingest_samples = timed(ingest_path, orders)
    paste_s, paste_samples = timed(paste_path, orders)
    floor_s, _ = timed(floor, orders)
    verdicts = {"ok": 0, "warn": 0, "block": 0}
    caught = blocked_valid = 0
    for o in orders:
        verdict = ingest_path(o)
        verdicts[verdict] += 1
        caught += o[6] and verdict == "block"
        blocked_valid += not o[6] and verdict == "block"

    lag = asyncio.run(loop_lag_beside(ingest_path, orders))
    pool = asyncio.run(through_the_pool(orders))

    figures = {
        "orders": n,
        "ingest_orders_per_s": round(n / ingest_s),
        "ingest_p50_us": round(statistics.median(ingest_samples) * 1e6, 1),
        "ingest_p99_us": round(pct(ingest_samples, 99) * 1e6, 1),
        "paste_orders_per_s": round(n / paste_s),
        "paste_p50_us": round(statistics.median(paste_samples) * 1e6, 1),
        "paste_p99_us": round(pct(paste_samples, 99) * 1e6, 1),
        "floor_orders_per_s": round(n / floor_s),
        "tables_build_s": round(warm_s, 3),
        "verdicts": verdicts,
        "conflicts_planted": sum(o[6] for o in orders),
        "conflicts_blocked": caught,
        "valid_blocked": blocked_valid,
        **lag,
        **pool,
    }
    print(f"\nAddress + phone checks on {n:,} demo orders, one core")
    print(f"{'ingest path (fields + phone)':<34}{figures['ingest_orders_per_s']:>10,} orders/s   "
          f"p50 {figures['ingest_p50_us']} µs  p99 {figures['ingest_p99_us']} µs")
    print(f"{'paste path (one pasted line)':<34}{figures['paste_orders_per_s']:>10,} orders/s   "
          f"p50 {figures['paste_p50_us']} µs  p99 {figures['paste_p99_us']} µs")
    print(f"{'floor (dict lookup + str.find)':<34}{figures['floor_orders_per_s']:>10,} orders/s")
    print(f"{'verdicts (ingest path)':<34}{verdicts}; planted conflicts blocked "
          f"{caught}/{figures['conflicts_planted']}, valid orders blocked {blocked_valid}")
    print(f"{'UI loop beside a check worker':<34}lateness p50 {lag['loop_lag_p50_ms']} ms  "
          f"p99 {lag['loop_lag_p99_ms']} ms  max {lag['loop_lag_max_ms']} ms "
          f"(worker {lag['worker_orders_per_s']:,} orders/s)")
    print(f"{'order checks through the pool':<34}{pool['checker_orders_per_s']:>10,} orders/s   "
          f"({pool['checker_held']} held; raw read + mark floor {pool['raw_floor_orders_per_s']:,} orders/s)")
    print(json.dumps(figures, ensure_ascii=False))


async def through_the_pool(orders: list) -> dict:
    """Ingest the orders into a new file, then time the Checker over all of them; raw floor beside."""
    import sqlite3
    import tempfile
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from db.codes import ActorKind
    from db.ingest import ingest
    from db.store import NewLine, NewOrder, Store
    from db.views import Actor
    from deskapp.services.checker import Checker

    t0 = datetime(2026, 11, 20, tzinfo=UTC)
    news = [
        NewOrder("taobao", "s1", f"B{i:08d}", t0 + timedelta(seconds=i), paid_at=t0, modified_at=t0,
                 raw_status="WAIT_SELLER_SEND_GOODS", receiver_name="张三", receiver_phone=o[4], province=o[0],
                 city=o[1], district=o[2], address_detail=o[3], total_fen=12900, paid_fen=12900,
                 lines=[NewLine(f"SKU-{i % 300}", "连衣裙", 1, 12900)])
        for i, o in enumerate(orders)
    ]
    with tempfile.TemporaryDirectory(prefix="deskapp-bench-checks-") as tmp:
        path = Path(tmp) / "pool.db"
        store = await Store.open(path)
        try:
            actor = Actor(ActorKind.CONNECTOR, "taobao:s1")
            for i in range(0, len(news), 1000):
                await ingest(store, news[i : i + 1000], actor=actor, at=t0)
            gc.collect()
            started = time.perf_counter()
            report = await Checker(store).run_once()
            checker_s = time.perf_counter() - started
        finally:
            await store.close()
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("UPDATE orders SET checked_at = NULL")
        started = time.perf_counter()
        for i in range(0, len(news), 1000):
            rows = conn.execute(
                "SELECT id, province, city, district, address_detail, receiver_phone FROM orders "
                "WHERE checked_at IS NULL ORDER BY id LIMIT 1000").fetchall()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("UPDATE orders SET checked_at = ? WHERE id = ?", [("2026-11-20", r[0]) for r in rows])
            conn.execute("COMMIT")
        raw_s = time.perf_counter() - started
        conn.close()
    return {"checker_orders_per_s": round(report.checked / checker_s), "checker_checked": report.checked,
            "checker_held": report.held, "raw_floor_orders_per_s": round(len(news) / raw_s)}


async def loop_lag_beside(fn, orders: list) -> dict[str, float]:
    """Run ``fn`` over the orders in a worker thread; measure how late a 10 ms loop tick runs."""
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    done = threading.Event()

    def work() -> float:
        started = time.perf_counter()
        for _ in range(3):
            for o in orders:
                fn(o)
        done.set()
        return time.perf_counter() - started

    with ThreadPoolExecutor(1) as pool:
        future = loop.run_in_executor(pool, work)
        while not done.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - t0 - 0.01)
        worker_s = await future
    ms = [max(0.0, x) * 1000 for x in lags]
    return {
        "loop_lag_p50_ms": round(statistics.median(ms), 2),
        "loop_lag_p99_ms": round(pct(ms, 99), 2),
        "loop_lag_max_ms": round(max(ms), 2),
        "worker_orders_per_s": round(3 * len(orders) / worker_s),
    }


if __name__ == "__main__":
    main()
