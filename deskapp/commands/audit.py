"""``deskapp audit verify`` and ``deskapp audit list``: the access log, checked and read.

    deskapp audit verify [--db PATH]     审计日志完好：N 条 (exit 0), or the first broken record (exit 1)
    deskapp audit list [--limit N] [--kind K] [--by LOGIN]      supervisors and admins

``verify`` recomputes every record's hash and its link to the one before (``db.access.verify``),
streaming the log in chunks; it names the first record that was edited, deleted or moved. It reads
only, needs no operator, and prints the last record's hash too: note it, and a log whose end was cut
off later will not show it. ``list`` shows the newest records (UTC+8), for ``read_audit``.

Exit status: 0 intact / listed; 1 the log was tampered with; 2 no such database, or refused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deskapp.settings import Settings


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register ``audit verify`` and ``audit list`` on the ``deskapp`` parser."""
    from db.access import KINDS

    cmd = sub.add_parser("audit", parents=[common], help="verify or list the access log",
                         description="The append-only, hash-chained access log: sign-ins, failed PINs, "
                                     "reveals, exports, operator changes, refused actions.")
    actions = cmd.add_subparsers(dest="audit_command", required=True)
    verify = actions.add_parser("verify", parents=[common], help="check every record's hash and link",
                                epilog="exit status: 0 = intact, 1 = tampered with, 2 = no such database")
    verify.set_defaults(handler=run_verify)
    listing = actions.add_parser("list", parents=[common], help="the newest records (supervisor, admin)",
                                 epilog="exit status: 0 = listed, 2 = no such database or refused")
    listing.add_argument("--limit", type=int, default=50, help="how many records (default 50)")
    listing.add_argument("--kind", choices=list(KINDS), help="only this kind of record")
    listing.add_argument("--by", help="only this operator's records")
    listing.set_defaults(handler=run_list)


def _missing(settings: Settings) -> bool:
    from widgets.i18n import tr

    if "://" not in settings.db and not Path(settings.db).is_file():
        print(f"deskapp: {tr('audit.no_db', path=settings.db)}", file=sys.stderr)
        return True
    return False


async def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Print whether the log is intact (exit 0) or the first broken record (exit 1)."""
    from db.access import verify
    from db.store import Store
    from widgets.i18n import language, tr

    if _missing(settings):
        return 2
    store = await Store.open(settings.db)
    try:
        result = await verify(store)
    finally:
        await store.close()
    if not result.ok:
        print(result.text(language()), file=sys.stderr)
        return 1
    print(result.text(language()))
    if result.last_id is not None:
        print(tr("audit.last", id=result.last_id, hash=result.last_hash))
    return 0


async def run_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print the newest records as a table, for supervisors and admins."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from db.access import recent
    from db.roles import Refused, require
    from db.sanitize import clean_text
    from db.store import Store
    from deskapp.services.auth import Refusal, bootstrap_text, resolve_operator
    from widgets.format import CHINA, fit
    from widgets.i18n import language, tr

    if _missing(settings):
        return 2
    store = await Store.open(settings.db)
    try:
        who = await resolve_operator(store, settings.operator)
        if isinstance(who, Refusal):
            print(f"deskapp: {who.text(language())}", file=sys.stderr)
            return 2
        if who.new_admin:
            print(bootstrap_text(who.id, language()), file=sys.stderr)
        try:
            async with store.engine.connect() as conn:
                await require(conn, who.actor, "read_audit")
        except Refused as refused:
            print(f"deskapp: {refused.text(language())}", file=sys.stderr)
            return 2
        records = await recent(store, max(1, args.limit), kind=args.kind, operator=args.by)
    finally:
        await store.close()
    console = Console(highlight=False)
    if not records:
        console.print(Text(tr("audit.empty")))
        return 0
    table = Table(box=None, header_style="bold", pad_edge=False)
    for key in ("id", "at", "operator", "kind", "order", "field", "reason"):
        table.add_column(tr(f"audit.col.{key}"), no_wrap=key != "reason", overflow="fold")
    for r in records:
        table.add_row(
            Text(str(r.id)), Text(r.at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")),
            Text(fit(clean_text(r.operator_id), 20)), Text(tr(f"audit.kind.{r.kind}")),
            Text("" if r.order_id is None else str(r.order_id)), Text(clean_text(r.field or "")),
            Text(fit(clean_text(_why(r)), 80)),
        )
    console.print(table)
    return 0


def _why(record) -> str:
    """The reason (phone and ID numbers an operator typed into it masked, as everywhere), and whom an
    operator change was about."""
    from db.privacy import mask_text

    about = record.detail.get("operator") if isinstance(record.detail, dict) else None
    parts = [p for p in (mask_text(record.reason), f"→ {about}" if about and about != record.operator_id else "") if p]
    return " ".join(parts)
