"""HTTP emulators of the platforms' order APIs, served on 127.0.0.1 for tests, benches and the demo.

Each speaks its platform's public format — windows and their limits, paging order, tokens and
signatures, error codes and rate-limit answers, token expiry — over a seeded, evolving world of orders,
and injects faults on demand (``faults``). Start one with::

    from connectors.emulators import start_emulator
    emu = start_emulator("pdd", port=0, orders=500, seed=7, faults="429=0.05,timeout=0.02")
    emu.url, emu.credentials("shop1"), emu.truth()   # base URL, tokens, ground truth
    emu.stop()

``make_emulator`` gives the ASGI app and world (for ``deskapp emulate``), ``serve_emulator`` runs one
on the current event loop (``deskapp demo``), ``serve_forever`` in the foreground.
"""

from connectors.emulators.core import (
    PLATFORMS,
    Clock,
    RunningEmulator,
    World,
    describe,
    make_emulator,
    serve,
    serve_emulator,
    serve_forever,
    start_emulator,
)
from connectors.emulators.faults import FaultSpec, FaultSpecError

#: The channels an emulator exists for here (Kuaidi100 lives in ``kuaidi100``).
CHANNELS: tuple[str, ...] = tuple(PLATFORMS)

__all__ = [
    "CHANNELS",
    "Clock",
    "FaultSpec",
    "FaultSpecError",
    "RunningEmulator",
    "World",
    "describe",
    "make_emulator",
    "serve",
    "serve_emulator",
    "serve_forever",
    "start_emulator",
]
