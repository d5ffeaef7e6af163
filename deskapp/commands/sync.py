"""``deskapp sync [--once [--reconcile DAYS]] [--config deskapp.toml] [--escalation FILE]``: the connectors, headless, for a shared server.

Runs one sync worker per configured shop until SIGTERM or Ctrl+C (a clean stop: the running
batch commits or rolls back, the lease is given back), or one pass with ``--once``. Only one
process per database syncs at a time (the lease); a second one waits its turn. Logs go to the
config's ``log_file`` (else deskapp's log file), never to the terminal.

Beside the sync (not with ``--once``), the order checks and — with an escalation file
(``--escalation``, ``$DESKAPP_ESCALATION``, ``./deskapp.escalation.toml`` or the user config
directory's) — escalation of unshipped urgent orders to the group robots, one sender per database
(``deskapp.services.escalation_runner``). An escalation file with any problem (an unset robot
variable included: this process is meant to send) stops the command before it starts: every
problem is printed and it exits 2.

The database: ``--db``, else ``DESKAPP_DB``, else the config's ``db``, else the default. Syncing
into another database than the config's ``db`` is said in one line before it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from datetime import timedelta
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from db.sanitize import clean_text
from deskapp.settings import Settings, default_config_path, shown_db

log = logging.getLogger("deskapp.sync")

#: Every platform call gives up after this; the retry policy decides what happens next.
HTTP_TIMEOUT_S = 15.0


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    sync = sub.add_parser("sync", parents=[common], help="run the connectors without the app (a shared server)")
    sync.add_argument("--config", help="the config file (default: $DESKAPP_CONFIG or ./deskapp.toml)")
    sync.add_argument("--once", action="store_true", help="one pass over every shop, then exit")
    sync.add_argument("--reconcile", type=float, metavar="DAYS",
                      help="with --once: re-read everything modified in the last DAYS days (what the nightly "
                           "reconciliation does), not only what is new since the last run")
    sync.set_defaults(handler=run_sync)


async def run_sync(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    from connectors.config import ConfigError, load
    from connectors.wiring import build_workers, run_workers
    from db.store import Store
    from deskapp.services.checker import Checker
    from deskapp.services.livesync import CHECK_INTERVAL_S
    from deskapp.settings import choose_db, same_db
    from widgets.i18n import language

    escalation = None
    if not args.once:
        escalation = _escalation_config(getattr(args, "escalation", None))
        if escalation is False:
            return 2
    path = Path(args.config) if args.config else default_config_path()
    try:
        config = load(path)
    except ConfigError as error:
        print(f"deskapp sync: {path}:", file=sys.stderr)
        for problem in error.problems:
            print("  · " + clean_text(problem.text(language())), file=sys.stderr)
        return 2
    except OSError as error:
        print(f"deskapp sync: {path}: {error.strerror}", file=sys.stderr)
        return 2
    if config.log_file is not None:
        _log_to(config.log_file)
    db = choose_db(settings, config.db)
    if config.db and not same_db(db, config.db):
        given = "--db" if settings.db_origin == "flag" else "DESKAPP_DB"
        print(f"deskapp sync: 同步到 {given} 指定的 {clean_text(shown_db(db))}，而不是 {path} 中的 db = {clean_text(shown_db(config.db))}"
              f" / syncing into {clean_text(shown_db(db))} ({given}), not db = {clean_text(shown_db(config.db))} from {path}",
              file=sys.stderr, flush=True)
    store = await Store.open(db)
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
            workers, failed = build_workers(store, config, client)
            for item in failed:
                print(f"deskapp sync: {item.connector}: {clean_text(item.reason)}", file=sys.stderr)
            if not workers:
                print("deskapp sync: 没有可运行的店铺 / no shop can run", file=sys.stderr)
                return 2
            if args.once:
                return await _once(store, workers, getattr(args, "reconcile", None))
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            print(f"deskapp sync: {len(workers)} shops → {clean_text(shown_db(db))} (Ctrl+C stops)", file=sys.stderr, flush=True)
            log.info("sync started: %d shops, database %s", len(workers), shown_db(db))
            checks = asyncio.create_task(Checker(store).run_forever(CHECK_INTERVAL_S, stop), name="order checks")
            escalating = None
            if escalation is not None:
                from deskapp.services.escalation_runner import EscalationRunner

                async def get_store() -> Store:
                    return store

                runner = EscalationRunner(escalation[1], get_store)
                escalating = asyncio.create_task(runner.run(stop), name="escalation")
                print(f"deskapp sync: 升级提醒 / escalation: {escalation[0]}", file=sys.stderr, flush=True)
            try:
                await run_workers(workers, stop)
            finally:
                stop.set()
                await checks
                if escalating is not None:
                    await escalating
                    await runner.close()
            log.info("sync stopped")
            return 0
    finally:
        await store.close()


async def _once(store, workers, reconcile_days: float | None = None) -> int:  # noqa: ANN001
    """Every shop once, side by side (a shop waiting out a platform's retry hint holds up no other);
    then the lease goes back at once rather than make the next run wait for it to expire."""
    from connectors.sync import LEASE_NAME, PROCESS_HOLDER
    from db.ingest import lease_release
    from deskapp.services.checker import Checker

    try:
        since = timedelta(days=reconcile_days) if reconcile_days else None
        reports = await asyncio.gather(*(worker.runner.run_once(since=since) for worker in workers))
    finally:
        await lease_release(store, LEASE_NAME, PROCESS_HOLDER)
    checked = await Checker(store).run_once()  # what this run brought in, checked before it ends
    print(f"order checks: checked {checked.checked} · held {checked.held}", flush=True)
    for report in reports:
        r = report.result
        state = "ok" if report.ok else clean_text(report.error or report.skipped or "")
        print(f"{report.connector}: {state} · fetched {report.fetched} · new {r.inserted} · updated {r.updated}"
              f" · unchanged {r.unchanged} · quarantined {r.quarantined}", flush=True)
    return 0 if all(report.ok for report in reports) else 1


def _escalation_config(explicit: str | None) -> tuple[Path, Any] | bool | None:
    """The escalation file to run beside the sync: (path, config); None: no file, or switched off;
    False: it has problems (all printed)."""
    from deskapp.services.escalation_runner import load as load_escalation
    from deskapp.settings import find_escalation_file
    from widgets.i18n import language

    path = find_escalation_file(explicit)
    if path is None:
        return None
    loaded = load_escalation(path)
    if loaded.problems:
        print(f"deskapp sync: {path}:", file=sys.stderr)
        for problem in loaded.problems:
            print("  · " + clean_text(problem.text(language())), file=sys.stderr)
        return False
    if loaded.config is None or not loaded.config.enabled:
        return None
    return path, loaded.config


def _log_to(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=5_000_000, backupCount=3, encoding="utf-8")
    except OSError:
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.getLogger().addHandler(handler)
