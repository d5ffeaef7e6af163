"""Twenty agents and the sync runner on one SQLite file: no lock error reaches anyone, no update is
lost, and every keypress answers within 150 ms.

    .venv/bin/python bench/load.py [--seconds 300] [--sessions 20] [--db PATH] [--orders 50000]
                                   [--think 1,3] [--channels taobao,pdd,douyin,jd] [--new-per-minute 15]
                                   [--seed 1] [--keep]

1. A copy of the demo database (``bench/data/demo-50k.db``, built once; ``--db`` another file) with
   the built-in warehouse rules applied (as a running team has them) and one operator per session:
   60 % customer service, 30 % warehouse, 10 % supervisors (12 / 6 / 2 of 20).
2. Platform emulators in this process (threads, ``--new-per-minute`` new orders per channel, so
   orders keep arriving) and ``deskapp sync`` against them as a real separate process.
3. One OS process per session, each running the real app headless at 80×24 (``App.run_test``) and
   driving it with keys at an agent's pace (a seeded think time between actions):

   * customer service: type a lookup (order no., phone last 4, name or waybill — all characters
     but the last through the Pilot, a search per keystroke) and time the last key → the result
     list holding the expected order and painted; move to it; Enter → the card showing that
     order; on orders of its own, ``m``, append a unique token to the seller memo, Enter → the card
     showing the saved memo.
   * warehouse: the queue screen (F5); scan order numbers of orders in 配货 (disjoint per session,
     each through its steps) and time Enter → the scan's result line.
   * supervisors: lookups and cards as customer service, some memo edits, and F5 → the queue
     shown (then the board, and back).

   Times run from just before the key is posted to the moment the screen's widgets hold the
   answer, polled in a tight loop with a deadline, plus the next paint (headless: composed, not
   written to a terminal).
4. At the end: every acknowledged memo token is on its order's timeline exactly once (a ``memo``
   event by that operator) and in the final memo; every acknowledged scan's event exists exactly
   once; no write by a load operator exists that nobody acknowledged; every order the emulators
   hold arrived exactly once (pool vs the emulators' ground truth, per-order checksum, one
   ``created`` event each); user-visible errors — a notification of severity error or saying
   "locked"/"锁", an exception or a timeout in a session, "database is locked" in any log.
5. The floor: the lookups the sessions typed, as plain sqlite3 queries (the Store's own probe
   statements) from as many threads as sessions, no think time; and a memo save's statements on a
   plain sqlite3 connection (the least time a writer holds SQLite's write lock).
6. Where the time goes, measured inside every session: waiting for the write lock (BEGIN
   IMMEDIATE) and holding it (to COMMIT) per write transaction, the event loop's lag behind a
   100 ms timer, and CPU seconds while agents work and while they think. Answers slower than the
   budget are listed by wall time in ``slow.tsv`` of the run directory, beside the logs.

Prints p50/p95/p99/max per action kind, actions/s, errors and the invariants, and ends with one
JSON line. ``--seconds 20 --sessions 4`` runs in well under a minute (tests/pilot/test_load_smoke.py).
The run directory (a temporary one) is kept, and named, when anything went wrong or with ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from _common import DATA, ROOT, ensure_demo, pct

#: What is timed, keypress → answer on screen.
KINDS = ("lookup", "card", "memo", "scan", "queue")
#: The keypresses the issue's budget is about (``queue`` is the supervisors' F5, a full read).
HEADLINE = ("lookup", "card", "memo", "scan")
BUDGET_MS = 150.0
#: The emulators' shop code: the orders this run syncs, apart from the demo's own shops.
SHOP = "load1"
LOOKUP_KINDS = ("order_no", "tail4", "name", "waybill")
#: A lookup target must be among the first rows of its results (the agent moves to it with ↓).
MAX_ROW = 12
#: Seconds a session waits for an answer before it counts a timeout (the busy timeout is 10 s).
ANSWER_TIMEOUT_S = 30.0
#: Seconds one task (type, open, edit; or a scan) may take before the session gives up on it.
TASK_TIMEOUT_S = 90.0
MEMO_ORDERS = 12  # per session that edits memos: its own orders, no other session writes them
#: The share of a session's lookups that go on to edit the memo, by role.
EDIT_SHARE = {"cs": 0.35, "supervisor": 0.15}
DEFAULT_CHANNELS = ("taobao", "pdd", "douyin", "jd")


# -- preparing the pool --------------------------------------------------------------------------------


def roles_for(sessions: int) -> list[str]:
    """60 % customer service, 30 % warehouse, 10 % supervisors (at least one of each from 3 up)."""
    if sessions <= 0:
        return []
    warehouse = max(1, round(sessions * 0.3)) if sessions >= 2 else 0
    supervisor = max(1, round(sessions * 0.1)) if sessions >= 3 else 0
    return ["cs"] * (sessions - warehouse - supervisor) + ["warehouse"] * warehouse + ["supervisor"] * supervisor


def copy_db(source: Path, target: Path) -> None:
    """A consistent copy (the source may have a WAL) that every run starts from."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


async def prepare(work: Path, roles: list[str], seconds: float, seed: int) -> list[dict]:
    """Operators, the rules applied, and each session's work: lookups (with the row they must show),
    its own memo orders, or (warehouse) its own orders to scan through their steps."""
    from db.store import Store
    from deskapp.services.queue import QueueService

    store = await Store.open(work)
    try:
        logins = []
        counters: dict[str, int] = {}
        for role in roles:
            counters[role] = counters.get(role, 0) + 1
            login = f"load-{role}-{counters[role]:02d}"
            label = {"cs": "客服", "warehouse": "仓库", "supervisor": "主管"}[role]
            await store.ensure_operator(login, f"{label}{counters[role]:02d}", role=role)
            logins.append(login)

        async def get() -> Store:
            return store

        await QueueService(get).recompute()  # the team's rules are in force before anyone starts
        await store.checkpoint()

        conn = sqlite3.connect(f"file:{work}?mode=ro", uri=True)
        rng = random.Random(seed)
        scan_rows = conn.execute(
            "SELECT o.id, o.order_no, o.status, o.wh_step, "
            "EXISTS (SELECT 1 FROM parcel p WHERE p.order_id = o.id AND p.waybill_no IS NOT NULL) "
            "FROM orders o WHERE o.status IN ('paid', 'allocating') AND o.after_sale = 'none' "
            "AND o.hold_reason IS NULL ORDER BY o.id").fetchall()
        rng.shuffle(scan_rows)
        scanned_ids = {row[0] for row in scan_rows}
        all_ids = [i for (i,) in conn.execute("SELECT id FROM orders ORDER BY id") if i not in scanned_ids]
        rng.shuffle(all_ids)
        readers = [i for i, role in enumerate(roles) if role != "warehouse"]
        warehouse = [i for i, role in enumerate(roles) if role == "warehouse"]
        # enough lookups for the run at the fastest pace (one every ~2 s), within what the pool holds
        per_session = max(8, min(int(seconds / 2) + 8, len(all_ids) // max(1, len(readers))))
        specs: list[dict] = []
        for index, (role, login) in enumerate(zip(roles, logins, strict=True)):
            spec = {"index": index, "role": role, "login": login, "lookups": [], "memos": [], "scans": [],
                    "edit_share": EDIT_SHARE.get(role, 0.0)}
            if role == "warehouse":
                share = scan_rows[warehouse.index(index)::len(warehouse)]
                spec["scans"] = [{"id": oid, "order_no": no, "steps": _steps(status, step, bool(waybill))}
                                 for oid, no, status, step, waybill in share]
            else:
                slot = readers.index(index)
                chosen = all_ids[slot * per_session:(slot + 1) * per_session]
                found = await _lookups(store, conn, chosen)
                # its own orders to edit first (no other session writes them), the rest only looked up
                spec["memos"], spec["lookups"] = found[:MEMO_ORDERS], found[MEMO_ORDERS:] or found[:]
                rng.shuffle(spec["lookups"])
            specs.append(spec)
        conn.close()
        return specs
    finally:
        await store.close()


def _steps(status: str, wh_step: str | None, waybill: bool) -> list[str]:
    """The scans that move this order on, in order (shipping only with a waybill to ship)."""
    steps = ["allocate", "pick", "pack"] + (["ship"] if waybill else [])
    first = {("paid", None): 0, ("allocating", None): 1, ("allocating", "picked"): 2,
             ("allocating", "packed"): 3}.get((status, wh_step), len(steps))
    return steps[first:]


async def _lookups(store, conn: sqlite3.Connection, ids: list[int]) -> list[dict]:
    """One query per order, the kinds in turn (a kind the order lacks, or whose answer does not
    show the order among the first rows, gives way to the next)."""
    out = []
    for n, order_id in enumerate(ids):
        no, name, tail4, waybill = conn.execute(
            "SELECT o.order_no, o.receiver_name, o.phone_tail4, "
            "(SELECT p.waybill_no FROM parcel p WHERE p.order_id = o.id AND p.waybill_no IS NOT NULL LIMIT 1) "
            "FROM orders o WHERE o.id = ?", (order_id,)).fetchone()
        queries = {"order_no": no, "tail4": tail4, "waybill": waybill,
                   "name": name if name and "*" not in name and len(name) >= 2 else None}
        start = n % len(LOOKUP_KINDS)
        for kind in LOOKUP_KINDS[start:] + LOOKUP_KINDS[:start]:
            query = (queries[kind] or "").strip()
            if len(query) < 2:
                continue
            ids_found = [hit.id for hit in await store.find_orders(query)]
            if order_id in ids_found[:MAX_ROW]:
                out.append({"id": order_id, "kind": kind, "query": query})
                break
    return out


# -- the sync runner ------------------------------------------------------------------------------------


def start_emulators(channels: list[str], new_per_minute: float, seed: int) -> list:
    from connectors.emulators import start_emulator

    # --days 0.9: within the first sync's look-back (one day)
    return [start_emulator(channel, 0, orders=10, seed=seed + i, days=0.9, shops=(SHOP,),
                           new_per_minute=new_per_minute) for i, channel in enumerate(channels)]


def start_sync(work: Path, run: Path, emulators: list) -> subprocess.Popen:
    """``deskapp sync`` on the pool, as a separate process, against the emulators."""
    from sync_all import write_config

    env = dict(os.environ, DESKAPP_LOG_FILE=str(run / "logs" / "sync.log"),
               DESKAPP_TOKEN_FILE=str(run / "tokens.json"))
    env.pop("DESKAPP_DB", None)
    config = run / "deskapp.toml"
    write_config(config, {emu.channel: (emu.url, {SHOP: emu.credentials(SHOP)}) for emu in emulators}, env)
    out = (run / "logs" / "sync.out").open("w")
    return subprocess.Popen([sys.executable, "-m", "deskapp", "--db", str(work), "sync", "--config", str(config)],
                            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


async def compare_sync(work: Path, truth: dict[tuple[str, str], str | None], *, until, wait: float = 30.0) -> dict:
    """The synced orders against the emulators' ground truth (frozen): exactly once, and as the
    platform has them. Asked again every half second while the sync catches up, for up to ``wait``
    seconds or until ``until()`` says the sync has gone."""
    from db.store import Store

    store = await Store.open(work)
    try:
        deadline = time.monotonic() + wait
        while True:
            result = await _compare(store, work, truth)
            if result["ok"] or time.monotonic() > deadline or until():
                break
            await asyncio.sleep(0.5)
    finally:
        await store.close()
    if not result["ok"]:
        for channel, order_id in result.pop("examples"):
            print(f"  sync not exactly once: {channel} {order_id}", file=sys.stderr)
    result.pop("examples", None)
    return result


async def _compare(store, work: Path, truth: dict[tuple[str, str], str | None]) -> dict:
    import dataclasses

    from connectors.checksum import order_checksum
    from db.privacy import FIELDS

    conn = sqlite3.connect(f"file:{work}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT o.id, o.channel, o.channel_order_id, o.status, "
        "(SELECT count(*) FROM timeline_event e WHERE e.order_id = o.id AND e.kind = 'created'), "
        "(SELECT src.snapshot FROM order_source src WHERE src.order_id = o.id) "
        "FROM orders o JOIN shop s ON s.id = o.shop_id WHERE s.code = ?", (SHOP,)).fetchall()
    conn.close()
    pool, created_not_once, held = {}, 0, 0
    for order_id, channel, channel_order_id, status, created, snapshot in rows:
        card = await store.order_card(order_id, reveal=FIELDS)  # compared whole, never masked
        if status == "hold" and snapshot:  # held by the order checks: the channel's own status is compared
            held += 1
            data = snapshot if isinstance(snapshot, dict) else json.loads(snapshot)
            card = dataclasses.replace(card, status=data["status"])
        pool[(channel, channel_order_id)] = order_checksum(card)
        created_not_once += created != 1
    missing = [k for k in truth if k not in pool]
    extra = [k for k in pool if k not in truth]
    different = [k for k in truth if k in pool and pool[k] != truth[k]]
    return {"truth": len(truth), "pool": len(pool), "missing": len(missing), "extra": len(extra),
            "different": len(different), "created_not_once": created_not_once, "held_by_checks": held,
            "ok": not (missing or extra or different or created_not_once),
            "examples": (missing + extra + different)[:10]}


# -- the invariants --------------------------------------------------------------------------------------


def check_writes(work: Path, results: list[dict]) -> dict:
    """Every acknowledged write is in the pool exactly once; nothing a load operator wrote is unacknowledged."""
    conn = sqlite3.connect(f"file:{work}?mode=ro", uri=True)
    try:
        logins = [r["login"] for r in results]
        marks = ",".join("?" * len(logins))
        memo_events = conn.execute(
            f"SELECT order_id, actor_id, from_value, to_value FROM timeline_event "
            f"WHERE kind = 'memo' AND actor_kind = 'operator' AND actor_id IN ({marks})", logins).fetchall()
        scan_events = conn.execute(
            f"SELECT order_id, actor_id, kind FROM timeline_event WHERE kind IN ('allocate', 'pick', 'pack', 'ship') "
            f"AND actor_kind = 'operator' AND actor_id IN ({marks})", logins).fetchall()
        memos: dict[int, str] = {}
        for r in results:
            for order_id, _ in r["acked_memos"]:
                if order_id not in memos:
                    memos[order_id] = conn.execute("SELECT seller_memo FROM orders WHERE id = ?", (order_id,)).fetchone()[0]
        integrity = conn.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        conn.close()
    memo_acked = memo_lost = memo_not_once = memo_not_in_final = 0
    for r in results:
        for order_id, token in r["acked_memos"]:
            memo_acked += 1
            # the event that added the token: by this operator, on this order, token new in to_value
            adding = [e for e in memo_events if e[0] == order_id and e[1] == r["login"]
                      and token in (e[3] or "") and token not in (e[2] or "")]
            memo_lost += not adding
            memo_not_once += len(adding) > 1
            memo_not_in_final += token not in (memos.get(order_id) or "")
    scans_acked = sum(len(r["acked_scans"]) for r in results)
    scan_counts: dict[tuple, int] = {}
    for event in scan_events:
        scan_counts[event] = scan_counts.get(event, 0) + 1
    scan_lost = scan_not_once = 0
    for r in results:
        for order_id, step in r["acked_scans"]:
            n = scan_counts.get((order_id, r["login"], step), 0)
            scan_lost += n == 0
            scan_not_once += n > 1
    unacked = len(memo_events) - memo_acked + len(scan_events) - scans_acked
    ok = (memo_lost == memo_not_once == memo_not_in_final == scan_lost == scan_not_once == 0
          and unacked == 0 and integrity == "ok")
    return {"memos_acked": memo_acked, "memo_events": len(memo_events), "memos_lost": memo_lost,
            "memos_not_once": memo_not_once, "memos_not_in_final": memo_not_in_final,
            "scans_acked": scans_acked, "scan_events": len(scan_events), "scans_lost": scan_lost,
            "scans_not_once": scan_not_once, "written_unacknowledged": unacked, "quick_check": integrity, "ok": ok}


def locked_in_logs(logs: Path) -> tuple[int, list[str]]:
    """Lines saying "database is locked" in every log and output file of the run."""
    found = []
    for path in sorted(logs.iterdir()):
        with path.open(encoding="utf-8", errors="replace") as f:
            found += [f"{path.name}: {line.strip()[:200]}" for line in f if "database is locked" in line.lower()]
    return len(found), found[:5]


def user_errors(results: list[dict]) -> dict:
    """What reached a person: error notifications or ones about locks, exceptions, timeouts."""
    shown = [n for r in results for n in r["notifications"]
             if n["severity"] == "error" or "locked" in n["text"].lower() or "锁" in n["text"]]
    return {"notifications": len(shown), "exceptions": sum(bool(r["exception"]) for r in results),
            "timeouts": sum(r["timeouts"] for r in results), "examples": [n["text"][:120] for n in shown[:5]]
            + [r["exception"][-300:] for r in results if r["exception"]][:3]
            + [e[:400] for r in results for e in r.get("errors", [])][:3]}


# -- the floor --------------------------------------------------------------------------------------------


def raw_baseline(work: Path, typed: list[list[str]], at_least: int = 2000) -> dict:
    """The lookups the sessions typed, as plain sqlite3 (the Store's probe statements and hit
    query): one thread per session, all at once, no think time; each list repeated until there
    are ``at_least`` samples in all."""
    from lookup import _RAW_HITS

    from db import search

    samples: list[float] = []
    lock = threading.Lock()
    asked = sum(len(t) for t in typed)
    if not asked:
        return figures([])
    repeat = -(-at_least // asked)
    start = threading.Barrier(len(typed))

    def one(queries: list[str]) -> None:
        conn = sqlite3.connect(f"file:{work}?mode=ro", uri=True, check_same_thread=False)
        mine = []
        start.wait()
        for q in queries * repeat:
            t0 = time.perf_counter()
            found = search.probes(q, dialect="sqlite")
            sql, args = search.compose(found)
            ranked: dict[int, int] = {}
            for probe_index, order_id in conn.execute(sql, args):
                rank = found[probe_index].rank
                if order_id not in ranked or rank < ranked[order_id]:
                    ranked[order_id] = rank
            if ranked:
                ids = sorted(ranked, key=lambda i: (ranked[i], -i))[: search.LIMIT]
                conn.execute(_RAW_HITS.format(marks=",".join("?" * len(ids))), ids).fetchall()
            mine.append(time.perf_counter() - t0)
        conn.close()
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=one, args=(queries,)) for queries in typed]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return figures(samples)


def raw_write_floor(work: Path, order_ids: list[int], n: int = 200) -> dict:
    """What a memo save costs SQLite alone: ``Store.set_seller_memo``'s statements on a plain
    sqlite3 connection (BEGIN IMMEDIATE, read, update, event, COMMIT; synchronous=FULL, as the app),
    one after another with nobody else writing — the least time a session holds the write lock.
    Runs on the run's pool after the checks (it adds memo events of its own)."""
    if not order_ids:
        return figures([])
    conn = sqlite3.connect(work, isolation_level=None)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=10000")
    samples = []
    for i in range(n):
        order_id = order_ids[i % len(order_ids)]
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        (memo,) = conn.execute("SELECT seller_memo FROM orders WHERE id = ?", (order_id,)).fetchone()
        now = time.strftime("%Y-%m-%d %H:%M:%S.000000")
        conn.execute("UPDATE orders SET seller_memo = ?, updated_at = ? WHERE id = ?", (f"{memo} F{i}", now, order_id))
        conn.execute("INSERT INTO timeline_event (order_id, at, actor_kind, actor_id, kind, from_value, to_value, message) "
                     "VALUES (?, ?, 'operator', 'load-floor', 'memo', ?, ?, '')", (order_id, now, memo, f"{memo} F{i}"))
        conn.execute("COMMIT")
        samples.append(time.perf_counter() - t0)
    conn.close()
    return figures(samples)


def figures(samples_s: list[float]) -> dict:
    ms = [s * 1000 for s in samples_s]
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50_ms": round(pct(ms, 50), 2), "p95_ms": round(pct(ms, 95), 2),
            "p99_ms": round(pct(ms, 99), 2), "max_ms": round(max(ms), 2)}


# -- the run ----------------------------------------------------------------------------------------------


def run(db: Path, *, workdir: Path, seconds: float = 300, sessions: int = 20, think: tuple[float, float] = (1.0, 3.0),
        channels: tuple[str, ...] = DEFAULT_CHANNELS, new_per_minute: float = 15.0, seed: int = 1,
        progress=print) -> dict:
    """The whole load test on a copy of ``db`` in ``workdir``; returns every figure and check."""
    workdir.mkdir(parents=True, exist_ok=True)
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    work = workdir / "pool.db"
    copy_db(db, work)
    roles = roles_for(sessions)
    begun = time.monotonic()
    specs = asyncio.run(prepare(work, roles, seconds, seed))
    progress(f"  pool prepared in {time.monotonic() - begun:.1f} s")
    emulators = start_emulators(list(channels), new_per_minute, seed)
    procs: list[subprocess.Popen] = []
    sync = None
    loads: list[float] = []
    try:
        sync = start_sync(work, workdir, emulators)
        go = workdir / "go.json"
        for spec in specs:
            spec.update(db=str(work), seed=seed * 1000 + spec["index"], think=list(think), go=str(go),
                        ready=str(workdir / f"ready-{spec['index']:02d}"),
                        result=str(workdir / f"result-{spec['index']:02d}.json"),
                        log=str(logs / f"session-{spec['index']:02d}.log"))
            path = workdir / f"spec-{spec['index']:02d}.json"
            path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
            out = (logs / f"session-{spec['index']:02d}.out").open("w")
            procs.append(subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", str(path)],
                                          cwd=ROOT, stdout=out, stderr=subprocess.STDOUT))
        started = time.monotonic()
        while not all(Path(s["ready"]).exists() for s in specs):
            if any(p.poll() is not None for p in procs) or sync.poll() is not None:
                break  # a session (or the sync) died starting: go on, it is counted below
            if time.monotonic() - started > 60 + 10 * sessions:
                break
            time.sleep(0.1)
        progress(f"  {sessions} sessions ready in {time.monotonic() - started:.1f} s; running {seconds:g} s")
        end = time.time() + seconds
        go.write_text(json.dumps({"end": end}), encoding="utf-8")
        while time.time() < end:
            loads.append(os.getloadavg()[0])
            time.sleep(min(5.0, max(0.0, end - time.time())))
        for proc in procs:
            try:
                proc.wait(timeout=max(1.0, TASK_TIMEOUT_S + 60 - max(0.0, time.time() - end)))
            except subprocess.TimeoutExpired:
                proc.terminate()  # it writes its result, saying where it was busy
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        progress(f"  sessions ended {time.time() - end:.1f} s after the end")
        # New orders stop; the sync catches up with what the platforms hold, then stops cleanly.
        truth: dict[tuple[str, str], str | None] = {}
        for emu in emulators:
            with emu.world.lock:
                emu.world.new_per_minute = 0
                emu.world.clock.freeze()
            truth.update({(emu.channel, entry["id"]): entry["checksum"] for entry in emu.truth()})
        sync_check = asyncio.run(compare_sync(work, truth, until=lambda: sync.poll() is not None))
        sync_alive = sync.poll() is None
        sync_cpu = _cpu_seconds(sync.pid)
        sync.send_signal(signal.SIGTERM)
        sync_code = sync.wait(timeout=30)
        progress(f"  sessions and sync done {time.time() - end:.1f} s after the end")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        if sync is not None and sync.poll() is None:
            sync.kill()
        for emu in emulators:
            emu.stop()

    results = []
    for spec in specs:
        path = Path(spec["result"])
        if path.exists():
            results.append(json.loads(path.read_text(encoding="utf-8")))
        else:  # the process died without a word: an exception the user would have seen
            results.append({"login": spec["login"], "role": spec["role"], "latencies": {}, "acked_memos": [],
                            "acked_scans": [], "refused": {}, "misses": 0, "notifications": [], "timeouts": 0,
                            "slow": [], "typed": [],
                            "exception": f"session {spec['index']} ended without a result (exit {procs[spec['index']].returncode})"})
    writes = check_writes(work, results)
    errors = user_errors(results)
    locked, locked_lines = locked_in_logs(logs)
    errors.update(locked_in_logs=locked, sync_exit=sync_code, sync_alive_at_end=sync_alive)
    errors["examples"] += locked_lines
    errors["total"] = (errors["notifications"] + errors["exceptions"] + errors["timeouts"] + locked
                       + (not sync_alive) + (sync_code != 0))
    latencies: dict[str, list[float]] = {k: [] for k in KINDS}
    for r in results:
        for kind, values in r["latencies"].items():
            latencies[kind].extend(values)
    per_kind = {kind: figures(values) for kind, values in latencies.items()}
    inside = {name: figures([v for r in results for v in r.get(name, [])])
              for name in ("write_wait", "write_hold", "loop_lag")}
    cpu = {role: round(sum(r.get("cpu_s", 0) for r in results if r["role"] == role), 1) for role in set(roles)}
    # CPU of the sessions during the run: while agents think (timers, the queue's refresh, garbage
    # collections) and per timed action (the typing, searching and painting around it included)
    run_cpu = sum(r.get("cpu_run_s", 0) for r in results)
    idle_cpu = sum(r.get("cpu_thinking_s", 0) for r in results)
    timed = sum(len(v) for r in results for v in r["latencies"].values())
    cpu_use = {"sessions_run_s": round(run_cpu, 1), "while_thinking_s": round(idle_cpu, 1),
               "per_action_ms": round((run_cpu - idle_cpu) / timed * 1000, 1) if timed else None,
               "cores_used": round(run_cpu / seconds, 2)}
    headline = figures([v for kind in HEADLINE for v in latencies[kind]])
    baseline = raw_baseline(work, [r["typed"] for r in results])
    write_floor = raw_write_floor(work, sorted({order_id for r in results for order_id, _ in r["acked_memos"]}))
    slow = sorted((t, r["login"], kind, ms) for r in results for kind, t, ms in r["slow"])
    (workdir / "slow.tsv").write_text("".join(  # over budget, by wall time, to set beside the logs
        f"{_clock(t)}\t{login}\t{kind}\t{ms}\n" for t, login, kind, ms in slow), encoding="utf-8")
    actions = sum(len(v) for v in latencies.values())
    return {
        "bench": "load", "sessions": sessions, "roles": {r: roles.count(r) for r in sorted(set(roles))},
        "seconds": seconds, "think_s": list(think), "channels": list(channels), "new_per_minute": new_per_minute,
        "per_kind": per_kind, "keypress": headline,
        "budget_p95_ms": BUDGET_MS, "budget_ok": headline.get("p95_ms", float("inf")) <= BUDGET_MS,
        "actions": actions, "actions_per_s": round(actions / seconds, 2),
        "lookup_misses": sum(r["misses"] for r in results), "over_budget": len(slow),
        "scan_refusals": _merge(r["refused"] for r in results),
        "raw_sqlite_lookup": baseline, "raw_threads": len(results), "raw_sqlite_memo_write": write_floor, "inside_sessions": inside,
        "session_cpu_s": cpu, "sync_cpu_s": sync_cpu, "cpu": cpu_use, "writes": writes, "sync": sync_check, "errors": errors,
        "invariants_ok": writes["ok"] and sync_check["ok"],
        "load_avg_1m_mean": round(sum(loads) / len(loads), 2) if loads else None,
        "load_avg_1m_max": round(max(loads), 2) if loads else None, "cpus": os.cpu_count(),
    }


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a running process (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1)
    except (OSError, IndexError, ValueError):
        return None


def _clock(t: float) -> str:
    """Wall time as the log files write it (HH:MM:SS,mmm)."""
    return time.strftime("%H:%M:%S", time.localtime(t)) + f",{int(t % 1 * 1000):03d}"


def _merge(dicts) -> dict:
    out: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


# -- one session (its own process) ----------------------------------------------------------------------


class Timeout(Exception):
    """The answer did not show within ANSWER_TIMEOUT_S."""


class Session:
    """One agent: the real app, headless at 80×24, driven with keys at the agent's pace."""

    def __init__(self, spec: dict, app, pilot) -> None:
        self.spec = spec
        self.app = app
        self.pilot = pilot
        self.rng = random.Random(spec["seed"])
        self.latencies: dict[str, list[float]] = {k: [] for k in KINDS}
        self.acked_memos: list[tuple[int, str]] = []
        self.acked_scans: list[tuple[int, str]] = []
        self.refused: dict[str, int] = {}
        self.misses = 0
        self.timeouts = 0
        self.errors: list[str] = []
        self.memo_seq = 0
        self.end = float("inf")  # set when the run starts
        self.cpu_run = self.cpu_thinking = 0.0  # CPU seconds of this process while it worked / thought
        self.slow: list[tuple[str, float, float]] = []
        self.typed: list[str] = []  # the lookups asked, for the raw floor

    # -- primitives

    def key(self, key: str) -> None:
        """Post one key event, as the terminal driver does (no waiting: the caller times the answer)."""
        from textual import events
        from textual.keys import _character_to_key

        if len(key) == 1:
            event = events.Key(key if key.isalnum() else _character_to_key(key), key)
        else:
            event = events.Key(key, {"enter": "\r", "escape": "\x1b"}.get(key))
        self.app.post_message(event)

    async def until(self, predicate, timeout: float = ANSWER_TIMEOUT_S, what: str = "") -> None:
        """Poll ``predicate`` until it holds: every millisecond at first, then every 2 % of the time
        waited so far (at most 10 ms) — a session waiting seconds for a lock must not spend the CPU
        its neighbours need on looking."""
        started = time.perf_counter()
        while not predicate():
            waited = time.perf_counter() - started
            if waited > timeout:
                raise Timeout(what)
            await asyncio.sleep(min(0.01, max(0.001, waited * 0.02)))

    async def painted(self, what: str = "") -> None:
        """Until the screen has been refreshed once more (at once if it is closing)."""
        done = asyncio.get_running_loop().create_future()
        if self.app.screen.call_after_refresh(lambda: done.done() or done.set_result(None)):
            try:
                await asyncio.wait_for(done, ANSWER_TIMEOUT_S)
            except TimeoutError:
                raise Timeout(f"{what}: the paint after it") from None

    async def timed(self, kind: str, key: str, predicate) -> float:
        """Press ``key``; wait for ``predicate`` and the next paint; record keypress → answer."""
        t0 = time.perf_counter()
        self.key(key)
        await self.until(predicate, what=kind)
        await self.painted(kind)
        elapsed = time.perf_counter() - t0
        self.latencies[kind].append(elapsed)
        if elapsed * 1000 > BUDGET_MS:  # when, to set beside the logs of the other processes
            self.slow.append((kind, round(time.time() - elapsed, 3), round(elapsed * 1000, 1)))
        return elapsed

    async def think(self, scale: float = 1.0) -> None:
        lo, hi = self.spec["think"]
        cpu = time.process_time()
        await asyncio.sleep(max(0.0, min(self.rng.uniform(lo, hi) * scale, self.end - time.time())))
        self.cpu_thinking += time.process_time() - cpu  # timers, the queue's refresh, collections

    # -- customer service

    def lookup_screen(self):
        from deskapp.screens.lookup import LookupScreen

        return self.app.screen if isinstance(self.app.screen, LookupScreen) else None

    async def to_lookup(self) -> None:
        """Back to an empty search box (Esc: card → lookup, results → box, box → cleared)."""
        for _ in range(6):
            screen = self.lookup_screen()
            if screen is not None:
                box = screen.query_one("#search")
                if box.has_focus and not box.value:
                    return
            await self.pilot.press("escape")
        raise Timeout("an empty search box after Esc ×6")

    async def lookup_and_card(self, target: dict, *, edit: bool) -> None:
        from deskapp.screens.card import MemoDialog

        await self.to_lookup()
        screen = self.lookup_screen()
        table = screen.results
        query = target["query"]
        await self.pilot.press(*query[:-1])  # the agent types; every keystroke searches
        self.typed.append(query)
        await self.timed("lookup", query[-1], lambda: screen._shown_query == query)
        ids = [hit.id for hit in table._hits]
        if target["id"] not in ids:
            self.misses += 1  # new orders pushed it down, say: the agent would scroll; we move on
            return
        await self.think(0.3)  # reading the list
        row = ids.index(target["id"])
        if row:
            await self.pilot.press("down", *["down"] * row)
        if table.highlighted_order != target["id"]:
            self.misses += 1
            return
        card = self.app.card_screen
        await self.timed("card", "enter", lambda: self.app.screen is card and card.order_id == target["id"]
                         and card.card is not None)
        await self.think()
        if not edit:
            return
        self.memo_seq += 1
        token = f"LD{self.spec['index']:02d}X{self.memo_seq:04d}"
        await self.pilot.press("m")
        # as a person does, type once the box shows its cursor (focus comes a message after the push)
        await self.until(lambda: isinstance(self.app.screen, MemoDialog) and self.app.screen.focused is not None
                         and self.app.screen.focused.id == "memo", what="the memo dialog after m")
        await self.pilot.press("end", "space", *token)
        await self.timed("memo", "enter", lambda: self.app.screen is card and card.card is not None
                         and token in card.card.seller_memo)
        self.acked_memos.append((target["id"], token))
        await self.think()

    async def look_at_queue(self) -> None:
        from deskapp.screens.queue import QueueScreen

        await self.to_lookup()
        await self.timed("queue", "f5", lambda: isinstance(self.app.screen, QueueScreen) and self.app.screen.loaded)
        await self.think(0.5)
        await self.pilot.press("f5")  # the board
        await self.think()
        await self.pilot.press("escape")

    # -- warehouse

    async def open_queue(self):
        from deskapp.screens.queue import QueueScreen

        if not isinstance(self.app.screen, QueueScreen):
            await self.pilot.press("f5")
        await self.until(lambda: isinstance(self.app.screen, QueueScreen) and self.app.screen.loaded,
                         what="the queue screen")
        screen = self.app.screen
        if not hasattr(screen, "load_results"):
            screen.load_results = []
            shown = screen.scanned

            def scanned(result) -> None:  # what the screen shows, kept for the check
                shown(result)
                screen.load_results.append(result)

            screen.scanned = scanned
        return screen

    async def scan(self, order: dict) -> bool:
        """One scan of the order's next step; False when refused (the order is left)."""
        screen = await self.open_queue()
        await self.pilot.press(*order["order_no"])  # the barcode gun types the number
        before = len(screen.load_results)
        await self.timed("scan", "enter", lambda: len(screen.load_results) > before)
        result = screen.load_results[-1]
        step = order["steps"][0]
        if result.ok and result.step is not None and result.step.value == step:
            self.acked_scans.append((order["id"], step))
            order["steps"].pop(0)
            return True
        self.refused[result.code] = self.refused.get(result.code, 0) + 1
        return False

    # -- the agent's day

    async def work(self, end: float) -> int:
        role = self.spec["role"]
        lookups, memos = list(self.spec["lookups"]), list(self.spec["memos"])
        orders = [o for o in self.spec["scans"] if o["steps"]]
        edits = self.spec["edit_share"]
        done = 0
        if role == "warehouse":
            await self.open_queue()
        while time.time() < end:
            if role == "warehouse" and orders:
                task = self.scan(orders[0])
            elif role == "supervisor" and self.rng.random() < 0.25:
                task = self.look_at_queue()
            elif lookups:
                edit = bool(memos) and self.rng.random() < edits
                pool = memos if edit else lookups
                target = pool.pop(0)
                pool.append(target)  # round again if the run outlasts them
                task = self.lookup_and_card(target, edit=edit)
            else:
                task = asyncio.sleep(1)
            try:
                ok = await self.watched(task)
                if role == "warehouse" and orders and (ok is False or not orders[0]["steps"]):
                    orders.pop(0)  # refused, or through its steps
                done += 1
            except Timeout:
                self.timeouts += 1
                await self.recover()
            await self.think()
        return done

    async def watched(self, coro):
        """Run one task of the agent; stuck for longer than any answer may take, it is a timeout,
        with where it was stuck kept for the report (the pilot's own waits have no deadline)."""
        task = asyncio.ensure_future(coro)
        done, _ = await asyncio.wait({task}, timeout=TASK_TIMEOUT_S)
        if task in done:
            try:
                return task.result()
            except Timeout as timeout:
                self.errors.append(f"timeout waiting for {timeout}; {self.state()}")
                raise
        self.errors.append(f"stuck: {_where([task])}; {self.state()}")
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Timeout):
            pass
        raise Timeout("a stuck task")

    def state(self) -> str:
        """What the app showed and was doing when an answer did not come (for the report)."""
        app = self.app
        focused = app.screen.focused
        value = getattr(focused, "value", None)
        card = getattr(app, "card_screen", None)
        memo = card.card.seller_memo[-40:] if card is not None and card.card is not None else None
        workers = [f"{w.name}:{w.state.name}" for w in app.workers if not w.is_finished][:8]
        return (f"screens {[type(s).__name__ for s in app.screen_stack]}, focus {type(focused).__name__}"
                f"{f' {value[-40:]!r}' if isinstance(value, str) else ''}, card memo {memo!r}, workers {workers}")

    async def recover(self) -> None:
        try:
            if self.spec["role"] == "warehouse":
                await self.open_queue()
            else:
                await self.to_lookup()
        except Timeout:
            pass


async def session_main(spec: dict, result: dict) -> dict:
    """Run one session until the end time in the go file; what it measured and wrote, in ``result``."""
    from db.lazy import LazyStore, quick_reader
    from deskapp.__main__ import _setup_logging, make_app
    from deskapp.settings import Settings
    from widgets.i18n import set_language

    set_language("zh")
    _setup_logging(Path(spec["log"]))
    result.update(login=spec["login"], role=spec["role"], notifications=[], exception=None)
    reader = quick_reader(spec["db"])
    store = LazyStore(reader, login=spec["login"])
    name = await reader.operator_name(spec["login"])
    app = make_app(store, Settings(db=spec["db"], operator=spec["login"], language="zh"), operator_name=name)
    notify = app.notify

    def noted(message, *args, **kwargs):  # every toast, kept for the check
        result["notifications"].append({"severity": kwargs.get("severity", "information"), "text": str(message)})
        return notify(message, *args, **kwargs)

    app.notify = noted
    session = None
    writes: dict[str, list[float]] = {"wait": [], "hold": []}
    lags: list[float] = []
    lag_task = None
    try:
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            session = Session(spec, app, pilot)
            await app._card_screen_ready.wait()  # started, as an agent's app is before the first key
            _watch_writes(await app.full_store(), writes)
            lag_task = asyncio.create_task(_watch_loop(lags))
            if spec["role"] == "warehouse":
                await session.open_queue()
            Path(spec["ready"]).touch()
            go = Path(spec["go"])
            while not go.exists():
                await asyncio.sleep(0.05)
            session.end = json.loads(go.read_text(encoding="utf-8"))["end"]
            cpu = time.process_time()
            await session.think()  # agents do not all start at once
            await session.work(session.end)
            session.cpu_run = time.process_time() - cpu
    except Exception:  # noqa: BLE001 - counted: an exception in a session reached its user
        result["exception"] = traceback.format_exc()
    except asyncio.CancelledError:  # SIGTERM from the run: still busy long after the end
        result["exception"] = "terminated, still working long after the end: " + result.get("where", "")
    finally:
        if lag_task is not None:
            lag_task.cancel()
        await store.close()
    s = session
    result.update(latencies=s.latencies if s else {}, acked_memos=s.acked_memos if s else [],
                  acked_scans=s.acked_scans if s else [], refused=s.refused if s else {},
                  misses=s.misses if s else 0, timeouts=s.timeouts if s else 0, errors=s.errors if s else [],
                  slow=s.slow if s else [], typed=s.typed if s else [], cpu_s=round(time.process_time(), 2),
                  write_wait=writes["wait"], write_hold=writes["hold"], loop_lag=lags,
                  cpu_run_s=round(s.cpu_run, 2) if s else 0, cpu_thinking_s=round(s.cpu_thinking, 2) if s else 0)
    return result


def _watch_writes(store, into: dict[str, list[float]]) -> None:
    """Time every write transaction of this session: waiting for SQLite's write lock (BEGIN
    IMMEDIATE) and holding it (to COMMIT). Wraps the Store's ``write`` on this instance only."""
    from contextlib import asynccontextmanager

    write = store.write

    @asynccontextmanager
    async def timed_write():
        t0 = time.perf_counter()
        async with write() as conn:
            t1 = time.perf_counter()
            yield conn
        into["wait"].append(t1 - t0)
        into["hold"].append(time.perf_counter() - t1)

    store.write = timed_write


async def _watch_loop(into: list[float], every: float = 0.1) -> None:
    """How late the event loop wakes a 100 ms timer: CPU starvation and blocking work both show here."""
    loop = asyncio.get_running_loop()
    while True:
        t0 = loop.time()
        await asyncio.sleep(every)
        into.append(loop.time() - t0 - every)


def _where(tasks) -> str:
    """Where this script's tasks are suspended, innermost last (a suspended task's own stack shows
    only its outermost frame: the chain of awaited coroutines is followed instead)."""
    out = []
    for task in tasks:
        chain, coro = [], task.get_coro()
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is not None:
                chain.append(f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno} {frame.f_code.co_name}")
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        if any(link.startswith("load.py") for link in chain):
            out.append(" → ".join(chain[-6:]))
    return " | ".join(out)


def worker(spec_path: Path) -> int:
    spec = json.loads(spec_path.read_text(encoding="utf-8"))

    result: dict = {}

    async def main() -> dict:
        task = asyncio.create_task(session_main(spec, result))

        def terminated() -> None:  # say where it was busy, then stop it: the result is still written
            result["where"] = _where(asyncio.all_tasks())
            task.cancel()

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminated)
        return await task

    asyncio.run(main())
    target = Path(spec["result"])
    partial = target.with_suffix(".part")
    partial.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    partial.replace(target)
    return 0


# -- the command --------------------------------------------------------------------------------------


def report(figs: dict, source: Path, orders: int) -> None:
    roles = figs["roles"]
    print(f"\nLoad on {source.name} ({orders:,} orders): {figs['sessions']} sessions "
          f"({roles.get('cs', 0)} cs, {roles.get('warehouse', 0)} warehouse, {roles.get('supervisor', 0)} supervisor)"
          f" + deskapp sync ({len(figs['channels'])} shops, {figs['new_per_minute']:g} new orders/min each), "
          f"{figs['seconds']:g} s, think {figs['think_s'][0]:g}–{figs['think_s'][1]:g} s")
    print(f"load average (1 min) during the run: mean {figs['load_avg_1m_mean']} max {figs['load_avg_1m_max']}"
          f" on {figs['cpus']} CPUs")
    row = "{:<34}{:>6}{:>9}{:>9}{:>9}{:>9}"
    print(row.format("keypress → answer on screen (ms)", "n", "p50", "p95", "p99", "max"))
    names = {"lookup": "lookup: last key → row shown", "card": "card: Enter → order shown",
             "memo": "memo: Enter → saved memo shown", "scan": "scan: Enter → result line",
             "queue": "queue: F5 → queue shown (full read)"}
    for kind in KINDS:
        f = figs["per_kind"][kind]
        if f["n"]:
            print(row.format(names[kind], f["n"], f["p50_ms"], f["p95_ms"], f["p99_ms"], f["max_ms"]))
    k = figs["keypress"]
    if k["n"]:
        verdict = "within" if figs["budget_ok"] else "OVER"
        print(row.format("all of lookup/card/memo/scan", k["n"], k["p50_ms"], k["p95_ms"], k["p99_ms"], k["max_ms"])
              + f"   p95 {verdict} the {BUDGET_MS:g} ms budget")
    b = figs["raw_sqlite_lookup"]
    if b["n"]:
        print(row.format(f"floor: raw sqlite3, {figs['raw_threads']} threads", b["n"], b["p50_ms"], b["p95_ms"],
                         b["p99_ms"], b["max_ms"]))
    w, s, e = figs["writes"], figs["sync"], figs["errors"]
    f = figs["raw_sqlite_memo_write"]
    if f["n"]:
        print(row.format("floor: raw sqlite3 memo write", f["n"], f["p50_ms"], f["p95_ms"], f["p99_ms"], f["max_ms"])
              + "   BEGIN IMMEDIATE … COMMIT alone")
    for name, label in (("write_wait", "inside: waiting for the write lock"), ("write_hold", "inside: holding it, BEGIN → COMMIT"),
                        ("loop_lag", "inside: event loop lag (100 ms timer)")):
        f = figs["inside_sessions"][name]
        if f["n"]:
            print(row.format(label, f["n"], f["p50_ms"], f["p95_ms"], f["p99_ms"], f["max_ms"]))
    cpu, use = figs["session_cpu_s"], figs["cpu"]
    print(f"CPU seconds (start-up included): sessions {' · '.join(f'{role} {v}' for role, v in sorted(cpu.items()))}"
          f" · deskapp sync {figs['sync_cpu_s']}; during the run the sessions used {use['cores_used']} cores:"
          f" {use['while_thinking_s']} s while agents thought, {use['per_action_ms']} ms per timed action")
    print(f"actions {figs['actions']} = {figs['actions_per_s']}/s · lookups not showing the order {figs['lookup_misses']}"
          f" · scans refused {figs['scan_refusals'] or 0}")
    print(f"writes: memos acked {w['memos_acked']} (events {w['memo_events']}, lost {w['memos_lost']}, doubled "
          f"{w['memos_not_once']}, missing from the final memo {w['memos_not_in_final']}) · scans acked "
          f"{w['scans_acked']} (events {w['scan_events']}, lost {w['scans_lost']}, doubled {w['scans_not_once']})"
          f" · unacknowledged {w['written_unacknowledged']} · quick_check {w['quick_check']}")
    print(f"sync: {s['truth']} orders on the platforms, {s['pool']} in the pool · missing {s['missing']} · extra "
          f"{s['extra']} · different {s['different']} · created not once {s['created_not_once']}"
          f" · held by checks {s['held_by_checks']}")
    print(f"user-visible errors {e['total']}: error/lock notifications {e['notifications']} · exceptions "
          f"{e['exceptions']} · timeouts {e['timeouts']} · 'database is locked' in logs {e['locked_in_logs']}"
          f" · sync exit {e['sync_exit']}")
    for example in e["examples"]:
        print(f"  e.g. {example}")
    print(f"invariants: {'ok' if figs['invariants_ok'] else 'BROKEN'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--db", type=Path, help="the demo database to copy (default: bench/data/demo-<orders>.db)")
    parser.add_argument("--orders", type=int, default=50_000, help="size when the database is built")
    parser.add_argument("--think", default="1,3", help="think time between actions, seconds: min,max")
    parser.add_argument("--channels", default=",".join(DEFAULT_CHANNELS))
    parser.add_argument("--new-per-minute", type=float, default=15.0, help="new orders per channel per minute")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the run directory (pool, logs) afterwards")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        sys.exit(worker(args.worker))
    source = args.db or ensure_demo(DATA / f"demo-{args.orders // 1000}k.db", args.orders)
    conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    conn.close()
    lo, hi = (float(x) for x in args.think.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="deskapp-load-"))
    figs = run(source, workdir=workdir, seconds=args.seconds, sessions=args.sessions, think=(lo, hi),
               channels=tuple(args.channels.split(",")), new_per_minute=args.new_per_minute, seed=args.seed,
               progress=lambda text: print(text, file=sys.stderr, flush=True))
    report(figs, source, orders)
    keep = args.keep or figs["errors"]["total"] or not figs["invariants_ok"]
    if keep:
        print(f"run directory (pool, logs): {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    figs["db"], figs["orders"] = str(source), orders
    print(json.dumps(figs, ensure_ascii=False))


if __name__ == "__main__":
    main()
