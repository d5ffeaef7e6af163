"""Engine factory: a SQLite file in WAL mode by default, PostgreSQL by URL.

SQLite settings, each for a measured reason (see shared PITFALLS):

* ``journal_mode=WAL`` so agents read while the sync runner writes; ``busy_timeout`` so a writer
  waits for the lock instead of failing at once; ``foreign_keys=ON``; ``synchronous=FULL`` because an
  order database that records "shipped" must survive power loss.
* pysqlite's legacy transaction handling lost 450 of 600 concurrent updates; a deferred BEGIN that
  later writes is refused at once in WAL. So the driver's own transaction handling is switched off
  and we emit BEGIN ourselves: ``BEGIN IMMEDIATE`` (take the write lock up front) on connections
  of ``engine.execution_options(**WRITE)``, a plain ``BEGIN`` for reads.

PostgreSQL gives the same promise: a write transaction first takes one transaction-scoped advisory
lock, so writers queue as they do on SQLite. Without it, READ COMMITTED let two concurrent
read-then-write transactions (memo from/to, customer matching, shop creation) lose an update or
insert a duplicate. Reads never take the lock.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

BUSY_TIMEOUT_MS = 10_000
WRITE = {"deskapp_write": True}
#: The PostgreSQL advisory lock key every write transaction holds until it ends ("desk").
PG_WRITE_LOCK = 0x6465736B


def sqlite_url(path: str | Path) -> str:
    """The async SQLAlchemy URL of a SQLite file."""
    return f"sqlite+aiosqlite:///{Path(path).expanduser()}"


def normalise_url(url_or_path: str | Path) -> str:
    """Accept a plain file path or a SQLAlchemy URL; return an async URL."""
    text = str(url_or_path)
    if "://" not in text:
        return sqlite_url(text)
    url = make_url(text)
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+asyncpg")
    elif url.drivername == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    return url.render_as_string(hide_password=False)


def make_engine(url_or_path: str | Path, *, synchronous: str = "FULL", cache_mb: int = 32) -> AsyncEngine:
    """Create the async engine for a database path or URL, with the settings above.

    ``cache_mb`` is SQLite's page cache per connection; a bulk build of a large file wants far
    more than the default, or every index insert becomes a disk read.
    """
    url = normalise_url(url_or_path)
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine.sync_engine, synchronous, cache_mb=cache_mb)
        return engine
    engine = create_async_engine(url, pool_size=5, max_overflow=5, pool_pre_ping=True)
    if engine.dialect.name == "postgresql":
        _configure_postgresql(engine)
    return engine


def _configure_sqlite(sync_engine: Engine, synchronous: str, *, query_only: bool = False, cache_mb: int = 32) -> None:
    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see module doc)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA cache_size={-1000 * cache_mb}")  # KiB when negative
        cursor.execute("PRAGMA temp_store=MEMORY")
        if query_only:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn) -> None:  # noqa: ANN001
        if conn.get_execution_options().get("deskapp_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def _configure_postgresql(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn) -> None:  # noqa: ANN001
        if conn.get_execution_options().get("deskapp_write"):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")


def is_sqlite(engine: AsyncEngine) -> bool:
    """True when the engine talks to a SQLite file."""
    return engine.dialect.name == "sqlite"

