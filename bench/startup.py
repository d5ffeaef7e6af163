"""Cold start to first frame, and memory, with the 1,000,000-order database open.

    .venv/bin/python bench/startup.py [--db PATH] [--runs 7]

Each run starts a fresh Python process in a real pseudo-terminal (120×40, as an SSH session would
give it), exactly as ``deskapp --db PATH`` starts, and stops it right after the lookup screen's
first frame has been written: the time from process spawn to that frame, and the RSS (current and
peak) at that moment. Beside it the floor: a minimal Textual app that opens the same file with
plain sqlite3 and counts the orders. Ends with one JSON line.
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

# Shared by both programs: write (time, RSS kB, peak RSS kB) to $MARK, then quit the app.
MARK = """
import os, time

def mark_and_exit(app):
    rss = peak = 0
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"): rss = int(line.split()[1])
        if line.startswith("VmHWM:"): peak = int(line.split()[1])
    open(os.environ["MARK"], "w").write(f"{{time.time()}} {{rss}} {{peak}}")
    app.exit()
"""

DESKAPP = MARK + """
import sys
sys.path.insert(0, {root!r})
from deskapp.screens.lookup import LookupScreen
from deskapp import __main__ as cli

original = LookupScreen.on_mount
def on_mount(self):
    original(self)
    self.call_after_refresh(lambda: mark_and_exit(self.app))  # after the first frame
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
        self.call_after_refresh(lambda: mark_and_exit(self))
Minimal().run()
"""


def run_once(code: str) -> tuple[float, float, float]:
    """Spawn the code in a pty; return (seconds to first frame, RSS MB, peak RSS MB)."""
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
        at, rss, peak = mark.read_text().split()
        return float(at) - started, int(rss) / 1024, int(peak) / 1024


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
        seconds = [r[0] for r in runs]
        results[name] = {
            "first_frame_p50_s": round(statistics.median(seconds), 3),
            "first_frame_max_s": round(max(seconds), 3),
            "rss_mb": round(statistics.median(r[1] for r in runs), 1),
            "peak_rss_mb": round(max(r[2] for r in runs), 1),
            "runs": len(runs),
        }
    print(f"\nStart-up with {path.name} open ({size_mb:,.0f} MB), {args.runs} runs each, in a 120×40 pty")
    print(f"{'':32}{'first frame p50':>16}{'max':>8}{'RSS MB':>9}{'peak MB':>9}")
    for name, r in results.items():
        print(f"{name:32}{r['first_frame_p50_s']:>15.3f}s{r['first_frame_max_s']:>7.3f}s"
              f"{r['rss_mb']:>9.1f}{r['peak_rss_mb']:>9.1f}")
    print(json.dumps({"bench": "startup", "db_mb": round(size_mb), **results}))


if __name__ == "__main__":
    main()
