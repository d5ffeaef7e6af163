"""``deskapp export --out FILE.csv|FILE.xlsx [filters] [--reveal --reason WHY]``: orders to a spreadsheet.

Masked by default (``138****1234``, ``张*``, the address to the district); ``--reveal`` writes the
customer data unmasked (an admin's ``export_revealed``, with a reason). Exporting at all needs
``export`` (supervisor, admin). The acting operator is ``--operator`` / ``DESKAPP_OPERATOR`` / the
login name. Every export is on the access log (``deskapp audit list --kind export``): the filter,
the row count, the file, masked or not. See ``deskapp.services.export``.

Exit status: 0 written (also with no matching orders: a file with the header only); 2 refused,
bad input, unwritable file or no such database — the reason in one plain line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deskapp.settings import Settings

EPILOG = ("exit status: 0 = written, 2 = refused / bad input / unwritable file / no database. Examples: "
          "deskapp export --out orders.xlsx --since 2025-03-01 --until 2025-03-31; "
          "deskapp export --out held.csv --status hold --channel taobao; "
          "deskapp export --out full.xlsx --reveal --reason \"物流理赔需要完整地址\"")


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register ``export`` on the ``deskapp`` parser."""
    cmd = sub.add_parser(
        "export", parents=[common], help="export orders to .csv or .xlsx (customer data masked)",
        description="Write the orders a filter selects to a CSV (UTF-8 with BOM) or Excel file, customer "
                    "data masked unless --reveal. Needs the export permission (supervisor, admin); every "
                    "export is recorded on the access log.",
        epilog=EPILOG,
    )
    cmd.add_argument("--out", required=True, help="the file to write: .csv or .xlsx (replaced when complete)")
    cmd.add_argument("--query", help="only the orders a lookup of this finds (order no., phone, name, address …)")
    cmd.add_argument("--status", help="only this standard status (paid, hold, shipped …)")
    cmd.add_argument("--channel", help="only this channel (taobao, jd, pdd …)")
    cmd.add_argument("--since", help="created on or after this China day, YYYY-MM-DD")
    cmd.add_argument("--until", help="created on or before this China day, YYYY-MM-DD")
    cmd.add_argument("--reveal", action="store_true",
                     help="write names, phones and addresses unmasked (admin only; needs --reason)")
    cmd.add_argument("--reason", default="", help="why (required with --reveal; kept on the access log)")
    cmd.set_defaults(handler=run_export)


async def run_export(args: argparse.Namespace, settings: Settings) -> int:
    """Run one export; see the module docstring for the exit status."""
    from db.codes import ActorKind
    from db.roles import Refused
    from db.views import Actor
    from deskapp.services.export import (
        ExportError,
        ExportRequest,
        export_orders,
        parse_day,
    )
    from widgets.i18n import language, tr

    try:
        request = ExportRequest(
            out=Path(args.out).expanduser(), query=args.query, status=args.status, channel=args.channel,
            since=parse_day(args.since), until=parse_day(args.until), reveal=args.reveal, reason=args.reason,
        )
    except ExportError as error:
        return _fail(str(error))
    if "://" not in settings.db and not Path(settings.db).is_file():
        return _fail(tr("cli.queue.no_db", path=settings.db))
    from db.store import Store

    shown = _Progress()
    store = await Store.open(settings.db)
    try:
        result = await export_orders(store, request, Actor(ActorKind.OPERATOR, settings.operator),
                                     progress=shown.update)
    except ExportError as error:
        return _fail(str(error))
    except Refused as refused:
        return _fail(refused.text(language()))
    finally:
        shown.done()
        await store.close()
    key = "exp.done_revealed" if result.revealed else "exp.done"
    print(tr(key, n=result.rows, path=str(result.path)))
    return 0


def _fail(text: str) -> int:
    print(f"deskapp: {text}", file=sys.stderr)
    return 2


class _Progress:
    """``导出中 20,000/100,000`` on stderr for big exports: rewritten in place on a terminal, a line
    per tenth otherwise (a log file should not fill with progress)."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._shown = False
        self._next = 0

    def update(self, done: int, total: int) -> None:
        from deskapp.services.export import PROGRESS_FROM
        from widgets.i18n import tr

        if total < PROGRESS_FROM:
            return
        text = tr("exp.progress", done=f"{done:,}", total=f"{total:,}")
        if self._tty:
            print("\r" + text, end="", file=sys.stderr, flush=True)
            self._shown = True
        elif done >= self._next or done == total:
            print(text, file=sys.stderr, flush=True)
            self._next = done + max(1, total // 10)

    def done(self) -> None:
        if self._shown:
            print(file=sys.stderr, flush=True)
            self._shown = False
