"""usage provenance of task and milestone totals

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10 10:00:00.000000

`tasks.usage_estimated` / `milestones.usage_estimated`: true once any usage added to the
totals was estimated (the provider reported none) rather than reported by the provider.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("tasks", "milestones"):
        op.add_column(
            table,
            sa.Column("usage_estimated", sa.Boolean(), server_default=sa.false(), nullable=False),
        )


def downgrade() -> None:
    for table in ("milestones", "tasks"):
        op.drop_column(table, "usage_estimated")
