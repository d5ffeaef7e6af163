"""The warehouse queue reads its open orders from one partial covering index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 09:00:00

``ix_orders_open_queue`` holds, for the open orders only (已付款, 审核中, 配货中 — ``db.queue.OPEN``),
every column the queue shows (``db.queue._QUEUE_SELECT``): the queue's full read scans this small
index instead of fetching 50,000 rows scattered through the whole orders table. Shipped and
closed orders — most of a pool — are not in it, so it costs writes only while an order is open.
No data changes.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OPEN = "status IN ('paid', 'review', 'allocating')"
KEYS = ['status', 'priority', 'sla_due', 'id']
SHOWN = ['order_no', 'channel', 'shop_id', 'wh_step', 'tags', 'receiver_name', 'city', 'total_fen', 'priority_why']


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":  # no btree order for JSON: the shown columns are INCLUDEd
        op.create_index('ix_orders_open_queue', 'orders', KEYS, unique=False, postgresql_include=SHOWN,
                        postgresql_where=sa.text(OPEN))
    else:
        op.create_index('ix_orders_open_queue', 'orders', KEYS + SHOWN, unique=False, sqlite_where=sa.text(OPEN))


def downgrade() -> None:
    op.drop_index('ix_orders_open_queue', table_name='orders')
