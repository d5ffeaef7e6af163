"""Schema migrations, applied when a database is opened.

The database keeps data no channel can give back, so every schema change is an Alembic revision in
``db/migrations/versions`` and an upgrade never drops data. Opening an up-to-date database costs one
small query: Alembic itself is only imported when there is something to do (it adds ~0.1 s to a
cold start otherwise).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.engine import WRITE

#: The newest revision; the test suite checks it matches the newest file in versions/.
HEAD = "0005"
MIGRATIONS = Path(__file__).parent / "migrations"


async def current_revision(conn: AsyncConnection) -> str | None:
    """The revision the database is at, or None for a new database."""
    try:
        result = await conn.execute(text("SELECT version_num FROM alembic_version"))
    except Exception:  # no alembic_version table yet: a new database
        await conn.rollback()
        return None
    return result.scalar()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (default: the newest) in one write transaction."""
    async with engine.connect() as conn:
        if revision == "head" and await current_revision(conn) == HEAD:
            return
    async with engine.execution_options(**WRITE).begin() as conn:
        await conn.run_sync(_run_upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    """Take the schema back to ``revision`` (default: an empty database) in one write transaction.

    For tests and for backing out a release; the app itself only ever upgrades.
    """
    async with engine.execution_options(**WRITE).begin() as conn:
        await conn.run_sync(_run_downgrade, revision)


def _config(sync_conn):  # noqa: ANN001, ANN202
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = sync_conn
    return config


def _run_upgrade(sync_conn, revision: str) -> None:  # noqa: ANN001
    from alembic import command

    command.upgrade(_config(sync_conn), revision)


def _run_downgrade(sync_conn, revision: str) -> None:  # noqa: ANN001
    from alembic import command

    command.downgrade(_config(sync_conn), revision)
