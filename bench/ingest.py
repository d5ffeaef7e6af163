"""Ingest speed: platform JSON → adapter → pool, next to a raw sqlite3 executemany of the same rows.

    .venv/bin/python bench/ingest.py [--orders 20000] [--batch 500] [--channel taobao] [--seed 1]

1. Raw platform orders come from the channel's emulator world (``connectors.emulators``; not timed).
   If no emulator/adapter can be loaded, canonical ``NewOrder``s are generated instead and the
   figures say ``path: neworder`` (the adapter is then not measured).
2. **Full path**: ``connectors.sync.SyncRunner`` reads the raw pages from memory (100 a page; no
   HTTP, so the figure is ours, not the emulator's), maps them with the platform Adapter and ingests
   them with ``db.ingest.ingest`` — batches of ``--batch`` orders, one write transaction each, the
   watermark with the last, ``synchronous=FULL`` as the app runs, mapping pipelined with writing —
   into a new SQLite file. Then the same run again: every order unchanged (the idempotent skip path).
3. **Ingest alone**: the same orders, already mapped, through ``ingest`` batch after batch.
4. **Floor**: the rows step 3 wrote (orders, lines, parcels, customers, timeline, snapshots, name
   index) inserted with plain ``sqlite3`` ``executemany``, same batches, same pragmas, same schema
   and triggers, into another new file.

Ends with one JSON line of all figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import ROOT  # noqa: F401 - puts the repository on sys.path

from db.codes import ActorKind
from db.ingest import CursorUpdate, IngestResult, ingest
from db.store import FTS_INSERT, NewLine, NewOrder, NewParcel, Store
from db.views import Actor

TABLES = ("channel", "shop", "customer", "orders", "order_line", "parcel", "parcel_line", "order_source",
          "timeline_event", "name_gram")


def emulator_payloads(channel: str, n: int, seed: int) -> tuple[list[tuple[dict, str]], object] | None:
    """(raw platform dict, shop code) for ``n`` orders of an emulator world, and its adapter."""
    try:
        from connectors.emulators.core import World, make_platform
    except Exception as exc:  # noqa: BLE001 - no emulators in this checkout
        print(f"  no emulator ({type(exc).__name__}: {exc}); timing NewOrder → pool only", file=sys.stderr)
        return None
    platform = make_platform(channel)
    world = World(platform, orders=n, seed=seed)
    raws = [(world.visible(order), order.shop) for order in world.orders.values() if order.visible_n]
    return raws, platform.adapter()


def synthetic_orders(n: int, seed: int) -> list[NewOrder]:
    """Canonical orders shaped like a busy Taobao shop's (the fallback when there is no adapter)."""
    rng = random.Random(seed)
    t0 = datetime(2026, 11, 11, tzinfo=UTC)
    out = []
    for i in range(n):
        created = t0 + timedelta(seconds=i * 3)
        lines = [NewLine(f"SKU-{rng.randrange(400):04d}", "商品", rng.randrange(1, 4), rng.randrange(500, 20000))
                 for _ in range(rng.randrange(1, 4))]
        parcels = [NewParcel(f"SF{1400000000 + i}", "SF", skus=[lines[0].sku])] if i % 3 == 0 else []
        out.append(NewOrder(
            "taobao", "tb-main", f"{3000000000000 + i}", created, status="shipped" if parcels else "paid",
            raw_status="WAIT_BUYER_CONFIRM_GOODS" if parcels else "WAIT_SELLER_SEND_GOODS", modified_at=created,
            total_fen=sum(l.price_fen * l.quantity for l in lines), receiver_name=f"买家{i % 5000}",
            receiver_phone=f"138****{i % 10000:04d}", province="浙江省", city="杭州市", district="西湖区",
            address_detail=f"文三路{i % 999}号", lines=lines, parcels=parcels,
        ))
    return out


class MemorySource:
    """A Source whose pages are already in memory (100 rows a page, as the platforms page): the
    bench times our path, not the emulator's HTTP server."""

    def __init__(self, channel: str, shop_code: str, raws: list[dict], page: int = 100) -> None:
        self.channel, self.shop_code, self.raws, self.page = channel, shop_code, raws, page

    async def pages(self, window):  # noqa: ANN001, ANN201
        for i in range(0, len(self.raws), self.page):
            yield self.raws[i : i + self.page]


async def runner_path(path: Path, items: list[tuple[dict, str]], adapter, batch: int) -> tuple[dict, dict]:  # noqa: ANN001
    """The sync runner over in-memory pages: adapter → ingest, pipelined. Run twice: new, unchanged."""
    from connectors.sync import SyncRunner

    by_shop: dict[str, list[dict]] = {}
    for raw, shop in items:
        by_shop.setdefault(shop, []).append(raw)
    store = await Store.open(path)
    now = datetime.now(UTC)
    runners = [
        SyncRunner(store, MemorySource(adapter.channel, shop, raws), adapter, batch_size=batch,
                   clock=lambda: now, lease=None)
        for shop, raws in by_shop.items()
    ]
    out = []
    try:
        for _ in range(2):
            total = IngestResult()
            gc.collect()
            started = time.perf_counter()
            for runner in runners:
                report = await runner.run_once()
                if report.error:
                    raise SystemExit(f"sync failed: {report.error}")
                total.add(report.result)
                runner.initial_lookback = timedelta(hours=1)
            out.append({"seconds": time.perf_counter() - started, "inserted": total.inserted,
                        "updated": total.updated, "unchanged": total.unchanged, "quarantined": total.quarantined})
            for runner in runners:  # the second run reads the same pages again
                runner.clock = lambda: now + timedelta(seconds=1)
    finally:
        await store.close()
    return out[0], out[1]


def map_all(items: list[tuple[dict, str]], adapter) -> tuple[list[NewOrder], float]:  # noqa: ANN001
    started = time.perf_counter()
    orders = []
    for raw, shop in items:
        try:
            orders.append(adapter.to_order(raw, shop_code=shop))
        except Exception:  # noqa: BLE001 - quarantined on the real path; left out here
            pass
    return orders, time.perf_counter() - started


async def ingest_alone(path: Path, orders: list[NewOrder], batch: int) -> dict:
    """Canonical orders (already mapped) through ingest, batch after batch."""
    store = await Store.open(path)
    total = IngestResult()
    gc.collect()
    started = time.perf_counter()
    try:
        for i in range(0, len(orders), batch):
            chunk = orders[i : i + batch]
            key = f"{chunk[0].channel}:{chunk[0].shop_code}"
            total.add(await ingest(store, chunk, actor=Actor(ActorKind.CONNECTOR, key),
                                   cursor=CursorUpdate(key, datetime.now(UTC))))
        elapsed = time.perf_counter() - started
    finally:
        await store.close()
    return {"seconds": elapsed, "inserted": total.inserted}


def floor(source: Path, empty: Path, target: Path, batch_orders: int) -> dict:
    """The same rows into an empty migrated file with plain sqlite3 executemany, batch by batch."""
    shutil.copyfile(empty, target)
    src = sqlite3.connect(source)
    rows = {t: src.execute(f'SELECT * FROM "{t}"').fetchall() for t in TABLES}
    columns = {t: [d[1] for d in src.execute(f'PRAGMA table_info("{t}")')] for t in TABLES}
    src.close()
    per_order = {t: {} for t in ("order_line", "parcel", "order_source", "timeline_event", "name_gram")}
    order_col = {"order_line": "order_id", "parcel": "order_id", "order_source": "order_id",
                 "timeline_event": "order_id", "name_gram": "order_id"}
    for t, key in order_col.items():
        i = columns[t].index(key)
        for row in rows[t]:
            per_order[t].setdefault(row[i], []).append(row)
    parcel_lines: dict[int, list] = {}
    for row in rows["parcel_line"]:
        parcel_lines.setdefault(row[0], []).append(row)
    customers = {row[0]: row for row in rows["customer"]}
    cust_i = columns["orders"].index("customer_id")
    text_i = columns["orders"].index("search_text")

    conn = sqlite3.connect(target, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "cache_size=-32000", "temp_store=MEMORY"):
        conn.execute(f"PRAGMA {pragma}")

    def sql(t: str) -> str:
        return f'INSERT INTO "{t}" ({", ".join(columns[t])}) VALUES ({", ".join("?" * len(columns[t]))})'

    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(sql("channel"), rows["channel"])
    conn.executemany(sql("shop"), rows["shop"])
    conn.execute("COMMIT")
    orders = rows["orders"]
    seen_customers: set[int] = set()
    gc.collect()
    started = time.perf_counter()
    for i in range(0, len(orders), batch_orders):
        chunk = orders[i : i + batch_orders]
        ids = [o[0] for o in chunk]
        conn.execute("BEGIN IMMEDIATE")
        fresh = []
        for o in chunk:
            cid = o[cust_i]
            if cid is not None and cid not in seen_customers:
                seen_customers.add(cid)
                fresh.append(customers[cid])
        conn.executemany(sql("customer"), fresh)
        conn.executemany(sql("orders"), chunk)
        conn.executemany(FTS_INSERT, [(o[0], o[text_i]) for o in chunk])  # as every orders insert does
        for t in ("order_line", "parcel"):
            conn.executemany(sql(t), [r for oid in ids for r in per_order[t].get(oid, ())])
        parcels = [r[0] for oid in ids for r in per_order["parcel"].get(oid, ())]
        conn.executemany(sql("parcel_line"), [r for pid in parcels for r in parcel_lines.get(pid, ())])
        for t in ("order_source", "name_gram", "timeline_event"):
            conn.executemany(sql(t), [r for oid in ids for r in per_order[t].get(oid, ())])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return {"seconds": elapsed, "orders": len(orders)}


async def make_empty(path: Path) -> None:
    store = await Store.open(path)
    await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500, help="orders per ingest call (one transaction)")
    parser.add_argument("--channel", default="taobao")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    t = time.perf_counter()
    loaded = emulator_payloads(args.channel, args.orders, args.seed)
    if loaded is not None:
        items, adapter = loaded
        path_name = f"{args.channel} JSON → adapter → pool"
    else:
        items, adapter = synthetic_orders(args.orders, args.seed), None
        path_name = "NewOrder → pool (no adapter)"
    print(f"  {len(items):,} payloads prepared in {time.perf_counter() - t:.1f} s (not timed)", file=sys.stderr)
    gc.collect()
    gc.freeze()  # as the app does after start-up: the payloads are not garbage the collector must scan

    with tempfile.TemporaryDirectory(prefix="deskapp-bench-ingest-") as tmp:
        tmp = Path(tmp)
        empty = tmp / "empty.db"
        asyncio.run(make_empty(empty))
        full = again = None
        if adapter is not None:
            shutil.copyfile(empty, tmp / "runner.db")
            full, again = asyncio.run(runner_path(tmp / "runner.db", items, adapter, args.batch))
            orders, map_seconds = map_all(items, adapter)
        else:
            orders, map_seconds = items, 0.0
        shutil.copyfile(empty, tmp / "pool.db")
        alone = asyncio.run(ingest_alone(tmp / "pool.db", orders, args.batch))
        raw = floor(tmp / "pool.db", empty, tmp / "floor.db", args.batch)

    n = len(items)
    rate = lambda count, seconds: count / max(seconds, 1e-9)  # noqa: E731
    raw_rate = rate(raw["orders"], raw["seconds"])
    figures = {
        "bench": "ingest", "path": "adapter" if adapter is not None else "neworder", "channel": args.channel,
        "orders": n, "batch": args.batch,
        "full_orders_per_s": round(rate(n, full["seconds"])) if full else None,
        "reingest_orders_per_s": round(rate(n, again["seconds"])) if again else None,
        "adapter_orders_per_s": round(rate(n, map_seconds)) if adapter is not None else None,
        "ingest_orders_per_s": round(rate(len(orders), alone["seconds"])),
        "raw_executemany_orders_per_s": round(raw_rate),
        "inserted": full["inserted"] if full else alone["inserted"],
        "quarantined": full["quarantined"] if full else 0,
        "reingest_unchanged": again["unchanged"] if again else None,
    }
    print(f"\nIngest of {n:,} orders, {args.batch} per transaction, SQLite synchronous=FULL — {path_name}")
    if full:
        print(f"{'sync runner: adapter → pool':<36}{figures['full_orders_per_s']:>10,} orders/s   "
              f"({full['seconds']:.2f} s, {full['inserted']:,} new, {full['quarantined']} quarantined)")
        print(f"{'  again, every order unchanged':<36}{figures['reingest_orders_per_s']:>10,} orders/s   "
              f"({again['unchanged']:,} skipped)")
        print(f"{'adapter alone (mapping only)':<36}{figures['adapter_orders_per_s']:>10,} orders/s")
    print(f"{'ingest alone (mapped orders)':<36}{figures['ingest_orders_per_s']:>10,} orders/s")
    print(f"{'raw sqlite3 executemany (floor)':<36}{figures['raw_executemany_orders_per_s']:>10,} orders/s   "
          f"(the same rows, same batches)")
    print(json.dumps(figures))

if __name__ == "__main__":
    main()
