"""Shared by the bench scripts: the 1M-order demo database and percentile figures."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA = ROOT / "bench" / "data"
DEFAULT_DB = DATA / "demo-1m.db"


def ensure_demo(path: Path, orders: int, seed: int = 7) -> Path:
    """Build the demo database once (printing progress), or reuse it."""
    from db.store import Store
    from deskapp.services.demo import DEMO_NOW, build_demo

    if path.exists() and path.stat().st_size > 0:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)

    building = path.with_name(path.name + ".building")
    for suffix in ("", "-wal", "-shm"):
        Path(str(building) + suffix).unlink(missing_ok=True)

    async def build() -> None:
        store = await Store.open(building, synchronous="OFF", cache_mb=1024)
        started = time.perf_counter()
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if time.perf_counter() - last[0] > 5 or done == total:
                last[0] = time.perf_counter()
                print(f"  building {path.name}: {done:,}/{total:,} orders", file=sys.stderr, flush=True)

        try:
            await build_demo(store, orders=orders, seed=seed, now=DEMO_NOW, progress=progress)
            await store.checkpoint()
        finally:
            await store.close()
        print(f"  built in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    asyncio.run(build())
    building.replace(path)  # only a complete build is ever reused
    return path


def pct(samples: list[float], q: float) -> float:
    """The q-th percentile (0–100) of samples, nearest-rank."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary(samples_s: list[float]) -> dict[str, float]:
    """p50/p99/max in milliseconds."""
    ms = [s * 1000 for s in samples_s]
    return {
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(pct(ms, 99), 3),
        "max_ms": round(max(ms), 3),
        "n": len(ms),
    }
