"""Cold start to first frame, and memory, with the 1,000,000-order database open.

    .venv/bin/python bench/startup.py [--db PATH] [--runs 7]

Each run starts a fresh Python process in a real pseudo-terminal (120×40, as an SSH session would
give it), exactly as ``deskapp --db PATH`` starts, and marks three moments from process spawn: the
lookup screen's first frame (search box focused), a first lookup answered, and the write side
ready (deskapp opens it in the background after the first frame), with the RSS then. Beside it
the floor: a minimal Textual app that opens the same file with plain sqlite3 and counts the
orders. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_DB, ROOT, ensure_demo

# Shared by both programs: append "label time RSS-kB peak-RSS-kB" to $MARK.
MARK = """
import os, time

def mark(label):
    rss = peak = 0
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"): rss = int(line.split()[1])
        if line.startswith("VmHWM:"): peak = int(line.split()[1])
    with open(os.environ["MARK"], "a") as out:
        out.write(f"{{label}} {{time.time()}} {{rss}} {{peak}}\\n")
"""

# After the lookup screen's first frame: a first search through the app's store, then wait until
# the write side (opened lazily in the background) is ready too.
DESKAPP = MARK + """
import sys
sys.path.insert(0, {root!r})
from deskapp.screens.lookup import LookupScreen
from deskapp import __main__ as cli

async def after_first_frame(app):
    mark("frame")
    await app.store.find_orders("张伟")
    mark("search")
    if hasattr(app.store, "store"):
        await app.store.store()
    mark("ready")
    app.exit()

original = LookupScreen.on_mount
def on_mount(self):
    original(self)
    self.call_after_refresh(lambda: self.app.run_worker(after_first_frame(self.app)))
LookupScreen.on_mount = on_mount
sys.exit(cli.main(["--db", {db!r}, "--operator", "bench"]))
"""

FLOOR = MARK + """
import sqlite3
from textual.app import App
from textual.widgets import Static

class Minimal(App):
    def compose(self):
        self.conn = sqlite3.connect({db!r})
        n = self.conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        yield Static(f"{{n}} orders")
    def on_mount(self):
        def done():
            for label in ("frame", "search", "ready"):
                mark(label)
            self.exit()
        self.call_after_refresh(done)
Minimal().run()
"""


def run_once(code: str) -> dict[str, tuple[float, float, float]]:
    """Spawn the code in a pty; per mark: (seconds since spawn, RSS MB, peak RSS MB)."""
    with tempfile.TemporaryDirectory() as tmp:
        mark = Path(tmp) / "mark"
        master, slave = pty.openpty()
        os.set_inheritable(slave, True)
        import fcntl
        import struct
        import termios

        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = dict(os.environ, MARK=str(mark), TERM="xterm-256color", COLUMNS="120", LINES="40")
        env.pop("TEXTUAL", None)
        started = time.time()
        proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
            start_new_session=True,
        )
        os.close(slave)
        deadline = time.time() + 60
        while proc.poll() is None and time.time() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    os.read(master, 65536)  # drain the screen output like a terminal would
                except OSError:
                    break
        proc.wait(timeout=10)
        os.close(master)
        marks = {}
        for line in mark.read_text().splitlines():
            label, at, rss, peak = line.split()
            marks[label] = (float(at) - started, int(rss) / 1024, int(peak) / 1024)
        return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--orders", type=int, default=1_000_000, help="size when the database is built")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    path = ensure_demo(args.db, args.orders)
    size_mb = path.stat().st_size / 1e6
    results = {}
    for name, template in (("deskapp", DESKAPP), ("floor_minimal_textual_sqlite3", FLOOR)):
        code = template.format(root=str(ROOT), db=str(path))
        run_once(code)  # one warm-up: the OS page cache, not our start-up, is what it warms
        runs = [run_once(code) for _ in range(args.runs)]
        results[name] = {"runs": len(runs)}
        for label in ("frame", "search", "ready"):
            seconds = [r[label][0] for r in runs]
            results[name][f"{label}_p50_s"] = round(statistics.median(seconds), 3)
            results[name][f"{label}_max_s"] = round(max(seconds), 3)
        results[name]["rss_mb"] = round(statistics.median(r["ready"][1] for r in runs), 1)
        results[name]["peak_rss_mb"] = round(max(r["ready"][2] for r in runs), 1)
    print(f"\nStart-up with {path.name} open ({size_mb:,.0f} MB), {args.runs} runs each, in a 120×40 pty")
    print("frame: the lookup screen's first frame, search box focused; search: a first lookup answered;")
    print("ready: the write side open too (deskapp opens it in the background after the first frame)")
    print(f"{'':32}{'frame p50':>10}{'max':>8}{'search':>8}{'ready p50':>10}{'max':>8}{'RSS MB':>8}{'peak':>7}")
    for name, r in results.items():
        print(f"{name:32}{r['frame_p50_s']:>9.3f}s{r['frame_max_s']:>7.3f}s{r['search_p50_s']:>7.3f}s"
              f"{r['ready_p50_s']:>9.3f}s{r['ready_max_s']:>7.3f}s{r['rss_mb']:>8.1f}{r['peak_rss_mb']:>7.1f}")
    print(json.dumps({"bench": "startup", "db_mb": round(size_mb), **results}))


if __name__ == "__main__":
    main()
