"""Sync engine: watermarks, quarantine, the sync lease, order fingerprints and source snapshots,
and a once-only key for timeline events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 05:30:00

Adds only: new tables, nullable columns and indexes, so every existing row is kept as it is.
On SQLite, columns are added and dropped with plain ALTER TABLE (never a batch "copy and move",
which would drop the full-text triggers on ``orders``).
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('orders', sa.Column('fingerprint', sa.String(length=40), nullable=True))
    op.add_column('timeline_event', sa.Column('dedupe_key', sa.String(length=128), nullable=True))
    op.create_index(
        'ux_timeline_order_dedupe', 'timeline_event', ['order_id', 'dedupe_key'], unique=True,
        sqlite_where=sa.text('dedupe_key IS NOT NULL'), postgresql_where=sa.text('dedupe_key IS NOT NULL'),
    )
    op.create_table('order_source',
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('snapshot', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('order_id')
    )
    op.create_table('sync_cursor',
    sa.Column('connector', sa.String(length=96), nullable=False),
    sa.Column('stream', sa.String(length=32), nullable=False),
    sa.Column('watermark', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(), nullable=True),
    sa.Column('last_error_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('consecutive_errors', sa.Integer(), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('day_new', sa.Integer(), nullable=False),
    sa.Column('day_updated', sa.Integer(), nullable=False),
    sa.Column('day_errors', sa.Integer(), nullable=False),
    sa.Column('day_quarantined', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('connector', 'stream')
    )
    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identity', sa.String(length=64), nullable=False),
    sa.Column('connector', sa.String(length=96), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('shop_code', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=128), nullable=True),
    sa.Column('payload', sa.String(), nullable=False),
    sa.Column('reason', sa.String(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('resolved_by', sa.String(length=96), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('identity')
    )
    op.create_index('ix_quarantine_state_connector', 'quarantine', ['state', 'connector'], unique=False)
    op.create_index('ix_quarantine_external', 'quarantine', ['channel', 'shop_code', 'external_id'], unique=False)
    op.create_table('sync_lease',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    """Downgrade schema: the sync tables go; orders and their timelines stay."""
    op.drop_table('sync_lease')
    op.drop_index('ix_quarantine_external', table_name='quarantine')
    op.drop_index('ix_quarantine_state_connector', table_name='quarantine')
    op.drop_table('quarantine')
    op.drop_table('sync_cursor')
    op.drop_table('order_source')
    op.drop_index('ux_timeline_order_dedupe', table_name='timeline_event')
    if op.get_bind().dialect.name == 'sqlite':  # SQLite ≥ 3.35 drops a column in place
        op.execute('ALTER TABLE timeline_event DROP COLUMN dedupe_key')
        op.execute('ALTER TABLE orders DROP COLUMN fingerprint')
    else:
        op.drop_column('timeline_event', 'dedupe_key')
        op.drop_column('orders', 'fingerprint')
