"""the trace a task was created in

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-15 10:00:00.000000

`tasks.traceparent`: the W3C `traceparent` of the request that created the task (null when
tracing was off), so a later resume or cancel, which arrives in a trace of its own, can
link to the task's trace.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("traceparent", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("tasks", "traceparent")
