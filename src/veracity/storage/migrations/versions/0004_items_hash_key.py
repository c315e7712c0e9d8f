"""items.hash_key: index a 64-bit prefix of the content hash instead of the 64-char hex

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import struct

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BATCH = 10_000


def _backfill() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("UPDATE items SET hash_key = ('x' || substr(content_hash, 1, 16))::bit(64)::bigint")
        return
    after = 0
    while True:
        rows = bind.exec_driver_sql(
            "SELECT id, content_hash FROM items WHERE id > ? ORDER BY id LIMIT ?", (after, _BATCH)
        ).fetchall()
        if not rows:
            return
        keys = struct.unpack(f">{len(rows)}q", bytes.fromhex("".join(h[:16].ljust(16, "0") for _, h in rows)))
        bind.exec_driver_sql(
            "UPDATE items SET hash_key = ? WHERE id = ?", [(k, i) for (i, _), k in zip(rows, keys, strict=True)]
        )
        after = rows[-1][0]


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hash_key", sa.BigInteger(), nullable=True))
    _backfill()
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_dataset_hash")
        batch_op.create_index("ix_items_dataset_hash_key", ["dataset_id", "hash_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_dataset_hash_key")
        batch_op.create_index("ix_items_dataset_hash", ["dataset_id", "content_hash"], unique=False)
        batch_op.drop_column("hash_key")
