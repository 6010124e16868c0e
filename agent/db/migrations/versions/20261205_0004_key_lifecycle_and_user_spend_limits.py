"""API key expiry and last use, per-user daily spend limits

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 10:00:00.000000

`api_keys.expires_at`: an optional end of a key's validity.
`api_keys.last_used_at`: when the key last authenticated (refreshed at most once a minute).
`users.daily_token_limit`, `users.daily_cost_limit_usd`: a user's own daily spend limits
(NULL: the server's defaults apply).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("daily_token_limit", sa.BigInteger(), nullable=True))
    op.add_column("users", sa.Column("daily_cost_limit_usd", sa.Float(), nullable=True))
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_keys", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "daily_cost_limit_usd")
    op.drop_column("users", "daily_token_limit")
    op.drop_column("api_keys", "last_used_at")
    op.drop_column("api_keys", "expires_at")
