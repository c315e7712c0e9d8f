"""index items by sensitivity

Checks of the form "is any item above this clearance ..." (the ``/media`` files, which an item
marked above the caller's clearance may show) read only the marked items instead of every item.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_items_sensitivity"), ["sensitivity"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_items_sensitivity"))
