"""``deskapp operators`` and ``deskapp audit list``: admins manage operators, others are refused with
the reason (exit 2), every change is on the access log, and a PIN is never echoed or logged."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from db.access import recent, verify
from db.store import Store
from deskapp.__main__ import main
from deskapp.services.auth import operators, sign_in
from tests.authkit import quick_argon2  # noqa: F401 - pytest fixture


@pytest.fixture(autouse=True)
def _environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick_argon2) -> None:  # noqa: F811
    monkeypatch.setenv("DESKAPP_LOG_FILE", str(tmp_path / "deskapp.log"))
    monkeypatch.delenv("DESKAPP_LANG", raising=False)
    monkeypatch.delenv("DESKAPP_OPERATOR", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "team.db")


def run(monkeypatch: pytest.MonkeyPatch, db: str, operator: str, *argv: str, stdin: str = "") -> int:
    """``deskapp --db DB --operator OPERATOR ARGV…`` with ``stdin`` as standard input (not a terminal)."""
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["--db", db, "--operator", operator, *argv])


async def _state(db: str) -> tuple[list, list]:
    store = await Store.open(db)
    try:
        assert (await verify(store)).ok
        people = [(p.id, p.display_name, p.role, p.has_pin, p.active) for p in await operators(store)]
        return people, [(r.kind, r.operator_id, (r.detail or {}).get("operator")) for r in reversed(await recent(store, 50))]
    finally:
        await store.close()


def test_an_admin_adds_lists_disables_and_resets(db: str, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # the first person to touch an empty database becomes its admin, and is told so
    assert run(monkeypatch, db, "boss", "operators", "add", "li", "--name", "李霞", "--role", "cs",
               "--pin-stdin", stdin="2580\n") == 0
    out, err = capsys.readouterr()
    assert "boss 已成为第一位管理员" in err
    assert out.strip() == "已添加操作员 li（李霞，客服）"
    assert run(monkeypatch, db, "boss", "operators", "add", "zhao", "--name", "赵磊", "--role", "warehouse") == 0
    assert "zhao 还没有 PIN" in capsys.readouterr().out
    assert run(monkeypatch, db, "boss", "operators", "add", "li", "--name", "又一个", "--role", "cs") == 1
    assert "li 已经是操作员" in capsys.readouterr().err

    assert run(monkeypatch, db, "boss", "operators", "list") == 0
    listing = capsys.readouterr().out
    assert "李霞" in listing and "客服" in listing and "仓库人员" in listing and "管理员" in listing

    assert run(monkeypatch, db, "boss", "operators", "disable", "zhao") == 0
    assert run(monkeypatch, db, "boss", "operators", "reset-pin", "li", "--pin-stdin", stdin="7777\n") == 0
    assert run(monkeypatch, db, "boss", "operators", "disable", "boss") == 1  # the last admin
    assert run(monkeypatch, db, "boss", "operators", "reset-pin", "nobody", "--pin-stdin", stdin="1234\n") == 1
    out, err = capsys.readouterr()
    assert "2580" not in out + err and "7777" not in out + err  # never echoed
    assert "不能停用 boss" in err and "没有操作员 nobody" in err

    people, log = asyncio.run(_state(db))
    assert people == [("boss", "boss", "admin", False, True), ("li", "李霞", "cs", True, True),
                      ("zhao", "赵磊", "warehouse", False, False)]
    assert log == [("operator_added", "boss", "boss"), ("operator_added", "boss", "li"),
                   ("operator_added", "boss", "zhao"), ("operator_disabled", "boss", "zhao"),
                   ("pin_reset", "boss", "li")]
    assert "7777" not in Path("deskapp.log").read_text(encoding="utf-8") if Path("deskapp.log").exists() else True

    async def li_signs_in() -> bool:
        store = await Store.open(db)
        try:
            return (await sign_in(store, "li", "7777", now=datetime.now(UTC))).ok
        finally:
            await store.close()

    assert asyncio.run(li_signs_in())


def test_everyone_else_is_refused_with_the_reason(db: str, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert run(monkeypatch, db, "boss", "operators", "add", "li", "--name", "李霞", "--role", "cs") == 0
    assert run(monkeypatch, db, "boss", "operators", "add", "xu", "--name", "徐慧", "--role", "supervisor") == 0
    capsys.readouterr()
    for argv in (("operators", "add", "wu", "--name", "吴", "--role", "admin"), ("operators", "list"),
                 ("operators", "disable", "boss"), ("operators", "reset-pin", "boss", "--pin-stdin")):
        assert run(monkeypatch, db, "li", *argv, stdin="1234\n") == 2, argv
        assert capsys.readouterr().err.strip() == "deskapp: 客服不能管理操作员（需要 管理员）"
    assert run(monkeypatch, db, "xu", "--lang", "en", "operators", "disable", "li") == 2
    assert capsys.readouterr().err.strip() == "deskapp: A supervisor cannot manage operators (needs admin)"
    assert run(monkeypatch, db, "stranger", "operators", "list") == 2
    assert "stranger 还不是本库的操作员" in capsys.readouterr().err
    people, log = asyncio.run(_state(db))
    assert [p[0] for p in people] == ["boss", "li", "xu"] and all(p[4] for p in people)  # nothing changed
    assert [(k, who) for k, who, _ in log if k == "refused"] == [("refused", "li")] * 4 + [("refused", "xu")]


def test_bad_input_is_one_plain_line(db: str, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert run(monkeypatch, db, "boss", "operators", "add", "li", "--name", "李霞", "--role", "cs",
               "--pin-stdin", stdin="12\n") == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "deskapp: PIN 必须是 4–8 位数字"
    assert run(monkeypatch, db, "boss", "operators", "add", "li li", "--name", "李霞", "--role", "cs") == 2
    assert "不可用" in capsys.readouterr().err
    assert run(monkeypatch, db, "boss", "operators", "reset-pin", "boss") == 2  # no terminal, no --pin-stdin
    assert "--pin-stdin" in capsys.readouterr().err
    assert run(monkeypatch, db, "boss", "operators", "list") == 0


def test_audit_list_is_for_supervisors_and_admins(db: str, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert run(monkeypatch, db, "boss", "operators", "add", "li", "--name", "李霞", "--role", "cs") == 0
    assert run(monkeypatch, db, "boss", "operators", "add", "xu", "--name", "徐慧", "--role", "supervisor") == 0
    capsys.readouterr()
    assert run(monkeypatch, db, "li", "audit", "list") == 2
    assert capsys.readouterr().err.strip() == "deskapp: 客服不能查看审计日志（需要 主管或管理员）"
    assert run(monkeypatch, db, "xu", "audit", "list", "--kind", "operator_added") == 0
    table = capsys.readouterr().out
    assert "添加操作员" in table and "→ li" in table and "被拒绝" not in table
    assert run(monkeypatch, db, "boss", "--lang", "en", "audit", "list", "--limit", "1") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["No.", "Time", "Operator"] and len(lines) == 2
