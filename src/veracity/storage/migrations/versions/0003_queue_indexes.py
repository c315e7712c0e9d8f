"""queue indexes: the queue is ordered by priority alone (flagged items carry a lower priority), tasks by assignee

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_tasks_queue", table_name="tasks")
    op.create_index("ix_tasks_queue_v2", "tasks", ["project_id", "status", "priority", "id"])
    op.create_index(
        "ix_tasks_assignee", "tasks", ["assignee_id", "project_id"],
        sqlite_where=sa.text("assignee_id IS NOT NULL"), postgresql_where=sa.text("assignee_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_assignee", table_name="tasks")
    op.drop_index("ix_tasks_queue_v2", table_name="tasks")
    op.create_index("ix_tasks_queue", "tasks", ["project_id", "status", "flagged", "priority", "id"])
