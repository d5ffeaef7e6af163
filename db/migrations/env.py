"""Alembic environment: runs on the connection that ``db.migrate`` hands over (no ini file)."""

from alembic import context
from sqlmodel import SQLModel

import db.models  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=True,  # SQLite can only ALTER by copying the table; batch mode does that safely
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
