"""The warehouse queue on a real SQLite file: 50,000 open orders read and sorted, next to raw sqlite3.

(Not ``bench/queue.py``: a script of that name, run directly, would shadow the standard library's
``queue`` module for everything it imports.)

    .venv/bin/python bench/warehouse.py [--open 50000] [--closed 50000] [--repeat 9] [--db PATH]
                                    [--rules deskapp.rules.example.toml]

1. A pool file (built once into ``bench/data/``, reused): ``--open`` open orders (paid, in review,
   allocating: picked / packed / not yet), each with 1–3 lines, the allocating ones with a parcel
   in one of five warehouses (half printed); plus ``--closed`` shipped orders (some returned).
   Customers carry VIP levels, repeat buyers share addresses.
2. **Queue recomputation after a change** — what the queue screen does every second when
   orders changed: 100 open orders re-prioritised by another writer (with their timeline events),
   then the change feed (``db.queue.changes_since``), those orders' rows, ``merge`` into the queue
   order, ``queue_view`` (filters, counts per priority, the board index overall and per warehouse)
   and the board counts. **Full read** — on opening the screen, every minute, and in
   ``deskapp queue``: ``db.queue.queue_rows`` (the open orders with their warehouses and printed
   flag, sorted by priority then deadline, as ``QueueRow``s) through the app's read path
   (``Reader``, plain sqlite3), then ``queue_view``. With the app's collector settings.
   **Floor**: the same sorted SELECT on a bare sqlite3 connection, rows fetched as tuples (no
   parcels, no objects) — and the sort alone (``SELECT id … ORDER BY``).
3. **Rules**: ``QueueService.recompute`` over every open order — the facts read
   (``db.queue.fact_rows``), CEL evaluation in a thread and the diff — first when every order
   changes (the first start: every order written with its timeline event, batched), then with
   nothing to change (a rules edit that moves few orders costs about this plus their writes);
   and the facts read alone.

Ends with one JSON line of all figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

from _common import DATA, ROOT, summary

from db import queue as dbq
from db.reader import Reader
from db.store import Store
from deskapp.services.demo import DEMO_NOW
from deskapp.services.queue import Filters, QueueService, merge, queue_view
from deskapp.services.rules import RulesFile

NOW = DEMO_NOW
CHANNELS = ("taobao", "tmall", "pdd", "douyin", "kuaishou", "miniapp")
WAREHOUSES = ("杭州仓", "广州仓", "武汉仓", "北京仓", "成都仓")
#: Orders changed elsewhere between two looks of the queue screen (a busy second).
CHANGED = 100


def _rows(n_open: int, n_closed: int, seed: int) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    tables: dict[str, list[dict]] = {k: [] for k in ("channel", "shop", "customer", "orders", "order_line", "parcel")}
    for i, code in enumerate(CHANNELS, 1):
        tables["channel"].append({"code": code, "name": code})
        tables["shop"].append({"id": i, "channel": code, "code": f"{code}-main", "name": f"{code} 旗舰店"})
    customers = max(1, (n_open + n_closed) // 2)
    for c in range(1, customers + 1):
        tables["customer"].append({"id": c, "name": f"顾客{c}", "city": "杭州市", "match_key": None, "phone_norm": None,
                                   "first_seen_at": NOW - timedelta(days=90),
                                   "vip_level": rng.choice(("", "", "", "C", "B", "A", "S"))})
    line_id = parcel_id = 0
    for oid in range(1, n_open + n_closed + 1):
        is_open = oid <= n_open
        created = NOW - timedelta(seconds=rng.randrange(2 * 86400 if is_open else 60 * 86400))
        channel_index = rng.randrange(len(CHANNELS))
        status = rng.choices(("paid", "review", "allocating"), (60, 5, 35))[0] if is_open else "completed"
        customer = rng.randrange(1, customers + 1)
        name = f"顾客{customer}"
        detail = f"文三路{customer % 5000}号"
        tables["orders"].append({
            "id": oid, "channel": CHANNELS[channel_index], "shop_id": channel_index + 1, "channel_order_id": f"B{oid:09d}",
            "order_no": f"B{oid:09d}", "status": status,
            "wh_step": rng.choice((None, None, "picked", "packed")) if status == "allocating" else None,
            "after_sale": "returned" if not is_open and rng.random() < 0.08 else "none",
            "total_fen": rng.choice((rng.randrange(990, 30000), rng.randrange(30000, 900000))),
            "created_at": created, "paid_at": created + timedelta(minutes=2),
            "ship_by": created + timedelta(hours=48) if channel_index in (2, 3) else None,
            "priority": "B", "tags": rng.sample(["直播", "社群团购", "双11"], rng.randrange(0, 2)),
            "is_live": rng.random() < 0.15, "presale": False,
            "buyer_note": rng.choice(("", "", "", "加急！明天要用", "请尽快发货")), "seller_memo": "",
            "receiver_name": name, "province": "浙江省", "city": "杭州市", "district": "西湖区",
            "address_detail": detail, "search_text": f"{name} 浙江省杭州市西湖区{detail}", "customer_id": customer,
        })
        for _ in range(rng.randrange(1, 4)):
            line_id += 1
            sku = rng.choice(("FRESH-APPLE", "SKU-1001", "SKU-2002", "SKU-3003"))
            tables["order_line"].append({"id": line_id, "order_id": oid, "sku": sku, "sku_norm": sku, "title": sku,
                                         "quantity": rng.randrange(1, 3), "price_fen": 990})
        if status in ("allocating", "completed"):
            parcel_id += 1
            printed = status == "completed" or rng.random() < 0.5
            tables["parcel"].append({
                "id": parcel_id, "order_id": oid, "warehouse": rng.choice(WAREHOUSES), "carrier": "SF",
                "waybill_no": f"SF{oid:011d}" if printed else None, "state": "printed" if printed else "pending",
                "printed_at": created + timedelta(hours=1) if printed else None, "last_track_text": "",
            })
    return tables


def ensure_pool(path: Path, n_open: int, n_closed: int, seed: int) -> Path:
    """Build the pool file once (a side file renamed into place when complete), or reuse it."""
    if path.exists() and path.stat().st_size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_name(path.name + ".building")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{building}{suffix}").unlink(missing_ok=True)

    async def build() -> None:
        started = time.perf_counter()
        store = await Store.open(building, synchronous="OFF", cache_mb=512)
        try:
            await store.bulk_load(_rows(n_open, n_closed, seed))
            await store.checkpoint()
        finally:
            await store.close()
        print(f"  built {path.name} in {time.perf_counter() - started:.0f} s")

    asyncio.run(build())
    building.replace(path)
    return path


def timed(fn, repeat: int) -> tuple[list[float], object]:
    samples, result = [], None
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - started)
    return samples, result


async def timed_async(fn, repeat: int) -> tuple[list[float], object]:
    samples, result = [], None
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        result = await fn()
        samples.append(time.perf_counter() - started)
    return samples, result


async def rules_figures(path: Path, rules: RulesFile, repeat: int) -> dict:
    store = await Store.open(path)

    async def get() -> Store:
        return store

    try:
        service = QueueService(get, rules=rules, clock=lambda: NOW)
        started = time.perf_counter()
        first = await service.recompute()
        first_s = time.perf_counter() - started
        again, result = await timed_async(service.recompute, max(3, repeat // 2))
        facts, rows = await timed_async(lambda: dbq.read(store, dbq.fact_rows, None, True, NOW), repeat)
    finally:
        await store.close()
    return {"first_s": first_s, "first_changed": len(first.changed), "first_held": len(first.held),
            "again": again, "again_changed": len(result.changed), "facts": facts, "facts_n": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--open", type=int, default=50_000)
    parser.add_argument("--closed", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", type=Path, help="the pool file (default: bench/data/queue-<open>-<closed>.db)")
    parser.add_argument("--rules", type=Path, default=ROOT / "deskapp.rules.example.toml")
    args = parser.parse_args()

    path = args.db or DATA / f"queue-{args.open}-{args.closed}.db"
    ensure_pool(path, args.open, args.closed, args.seed)
    work = path.with_name(path.stem + ".run.db")  # the rules write into a copy: every run starts alike
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    src = sqlite3.connect(path)
    dst = sqlite3.connect(work)
    src.backup(dst)
    src.close()
    dst.close()

    rules = RulesFile.load(args.rules)
    r = asyncio.run(rules_figures(work, rules, args.repeat))
    gc.collect()
    gc.freeze()  # as the app does after start-up,
    gc.set_threshold(700, 10, 1000)  # with its collector thresholds (deskapp.app: GC_*)

    reader = Reader(work)
    filters = Filters()

    def recompute() -> tuple[list, dict]:
        rows = reader.read_now(dbq.queue_rows)
        view = queue_view(rows, filters, rules.board)  # what the screen computes from every read
        return rows, view.index.counts(NOW)

    recompute()  # warm the page cache, as a running app has it
    queue, (rows, counts) = timed(recompute, args.repeat)
    read_only, _ = timed(lambda: reader.read_now(dbq.queue_rows), args.repeat)

    # After a change: CHANGED orders re-prioritised elsewhere (a writer, with their events), then
    # what the screen does every second: the change feed, those rows, merged into place, counted.
    writer = sqlite3.connect(work, isolation_level=None)
    rng = random.Random(args.seed)
    open_ids = [row.id for row in rows]
    state = {"rows": rows, "last": reader.read_now(dbq.changes_since, (None,))[0]}
    incremental: list[float] = []
    for _ in range(args.repeat):
        picked = rng.sample(open_ids, min(CHANGED, len(open_ids)))
        writer.execute("BEGIN IMMEDIATE")
        writer.executemany("UPDATE orders SET priority = ?, sla_due = datetime(sla_due, ?) || '.000000' WHERE id = ?",
                           [(rng.choice("SABC"), f"{rng.randrange(-300, 300)} minutes", i) for i in picked])
        writer.executemany("INSERT INTO timeline_event (order_id, at, actor_kind, actor_id, kind, message) "
                           "VALUES (?, '2026-11-20 06:00:00.000000', 'rule', 'bench', 'priority', '')",
                           [(i,) for i in picked])
        writer.execute("COMMIT")
        gc.collect()
        started = time.perf_counter()
        last, ids = reader.read_now(dbq.changes_since, (state["last"],))
        fresh = reader.read_now(dbq.queue_rows, (True, ids))
        merged = merge(state["rows"], fresh, ids)
        view = queue_view(merged, filters, rules.board)
        view.index.counts(NOW)
        incremental.append(time.perf_counter() - started)
        state.update(rows=merged, last=last)
    writer.close()
    assert [r.id for r in state["rows"]] == [r.id for r in reader.read_now(dbq.queue_rows)], "merge drifted"
    reader.close()

    raw = sqlite3.connect(f"file:{work}?mode=ro", uri=True)
    full_sql = dbq._QUEUE.format(epoch=dbq._EPOCH[True])
    epoch = dbq._EPOCH[True]
    sort_sql = (f"SELECT o.id FROM orders o WHERE o.status IN {dbq._OPEN_SQL} "
                f"ORDER BY {dbq._RANK_SQL}, {epoch} IS NULL, {epoch}, o.id")
    raw.execute(full_sql).fetchall()
    raw_full, raw_rows = timed(lambda: raw.execute(full_sql).fetchall(), args.repeat)
    raw_sort, _ = timed(lambda: raw.execute(sort_sql).fetchall(), args.repeat)
    raw.close()
    assert sorted(row.id for row in rows) == sorted(row[0] for row in raw_rows)
    assert sum(counts.values()) == len(rows)
    Path(work).unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)

    s_queue, s_read, s_raw, s_sort = summary(queue), summary(read_only), summary(raw_full), summary(raw_sort)
    s_inc = summary(incremental)
    s_again, s_facts = summary(r["again"]), summary(r["facts"])
    figures = {
        "bench": "queue", "open_orders": len(rows), "closed_orders": args.closed, "rules_version": rules.version,
        "queue_recompute_p50_ms": s_inc["p50_ms"], "queue_recompute_p99_ms": s_inc["p99_ms"],
        "queue_recompute_changed": CHANGED,
        "queue_full_read_p50_ms": s_queue["p50_ms"], "queue_full_read_p99_ms": s_queue["p99_ms"],
        "queue_rows_p50_ms": s_read["p50_ms"],
        "raw_sql_full_p50_ms": s_raw["p50_ms"], "raw_sql_full_p99_ms": s_raw["p99_ms"],
        "raw_sql_sort_p50_ms": s_sort["p50_ms"], "raw_sql_sort_p99_ms": s_sort["p99_ms"],
        "rules_first_apply_s": round(r["first_s"], 2), "rules_first_changed": r["first_changed"],
        "rules_first_held": r["first_held"],
        "rules_recompute_nochange_p50_ms": s_again["p50_ms"], "rules_recompute_nochange_p99_ms": s_again["p99_ms"],
        "facts_read_p50_ms": s_facts["p50_ms"],
        "colours": {str(k): v for k, v in counts.items()},
    }
    print(f"\nWarehouse queue on {path.name}: {len(rows):,} open orders (+{args.closed:,} closed), "
          f"rules {rules.version}, {args.repeat} runs")
    row = "{:<58}{:>10} ms p50 {:>10} ms p99   {}"
    print(row.format(f"queue recompute after {CHANGED} orders changed", s_inc["p50_ms"], s_inc["p99_ms"],
                     "budget 200 ms: change feed + rows + merge + board"))
    print(row.format("queue full read: read + sort + filter + board counts", s_queue["p50_ms"], s_queue["p99_ms"],
                     "on opening, and every minute"))
    print(row.format("  queue_rows alone (QueueRow objects, via Reader)", s_read["p50_ms"], s_read["p99_ms"], ""))
    print(row.format("floor: raw sqlite3, same sorted SELECT, tuples", s_raw["p50_ms"], s_raw["p99_ms"], ""))
    print(row.format("floor: raw sqlite3 ORDER BY, ids only", s_sort["p50_ms"], s_sort["p99_ms"], ""))
    print(row.format("rules: recompute, nothing changes (read+CEL+diff)", s_again["p50_ms"], s_again["p99_ms"],
                     f"{len(rows):,} orders evaluated"))
    print(row.format("  facts read alone (fact_rows)", s_facts["p50_ms"], s_facts["p99_ms"], ""))
    print(f"{'rules: first apply, every order written + event':<58}{r['first_s'] * 1000:>10.0f} ms once"
          f"      {r['first_changed']:,} changed, {r['first_held']:,} held")
    print(f"board: {' '.join(f'{k}={v}' for k, v in figures['colours'].items())}")
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
