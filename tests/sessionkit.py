"""Helpers for tests of sign-in, switch user, the idle lock and reveals in the running app.

PINs are real Argon2id hashes at the lowest cost Argon2 allows (verifying reads the cost from the
hash, so checking them is quick too); the idle clock is a number the test moves on.
"""

from __future__ import annotations

from pathlib import Path

from argon2 import PasswordHasher
from sqlalchemy import text

from db.engine import make_engine
from db.store import Store
from deskapp.__main__ import make_app
from deskapp.services.auth import SecurityPolicy
from deskapp.settings import Settings
from tests.appkit import _NAMES, OPERATOR, fixed_clock

PIN = "2468"
_QUICK = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


async def give_pins(path: Path, pins: dict[str, str]) -> None:
    """Set these operators' PINs (login → PIN) in the database file."""
    store = await Store.open(path)
    try:
        async with store.write() as conn:
            for login, pin in pins.items():
                await conn.execute(text("UPDATE operator SET pin_hash = :h, failed_pins = 0, locked_until = NULL "
                                        "WHERE id = :id"), {"h": _QUICK.hash(pin), "id": login})
    finally:
        await store.close()


class IdleClock:
    """The app's idle clock (seconds): only :meth:`advance` moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, *, minutes: float = 0, seconds: float = 0) -> None:
        self.now += minutes * 60 + seconds


def desk(path: Path, *, operator: str = OPERATOR, policy: SecurityPolicy | None = None,
         idle_clock: IdleClock | None = None, **options):  # noqa: ANN003, ANN201
    """The app on ``path`` as ``operator`` (signed in directly), or with ``require_sign_in=True``
    starting on the sign-in screen; a fixed wall clock and the given idle clock."""
    settings = Settings(db=str(path), operator=operator, language="zh")
    name = None if options.get("require_sign_in") else _NAMES.get(operator, operator)
    return make_app(Store(make_engine(path)), settings, operator_name=name, clock=fixed_clock,
                    policy=policy or SecurityPolicy(), idle_clock=idle_clock or IdleClock(), **options)


async def access_log(path: Path, kind: str | None = None) -> list[tuple]:
    """(operator_id, kind, order_id, field, reason) of every access-log record (of ``kind``), oldest first."""
    store = await Store.open(path)
    try:
        async with store.engine.connect() as conn:
            sql = "SELECT operator_id, kind, order_id, field, reason FROM access_log"
            if kind:
                sql += " WHERE kind = :kind"
            return [tuple(r) for r in (await conn.execute(text(sql + " ORDER BY id"), {"kind": kind})).all()]
    finally:
        await store.close()


def visible_text(app) -> str:  # noqa: ANN001
    """Everything the terminal shows, the screens behind a see-through dialog included, as text."""
    import io

    from rich.console import Console

    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO(), record=True,
                      force_terminal=True, color_system=None, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))  # noqa: SLF001
    return console.export_text()
