"""Operators sign in with a PIN; the append-only, hash-chained access log.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 09:00:00

Adds columns (nullable or defaulted) and one new table, so every existing row is kept:

- ``operator.pin_hash`` (Argon2id, ``deskapp.services.auth``), ``failed_pins`` (wrong PINs in a
  row, kept in the database so a restart does not reset them), ``locked_until``, ``created_at``.
- ``access_log``: sign-ins, failed PINs, reveals, exports, operator changes and refused actions,
  each row chained to the one before by ``prev_hash`` → ``hash`` (``db.access``).

The log is append-only in the database itself, not only in the code: on SQLite ``BEFORE UPDATE``
and ``BEFORE DELETE`` triggers ``RAISE(ABORT, …)``; on PostgreSQL one trigger function refuses
UPDATE, DELETE and TRUNCATE. Dropping a trigger takes a deliberate act by someone who owns the
database, and ``deskapp audit verify`` then still finds what was changed.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_MESSAGE = "access_log is append-only"

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION access_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{_MESSAGE}' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.add_column('operator', sa.Column('pin_hash', sa.String(length=255), nullable=True))
    op.add_column('operator', sa.Column('failed_pins', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('operator', sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))
    op.add_column('operator', sa.Column('created_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'access_log',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('operator_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('order_id', sa.Integer(), nullable=True),
        sa.Column('field', sa.String(length=64), nullable=True),
        sa.Column('reason', sa.String(), nullable=False),
        sa.Column('detail', sa.JSON(none_as_null=True), nullable=True),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_access_log_kind', 'access_log', ['kind', 'id'], unique=False)
    op.create_index(
        'ix_access_log_order', 'access_log', ['order_id'], unique=False,
        sqlite_where=sa.text('order_id IS NOT NULL'), postgresql_where=sa.text('order_id IS NOT NULL'),
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_PG_FUNCTION)
        op.execute("CREATE TRIGGER access_log_no_change BEFORE UPDATE OR DELETE ON access_log "
                   "FOR EACH ROW EXECUTE FUNCTION access_log_append_only()")
        op.execute("CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log "
                   "FOR EACH STATEMENT EXECUTE FUNCTION access_log_append_only()")
    else:
        for event in ('UPDATE', 'DELETE'):
            op.execute(f"CREATE TRIGGER access_log_no_{event.lower()} BEFORE {event} ON access_log "
                       f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS access_log_no_change ON access_log")
        op.execute("DROP TRIGGER IF EXISTS access_log_no_truncate ON access_log")
        op.execute("DROP FUNCTION IF EXISTS access_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS access_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS access_log_no_delete")
    op.drop_index('ix_access_log_order', table_name='access_log')
    op.drop_index('ix_access_log_kind', table_name='access_log')
    op.drop_table('access_log')
    for column in ('created_at', 'locked_until', 'failed_pins', 'pin_hash'):
        op.drop_column('operator', column)
