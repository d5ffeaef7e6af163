"""Operators: who may open this database, their PINs, sign-in with lockout, and the security policy.

* :func:`resolve_operator` — who is opening the app or a CLI command. A database with no operator
  at all makes its first user its admin (one line says so); otherwise an unknown login is refused
  in one line that says how to get added, and a disabled one is refused too.
* :func:`sign_in` — a PIN for a shared PC. The PIN (4–8 digits) is stored only as an Argon2id hash
  (argon2-cffi); checking it runs in a thread, never on the event loop (it is slow on purpose, and
  uses 64 MiB while it runs). Wrong PINs are counted in the ``operator`` row, so quitting and
  starting again does not reset them; after :attr:`SecurityPolicy.pin_max_failures` the operator
  is locked for :attr:`SecurityPolicy.pin_lock_minutes` — even the right PIN is refused until
  then. Every attempt goes on the access log (``sign_in``, ``sign_in_failed``, ``pin_locked``).
* :func:`add_operator`, :func:`disable_operator`, :func:`set_pin`, :func:`operators` — for
  ``deskapp operators``; each checks ``manage_operators`` (``db.roles``) inside its own write
  transaction and writes an access-log record.
* :class:`SecurityPolicy` — the ``[security]`` table of ``deskapp.toml``, with environment
  overrides (``DESKAPP_PIN_MAX_FAILURES``, ``DESKAPP_PIN_LOCK_MINUTES``,
  ``DESKAPP_IDLE_LOCK_MINUTES``, ``DESKAPP_REVEAL_MINUTES``).

No PIN is ever logged, printed or stored in clear; records name the operator, never the PIN.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from db import lazy
from db.roles import (
    ROLES,
    OperatorRow,
    Refused,
    read_operator,
    read_operators,
    role_name,
)
from db.sanitize import clean_text
from db.views import Actor
from deskapp.settings import default_config_path

if TYPE_CHECKING:
    from db.lazy import LazyStore
    from db.store import Store

log = logging.getLogger("deskapp.auth")

_PIN = re.compile(r"[0-9]{4,8}")
#: The longest login and display name the ``operator`` table holds.
MAX_LOGIN = MAX_NAME = 64
_SPACE = re.compile(r"\s")


# -- who is working --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperatorInfo:
    """An operator as the app and the CLI see them (never the PIN hash).

    ``new_admin``: this call made them the database's first operator, an admin (bootstrap).
    """

    id: str
    display_name: str
    role: str
    has_pin: bool
    active: bool
    new_admin: bool = False
    failed_pins: int = 0
    locked_until: datetime | None = None
    created_at: datetime | None = None

    @classmethod
    def of(cls, row: OperatorRow, *, new_admin: bool = False) -> OperatorInfo:
        return cls(row.id, row.display_name, row.role, row.has_pin, row.active, new_admin, row.failed_pins,
                   row.locked_until, row.created_at)

    @property
    def actor(self) -> Actor:
        """The author of this operator's writes."""
        return Actor("operator", self.id)

    def role_name(self, lang: str = "zh") -> str:
        return role_name(self.role, lang)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a login may not open this database: ``unknown`` (not an operator) or ``disabled``."""

    login: str
    reason: str

    def text(self, lang: str = "zh") -> str:
        """One plain line that also says what to do."""
        who = clean_text(self.login)
        if self.reason == "disabled":
            return f"{who} 已被停用；请联系管理员" if lang == "zh" else f"{who} has been disabled; ask an admin"
        if lang == "zh":
            return f"{who} 还不是本库的操作员；请管理员运行 deskapp operators add {who}"
        return f"{who} is not an operator of this database yet; ask an admin to run: deskapp operators add {who}"


def bootstrap_text(login: str, lang: str = "zh") -> str:
    """The one line that says a database's first user became its admin."""
    who = clean_text(login)
    if lang == "zh":
        return f"本库还没有管理员：{who} 已成为第一位管理员（deskapp operators add 添加其他人）"
    return f"This database had no admin: {who} is now its first admin (add others with deskapp operators add)"


def _who(q, login: str) -> tuple[OperatorRow | None, int, int]:
    row, count = read_operator(q, login)
    admins = q("SELECT COUNT(*) FROM operator WHERE role = 'admin' AND active = :yes", {"yes": True})[0][0]
    return row, count, admins


async def resolve_operator(store: Store | LazyStore, login: str, *, at: datetime | None = None) -> OperatorInfo | Refusal:
    """Who ``login`` is in this database — or why they may not open it.

    The bootstrap rule: a database without any operator makes ``login`` its admin (display name =
    login); one that has operators but no active admin — written before roles were enforced, when
    every login was added as customer service — makes the first of them to open it its admin.
    Either is on the access log (``operator_added``, reason ``bootstrap``) and sets
    ``OperatorInfo.new_admin``. (``disable_operator`` never disables the last admin, so the
    second case does not arise otherwise.) A LazyStore answers from its Reader; only the
    bootstrap waits for the full Store.
    """
    login = clean_text(login).strip()
    row, count, admins = await lazy.read(store, _who, login)
    if row is not None and not row.active:
        return Refusal(login, "disabled")
    if row is not None and admins:
        return OperatorInfo.of(row)
    if row is None and (count or not login):
        return Refusal(login, "unknown")
    at = at or datetime.now(UTC)
    full = await lazy.full(store)
    from sqlalchemy import func, insert, select, update

    from db.access import append_access
    from db.models import Operator

    op = Operator.__table__.c
    created = False
    async with full.write() as conn:
        # Another terminal may have bootstrapped meanwhile: only the very first one becomes admin.
        everyone = (await conn.execute(select(func.count()).select_from(Operator.__table__))).scalar_one()
        active_admins = (await conn.execute(select(func.count()).select_from(Operator.__table__)
                                            .where(op.role == "admin", op.active.is_(True)))).scalar_one()
        if everyone == 0:
            await conn.execute(insert(Operator.__table__).values(
                id=login[:MAX_LOGIN], display_name=login[:MAX_NAME], role="admin", active=True, failed_pins=0,
                created_at=at))
            created = True
        elif active_admins == 0 and row is not None:
            await conn.execute(update(Operator.__table__).where(op.id == login, op.active.is_(True))
                               .values(role="admin"))
            created = True
        if created:
            await append_access(conn, login, "operator_added", reason="bootstrap", at=at,
                                detail={"operator": login, "role": "admin", "bootstrap": True,
                                        "was": row.role if row is not None else None})
    row, _ = await lazy.read(full, read_operator, login)
    if row is None:
        return Refusal(login, "unknown")
    if created:
        log.info("%s", bootstrap_text(login, "en"))
    return OperatorInfo.of(row, new_admin=created) if row.active else Refusal(login, "disabled")


async def operators(store: Store | LazyStore) -> list[OperatorInfo]:
    """Every operator, active first (for the sign-in picker and ``deskapp operators list``)."""
    return [OperatorInfo.of(row) for row in await lazy.read(store, read_operators)]


# -- PINs ------------------------------------------------------------------------------------------


class PinError(ValueError):
    """A PIN that is not 4 to 8 digits."""

    def text(self, lang: str = "zh") -> str:
        return "PIN 必须是 4–8 位数字" if lang == "zh" else "A PIN is 4 to 8 digits"


def valid_pin(pin: str) -> bool:
    """Whether ``pin`` is 4 to 8 ASCII digits."""
    return isinstance(pin, str) and _PIN.fullmatch(pin) is not None


@functools.cache
def _hasher():
    """argon2-cffi's defaults (Argon2id, RFC 9106 low-memory: t=3, 64 MiB, p=4), built on first
    use: the app's first frame needs none of it."""
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_pin(pin: str) -> str:
    """The Argon2id hash of a PIN (:class:`PinError` if it is not 4–8 digits). Slow on purpose:
    call it in a thread from the event loop."""
    if not valid_pin(pin):
        raise PinError("invalid PIN")
    return _hasher().hash(pin)


def verify_pin(pin_hash: str, pin: str) -> bool:
    """Whether ``pin`` matches ``pin_hash`` (False for a malformed hash). Slow on purpose."""
    from argon2.exceptions import (
        InvalidHashError,
        VerificationError,
        VerifyMismatchError,
    )

    if not valid_pin(pin):
        return False
    try:
        return _hasher().verify(pin_hash, pin)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class SignInResult:
    """What a sign-in attempt did.

    ``status``: ``ok``, ``wrong_pin`` (``attempts_left`` before the lock), ``locked`` (until
    ``locked_until``), ``disabled``, ``no_pin`` (an admin must set one first) or ``unknown``.
    """

    status: str
    operator: OperatorInfo | None = None
    attempts_left: int | None = None
    locked_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def text(self, lang: str = "zh") -> str:
        """One plain line for the person at the keyboard."""
        zh = lang == "zh"
        name = clean_text(self.operator.display_name if self.operator else "")
        if self.status == "ok":
            return f"{name} 已登录" if zh else f"{name} signed in"
        if self.status == "wrong_pin":
            return f"PIN 不对；还可以再试 {self.attempts_left} 次" if zh else \
                f"Wrong PIN; {self.attempts_left} tries left"
        if self.status == "locked":
            until = _china(self.locked_until)
            return f"PIN 错误次数太多，已锁定到 {until}" if zh else f"Too many wrong PINs: locked until {until}"
        if self.status == "disabled":
            return f"{name} 已被停用；请联系管理员" if zh else f"{name} has been disabled; ask an admin"
        if self.status == "no_pin":
            return f"{name} 还没有设置 PIN；请管理员运行 deskapp operators reset-pin" if zh else \
                f"{name} has no PIN yet; ask an admin to run deskapp operators reset-pin"
        return "没有这个操作员" if zh else "No such operator"


def _china(at: datetime | None) -> str:
    return "—" if at is None else at.astimezone(_CHINA).strftime("%H:%M")


_CHINA = timezone(timedelta(hours=8), "CST")  # the platforms' zone, whatever the host's is


async def _pin_row(store: Store | LazyStore, login: str) -> tuple | None:
    def read(q, login: str) -> tuple | None:
        rows = q("SELECT pin_hash FROM operator WHERE id = :login", {"login": login})
        return rows[0] if rows else None

    return await lazy.read(store, read, login)


async def sign_in(store: Store | LazyStore, login: str, pin: str, *, policy: SecurityPolicy | None = None,
                  now: datetime | None = None) -> SignInResult:
    """Check an operator's PIN, counting failures in the database and locking after too many.

    Every attempt is on the access log. The PIN is checked in a thread before the write
    transaction (which then re-reads the counters, so two terminals trying at once count both).
    """
    policy = policy or SecurityPolicy()
    now = now or datetime.now(UTC)
    row, _ = await lazy.read(store, read_operator, login)
    full = await lazy.full(store)
    from db.access import log_access

    if row is None:
        await log_access(full, login, "sign_in_failed", reason="unknown", at=now)
        return SignInResult("unknown")
    info = OperatorInfo.of(row)
    if not row.active:
        await log_access(full, login, "sign_in_failed", reason="disabled", at=now)
        return SignInResult("disabled", info)
    if not row.has_pin:
        await log_access(full, login, "sign_in_failed", reason="no_pin", at=now)
        return SignInResult("no_pin", info)
    if row.locked_until is not None and row.locked_until > now:
        await log_access(full, login, "sign_in_failed", reason="locked", at=now)
        return SignInResult("locked", info, 0, row.locked_until)
    stored = (await _pin_row(store, login) or (None,))[0]
    good = bool(stored) and await asyncio.to_thread(verify_pin, stored, pin)
    return await _count_attempt(full, login, good, policy, now)


async def _count_attempt(store: Store, login: str, good: bool, policy: SecurityPolicy,
                         now: datetime) -> SignInResult:
    from sqlalchemy import select, update

    from db.access import append_access
    from db.models import Operator

    op = Operator.__table__.c
    async with store.write() as conn:
        current = (await conn.execute(select(op.failed_pins, op.locked_until).where(op.id == login))).first()
        if current is None:
            await append_access(conn, login, "sign_in_failed", reason="unknown", at=now)
            return SignInResult("unknown")
        failed, locked_until = int(current[0] or 0), current[1]
        if locked_until is not None and locked_until.tzinfo is None:
            locked_until = locked_until.replace(tzinfo=UTC)
        if locked_until is not None and locked_until > now:  # another terminal locked it meanwhile
            await append_access(conn, login, "sign_in_failed", reason="locked", at=now)
            result = SignInResult("locked", None, 0, locked_until)
        elif good:
            await conn.execute(update(Operator.__table__).where(op.id == login)
                               .values(failed_pins=0, locked_until=None))
            await append_access(conn, login, "sign_in", at=now)
            result = SignInResult("ok")
        elif failed + 1 >= policy.pin_max_failures:
            until = now + timedelta(minutes=policy.pin_lock_minutes)
            await conn.execute(update(Operator.__table__).where(op.id == login)
                               .values(failed_pins=0, locked_until=until))
            await append_access(conn, login, "sign_in_failed", reason="wrong_pin", at=now)
            await append_access(conn, login, "pin_locked", reason=f"{failed + 1} wrong PINs", at=now,
                                detail={"until": until.isoformat(), "failures": failed + 1})
            result = SignInResult("locked", None, 0, until)
        else:
            await conn.execute(update(Operator.__table__).where(op.id == login).values(failed_pins=failed + 1))
            await append_access(conn, login, "sign_in_failed", reason="wrong_pin", at=now,
                                detail={"failures": failed + 1})
            result = SignInResult("wrong_pin", None, policy.pin_max_failures - failed - 1)
    row, _ = await lazy.read(store, read_operator, login)
    return SignInResult(result.status, OperatorInfo.of(row) if row else None, result.attempts_left,
                        result.locked_until)


# -- managing operators ----------------------------------------------------------------------------


class OperatorExists(ValueError):
    """There is already an operator with that login."""


class NoSuchOperator(LookupError):
    """No operator has that login."""


class LastAdmin(ValueError):
    """Disabling this operator would leave the database without an active admin."""


def valid_login(login: str) -> bool:
    """A login as ``operator add`` accepts it: 1–64 characters, no spaces or control characters,
    not starting with ``-`` (an OS login name, which may be Chinese on Windows)."""
    return (isinstance(login, str) and 0 < len(login) <= MAX_LOGIN and not login.startswith("-")
            and _SPACE.search(login) is None and clean_text(login) == login)


async def add_operator(store: Store | LazyStore, login: str, display_name: str, role: str, *, by: str,
                       pin: str | None = None, at: datetime | None = None) -> OperatorInfo:
    """Add an operator (``manage_operators``); with a PIN if given. On the access log.

    Raises :class:`db.roles.Refused`, :class:`OperatorExists`, :class:`PinError`, ``ValueError``
    for a bad login, name or role.
    """
    if not valid_login(login):
        raise ValueError(f"bad login {login!r}")
    display_name = clean_text(display_name).strip()
    if not display_name or len(display_name) > MAX_NAME:
        raise ValueError("bad display name")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    pin_hash = None if pin is None else await asyncio.to_thread(hash_pin, pin)
    at = at or datetime.now(UTC)
    from sqlalchemy import insert, select

    from db.access import append_access
    from db.models import Operator

    op = Operator.__table__.c
    full = await lazy.full(store)
    async with full.write() as conn:
        refused = await _permit(conn, by, "manage_operators", at)
        if refused is None:
            if (await conn.execute(select(op.id).where(op.id == login))).first() is not None:
                raise OperatorExists(login)
            await conn.execute(insert(Operator.__table__).values(
                id=login, display_name=display_name, role=role, active=True, pin_hash=pin_hash, failed_pins=0,
                created_at=at))
            await append_access(conn, by, "operator_added", at=at,
                                detail={"operator": login, "role": role, "pin": pin_hash is not None})
    if refused is not None:
        raise refused
    row, _ = await lazy.read(full, read_operator, login)
    return OperatorInfo.of(row)


async def disable_operator(store: Store | LazyStore, login: str, *, by: str, at: datetime | None = None) -> None:
    """Disable an operator (``manage_operators``): they can no longer open the app or sign in.

    Raises :class:`db.roles.Refused`, :class:`NoSuchOperator`, :class:`LastAdmin`.
    """
    at = at or datetime.now(UTC)
    from sqlalchemy import func, select, update

    from db.access import append_access
    from db.models import Operator

    op = Operator.__table__.c
    full = await lazy.full(store)
    async with full.write() as conn:
        refused = await _permit(conn, by, "manage_operators", at)
        if refused is None:
            row = (await conn.execute(select(op.role, op.active).where(op.id == login))).first()
            if row is None:
                raise NoSuchOperator(login)
            if row[0] == "admin" and row[1]:
                admins = (await conn.execute(select(func.count()).select_from(Operator.__table__)
                                             .where(op.role == "admin", op.active.is_(True)))).scalar_one()
                if admins <= 1:
                    raise LastAdmin(login)
            await conn.execute(update(Operator.__table__).where(op.id == login).values(active=False))
            await append_access(conn, by, "operator_disabled", at=at, detail={"operator": login})
    if refused is not None:
        raise refused


async def set_pin(store: Store | LazyStore, login: str, pin: str, *, by: str, at: datetime | None = None) -> None:
    """Set (or reset) an operator's PIN (``manage_operators``); clears failures and any lock.

    Raises :class:`db.roles.Refused`, :class:`NoSuchOperator`, :class:`PinError`.
    """
    pin_hash = await asyncio.to_thread(hash_pin, pin)
    at = at or datetime.now(UTC)
    from sqlalchemy import update

    from db.access import append_access
    from db.models import Operator

    op = Operator.__table__.c
    full = await lazy.full(store)
    async with full.write() as conn:
        refused = await _permit(conn, by, "manage_operators", at)
        if refused is None:
            result = await conn.execute(update(Operator.__table__).where(op.id == login)
                                        .values(pin_hash=pin_hash, failed_pins=0, locked_until=None))
            if result.rowcount == 0:
                raise NoSuchOperator(login)
            await append_access(conn, by, "pin_reset", at=at, detail={"operator": login})
    if refused is not None:
        raise refused


async def _permit(conn, by: str, action: str, at: datetime) -> Refused | None:
    from db.roles import permit

    return await permit(conn, Actor("operator", by), action, at=at)


# -- the security policy ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SecurityPolicy:
    """How the desk guards shared terminals (``[security]`` in deskapp.toml; env overrides).

    ``idle_lock_minutes`` = 0 turns the idle lock off (a single-person terminal).
    """

    pin_max_failures: int = 5
    pin_lock_minutes: int = 5
    idle_lock_minutes: int = 10
    reveal_minutes: int = 5


#: Setting → (lowest, highest) allowed value.
POLICY_BOUNDS: dict[str, tuple[int, int]] = {
    "pin_max_failures": (1, 100),
    "pin_lock_minutes": (1, 1440),
    "idle_lock_minutes": (0, 1440),
    "reveal_minutes": (1, 1440),
}


class PolicyError(ValueError):
    """A ``[security]`` setting (or its environment override) that cannot be used, in plain words."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en

    def text(self, lang: str = "zh") -> str:
        return self.zh if lang == "zh" else self.en


def load_policy(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> SecurityPolicy:
    """The policy: defaults, over them the ``[security]`` table of ``path`` (default: the
    deskapp.toml the sync reads, if any), over that ``DESKAPP_<SETTING>`` environment variables.

    Raises :class:`PolicyError` naming the setting, the value and what is allowed.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, int] = {}
    file = Path(path) if path is not None else default_config_path()
    if file.is_file():
        try:
            data = tomllib.loads(file.read_bytes().decode("utf-8-sig"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as error:
            raise PolicyError(f"{file} 读不出来：{error}", f"{file} cannot be read: {error}") from None
        table = data.get("security", {})
        if not isinstance(table, dict):
            raise PolicyError(f"{file}：[security] 应该是一个表", f"{file}: [security] must be a table")
        for key, value in table.items():
            if key not in POLICY_BOUNDS:
                raise PolicyError(f"{file} [security]：未知设置「{key}」（拼写错误？可用：{'、'.join(POLICY_BOUNDS)}）",
                                  f"{file} [security]: unknown setting '{key}' (a typo? use: {', '.join(POLICY_BOUNDS)})")
            values[key] = _bounded(value, key, f"{file} [security] {key}")
    for key in POLICY_BOUNDS:
        env = f"DESKAPP_{key.upper()}"
        raw = environ.get(env)
        if raw is not None and raw.strip():
            try:
                number: object = int(raw.strip())
            except ValueError:
                number = raw
            values[key] = _bounded(number, key, env)
    known = {f.name for f in fields(SecurityPolicy)}
    return SecurityPolicy(**{k: v for k, v in values.items() if k in known})


def _bounded(value: object, key: str, where: str) -> int:
    low, high = POLICY_BOUNDS[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        shown = clean_text(str(value))[:40]
        raise PolicyError(f"{where}：「{shown}」不是 {low}–{high} 之间的整数",
                          f"{where}: '{shown}' is not a whole number from {low} to {high}")
    return value
