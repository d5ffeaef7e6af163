"""Rules and queue speed: re-prioritising 50,000 open orders, and sorting the queue, next to floors.

    .venv/bin/python bench/rules.py [--orders 50000] [--repeat 7] [--rules deskapp.rules.example.toml] [--seed 1]

1. Synthetic open orders (``OrderFacts``; not timed), shaped like a busy multi-channel pool: VIP
   levels, notes, live-stream and group-buy tags, presale, fresh SKUs, repeat buyers.
2. **Full recompute**: ``RulesFile.evaluate_many`` over all of them with the documented example
   rules file (10 rules: 5 priority, 3 tag, 1 hold, 1 merge), ``--repeat`` times: p50/p99 and
   µs per order. **Rule change**: ``RulesFile.load`` (validate + compile) then the recompute — what
   must fit in the 2 s between saving the file and the queue showing the new order.
   **Floor**: the same ten conditions as plain Python lambdas over the same facts (no engine, no
   validation, no explanations) — what any engine is measured against.
3. **Deadlines and board**: ``deadline`` + ``board_colour`` for every order (the per-tick work).
4. **Queue sort**: 50,000 ``queue_key(priority, deadline)`` tuples sorted in Python, next to a raw
   SQLite ``ORDER BY rank, deadline`` over the same rows in an in-memory table (no index, then
   with an index on (rank, deadline, id)).
5. ``--engines``: the same ten rules in ``rule-engine`` and ``cel-python`` (when installed; they
   are not dependencies), µs per order — the figures behind choosing CEL.

Ends with one JSON line of all figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import ROOT, summary

from deskapp.services.rules import OrderFacts, RulesFile, _getters, queue_key
from deskapp.services.sla import board_colour, board_counts

NOW = datetime(2026, 11, 11, 12, tzinfo=UTC)  # inside the example file's 双11 window


def synthetic_facts(n: int, seed: int) -> list[OrderFacts]:
    """Open orders placed over the last two days."""
    rng = random.Random(seed)
    channels = ["taobao", "tmall", "pdd", "douyin", "kuaishou", "miniapp"]
    out = []
    for i in range(n):
        created = NOW - timedelta(seconds=rng.randrange(2 * 86400))
        channel = rng.choice(channels)
        promised = created + timedelta(hours=rng.choice((24, 48))) if channel in ("pdd", "douyin") else None
        presale = rng.random() < 0.04
        skus = tuple(rng.choice(("FRESH-APPLE", "SKU-1001", "SKU-2002", "SKU-3003", "SKU-4004"))
                     for _ in range(rng.randrange(1, 4)))
        out.append(OrderFacts(
            channel=channel, shop=f"{channel}-main" if rng.random() < 0.7 else "tb-flagship",
            amount_fen=rng.choice((rng.randrange(990, 30000), rng.randrange(30000, 900000))),
            created_at=created, paid_at=created + timedelta(seconds=rng.randrange(5, 600)), order_id=i + 1,
            vip_level=rng.choice(("", "", "", "C", "B", "A", "S")),
            buyer_note=rng.choice(("", "", "", "请尽快发货", "加急！明天要用", "送人的，不要放发票")),
            seller_memo=rng.choice(("", "", "已核对地址", "加急")),
            channel_tags=tuple(rng.sample(("直播", "社群团购", "新客"), rng.randrange(0, 3))),
            presale=presale, presale_ship_at=NOW + timedelta(days=rng.randrange(1, 10)) if presale else None,
            promised_ship_at=promised, is_live=rng.random() < 0.15, skus=skus, item_count=len(skus),
            province="浙江省", city=rng.choice(("杭州市", "宁波市", "上海市", "北京市")), warehouse="杭州仓",
            returns_30d=rng.choice((0, 0, 0, 0, 1, 2, 3, 5)), orders_24h_same_address=rng.choice((1, 1, 1, 1, 2, 3, 4)),
        ))
    return out


def python_floor(facts: list[OrderFacts]) -> list[tuple[bool, ...]]:
    """The example file's ten conditions as Python lambdas (promotion: the 双11 window)."""
    promo_end = datetime(2026, 11, 11, 16, tzinfo=UTC)
    promo_start = datetime(2026, 11, 10, 12, tzinfo=UTC)

    def promo_left(f: OrderFacts) -> float:
        return (promo_end - f.created_at).total_seconds() / 60 if promo_start <= f.created_at < promo_end else 1e18

    conditions = (
        lambda f: f.vip_level in ("S", "A") and f.amount_fen / 100 > 5000,
        lambda f: any(s.startswith("FRESH-") for s in f.skus),
        lambda f: "加急" in f"{f.buyer_note}\n{f.seller_memo}",
        lambda f: f.is_live and promo_left(f) <= 10,
        lambda f: f.amount_fen / 100 >= 2000,
        lambda f: f.is_live or "直播" in f.channel_tags,
        lambda f: "社群团购" in f.channel_tags or f.channel == "miniapp",
        lambda f: f.presale,
        lambda f: f.returns_30d >= 3,
        lambda f: f.orders_24h_same_address >= 3,
    )
    return [tuple(c(f) for c in conditions) for f in facts]


# The same ten conditions in the other engines' syntax (for --engines: the choice of CEL).
_RULE_ENGINE = (
    'vip_level in ["S", "A"] and amount > 5000', '[s for s in skus if s =~ "FRESH-.*"]', 'notes =~~ "加急"',
    'is_live and promo_minutes_left <= 10', "amount >= 2000", 'is_live or "直播" in channel_tags',
    '"社群团购" in channel_tags or channel == "miniapp"', "presale", "returns_30d >= 3",
    "orders_24h_same_address >= 3",
)


def other_engines(facts: list[OrderFacts], rules: RulesFile, sample: int) -> dict[str, float | None]:
    """µs per order for the same rules in rule-engine and cel-python, where installed (not deps)."""
    import math

    getters = _getters(rules, NOW)
    names = ("vip_level", "amount", "skus", "notes", "is_live", "promo_minutes_left", "channel_tags", "channel",
             "presale", "returns_30d", "orders_24h_same_address")
    rows = [{k: getters[k](f) for k in names} for f in facts[:sample]]
    for row in rows:
        row["skus"], row["channel_tags"] = list(row["skus"]), list(row["channel_tags"])
    out: dict[str, float | None] = {"rule_engine_us_per_order": None, "cel_python_us_per_order": None}
    try:
        import rule_engine
    except ImportError:
        print("  rule-engine not installed: pip install rule-engine to compare")
    else:
        t = rule_engine.DataType
        types = {"vip_level": t.STRING, "amount": t.FLOAT, "skus": t.ARRAY(t.STRING), "notes": t.STRING,
                 "is_live": t.BOOLEAN, "promo_minutes_left": t.FLOAT, "channel_tags": t.ARRAY(t.STRING),
                 "channel": t.STRING, "presale": t.BOOLEAN, "returns_30d": t.FLOAT, "orders_24h_same_address": t.FLOAT}
        context = rule_engine.Context(type_resolver=rule_engine.type_resolver_from_dict(types))
        compiled = [rule_engine.Rule(text, context=context) for text in _RULE_ENGINE]
        started = time.perf_counter()
        for row in rows:
            [bool(r.evaluate(row)) for r in compiled]
        out["rule_engine_us_per_order"] = round((time.perf_counter() - started) / len(rows) * 1e6, 1)
    try:
        import celpy
    except ImportError:
        print("  cel-python not installed: pip install cel-python to compare")
    else:
        env = celpy.Environment()
        programs = [env.program(env.compile(r.when)) for r in rules.rules]
        started = time.perf_counter()
        for row in rows:
            activation = {k: celpy.celtypes.DoubleType(v) if isinstance(v, float) and math.isinf(v)
                          else celpy.json_to_cel(v) for k, v in row.items()}
            [bool(p.evaluate(activation)) for p in programs]
        out["cel_python_us_per_order"] = round((time.perf_counter() - started) / len(rows) * 1e6, 1)
    return out


def timed(fn, repeat: int) -> tuple[list[float], object]:
    samples, result = [], None
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - started)
    return samples, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--rules", type=Path, default=ROOT / "deskapp.rules.example.toml")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--engines", action="store_true",
                        help="also time rule-engine and cel-python on 2,000 orders, if installed")
    args = parser.parse_args()

    facts = synthetic_facts(args.orders, args.seed)
    rules = RulesFile.load(args.rules)  # also pays the one-off `import cel` (not timed below)
    n = len(facts)
    gc.collect()
    gc.freeze()  # as the app does after start-up: the pool is not garbage the collector must scan

    rules.evaluate_many(facts[:1000], NOW)  # warm up
    recompute, decisions = timed(lambda: rules.evaluate_many(facts, NOW), args.repeat)
    change, _ = timed(lambda: RulesFile.load(args.rules).evaluate_many(facts, NOW), max(3, args.repeat // 2))
    load, _ = timed(lambda: RulesFile.load(args.rules), args.repeat)
    floor, _ = timed(lambda: python_floor(facts), args.repeat)
    errors = sum(1 for d in decisions if d.errors)

    printed = [i % 3 == 0 for i in range(n)]
    picked = [i % 5 == 0 for i in range(n)]

    def board_pass() -> tuple[list, dict]:
        dues = [rules.deadline(f) for f in facts]
        counts = board_counts(zip(dues, printed, picked, strict=True), NOW, rules.board)
        return dues, counts

    board, (dues, counts) = timed(board_pass, args.repeat)
    assert sum(counts.values()) == n
    colours_only, _ = timed(lambda: [board_colour(d, NOW, printed=p, picked=k, board=rules.board)
                                     for d, p, k in zip(dues, printed, picked, strict=True)], args.repeat)

    keys = [(queue_key(d.priority, due), f.order_id) for d, due, f in zip(decisions, dues, facts, strict=True)]
    py_sort, ordered = timed(lambda: sorted(keys), args.repeat)

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE q (id INTEGER PRIMARY KEY, rank INTEGER, deadline TEXT)")
    conn.executemany("INSERT INTO q VALUES (?, ?, ?)",
                     [(oid, rank, due.isoformat()) for (rank, due), oid in keys])
    sql = "SELECT id FROM q ORDER BY rank, deadline, id"
    raw_sort, raw_rows = timed(lambda: conn.execute(sql).fetchall(), args.repeat)
    conn.execute("CREATE INDEX ix_q ON q (rank, deadline, id)")
    raw_indexed, _ = timed(lambda: conn.execute(sql).fetchall(), args.repeat)
    assert [oid for _, oid in ordered] == [row[0] for row in raw_rows], "Python and SQLite orders differ"

    engines = other_engines(facts, rules, 2000) if args.engines else {}
    s_recompute, s_floor = summary(recompute), summary(floor)
    figures = {
        "bench": "rules", "orders": n, "rules": len(rules.rules), "rules_version": rules.version,
        "recompute_p50_ms": s_recompute["p50_ms"], "recompute_p99_ms": s_recompute["p99_ms"],
        "us_per_order": round(s_recompute["p50_ms"] * 1000 / n, 2),
        "rule_change_p50_ms": summary(change)["p50_ms"], "load_p50_ms": summary(load)["p50_ms"],
        "python_floor_p50_ms": s_floor["p50_ms"], "python_floor_us_per_order": round(s_floor["p50_ms"] * 1000 / n, 2),
        "deadline_board_p50_ms": summary(board)["p50_ms"], "colours_p50_ms": summary(colours_only)["p50_ms"],
        "sort_python_p50_ms": summary(py_sort)["p50_ms"], "sort_python_p99_ms": summary(py_sort)["p99_ms"],
        "sort_sqlite_p50_ms": summary(raw_sort)["p50_ms"], "sort_sqlite_p99_ms": summary(raw_sort)["p99_ms"],
        "sort_sqlite_indexed_p50_ms": summary(raw_indexed)["p50_ms"],
        "rule_errors": errors, "colours": {str(k): v for k, v in counts.items()}, **engines,
    }
    print(f"\nRules over {n:,} open orders — {len(rules.rules)} rules from {args.rules.name} "
          f"(version {rules.version}), {args.repeat} runs")
    row = "{:<44}{:>10} ms p50 {:>10} ms p99   {}"
    print(row.format("full recompute (evaluate_many)", s_recompute["p50_ms"], s_recompute["p99_ms"],
                     f"{figures['us_per_order']} µs/order"))
    print(row.format("rule change: load + recompute", summary(change)["p50_ms"], summary(change)["p99_ms"],
                     "budget 2000 ms"))
    print(row.format("  load alone (validate + compile)", summary(load)["p50_ms"], summary(load)["p99_ms"], ""))
    print(row.format("floor: same conditions as Python lambdas", s_floor["p50_ms"], s_floor["p99_ms"],
                     f"{figures['python_floor_us_per_order']} µs/order"))
    print(row.format("deadlines + board counts", summary(board)["p50_ms"], summary(board)["p99_ms"],
                     " ".join(f"{k}={v}" for k, v in figures["colours"].items())))
    print(row.format("  board colours alone", summary(colours_only)["p50_ms"], summary(colours_only)["p99_ms"], ""))
    print(row.format("queue sort: Python sorted(queue_key)", summary(py_sort)["p50_ms"], summary(py_sort)["p99_ms"], ""))
    print(row.format("queue sort: raw SQLite ORDER BY (no index)", summary(raw_sort)["p50_ms"],
                     summary(raw_sort)["p99_ms"], "in-memory table, fetchall"))
    print(row.format("queue sort: raw SQLite ORDER BY (indexed)", summary(raw_indexed)["p50_ms"],
                     summary(raw_indexed)["p99_ms"], ""))
    for name, value in engines.items():
        print(f"{'other engine: ' + name.removesuffix('_us_per_order').replace('_', '-'):<44}"
              f"{value if value is not None else 'n/a':>10} µs/order (same 10 rules, 2,000 orders)")
    if errors:
        print(f"{errors} orders had a rule that could not be evaluated")
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
