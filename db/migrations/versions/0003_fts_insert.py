"""Full-text index rows for new orders are written by the code that inserts the orders.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 10:00:00

SQLite only. An ``AFTER INSERT`` trigger made FTS5 flush its pending terms once per inserted row
(each trigger statement is its own sub-transaction), which cost more than everything else an
ingested order writes: 20,000 orders took 0.58 s through the trigger and 0.17 s as one
``INSERT INTO order_fts ... executemany`` per batch. Every path that inserts orders
(``db.ingest``, ``Store.add_order``, ``Store.bulk_load``) now writes the index rows itself
(``db.store.FTS_INSERT``); the update and delete triggers stay (they fire rarely).
"""
from typing import Sequence, Union

from alembic import op

revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS orders_fts_insert")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TRIGGER orders_fts_insert AFTER INSERT ON orders BEGIN "
            "INSERT INTO order_fts(rowid, search_text) VALUES (new.id, new.search_text); END"
        )
