"""Order checks and the warehouse queue: what the checks found, and what the rules decided.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 11:00:00

Adds nullable (or defaulted) columns and one partial index only, so every existing row is kept:

- ``orders.checked_at`` / ``check_codes``: when the order checks last ran and the codes of the
  problems they found (the exceptions screen groups held orders by them). ``ix_orders_unchecked``
  finds orders never checked (a crash between ingest and check leaves nothing behind).
- ``orders.is_live``, ``presale_ship_at``: facts the priority rules and the SLA read.
- ``orders.sla_due``, ``priority_why``, ``rules_version``: the computed ship-by deadline and which
  rule (of which rules-file version) set the priority.
- ``orders.wh_step``: the warehouse step inside 配货中 (picked, packed) that scans advance.
- ``customer.vip_level``.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('orders', sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('orders', sa.Column('check_codes', sa.JSON(none_as_null=True), nullable=True))
    op.add_column('orders', sa.Column('is_live', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('orders', sa.Column('presale_ship_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('orders', sa.Column('sla_due', sa.DateTime(timezone=True), nullable=True))
    op.add_column('orders', sa.Column('priority_why', sa.String(length=256), nullable=True))
    op.add_column('orders', sa.Column('rules_version', sa.String(length=40), nullable=True))
    op.add_column('orders', sa.Column('wh_step', sa.String(length=16), nullable=True))
    op.add_column('customer', sa.Column('vip_level', sa.String(length=8), nullable=False, server_default=''))
    op.create_index(
        'ix_orders_unchecked', 'orders', ['id'], unique=False,
        sqlite_where=sa.text('checked_at IS NULL'), postgresql_where=sa.text('checked_at IS NULL'),
    )


def downgrade() -> None:
    op.drop_index('ix_orders_unchecked', table_name='orders')
    for column in ('wh_step', 'rules_version', 'priority_why', 'sla_due', 'presale_ship_at', 'is_live',
                   'check_codes', 'checked_at'):
        op.drop_column('orders', column)
    op.drop_column('customer', 'vip_level')
