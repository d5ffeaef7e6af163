"""Who starts signed in and who gets the sign-in screen first (deskapp.services.session)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from db.store import Store
from deskapp.services.session import Start, start_identity
from deskapp.settings import under_ssh

_QUICK = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


async def _people(store: Store, *, pins: tuple[str, ...]) -> None:
    """An admin, a customer-service agent and a packer; ``pins``: who of them has a PIN."""
    for login, name, role in (("boss", "老板", "admin"), ("wang", "王芳", "cs"), ("qian", "钱库", "warehouse")):
        await store.ensure_operator(login, name, role=role)
    async with store.write() as conn:
        for login in pins:
            await conn.execute(text("UPDATE operator SET pin_hash = :h WHERE id = :id"),
                               {"h": _QUICK.hash("1234"), "id": login})


def test_ssh_is_told_by_the_variables_sshd_sets() -> None:
    assert under_ssh({"SSH_CONNECTION": "10.0.0.9 50000 10.0.0.1 22"})
    assert under_ssh({"SSH_TTY": "/dev/pts/3"})
    assert not under_ssh({"SSH_CONNECTION": "", "TERM": "xterm"})


async def test_the_first_login_of_an_empty_database_becomes_admin_and_starts_at_once(store: Store) -> None:
    start = await start_identity(store, "root", explicit=False, ssh=False)
    assert start.operator is not None and start.operator.role == "admin" and start.operator.new_admin
    assert not start.sign_in


async def test_an_operator_with_a_pin_always_types_it_even_under_ssh(store: Store) -> None:
    await _people(store, pins=("wang",))
    for ssh, explicit in ((False, False), (True, False), (False, True), (True, True)):
        assert await start_identity(store, "wang", explicit=explicit, ssh=ssh) == Start(sign_in=True,
                                                                                       preselect="wang")


@pytest.mark.parametrize(("ssh", "explicit"), [(True, False), (False, True)], ids=["ssh", "--operator"])
async def test_ssh_or_a_named_operator_without_a_pin_starts_signed_in(store: Store, ssh: bool,
                                                                      explicit: bool) -> None:
    await _people(store, pins=("wang",))
    start = await start_identity(store, "qian", explicit=explicit, ssh=ssh)
    assert start.operator is not None and start.operator.id == "qian" and not start.sign_in


async def test_on_a_shared_pc_the_local_login_without_a_pin_gets_the_sign_in_screen(store: Store) -> None:
    await _people(store, pins=("wang",))
    assert await start_identity(store, "qian", explicit=False, ssh=False) == Start(sign_in=True)


async def test_where_nobody_has_a_pin_the_local_login_starts_signed_in(store: Store) -> None:
    await _people(store, pins=())
    start = await start_identity(store, "qian", explicit=False, ssh=False)
    assert start.operator is not None and start.operator.id == "qian" and not start.sign_in


async def test_an_unknown_login(store: Store) -> None:
    await _people(store, pins=("wang",))
    # the shop PC's own account: people sign in there with their PINs
    assert await start_identity(store, "shop-pc", explicit=False, ssh=False) == Start(sign_in=True)
    # over SSH, or named explicitly: a person who is not an operator is refused as before
    for ssh, explicit in ((True, False), (False, True)):
        start = await start_identity(store, "shop-pc", explicit=explicit, ssh=ssh)
        assert start.refusal is not None and start.refusal.reason == "unknown" and not start.sign_in
    await _people(store, pins=())
    async with store.write() as conn:
        await conn.execute(text("UPDATE operator SET pin_hash = NULL"))
    refused = await start_identity(store, "shop-pc", explicit=False, ssh=False)
    assert refused.refusal is not None  # nobody could sign in there: refused, with how to get added


async def test_a_disabled_operator_is_refused_pin_or_not(store: Store) -> None:
    await _people(store, pins=("wang",))
    async with store.write() as conn:
        await conn.execute(text("UPDATE operator SET active = :no WHERE id = 'wang'"), {"no": False})
    start = await start_identity(store, "wang", explicit=False, ssh=False)
    assert start.refusal is not None and start.refusal.reason == "disabled"
