"""``deskapp operators add / list / disable / reset-pin``: who may use this database, for admins.

    deskapp operators add LOGIN --name 显示名 --role cs|warehouse|supervisor|admin [--pin-stdin]
    deskapp operators list
    deskapp operators disable LOGIN
    deskapp operators reset-pin LOGIN [--pin-stdin]

The acting operator is ``--operator`` / ``DESKAPP_OPERATOR`` / the login name, and must be an admin
(``manage_operators`` in ``db.roles``, checked by the service functions in
``deskapp.services.auth`` inside their write transactions). A database with no operators makes its
first user its admin (one line says so). Each change is on the access log.

A PIN is read from the terminal with ``getpass`` (never echoed, asked twice), or as one line of
standard input with ``--pin-stdin`` (for scripts); it is never printed or logged. ``add`` without a
terminal and without ``--pin-stdin`` adds the operator without a PIN.

Exit status: 0 done; 1 nothing to do (already an operator, no such operator, the last admin);
2 refused or bad input (the reason in one plain line on stderr).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from deskapp.settings import Settings

EPILOG = ("exit status: 0 = done, 1 = exists / no such operator / last admin, 2 = refused or bad input. "
          "Examples: deskapp operators add zhaolei --name 赵磊 --role warehouse; "
          "echo 2580 | deskapp operators reset-pin zhaolei --pin-stdin")


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register ``operators`` and its four actions on the ``deskapp`` parser."""
    from db.roles import ROLES

    cmd = sub.add_parser("operators", parents=[common], help="add, list, disable operators and reset PINs (admin)",
                         description="Manage who may use this database. Admins only; the first person "
                                     "to open an empty database becomes its admin.", epilog=EPILOG)
    actions = cmd.add_subparsers(dest="operators_command", required=True)
    add = actions.add_parser("add", parents=[common], help="add an operator", epilog=EPILOG)
    add.add_argument("login", help="the operator's login name (their SSH / OS account)")
    add.add_argument("--name", required=True, help="the name shown in the header and on the timeline")
    add.add_argument("--role", required=True, choices=list(ROLES))
    add.add_argument("--pin-stdin", action="store_true", help="read the PIN as one line from standard input")
    add.set_defaults(handler=run_add)
    listing = actions.add_parser("list", parents=[common], help="list every operator")
    listing.set_defaults(handler=run_list)
    disable = actions.add_parser("disable", parents=[common], help="disable an operator")
    disable.add_argument("login")
    disable.set_defaults(handler=run_disable)
    reset = actions.add_parser("reset-pin", parents=[common], help="set a new PIN (clears a lock)")
    reset.add_argument("login")
    reset.add_argument("--pin-stdin", action="store_true", help="read the PIN as one line from standard input")
    reset.set_defaults(handler=run_reset_pin)


def _error(text: str) -> None:
    print(f"deskapp: {text}", file=sys.stderr)


async def _open(settings: Settings, *, create: bool):
    """The Store and the acting operator — after the bootstrap rule, and only an admin — or
    (None, None) having said why."""
    from db.store import Store
    from deskapp.services.auth import Refusal, bootstrap_text, resolve_operator
    from widgets.i18n import language, tr

    if not create and "://" not in settings.db and not Path(settings.db).is_file():
        _error(tr("audit.no_db", path=settings.db))
        return None, None
    store = await Store.open(settings.db)
    who = await resolve_operator(store, settings.operator)
    if isinstance(who, Refusal):
        _error(who.text(language()))
        await store.close()
        return None, None
    if who.new_admin:
        print(bootstrap_text(who.id, language()), file=sys.stderr)
    # Asked before any PIN is typed (the service functions ask again inside their writes); a
    # refusal is on the access log like one of theirs.
    from db.access import log_access
    from db.roles import Refused, require

    try:
        async with store.engine.connect() as conn:
            await require(conn, who.actor, "manage_operators")
    except Refused as refused:
        await log_access(store, who.id, "refused", reason=refused.text("zh"),
                         detail={"action": refused.action, "role": refused.role, "why": refused.reason})
        _error(refused.text(language()))
        await store.close()
        return None, None
    return store, who


def _read_pin(args: argparse.Namespace, login: str, *, optional: bool) -> str | None:
    """The PIN from stdin (``--pin-stdin``) or the terminal; None for none (``optional``).

    Raises ``ValueError`` with the plain reason when there is no usable PIN.
    """
    from deskapp.services.auth import PinError, valid_pin
    from widgets.i18n import language, tr

    if args.pin_stdin:
        pin = sys.stdin.readline().strip()
    elif sys.stdin.isatty():
        pin = getpass.getpass(tr("ops.pin_optional" if optional else "ops.pin_prompt", login=login)).strip()
        if pin and getpass.getpass(tr("ops.pin_again")).strip() != pin:
            raise ValueError(tr("ops.pin_mismatch"))
    elif optional:
        return None
    else:
        raise ValueError(tr("ops.pin_needed"))
    if not pin and optional:
        return None
    if not valid_pin(pin):
        raise ValueError(PinError().text(language()))
    return pin


async def run_add(args: argparse.Namespace, settings: Settings) -> int:
    """``operators add``."""
    from db.roles import Refused, role_name
    from deskapp.services.auth import OperatorExists, add_operator, valid_login
    from widgets.i18n import language, tr

    login, name = args.login.strip(), args.name.strip()
    if not valid_login(login):
        _error(tr("ops.bad_login", login=login[:64]))
        return 2
    if not name or len(name) > 64:
        _error(tr("ops.bad_name"))
        return 2
    store, who = await _open(settings, create=True)
    if store is None:
        return 2
    try:
        try:
            pin = _read_pin(args, login, optional=True)
        except ValueError as error:
            _error(str(error))
            return 2
        try:
            info = await add_operator(store, login, name, args.role, by=who.id, pin=pin)
        except Refused as refused:
            _error(refused.text(language()))
            return 2
        except OperatorExists:
            _error(tr("ops.exists", login=login))
            return 1
    finally:
        await store.close()
    print(tr("ops.added", login=info.id, name=info.display_name, role=role_name(info.role, language())))
    if not info.has_pin:
        print(tr("ops.added_no_pin", login=info.id))
    return 0


async def run_list(args: argparse.Namespace, settings: Settings) -> int:
    """``operators list``: admins only, like the other actions (it shows who is locked out)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from db.sanitize import clean_text
    from deskapp.services.auth import operators
    from widgets.format import short_time
    from widgets.i18n import language, tr

    store, _ = await _open(settings, create=False)
    if store is None:
        return 2
    try:
        people = await operators(store)
    finally:
        await store.close()
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for key in ("login", "name", "role", "pin", "state", "created"):
        table.add_column(tr(f"ops.col.{key}"), no_wrap=True, overflow="ellipsis")
    for person in people:
        if not person.active:
            state = tr("ops.state.disabled")
        elif person.locked_until is not None and person.locked_until > now:
            state = tr("ops.state.locked", t=short_time(person.locked_until))
        else:
            state = tr("ops.state.active")
        table.add_row(Text(clean_text(person.id)), Text(clean_text(person.display_name)),
                      Text(person.role_name(language())),
                      Text(tr("ops.pin.yes" if person.has_pin else "ops.pin.no")), Text(state),
                      Text(short_time(person.created_at) if person.created_at else "—"))
    Console(highlight=False).print(table)
    return 0


async def run_disable(args: argparse.Namespace, settings: Settings) -> int:
    """``operators disable``."""
    from db.roles import Refused
    from deskapp.services.auth import LastAdmin, NoSuchOperator, disable_operator
    from widgets.i18n import language, tr

    store, who = await _open(settings, create=False)
    if store is None:
        return 2
    try:
        await disable_operator(store, args.login, by=who.id)
    except Refused as refused:
        _error(refused.text(language()))
        return 2
    except NoSuchOperator:
        _error(tr("ops.no_such", login=args.login[:64]))
        return 1
    except LastAdmin:
        _error(tr("ops.last_admin", login=args.login[:64]))
        return 1
    finally:
        await store.close()
    print(tr("ops.disabled", login=args.login))
    return 0


async def run_reset_pin(args: argparse.Namespace, settings: Settings) -> int:
    """``operators reset-pin``."""
    from db.roles import Refused
    from deskapp.services.auth import NoSuchOperator, set_pin
    from widgets.i18n import language, tr

    store, who = await _open(settings, create=False)
    if store is None:
        return 2
    try:
        try:
            pin = _read_pin(args, args.login, optional=False)
        except ValueError as error:
            _error(str(error))
            return 2
        try:
            await set_pin(store, args.login, pin, by=who.id)
        except Refused as refused:
            _error(refused.text(language()))
            return 2
        except NoSuchOperator:
            _error(tr("ops.no_such", login=args.login[:64]))
            return 1
    finally:
        await store.close()
    print(tr("ops.pin_reset", login=args.login))
    return 0
