"""Who may open a database, PINs with a lockout that survives a restart, and the security policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db.access import recent, verify
from db.lazy import LazyStore, quick_reader
from db.store import Store
from deskapp.__main__ import main
from deskapp.services import auth
from deskapp.services.auth import (
    OperatorInfo,
    PolicyError,
    Refusal,
    SecurityPolicy,
    add_operator,
    disable_operator,
    hash_pin,
    load_policy,
    resolve_operator,
    set_pin,
    sign_in,
    valid_pin,
    verify_pin,
)
from tests.authkit import quick_argon2  # noqa: F401 - pytest fixture

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
POLICY = SecurityPolicy()


@pytest.fixture
async def staffed(tmp_path: Path, quick_argon2) -> Path:  # noqa: F811
    """A database whose first user (boss, admin) added 李霞 (cs) with PIN 2580."""
    path = tmp_path / "staff.db"
    store = await Store.open(path)
    try:
        assert (await resolve_operator(store, "boss")).new_admin
        await add_operator(store, "li", "李霞", "cs", by="boss", pin="2580")
    finally:
        await store.close()
    return path


def test_pins_are_four_to_eight_digits_and_stored_as_argon2id() -> None:
    assert all(valid_pin(p) for p in ("0000", "12345678"))
    assert not any(valid_pin(p) for p in ("123", "123456789", "12a4", "１２３４", " 1234", ""))
    with pytest.raises(auth.PinError):
        hash_pin("12a4")
    stored = hash_pin("2580")  # the production cost: Argon2id, 64 MiB, three passes
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and "2580" not in stored
    assert verify_pin(stored, "2580") and not verify_pin(stored, "2581") and not verify_pin("junk", "2580")


async def test_the_first_person_becomes_admin_and_strangers_are_refused(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "new.db")
    try:
        first = await resolve_operator(store, "boss", at=T0)
        assert isinstance(first, OperatorInfo)
        assert (first.id, first.display_name, first.role, first.has_pin, first.active, first.new_admin) == (
            "boss", "boss", "admin", False, True, True)
        again = await resolve_operator(store, "boss")
        assert isinstance(again, OperatorInfo) and not again.new_admin
        stranger = await resolve_operator(store, "zhang")
        assert isinstance(stranger, Refusal)
        assert stranger.text() == "zhang 还不是本库的操作员；请管理员运行 deskapp operators add zhang"
        assert "ask an admin to run: deskapp operators add zhang" in stranger.text("en")
        (record,) = await recent(store)
        assert (record.kind, record.operator_id, record.detail["role"]) == ("operator_added", "boss", "admin")
    finally:
        await store.close()


async def test_a_database_from_before_roles_gets_its_first_admin_from_its_operators(tmp_path: Path) -> None:
    """Before roles were enforced, every login was added as customer service: no admin at all."""
    store = await Store.open(tmp_path / "old.db")
    try:
        await store.ensure_operator("wang", "王小二")
        await store.ensure_operator("li", "李霞")
        assert isinstance(await resolve_operator(store, "zhang"), Refusal)  # strangers stay out
        first = await resolve_operator(store, "wang")
        assert (first.role, first.new_admin) == ("admin", True)
        second = await resolve_operator(store, "li")
        assert (second.role, second.new_admin) == ("cs", False)
        (record,) = await recent(store)
        assert (record.kind, record.reason, record.detail["was"]) == ("operator_added", "bootstrap", "cs")
    finally:
        await store.close()


async def test_a_disabled_operator_is_refused(staffed: Path) -> None:
    store = await Store.open(staffed)
    try:
        await disable_operator(store, "li", by="boss")
        refusal = await resolve_operator(store, "li")
        assert isinstance(refusal, Refusal) and refusal.text() == "li 已被停用；请联系管理员"
        with pytest.raises(auth.LastAdmin):
            await disable_operator(store, "boss", by="boss")
    finally:
        await store.close()


async def test_a_known_operator_is_resolved_from_the_reader_without_opening_the_store(staffed: Path) -> None:
    reader = quick_reader(staffed)
    assert reader is not None
    lazy = LazyStore(reader, login="li")
    try:
        who = await resolve_operator(lazy, "li")
        assert isinstance(who, OperatorInfo) and (who.display_name, who.role, who.has_pin) == ("李霞", "cs", True)
        assert lazy._opening is None  # the write engine was never asked for
    finally:
        await lazy.close()


async def test_five_wrong_pins_lock_and_the_count_survives_a_restart(staffed: Path) -> None:
    store = await Store.open(staffed)
    try:
        for left in (4, 3):
            result = await sign_in(store, "li", "1111", policy=POLICY, now=T0)
            assert (result.status, result.attempts_left) == ("wrong_pin", left)
        assert result.text() == "PIN 不对；还可以再试 3 次"
    finally:
        await store.close()
    store = await Store.open(staffed)  # quit and start again: the two failures are still counted
    try:
        for left in (2, 1):
            assert (await sign_in(store, "li", "1111", policy=POLICY, now=T0)).attempts_left == left
        locked = await sign_in(store, "li", "1111", policy=POLICY, now=T0)
        assert (locked.status, locked.locked_until) == ("locked", T0 + timedelta(minutes=5))
        assert locked.text() == "PIN 错误次数太多，已锁定到 10:05"  # China time
        right_too_soon = await sign_in(store, "li", "2580", policy=POLICY, now=T0 + timedelta(minutes=4))
        assert right_too_soon.status == "locked" and not right_too_soon.ok
        later = await sign_in(store, "li", "2580", policy=POLICY, now=T0 + timedelta(minutes=5, seconds=1))
        assert later.ok and later.operator.display_name == "李霞" and later.operator.failed_pins == 0
        assert (await sign_in(store, "li", "1111", policy=POLICY, now=T0 + timedelta(minutes=6))).attempts_left == 4
        kinds = [r.kind for r in reversed(await recent(store, 20)) if r.operator_id == "li"]
        assert kinds == ["sign_in_failed"] * 5 + ["pin_locked", "sign_in_failed", "sign_in", "sign_in_failed"]
        assert (await verify(store)).ok
    finally:
        await store.close()


async def test_a_reset_pin_clears_the_lock_and_other_refusals(staffed: Path) -> None:
    store = await Store.open(staffed)
    try:
        policy = SecurityPolicy(pin_max_failures=2, pin_lock_minutes=30)
        await sign_in(store, "li", "0000", policy=policy, now=T0)
        assert (await sign_in(store, "li", "0000", policy=policy, now=T0)).status == "locked"
        await set_pin(store, "li", "7777", by="boss")
        assert (await sign_in(store, "li", "7777", policy=policy, now=T0)).ok
        assert (await sign_in(store, "boss", "0000", policy=policy, now=T0)).status == "no_pin"
        assert (await sign_in(store, "nobody", "0000", policy=policy, now=T0)).status == "unknown"
        await disable_operator(store, "li", by="boss")
        assert (await sign_in(store, "li", "7777", policy=policy, now=T0)).status == "disabled"
        with pytest.raises(auth.Refused):
            await set_pin(store, "boss", "1234", by="li")  # not an admin (and disabled)
        logged = " ".join(f"{r.reason} {r.detail}" for r in await recent(store, 50))
        assert "7777" not in logged and "0000" not in logged  # PINs never reach the log
    finally:
        await store.close()


def test_the_app_refuses_a_stranger_in_one_line(staffed: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DESKAPP_LOG_FILE", str(tmp_path / "deskapp.log"))
    monkeypatch.chdir(tmp_path)
    for stream in ("stdin", "stdout"):  # as on a terminal: the refusal comes before the app starts
        monkeypatch.setattr(f"sys.{stream}.isatty", lambda: True)
    assert main(["--db", str(staffed), "--operator", "zhang"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "deskapp: zhang 还不是本库的操作员；请管理员运行 deskapp operators add zhang"


def test_the_policy_comes_from_the_file_then_the_environment(tmp_path: Path) -> None:
    assert load_policy(tmp_path / "none.toml", environ={}) == SecurityPolicy(5, 5, 10, 5)
    config = tmp_path / "deskapp.toml"
    config.write_text("[sync]\npoll_seconds = 30\n\n[security]\nidle_lock_minutes = 3\npin_max_failures = 8\n",
                      encoding="utf-8")
    assert load_policy(config, environ={}) == SecurityPolicy(pin_max_failures=8, idle_lock_minutes=3)
    env = {"DESKAPP_IDLE_LOCK_MINUTES": "0", "DESKAPP_REVEAL_MINUTES": "15"}
    assert load_policy(config, environ=env) == SecurityPolicy(pin_max_failures=8, idle_lock_minutes=0,
                                                              reveal_minutes=15)


@pytest.mark.parametrize(("body", "env", "zh"), [
    ("[security]\nidle_lock_minutes = \"ten\"\n", {}, "idle_lock_minutes：「ten」不是 0–1440 之间的整数"),
    ("[security]\npin_max_failures = 0\n", {}, "「0」不是 1–100 之间的整数"),
    ("[security]\nidle_lock = 5\n", {}, "未知设置「idle_lock」"),
    ("", {"DESKAPP_PIN_LOCK_MINUTES": "5m"}, "DESKAPP_PIN_LOCK_MINUTES：「5m」不是 1–1440 之间的整数"),
])
def test_bad_policy_values_are_explained(tmp_path: Path, body: str, env: dict, zh: str) -> None:
    config = tmp_path / "deskapp.toml"
    config.write_text(body, encoding="utf-8")
    with pytest.raises(PolicyError) as error:
        load_policy(config, environ=env)
    assert zh in error.value.text("zh")
    assert "whole number" in error.value.text("en") or "unknown setting" in error.value.text("en")


async def test_every_demo_operator_signs_in_with_the_demo_pin(tmp_path: Path, quick_argon2) -> None:  # noqa: F811
    from deskapp.services.demo import DEMO_NOW, DEMO_PIN, add_demo_admin, build_demo

    store = await Store.open(tmp_path / "demo.db", synchronous="OFF")
    try:
        await build_demo(store, orders=30, now=DEMO_NOW)
        assert await add_demo_admin(store, "me") and not await add_demo_admin(store, "me")
        people = await auth.operators(store)
        assert len(people) > 10 and all(p.has_pin for p in people)
        me = await resolve_operator(store, "me")
        assert (me.display_name, me.role) == ("me", "admin")
        assert (await sign_in(store, "lixia", DEMO_PIN, now=DEMO_NOW)).ok
    finally:
        await store.close()
