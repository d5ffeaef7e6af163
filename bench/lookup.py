"""Lookup speed on a 1,000,000-order database: the Store next to raw sqlite3, and the app itself.

    .venv/bin/python bench/lookup.py [--db PATH] [--orders 1000000] [--samples 300]

1. For every query kind an agent types (order no., its prefix, waybill, phone, last 4 digits of a
   masked phone, 2-character name, 3-character name, surname, address fragment), p50/p99 of
   ``Store.find_orders`` next to the *same statements* run on plain ``sqlite3`` — the floor.
2. In a headless app at 120×40: Enter on a result → order card rendered (next refresh), and one
   typed character → results list refreshed.

Ends with one JSON line of all figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import sqlite3
import sys
import time
from pathlib import Path

from _common import DEFAULT_DB, ensure_demo, summary

from db import search
from db.store import Store

KINDS = ("order_no", "order_prefix", "waybill", "phone", "tail4_masked", "name2", "name3", "surname", "address")


def sample_queries(path: Path, n: int, seed: int = 1) -> dict[str, list[str]]:
    """Realistic queries drawn from the database itself (deterministic)."""
    conn = sqlite3.connect(path)
    rng = random.Random(seed)
    max_id = conn.execute("SELECT max(id) FROM orders").fetchone()[0]
    ids = rng.sample(range(1, max_id + 1), min(max_id, n * 6))
    rows = [
        conn.execute(
            "SELECT order_no, receiver_name, phone_kind, phone_norm, phone_tail4, address_detail "
            "FROM orders WHERE id = ?", (i,)
        ).fetchone()
        for i in ids
    ]
    rows = [r for r in rows if r]
    waybills = [
        r[0] for r in conn.execute(
            "SELECT waybill_no FROM parcel WHERE waybill_no IS NOT NULL AND id % 97 = 5 LIMIT ?", (n,)
        )
    ]
    conn.close()
    names = [r[1] for r in rows if r[1] and "*" not in r[1] and len(r[1]) >= 2]
    queries = {
        "order_no": [r[0] for r in rows][:n],
        "order_prefix": [r[0][:8] for r in rows][:n],
        "waybill": waybills[:n],
        "phone": [r[3] for r in rows if r[2] == "plain" and r[3]][:n],
        "tail4_masked": [r[4] for r in rows if r[2] == "masked" and r[4]][:n],
        "name2": [name[:2] for name in names][:n],
        "name3": [name for name in names if len(name) == 3][:n],
        "surname": [name[0] for name in names][:n],
        "address": [r[5][2:6] for r in rows if r[5] and len(r[5]) >= 8][:n],
    }
    return queries


async def time_store(path: Path, queries: dict[str, list[str]]) -> dict[str, dict]:
    store = await Store.open(path)
    try:
        for q in queries["order_no"][:20]:  # warm the pool and the page cache
            await store.find_orders(q)
        gc.collect()
        gc.freeze()
        out = {}
        for kind in KINDS:
            samples = []
            for q in queries[kind]:
                t0 = time.perf_counter()
                await store.find_orders(q)
                samples.append(time.perf_counter() - t0)
            out[kind] = summary(samples)
        return out
    finally:
        await store.close()


_RAW_HITS = (
    "SELECT o.id, o.order_no, o.channel, s.name, o.status, o.after_sale, o.receiver_name, "
    "o.receiver_phone, o.city, o.district, o.paid_at, o.created_at, o.total_fen "
    "FROM orders o JOIN shop s ON o.shop_id = s.id WHERE o.id IN ({marks})"
)


def time_raw(path: Path, queries: dict[str, list[str]]) -> dict[str, dict]:
    """The same compound probe statement and the same hit query, on plain sqlite3: the floor."""
    conn = sqlite3.connect(path)
    plans: dict[str, list] = {}
    for kind in KINDS:
        plans[kind] = []
        for q in queries[kind]:
            found = search.probes(q, dialect="sqlite")
            plans[kind].append((found, search.compose(found)))
    out = {}
    for kind in KINDS:
        samples = []
        for found, (sql, args) in plans[kind]:
            t0 = time.perf_counter()
            ranked: dict[int, int] = {}
            for probe_index, order_id in conn.execute(sql, args):
                rank = found[probe_index].rank
                if order_id not in ranked or rank < ranked[order_id]:
                    ranked[order_id] = rank
            if ranked:
                ids = sorted(ranked, key=lambda i: (ranked[i], -i))[: search.LIMIT]
                conn.execute(_RAW_HITS.format(marks=",".join("?" * len(ids))), ids).fetchall()
            samples.append(time.perf_counter() - t0)
        out[kind] = summary(samples)
    conn.close()
    return out


async def time_app(path: Path, queries: dict[str, list[str]], rounds: int) -> dict[str, dict]:
    """Keypress → card rendered, and typed character → results refreshed, in a headless app."""
    from textual import events
    from textual.worker import WorkerCancelled

    from deskapp.screens.card import CardScreen
    from deskapp.screens.lookup import LookupScreen
    from deskapp.settings import Settings
    from widgets.results import ResultsTable

    store = await Store.open(path)
    from deskapp.__main__ import make_app

    app = make_app(store, Settings(db=str(path), operator="bench"))
    card_times: list[float] = []
    type_times: list[float] = []

    async def after_refresh() -> None:
        done = asyncio.get_running_loop().create_future()
        app.screen.call_after_refresh(lambda: done.done() or done.set_result(None))
        await done

    async def settle() -> None:
        while True:
            try:
                await app.workers.wait_for_complete()
                break
            except WorkerCancelled:  # an older search cancelled by a newer one: wait again
                continue
        await pilot.pause()

    async def until(predicate) -> None:  # noqa: ANN001
        while not predicate():
            await asyncio.sleep(0.001)

    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        lookup = app.screen
        assert isinstance(lookup, LookupScreen)
        table = lookup.query_one(ResultsTable)
        box = lookup.query_one("#search")
        mixed = [q for kind in ("order_no", "tail4_masked", "name2", "address", "phone") for q in queries[kind]]
        random.Random(3).shuffle(mixed)
        for i, query in enumerate(mixed[: rounds]):
            # typing: all but the last character already in the box, then one real key event
            if box.value != query[:-1]:
                # Wait for *that* search to show its hits: its worker only exists once the box's
                # Changed message has been handled, so settle() alone could return with it still
                # to come — and it then landed inside the measurement below (two searches and two
                # repaints in one sample, or the sample stopped by the stale search's hits).
                shown = table._hits  # noqa: SLF001
                box.value = query[:-1]
                await until(lambda: table._hits is not shown)  # noqa: B023, SLF001
            # Setting the value leaves the cursor where it was: without this the key landed mid-text
            # in ~40% of rounds (a garbled query, usually no hits and so no card to open).
            box.cursor_position = len(box.value)
            await settle()
            before = table._hits  # noqa: SLF001
            t0 = time.perf_counter()
            app.post_message(events.Key(query[-1], query[-1]))
            await until(lambda: table._hits is not before)  # noqa: SLF001
            await after_refresh()
            type_times.append(time.perf_counter() - t0)
            if not table.row_count:
                continue
            # Enter → card rendered
            t0 = time.perf_counter()
            app.post_message(events.Key("enter", "\r"))
            await until(lambda: isinstance(app.screen, CardScreen) and app.screen.card is not None)
            await after_refresh()
            card_times.append(time.perf_counter() - t0)
            app.post_message(events.Key("escape", None))
            await until(lambda: app.screen is lookup)
            await pilot.pause()
            if i % 50 == 0:
                print(f"  app round {i}/{rounds}", file=sys.stderr, flush=True)
    await store.close()
    return {"keypress_to_card": summary(card_times), "typing_to_results": summary(type_times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--orders", type=int, default=1_000_000, help="size when the database is built")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--app-rounds", type=int, default=300)
    args = parser.parse_args()
    path = ensure_demo(args.db, args.orders)
    conn = sqlite3.connect(path)
    orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    conn.close()
    queries = sample_queries(path, args.samples)
    raw = time_raw(path, queries)
    store = asyncio.run(time_store(path, queries))
    app = asyncio.run(time_app(path, queries, args.app_rounds))

    print(f"\nLookup on {orders:,} orders ({path})  — milliseconds")
    print(f"{'query kind':<16}{'store p50':>11}{'store p99':>11}{'raw p50':>10}{'raw p99':>10}{'p50 ratio':>11}")
    for kind in KINDS:
        s, r = store[kind], raw[kind]
        ratio = s["p50_ms"] / r["p50_ms"] if r["p50_ms"] else float("nan")
        print(f"{kind:<16}{s['p50_ms']:>11.3f}{s['p99_ms']:>11.3f}{r['p50_ms']:>10.3f}{r['p99_ms']:>10.3f}{ratio:>10.1f}×")
    for name, figures in app.items():
        print(f"{name:<22} p50 {figures['p50_ms']:.1f} ms   p99 {figures['p99_ms']:.1f} ms   max {figures['max_ms']:.1f} ms   (n={figures['n']})")
    print(json.dumps({"bench": "lookup", "orders": orders, "store": store, "raw_sqlite": raw, "app": app}))


if __name__ == "__main__":
    main()
