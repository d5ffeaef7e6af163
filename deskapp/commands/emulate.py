"""``deskapp emulate CHANNEL --port N [--orders N] [--seed N] [--faults SPEC]``: one platform emulator.

Serves the platform's order API on 127.0.0.1 in the foreground — for trying a connector config,
for load tests and for support — and prints the URL and the emulator's made-up credentials.
Stops cleanly on Ctrl+C or SIGTERM.
"""

from __future__ import annotations

import argparse
import sys

from deskapp.settings import Settings

FAULTS_HELP = (
    "faults as fractions of calls, e.g. 429=0.05,500=0.05,timeout=0.02,truncate=0.03,shift=0.05,"
    "late=0.05,dup=0.05,limit=0.02"
)


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    emu = sub.add_parser("emulate", parents=[common], help="serve one platform's order API emulator on 127.0.0.1")
    emu.add_argument("channel", help="taobao, tmall, pdd, douyin, … (see --help of the error for the list)")
    emu.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    emu.add_argument("--orders", type=int, default=1000, help="orders in the emulated shop(s)")
    emu.add_argument("--seed", type=int, default=1)
    emu.add_argument("--days", type=float, default=2.0, help="how far back the generated orders go")
    emu.add_argument("--faults", help=FAULTS_HELP)
    emu.set_defaults(handler=run_emulate)


async def run_emulate(args: argparse.Namespace, settings: Settings) -> int:  # noqa: ARG001
    from connectors.emulators import CHANNELS, FaultSpecError, serve

    if args.channel not in CHANNELS:
        print(f"deskapp emulate: unknown channel {args.channel!r}; one of: {', '.join(CHANNELS)}", file=sys.stderr)
        return 2
    try:
        await serve(args.channel, args.port, orders=args.orders, seed=args.seed, faults=args.faults, days=args.days,
                    announce=lambda text: print(text, flush=True))
    except FaultSpecError as error:
        print(f"deskapp emulate: {error}", file=sys.stderr)
        return 2
    return 0
