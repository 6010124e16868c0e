"""a user's running-task quota

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-18 10:00:00.000000

`users.max_running_tasks`: how many of the user's tasks may run at once (null: the server
default `AGENT_USER_MAX_RUNNING_TASKS`); tasks over it wait in status `queued`. An index on
the user's queued tasks answers queue positions without scanning their history.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("max_running_tasks", sa.Integer(), nullable=True))
    op.create_index(
        "ix_tasks_queued_user_created_at_id",
        "tasks",
        ["user_id", "created_at", "id"],
        postgresql_where=sa.text("status = 'queued'"),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_queued_user_created_at_id", table_name="tasks")
    op.drop_column("users", "max_running_tasks")
