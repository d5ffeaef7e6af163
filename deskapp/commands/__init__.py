"""CLI subcommands kept out of ``deskapp/__main__.py``: ``deskapp import`` and ``deskapp config check``.

``register(sub, common)`` adds their parsers to the main parser's subparsers; each sets a
``handler(args, settings) -> int`` coroutine function that ``__main__.main`` runs. Handlers follow
the CLI's rules: one plain line for an error, never a traceback; untrusted text printed as plain
text, never as markup.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``import`` and ``config check`` to the ``deskapp`` parser."""
    from deskapp.commands.config_check import run_config_check
    from deskapp.commands.import_file import run_import_command

    imp = sub.add_parser(
        "import", parents=[common], help="import orders from a CSV or Excel file (preview first)",
        description="Import orders from a CSV (UTF-8 or GBK) or Excel file: a preview with per-row "
                    "errors first, then ingest on confirmation. Importing the same file again changes nothing.",
    )
    imp.add_argument("file", help="the .csv / .xlsx file")
    imp.add_argument("--channel", required=True, help="the channel code the orders belong to (taobao, pos, …)")
    imp.add_argument("--shop", default="default", help="the shop code (default: default)")
    imp.add_argument("--mapping", help="a mapping file: which column holds which field")
    imp.add_argument("--config", help="deskapp.toml, for the channel's status-map overrides")
    imp.add_argument("--yes", action="store_true", help="ingest without asking")
    imp.set_defaults(handler=run_import_command)

    config = sub.add_parser("config", parents=[common], help="check the connector config (deskapp.toml)")
    actions = config.add_subparsers(dest="config_command", required=True)
    check = actions.add_parser("check", parents=[common], help="explain every problem in deskapp.toml")
    check.add_argument("--config", help="the config file (default: $DESKAPP_CONFIG or ./deskapp.toml)")
    check.set_defaults(handler=run_config_check)

    from deskapp.commands.emulate import add_parser as add_emulate

    add_emulate(sub, common)

    from deskapp.commands.sync import add_parser as add_sync

    add_sync(sub, common)

    from deskapp.commands.check_address import add_parser as add_check_address

    add_check_address(sub, common)

    from deskapp.commands.queue import add_parser as add_queue

    add_queue(sub, common)

    from deskapp.commands.operators import add_parser as add_operators

    add_operators(sub, common)

    from deskapp.commands.audit import add_parser as add_audit

    add_audit(sub, common)

    from deskapp.commands.doctor import add_parser as add_doctor

    add_doctor(sub, common)

    from deskapp.commands.export import add_parser as add_export

    add_export(sub, common)
