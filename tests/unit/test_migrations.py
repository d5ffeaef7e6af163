"""Schema migrations: the database holds what no channel can give back, so upgrades keep data."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

import db.migrate
from db.engine import make_engine
from db.migrate import HEAD, MIGRATIONS, current_revision, downgrade, upgrade
from db.models import ActorKind
from db.privacy import FIELDS
from db.store import NewOrder, Store
from db.views import Actor

ROOT = Path(__file__).resolve().parents[2]
APP_TABLES = {
    "channel", "shop", "customer", "orders", "order_line", "parcel", "parcel_line", "timeline_event",
    "operator", "name_gram",
}


def test_head_is_the_newest_revision_file() -> None:
    script = ScriptDirectory(str(MIGRATIONS))
    assert script.get_heads() == [HEAD]  # one head, and db.migrate knows it
    chain = [revision.revision for revision in script.walk_revisions("base", "heads")]
    assert chain[0] == HEAD
    files = [p for p in (MIGRATIONS / "versions").glob("*.py") if not p.name.startswith("_")]
    assert len(chain) == len(files)  # every revision file is on the chain from base to HEAD


async def _tables(url: str) -> tuple[set[str], str | None]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync_conn: set(inspect(sync_conn).get_table_names()))
            revision = await current_revision(conn) if "alembic_version" in names else None
    finally:
        await engine.dispose()
    return names, revision


async def test_reopening_keeps_data_and_does_not_migrate_again(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await Store.open(empty_db_url)
    order_id = await store.add_order(
        NewOrder("taobao", "tb-main", "TB1", datetime(2026, 3, 1, tzinfo=UTC), receiver_name="张三"),
        actor=Actor(ActorKind.OPERATOR, "alice"),
    )
    await store.close()

    def must_not_run(*_args) -> None:  # noqa: ANN002
        raise AssertionError("an up-to-date database was migrated again")

    monkeypatch.setattr(db.migrate, "_run_upgrade", must_not_run)
    store = await Store.open(empty_db_url)
    try:
        card = await store.order_card(order_id, reveal=FIELDS)
        assert (card.order_no, card.receiver_name) == ("TB1", "张三")
        assert [e.kind for e in card.timeline] == ["created"]
        assert [h.order_no for h in await store.find_orders("张三")] == ["TB1"]
        await upgrade(store.engine)  # explicitly asked: still nothing to do
    finally:
        await store.close()
    names, revision = await _tables(empty_db_url)
    assert APP_TABLES <= names and revision == HEAD


async def test_downgrade_to_base_and_upgrade_again(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        await upgrade(engine)
        names, revision = await _tables(empty_db_url)
        assert APP_TABLES <= names and revision == HEAD
        await downgrade(engine, "base")
        names, revision = await _tables(empty_db_url)
        assert names <= {"alembic_version"} and revision is None  # search index tables too
        await upgrade(engine)
    finally:
        await engine.dispose()
    names, revision = await _tables(empty_db_url)
    assert APP_TABLES <= names and revision == HEAD

    # the upgraded-again schema works, search indexes included
    store = await Store.open(empty_db_url)
    try:
        await store.add_order(
            NewOrder("pdd", "p1", "PDD1", datetime(2026, 3, 1, tzinfo=UTC), receiver_name="欧阳娜娜",
                     address_detail="文三路100号"),
            actor=Actor(ActorKind.SYSTEM, "test"),
        )
        assert [h.order_no for h in await store.find_orders("文三路")] == ["PDD1"]
        assert [h.order_no for h in await store.find_orders("阳娜")] == ["PDD1"]
    finally:
        await store.close()


async def test_a_new_database_is_created_at_head(empty_db_url: str) -> None:
    store = await Store.open(empty_db_url)
    try:
        async with store.engine.connect() as conn:
            assert await current_revision(conn) == HEAD
            assert (await conn.execute(text("SELECT COUNT(*) FROM orders"))).scalar() == 0
    finally:
        await store.close()


def test_import_contracts_hold() -> None:
    """import-linter (configured in pyproject.toml): db stays the bottom layer, widgets stay dumb."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
            "--no-cache",
            "--no-logo",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and " 0 broken" in result.stdout


async def test_the_migrations_build_the_schema_the_models_describe(empty_db_url: str) -> None:
    """A column or index added to db/models.py without a migration (or the reverse) is caught here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import db.models  # noqa: F401 - registers the tables

    store = await Store.open(empty_db_url)
    try:
        async with store.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync_conn: compare_metadata(MigrationContext.configure(sync_conn), SQLModel.metadata)
            )
    finally:
        await store.close()
    # The search index lives outside the models (FTS5 / pg_trgm): only its own objects may differ.
    real = [d for d in diff if "fts" not in repr(d) and "trgm" not in repr(d)]
    assert real == []
