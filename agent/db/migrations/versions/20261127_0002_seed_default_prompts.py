"""seed default prompts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 16:00:00.000000

Seeds version 1 of every agent role's system prompt from `agent.prompts.defaults`.
Later changes to those defaults ship as new versions in new migrations; this one stays.
"""

import hashlib
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from agent.prompts.defaults import DEFAULT_PROMPTS, PROMPT_CATEGORY, prompt_name

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEED_VERSION = 1

prompts = sa.table(
    "prompts",
    sa.column("id", sa.Uuid()),
    sa.column("name", sa.String()),
    sa.column("version", sa.Integer()),
    sa.column("content", sa.Text()),
    sa.column("sha256", sa.String()),
    sa.column("category", sa.String()),
)


def upgrade() -> None:
    """Insert version 1 of each role prompt (skipped where a version 1 already exists)."""
    bind = op.get_bind()
    for role, content in DEFAULT_PROMPTS.items():
        name = prompt_name(role)
        exists = bind.execute(
            sa.select(sa.func.count())
            .select_from(prompts)
            .where(prompts.c.name == name, prompts.c.version == SEED_VERSION)
        ).scalar_one()
        if exists:
            continue
        bind.execute(
            prompts.insert().values(
                id=uuid.uuid4(),
                name=name,
                version=SEED_VERSION,
                content=content,
                sha256=hashlib.sha256(content.encode()).hexdigest(),
                category=PROMPT_CATEGORY,
            )
        )


def downgrade() -> None:
    """Remove the seeded versions (only those still holding the seeded content)."""
    bind = op.get_bind()
    for role, content in DEFAULT_PROMPTS.items():
        bind.execute(
            prompts.delete().where(
                prompts.c.name == prompt_name(role),
                prompts.c.version == SEED_VERSION,
                prompts.c.sha256 == hashlib.sha256(content.encode()).hexdigest(),
            )
        )
