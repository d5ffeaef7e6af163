"""The ``deskapp`` command: the app, the demo, and lookups for scripts and remote support.

    deskapp [--db PATH] [--operator NAME] [--lang zh|en] [--config deskapp.toml]
                                                             open the app on the lookup screen
    deskapp demo [--db PATH] [--orders N] [--seed N] [--no-ui] [--rebuild] [--no-live]
    deskapp lookup QUERY [--db PATH] [--json]
    deskapp show ORDER_NO [--db PATH] [--json] [--reveal name,phone,address --reason WHY]

Customer names, phones and detail addresses are printed masked (138****1234, 张*, the address to
the district); ``show --reveal`` prints the named fields unmasked for an operator allowed to, with
a reason, one access-log record per field.

Everything runs in one event loop (the Store's connections belong to it). Errors are logged to a
file and reported as one plain line; no traceback reaches the terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING

from deskapp.settings import Settings

if TYPE_CHECKING:
    from deskapp.services.livesync import LiveSync

log = logging.getLogger("deskapp")


def make_app(store, settings: Settings, *, operator_name: str | None = None,  # noqa: ANN001
             clock: Callable[[], datetime] | None = None, sync=None, **options):  # noqa: ANN001, ANN003, ANN201
    """Build the app around an opened Store: used by the CLI and by the tests alike.

    ``sync``: a ``deskapp.services.livesync.LiveSync`` to run in the background (default: none).
    ``options``: the rest of ``DeskApp``'s keywords (``require_sign_in``, ``policy``, ``idle_clock`` …);
    without ``require_sign_in`` the app starts signed in as ``settings.operator``.
    """
    from deskapp.app import DeskApp

    return DeskApp(store, settings, operator_name=operator_name, clock=clock, sync=sync, **options)


def _parser() -> argparse.ArgumentParser:
    # SUPPRESS: a subcommand that is not given --db must not reset one given before it
    # (`deskapp --db x.db demo`); absent options are filled with None after parsing.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--db", help="database file or URL (postgresql+asyncpg://…)")
    common.add_argument("--operator", help="who is working (default: the login name)")
    common.add_argument("--lang", choices=["zh", "en"], help="interface language (default zh)")
    common.add_argument("--rules", help="warehouse rules file (default: $DESKAPP_RULES, ./deskapp.rules.toml, "
                                        "the user config directory's deskapp.rules.toml, else built-in defaults)")
    common.add_argument("--escalation", help="escalation file (default: $DESKAPP_ESCALATION, ./deskapp.escalation.toml, "
                                             "the user config directory's deskapp.escalation.toml, else none)")
    parser = argparse.ArgumentParser(prog="deskapp", parents=[common], description="deskapp 订单台")
    # Not in `common`: import, sync and config check take their own --config after the command.
    parser.add_argument("--config", help="connector config to sync in the background "
                                         "(default: $DESKAPP_CONFIG, ./deskapp.toml, if it exists)")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", parents=[common], help="build a demo database and open the app on it")
    demo.add_argument("--orders", type=int, default=20_000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--no-ui", action="store_true", help="build only, do not open the app")
    demo.add_argument("--rebuild", action="store_true", help="replace an existing demo database")
    demo.add_argument("--no-live", action="store_true",
                      help="no in-process platform emulators syncing new orders into the demo")
    lookup = sub.add_parser("lookup", parents=[common], help="print the orders matching a query")
    lookup.add_argument("query")
    lookup.add_argument("--json", action="store_true")
    show = sub.add_parser("show", parents=[common], help="print one order's card")
    show.add_argument("order_no")
    show.add_argument("--json", action="store_true")
    show.add_argument("--reveal", metavar="FIELDS",
                      help="print these fields unmasked: name,phone,address (needs the reveal permission and --reason; "
                           "each field is recorded on the access log)")
    show.add_argument("--reason", default="", help="why the customer's data is revealed (required with --reveal)")
    from deskapp.commands import register

    register(sub, common)  # import, config check: handlers in deskapp/commands/
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings()
    if args.db:
        settings.db, settings.db_origin = args.db, "flag"
    if args.operator:
        settings.operator = args.operator
    if args.lang:
        settings.language = args.lang
    from deskapp.settings import find_rules_file

    rules = find_rules_file(args.rules)
    settings.rules = str(rules) if rules is not None else None
    from deskapp.settings import find_escalation_file

    escalation = find_escalation_file(args.escalation)
    settings.escalation = str(escalation) if escalation is not None else None
    return settings


def _setup_logging(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = RotatingFileHandler(path, maxBytes=5_000_000, backupCount=3, encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # httpx logs every request at INFO with its full URL — and some platforms put the access
    # token and signature in the query string. Credentials never reach a log.
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def _open_store(db: str):  # noqa: ANN202
    from db.store import Store

    return await Store.open(db)


def sync_for_app(settings: Settings, config: str | None, *, choose_db: bool = True) -> LiveSync:
    """The app's background sync (``--config``, else the default config file), and its database.

    ``choose_db``: set ``settings.db`` to ``--db``, else ``DESKAPP_DB``, else the config's ``db``,
    else the default. The config's shops sync only into the config's database: when the app opens
    another one, it syncs nothing and says why (``LiveSync.keep_to``).
    """
    from deskapp.services.livesync import config_for_app
    from deskapp.settings import choose_db as choose

    sync = config_for_app(config)
    if choose_db:
        choose(settings, sync.config_db)
    sync.keep_to(settings.db)
    return sync


async def run_app(settings: Settings, *, store=None, config: str | None = None, sync=None,  # noqa: ANN001
                  sign_in_note: str = "") -> int:
    """Open the store and run the app until the agent quits.

    An existing, current SQLite file opens lazily (``db.lazy``): the lookup screen answers from
    plain sqlite3 at once while the write engine opens behind it. Anything else opens fully first.
    Background sync: ``sync`` if given (the demo's), else the ``config`` file, else the default
    config file if there is one, else none; it starts after the first frame and stops before the
    Store closes.

    The database: see :func:`sync_for_app`.
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        # `ssh host` without a terminal (-T, or a command): the app would draw into a pipe and
        # wait for keys that never come, holding the database open.
        from widgets.i18n import tr

        print(f"deskapp: {tr('app.needs_terminal')}", file=sys.stderr)
        return 2
    if sync is None:
        sync = sync_for_app(settings, config, choose_db=store is None)
    if store is None:
        from db.lazy import LazyStore, quick_reader

        reader = quick_reader(settings.db)
        if reader is not None:
            store = LazyStore(reader, login=settings.operator)
        else:
            store = await _open_store(settings.db)
    try:
        # Only operators of this database may open it; the first person to open an empty one
        # becomes its admin (deskapp.services.auth). A LazyStore answers this from its Reader.
        # An operator with a PIN, or a shared PC, starts on the sign-in screen (services.session).
        import os

        from deskapp.services.auth import PolicyError, bootstrap_text, load_policy
        from deskapp.services.session import start_identity
        from deskapp.settings import login_name, under_ssh
        from widgets.i18n import language

        try:
            policy = load_policy(config)
        except PolicyError as error:
            print(f"deskapp: {error.text(language())}", file=sys.stderr)
            return 2
        ssh = under_ssh()
        # named on purpose: --operator (the admin's ForceCommand), or DESKAPP_OPERATOR outside SSH
        # (under SSH it is ignored: deskapp.settings.default_operator)
        explicit = (not ssh and bool(os.environ.get("DESKAPP_OPERATOR"))) or settings.operator != login_name()
        start = await start_identity(store, settings.operator, explicit=explicit, ssh=ssh)
        if start.refusal is not None:
            log.warning("refused %s: %s", start.refusal.login, start.refusal.reason)
            print(f"deskapp: {start.refusal.text(language())}", file=sys.stderr)
            return 2
        who = start.operator
        if who is not None and who.new_admin:
            print(f"deskapp: {bootstrap_text(who.id, language())}", file=sys.stderr)
        app = make_app(store, settings, operator_name=who.display_name if who else None, sync=sync, operator=who,
                       require_sign_in=start.sign_in, preselect=start.preselect, policy=policy,
                       sign_in_note=sign_in_note)
        try:
            await app.run_async()
        finally:
            await sync.stop()  # already stopped by the app on its way out; this covers a failed start
        return app.return_code or 0
    finally:
        await store.close()


async def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Build (or reuse) the demo database, then open the app on it unless --no-ui."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from db.store import Store
    from deskapp.services.demo import add_demo_admin, build_demo
    from widgets.i18n import tr

    if not args.db:
        settings.db = str(Path(settings.db).with_name("demo.db"))
    console = Console(stderr=True, highlight=False)
    is_file = "://" not in settings.db
    path = Path(settings.db)
    if is_file and args.rebuild:
        _remove_sqlite(path)
    existing = 0
    if not is_file or path.exists():
        store = await Store.open(settings.db)
        existing = await store.count_orders()
        await store.close()
    if existing:
        console.print(tr("cli.demo.exists", n=existing, path=settings.db), markup=False)
    else:
        # A SQLite build goes to a side file, renamed into place only when complete: an
        # interrupted build never leaves a half-filled demo that the next run would reuse.
        target = path.with_name(path.name + ".building") if is_file else None
        if target is not None:
            _remove_sqlite(target)
        console.print(tr("cli.demo.building", n=args.orders, path=settings.db), markup=False)
        # Throwaway until renamed into place: no fsyncs; a page cache that holds the indexes
        # (32 MB made a 1M-order build 3× slower per order than a 20k one).
        store = await Store.open(target or settings.db, synchronous="OFF", cache_mb=1024)
        try:
            with Progress(BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console) as bar:
                task = bar.add_task("demo", total=args.orders)
                summary = await build_demo(
                    store, orders=args.orders, seed=args.seed,
                    progress=lambda done, total: bar.update(task, completed=done),
                )
            await store.checkpoint()
        finally:
            await store.close()
        if target is not None:
            target.replace(path)
        console.print(tr("cli.demo.done", n=summary.orders, s=summary.seconds), markup=False)
    # Whoever runs the demo may open it: an admin with the demo PIN, like every demo operator.
    store = await Store.open(settings.db)
    try:
        await add_demo_admin(store, settings.operator)
    finally:
        await store.close()
    if args.no_ui:
        return 0
    from deskapp.services.livesync import LiveSync

    # Live: the platform emulators run in this process (shop "live1", apart from the built
    # shops) and the app's workers sync them every second, so orders keep arriving on screen.
    from deskapp.services.demo import DEMO_PIN

    example = Path(__file__).resolve().parents[1] / "deskapp.rules.example.toml"
    if settings.rules is None and example.is_file():
        # no rules file of one's own: the demo's queue shows the documented example's S/A/B lanes
        # (built-in defaults have no priority rules, and would put every demo order at C)
        settings.rules = str(example)
    return await run_app(settings, sync=LiveSync.off() if args.no_live else LiveSync.demo(),
                         sign_in_note=tr("signin.demo_pin", pin=DEMO_PIN))


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def _configured_db(settings: Settings) -> None:
    """``deskapp lookup`` / ``show`` read the database the app would open: ``--db``, else
    ``DESKAPP_DB``, else the default config file's ``db``, else the default."""
    from connectors.config import read
    from deskapp.settings import choose_db, default_config_path

    path = default_config_path()
    if settings.db_origin == "default" and path.is_file():
        config, _ = read(path)
        choose_db(settings, config.db if config is not None else None)


async def run_lookup(args: argparse.Namespace, settings: Settings) -> int:
    """Print the orders matching a query (a table, or JSON lines with --json)."""
    from db.views import hit_to_json

    _configured_db(settings)
    store = await _open_store(settings.db)
    try:
        hits = await store.find_orders(args.query)
    finally:
        await store.close()
    if args.json:
        print(json.dumps([hit_to_json(h) for h in hits], ensure_ascii=False, indent=1))
        return 0 if hits else 1
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from db.sanitize import clean_text
    from widgets.format import channel_label, money, phone_display, short_time, status_label
    from widgets.i18n import tr

    console = Console(highlight=False)
    if not hits:
        console.print(tr("cli.no_match"), markup=False)
        return 1
    table = Table(box=None, header_style="bold")
    for key in ("order_no", "channel", "status", "receiver", "phone", "region", "paid", "amount"):
        table.add_column(tr(f"col.{key}"), no_wrap=key != "region", justify="right" if key == "amount" else "left")
    for h in hits:
        table.add_row(
            Text(clean_text(h.order_no)), channel_label(h.channel), status_label(h.status),
            Text(clean_text(h.receiver_name)), Text(phone_display(h.receiver_phone)),
            Text(clean_text(h.city + h.district)), short_time(h.paid_at or h.created_at), money(h.total_fen),
        )
    console.print(table)
    return 0


async def run_show(args: argparse.Namespace, settings: Settings) -> int:
    """Print one order's card: facts, alerts, timeline, parcels, lines, customer, replies."""
    from datetime import UTC

    from widgets.i18n import tr

    now = datetime.now(UTC)
    fields = None
    if getattr(args, "reveal", None) is not None:
        from deskapp.services.reveal import RevealError, parse_fields

        try:
            fields = parse_fields(args.reveal)
            if not args.reason.strip():
                raise RevealError(tr("reveal.reason_needed"))
        except RevealError as error:
            print(f"deskapp: {error}", file=sys.stderr)
            return 2
    _configured_db(settings)
    store = await _open_store(settings.db)
    try:
        order_id = await store.order_id_by_no(args.order_no)
        if order_id is None:
            card = None
        elif fields is None:
            card = await store.order_card(order_id, now=now)
        else:
            from db.codes import ActorKind
            from db.roles import Refused
            from db.views import Actor
            from deskapp.services.reveal import reveal_card
            from widgets.i18n import language

            try:
                card = await reveal_card(store, order_id, fields, args.reason, Actor(ActorKind.OPERATOR,
                                         settings.operator), via="cli", at=now)
            except Refused as refused:
                print(f"deskapp: {refused.text(language())}", file=sys.stderr)
                return 2
    finally:
        await store.close()
    if card is None:
        print(tr("cli.not_found", no=args.order_no), file=sys.stderr)
        return 1
    from deskapp.services.insights import alerts, replies

    found_alerts = alerts(card, now)
    found_replies = replies(card, now)
    if args.json:
        data = card.to_json()
        data["alerts"] = [{"code": a.code, "severity": a.severity, "text": a.text} for a in found_alerts]
        data["replies"] = found_replies
        print(json.dumps(data, ensure_ascii=False, indent=1))
        return 0
    from rich.console import Console
    from rich.text import Text

    from widgets.order_card import (
        ALERT_STYLE,
        card_facts,
        card_title,
        customer_block,
        lines_table,
        parcels_block,
        timeline_table,
    )

    console = Console(highlight=False)
    console.print(card_title(card))
    console.print(card_facts(card, now))
    for alert in found_alerts:
        console.print(Text(f"● {alert.text}", style=ALERT_STYLE[alert.severity]))
    for title, body in (
        ("card.timeline", timeline_table(card.timeline, now)),
        ("card.parcels", parcels_block(card, now)),
        ("card.lines", lines_table(card)),
    ):
        console.print(Text("\n" + tr(title), style="bold underline"))
        console.print(body)
    if card.customer:
        console.print(Text("\n" + tr("card.customer"), style="bold underline"))
        console.print(customer_block(card, now))
    if found_replies:
        console.print(Text("\n" + tr("card.replies"), style="bold underline"))
        for i, reply in enumerate(found_replies, 1):
            console.print(Text(f"{i}. {reply}"))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``deskapp`` console script."""
    args = _parser().parse_args(argv)
    for name in ("db", "operator", "lang", "rules", "escalation"):
        setattr(args, name, getattr(args, name, None))
    settings = _settings(args)
    from widgets.i18n import set_language, tr

    set_language(settings.language)
    _setup_logging(settings.log_file)
    commands = {None: lambda: run_app(settings, config=args.config), "demo": lambda: run_demo(args, settings),
                "lookup": lambda: run_lookup(args, settings), "show": lambda: run_show(args, settings)}
    if hasattr(args, "handler"):  # subcommands registered by deskapp.commands
        commands[args.command] = lambda: args.handler(args, settings)
    try:
        return asyncio.run(commands[args.command]())
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001 - one plain line for the person, details in the log
        log.exception("deskapp %s failed", args.command or "app")
        print(f"deskapp: {tr('app.error')} ({type(error).__name__}: {settings.log_file})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
