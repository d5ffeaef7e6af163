"""Who opens the app: signed in at once, or asked for a PIN first on the sign-in screen.

The rule (README, "登录、换人与锁屏"):

* an operator **with a PIN** always types it — under SSH too: a PIN is the only proof that the
  person at a shared keyboard is who the login says;
* an SSH login (``SSH_CONNECTION`` / ``SSH_TTY`` set: sshd already authenticated the person) or an
  operator named explicitly (``--operator`` / ``DESKAPP_OPERATOR``) whose operator has **no PIN**
  is signed in directly;
* the local login otherwise follows :func:`deskapp.services.auth.resolve_operator` (the first login
  of an empty database becomes its admin) and is signed in directly — unless other operators of
  this database have PINs (a shared PC): then the sign-in screen asks. A local login that is not an
  operator at all (the shop PC's own account) gets the sign-in screen too when someone can sign in
  there; under SSH or when named explicitly, an unknown login is refused as before.

Pure apart from the reads; no UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from deskapp.services.auth import OperatorInfo, Refusal, operators, resolve_operator

if TYPE_CHECKING:
    from db.lazy import LazyStore
    from db.store import Store

__all__ = ["Start", "start_identity"]


@dataclass(frozen=True, slots=True)
class Start:
    """How the app starts.

    ``operator``: who is signed in from the first frame (None: the sign-in screen decides);
    ``sign_in``: show the sign-in screen first; ``preselect``: the login highlighted there;
    ``refusal``: this login may not open the database at all (one line, exit 2).
    """

    operator: OperatorInfo | None = None
    sign_in: bool = False
    preselect: str | None = None
    refusal: Refusal | None = None


async def start_identity(store: Store | LazyStore, login: str, *, explicit: bool, ssh: bool) -> Start:
    """Apply the module's rule to ``login``.

    ``explicit``: the operator was named with ``--operator`` / ``DESKAPP_OPERATOR``; ``ssh``: see
    :func:`deskapp.settings.under_ssh`.
    """
    who = await resolve_operator(store, login)
    if isinstance(who, Refusal):
        if who.reason == "unknown" and not (ssh or explicit) and await _someone_has_a_pin(store):
            return Start(sign_in=True)
        return Start(refusal=who)
    if who.has_pin:
        return Start(sign_in=True, preselect=who.id)
    if ssh or explicit or not await _someone_has_a_pin(store):
        return Start(operator=who)
    return Start(sign_in=True)


async def _someone_has_a_pin(store: Store | LazyStore) -> bool:
    return any(op.active and op.has_pin for op in await operators(store))
