"""request hash of tasks, admin API keys

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 21:30:00.000000

`tasks.request_hash`: an `Idempotency-Key` replay must carry the same whole request.
`api_keys.is_admin`: only admin keys change the system prompts every tenant shares.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("request_hash", sa.String(length=64), nullable=True))
    op.add_column(
        "api_keys",
        sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("api_keys", "is_admin")
    op.drop_column("tasks", "request_hash")
