"""The load script (``bench/load.py``) at its smallest: three real app sessions (customer service,
warehouse, supervisor), each its own process driven by keys, beside ``deskapp sync`` as another
process, on one SQLite file.

What it proves is what the full run proves, at a size CI can afford (~25 s on a quiet machine, ~40 s
beside other work: most of it is starting four Python processes, and the eight seconds they work):
every write a session saw acknowledged is in
the pool exactly once and nothing was written that no session saw; every order the platforms hold
arrived exactly once; no error notification, exception, timeout or "database is locked" anywhere.
The latencies are not asserted here — on a shared CI machine they measure the neighbours.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))  # appended: nothing installed is shadowed by a bench script's name

import load  # bench/load.py, found through the path above


def test_sessions_and_the_sync_on_one_database_lose_nothing_and_show_no_error(demo_db: Path, tmp_path: Path) -> None:
    figs = load.run(demo_db, workdir=tmp_path / "run", seconds=8, sessions=3, think=(0.2, 0.6),
                    channels=("taobao",), new_per_minute=120, seed=3, progress=lambda _text: None)

    assert figs["roles"] == {"cs": 1, "warehouse": 1, "supervisor": 1}
    assert figs["errors"]["total"] == 0, figs["errors"]
    writes, sync = figs["writes"], figs["sync"]
    assert writes["ok"], writes
    assert sync["ok"], sync
    # every kind of work happened: lookups, cards, memo edits, scans; orders kept arriving
    for kind in ("lookup", "card", "memo", "scan"):
        assert figs["per_kind"][kind]["n"] > 0, (kind, figs["per_kind"])
    assert writes["memos_acked"] == writes["memo_events"] > 0
    assert writes["scans_acked"] == writes["scan_events"] > 0
    assert sync["truth"] > 10 and sync["pool"] == sync["truth"]
    assert figs["lookup_misses"] == 0 and not figs["scan_refusals"]
