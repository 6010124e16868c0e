"""when a task's event log was pruned

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-20 10:00:00.000000

`tasks.events_pruned_at`: set by `agent db prune` when it deleted a finished task's events
and milestone outputs (the task row and its totals stay); null while the log is whole.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("events_pruned_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("tasks", "events_pruned_at")
