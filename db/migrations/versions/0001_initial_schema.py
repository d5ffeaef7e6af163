"""Initial schema: the order pool, its timeline, and the search indexes.

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 02:26:04.577911

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('channel',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('customer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('phone_norm', sa.String(length=32), nullable=True),
    sa.Column('match_key', sa.String(length=256), nullable=True),
    sa.Column('city', sa.String(length=64), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_match_key'), ['match_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_phone_norm'), ['phone_norm'], unique=False)

    op.create_table('operator',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('shop',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['channel'], ['channel.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel', 'code')
    )
    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('shop_id', sa.Integer(), nullable=False),
    sa.Column('channel_order_id', sa.String(length=64), nullable=False),
    sa.Column('order_no', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('raw_status', sa.String(length=64), nullable=False),
    sa.Column('after_sale', sa.String(length=24), nullable=False),
    sa.Column('raw_after_sale', sa.String(length=64), nullable=False),
    sa.Column('hold_reason', sa.String(length=256), nullable=True),
    sa.Column('total_fen', sa.Integer(), nullable=False),
    sa.Column('paid_fen', sa.Integer(), nullable=False),
    sa.Column('post_fee_fen', sa.Integer(), nullable=False),
    sa.Column('discount_fen', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ship_by', sa.DateTime(timezone=True), nullable=True),
    sa.Column('modified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('priority', sa.String(length=1), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('presale', sa.Boolean(), nullable=False),
    sa.Column('buyer_note', sa.String(), nullable=False),
    sa.Column('seller_memo', sa.String(), nullable=False),
    sa.Column('receiver_name', sa.String(length=128), nullable=False),
    sa.Column('receiver_phone', sa.String(length=256), nullable=False),
    sa.Column('phone_kind', sa.String(length=12), nullable=False),
    sa.Column('phone_norm', sa.String(length=32), nullable=True),
    sa.Column('phone_tail4', sa.String(length=4), nullable=True),
    sa.Column('province', sa.String(length=32), nullable=False),
    sa.Column('city', sa.String(length=32), nullable=False),
    sa.Column('district', sa.String(length=32), nullable=False),
    sa.Column('address_detail', sa.String(length=512), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('customer_match', sa.String(length=32), nullable=False),
    sa.Column('search_text', sa.String(), nullable=False),
    sa.ForeignKeyConstraint(['channel'], ['channel.code'], ),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['shop_id'], ['shop.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel', 'shop_id', 'channel_order_id')
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_channel_order_id'), ['channel_order_id'], unique=False)
        batch_op.create_index('ix_orders_customer_paid', ['customer_id', 'paid_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_order_no'), ['order_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_phone_norm'), ['phone_norm'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_phone_tail4'), ['phone_tail4'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_receiver_name'), ['receiver_name'], unique=False)
        batch_op.create_index('ix_orders_status_ship_by', ['status', 'ship_by'], unique=False)

    op.create_table('name_gram',
    sa.Column('gram', sa.String(length=8), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('gram', 'order_id')
    )
    op.create_table('order_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('channel_line_id', sa.String(length=64), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('sku_norm', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('price_fen', sa.Integer(), nullable=False),
    sa.Column('gift', sa.Boolean(), nullable=False),
    sa.Column('combo_sku', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('order_line', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_line_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_line_sku_norm'), ['sku_norm'], unique=False)

    op.create_table('parcel',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('warehouse', sa.String(length=64), nullable=False),
    sa.Column('carrier', sa.String(length=32), nullable=False),
    sa.Column('waybill_no', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('printed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('shipped_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_track_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_track_text', sa.String(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('parcel', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_parcel_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_parcel_waybill_no'), ['waybill_no'], unique=False)

    op.create_table('parcel_line',
    sa.Column('parcel_id', sa.Integer(), nullable=False),
    sa.Column('line_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['line_id'], ['order_line.id'], ),
    sa.ForeignKeyConstraint(['parcel_id'], ['parcel.id'], ),
    sa.PrimaryKeyConstraint('parcel_id', 'line_id')
    )
    op.create_table('timeline_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('parcel_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('from_value', sa.String(), nullable=True),
    sa.Column('to_value', sa.String(), nullable=True),
    sa.Column('message', sa.String(), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.ForeignKeyConstraint(['parcel_id'], ['parcel.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('timeline_event', schema=None) as batch_op:
        batch_op.create_index('ix_timeline_order_at', ['order_id', 'at'], unique=False)

    with op.batch_alter_table("name_gram", schema=None) as batch_op:
        batch_op.create_index("ix_name_gram_order_id", ["order_id"], unique=False)
    _create_search_index()


def _create_search_index() -> None:
    """Substring search over receiver, customer and address text, kept in step by the database.

    SQLite: an FTS5 trigram table over ``orders.search_text`` with triggers; PostgreSQL: pg_trgm.
    Both find fragments of three or more characters; two-character names use ``name_gram``.
    """
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE order_fts USING fts5(search_text, content='orders', "
            "content_rowid='id', tokenize='trigram')"
        )
        op.execute(
            "CREATE TRIGGER orders_fts_insert AFTER INSERT ON orders BEGIN "
            "INSERT INTO order_fts(rowid, search_text) VALUES (new.id, new.search_text); END"
        )
        op.execute(
            "CREATE TRIGGER orders_fts_delete AFTER DELETE ON orders BEGIN "
            "INSERT INTO order_fts(order_fts, rowid, search_text) "
            "VALUES ('delete', old.id, old.search_text); END"
        )
        op.execute(
            "CREATE TRIGGER orders_fts_update AFTER UPDATE OF search_text ON orders BEGIN "
            "INSERT INTO order_fts(order_fts, rowid, search_text) "
            "VALUES ('delete', old.id, old.search_text); "
            "INSERT INTO order_fts(rowid, search_text) VALUES (new.id, new.search_text); END"
        )
    else:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_orders_search_trgm ON orders USING gin (search_text gin_trgm_ops)"
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("name_gram", schema=None) as batch_op:
        batch_op.drop_index("ix_name_gram_order_id")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE order_fts")
    with op.batch_alter_table('timeline_event', schema=None) as batch_op:
        batch_op.drop_index('ix_timeline_order_at')

    op.drop_table('timeline_event')
    op.drop_table('parcel_line')
    with op.batch_alter_table('parcel', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_parcel_waybill_no'))
        batch_op.drop_index(batch_op.f('ix_parcel_order_id'))

    op.drop_table('parcel')
    with op.batch_alter_table('order_line', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_line_sku_norm'))
        batch_op.drop_index(batch_op.f('ix_order_line_order_id'))

    op.drop_table('order_line')
    op.drop_table('name_gram')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_status_ship_by')
        batch_op.drop_index(batch_op.f('ix_orders_receiver_name'))
        batch_op.drop_index(batch_op.f('ix_orders_phone_tail4'))
        batch_op.drop_index(batch_op.f('ix_orders_phone_norm'))
        batch_op.drop_index(batch_op.f('ix_orders_order_no'))
        batch_op.drop_index('ix_orders_customer_paid')
        batch_op.drop_index(batch_op.f('ix_orders_channel_order_id'))

    op.drop_table('orders')
    op.drop_table('shop')
    op.drop_table('operator')
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_phone_norm'))
        batch_op.drop_index(batch_op.f('ix_customer_match_key'))

    op.drop_table('customer')
    op.drop_table('channel')
