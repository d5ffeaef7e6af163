"""``deskapp queue [--db PATH] [--json] [--apply-rules] [filters]``: the warehouse queue, for scripts.

Prints the open orders (已付款 / 审核中 / 配货中) in queue order — priority, then the ship-by
deadline — as the queue screen shows them: priority, time left, order no., progress, channel,
warehouse, tags, and a first line with the board counts (red + yellow + green = the total). With
``--json``: one JSON object ``{"now", "rules_version", "counts", "orders": [...]}`` (no receiver
details). Priorities and deadlines are the stored ones, as every terminal sees them;
``--apply-rules`` first applies the rules file (``--rules`` / ``$DESKAPP_RULES`` /
``deskapp.rules.toml``) as the app does — writing the changed orders with their timeline events —
for a pool no app is running on. The board thresholds come from the rules file.

Exit status: 0; 1 when the rules file is broken (its problems on stderr; with ``--apply-rules``
nothing is written); 2 for a database that does not exist. Text is printed as plain text, never
markup, and cut to its column in terminal cells.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from deskapp.settings import Settings

EPILOG = ("exit status: 0 = printed, 1 = the rules file is broken, 2 = no such database. Examples: "
          "deskapp queue --db orders.db; deskapp queue --json --warehouse 杭州仓 --limit 50; "
          "deskapp queue --apply-rules --rules deskapp.rules.toml")


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register ``queue`` on the ``deskapp`` parser."""
    cmd = sub.add_parser(
        "queue", parents=[common], help="print the warehouse queue (priority, deadline, board colour)",
        description="Print the open orders in warehouse queue order — priority (S A B C), then the ship-by "
                    "deadline — with time left, board colour counts and tags.",
        epilog=EPILOG,
    )
    cmd.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    cmd.add_argument("--apply-rules", action="store_true",
                     help="apply the rules file to the open orders first (writes what changed, as the app does)")
    cmd.add_argument("--warehouse", help="only orders with a parcel in this warehouse ('' = none assigned)")
    cmd.add_argument("--channel", help="only this channel (taobao, pdd …)")
    cmd.add_argument("--progress", choices=["paid", "review", "allocating", "picked", "packed"],
                     help="only orders at this step")
    cmd.add_argument("--tag", help="only orders with this tag")
    cmd.add_argument("--limit", type=int, default=0, help="print at most this many orders (default: all)")
    cmd.set_defaults(handler=run_queue)


async def run_queue(args: argparse.Namespace, settings: Settings) -> int:
    """Print the queue; see the module docstring for the exit status."""
    from widgets.i18n import language, tr

    if "://" not in settings.db and not Path(settings.db).is_file():
        print(tr("cli.queue.no_db", path=settings.db), file=sys.stderr)
        return 2
    from db.store import Store
    from deskapp.services.queue import BoardIndex, Filters, QueueService, row_json
    from deskapp.services.rules import RulesError, RulesFile

    now = datetime.now(UTC)
    rules, broken = RulesFile.default(), None
    if settings.rules:
        try:
            rules = RulesFile.load(settings.rules)
        except RulesError as error:
            broken = error
            print(error.text(language()), file=sys.stderr)
    store = await Store.open(settings.db)
    try:
        service = QueueService(lambda: _ready(store), rules=rules, clock=lambda: now)
        if args.apply_rules and broken is None:
            await service.recompute()
        rows = await service.queue()
    finally:
        await store.close()
    filters = Filters(args.warehouse, args.channel, args.progress, args.tag)
    rows = filters.apply(rows)
    counts = BoardIndex.build(rows, rules.board)[0].counts(now)
    shown = rows[: args.limit] if args.limit > 0 else rows
    if args.json:
        print(json.dumps({
            "now": now.isoformat(), "rules_version": rules.version, "total": len(rows),
            "counts": {str(k): v for k, v in counts.items()},
            "orders": [row_json(row, now, rules.board) for row in shown],
        }, ensure_ascii=False, indent=1))
        return 1 if broken is not None else 0
    _print_table(shown, len(rows), counts, now, rules)
    return 1 if broken is not None else 0


async def _ready(store):
    return store


def _print_table(rows, total: int, counts, now: datetime, rules) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from deskapp.screens.queue import COLOUR_STYLE, PRIORITY_STYLE, progress_label
    from deskapp.services.queue import colour_of, left_text
    from deskapp.services.sla import Colour
    from widgets.format import channel_label, fit
    from widgets.i18n import tr

    console = Console(highlight=False)
    console.print(Text(tr("q.cli.head", n=total, red=counts[Colour.RED], yellow=counts[Colour.YELLOW],
                          green=counts[Colour.GREEN], version=rules.version)))
    if not rows:
        console.print(Text(tr("q.empty")))
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for key in ("pri", "left", "order_no", "progress", "channel", "warehouse", "tags"):
        table.add_column(tr(f"q.col.{key}"), no_wrap=True, overflow="ellipsis")
    for row in rows:
        colour = colour_of(row, now, rules.board)
        left = None if row.due is None else row.due - now
        table.add_row(
            Text(row.priority, style=PRIORITY_STYLE.get(row.priority, "")),
            Text(left_text(left), style=COLOUR_STYLE[colour] if row.due is not None else "dim"),
            Text(fit(row.order_no, 24)), Text(progress_label(row.progress)), Text(channel_label(row.channel)),
            Text(fit(row.warehouse, 12) if row.warehouse else tr("q.unassigned")),
            Text(fit(" ".join(row.tags), 30)),
        )
    console.print(table)
