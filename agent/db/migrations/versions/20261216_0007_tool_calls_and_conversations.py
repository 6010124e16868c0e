"""tools: per-task tool lists, tool calls and milestone conversations

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-16 10:00:00.000000

`tasks.tools_requested`: the `tools` a task was created with (null: every allowed tool).
`tasks.tools`: the tool specs pinned at task start (name, policy, input schema).
`tasks.max_tool_calls`: the budget's limit on tool calls (null: unlimited).
`conversation_messages`: the messages of a milestone attempt that uses tools, turn by turn
(system, user, the model's answers with their tool calls); tool results live in
`tool_calls`, so the workflow history carries ids only.
`tool_calls`: one row per call a model asked for: its arguments, the decision on it, how
many times it was executed (at most once for `never` tools), and its whole result.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("tools_requested", JSONB(), nullable=True))
    op.add_column("tasks", sa.Column("tools", JSONB(), nullable=True))
    op.add_column("tasks", sa.Column("max_tool_calls", sa.Integer(), nullable=True))
    op.create_table(
        "conversation_messages",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column(
            "task_id", sa.Uuid(), sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("milestone_key", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False, server_default=""),
        sa.Column("tool_calls", JSONB(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.UniqueConstraint("task_id", "milestone_key", "attempt", "position"),
    )
    op.create_table(
        "tool_calls",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "task_id", sa.Uuid(), sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("milestone_key", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(255), nullable=False),
        sa.Column("function_name", sa.String(255), nullable=False),
        sa.Column("server", sa.String(255), nullable=True),
        sa.Column("tool", sa.String(255), nullable=True),
        sa.Column("arguments", sa.Text(), nullable=False, server_default=""),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("executions", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("is_error", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.UniqueConstraint("task_id", "milestone_key", "attempt", "turn", "position"),
    )
    op.create_index("ix_tool_calls_task_id", "tool_calls", ["task_id"])


def downgrade() -> None:
    op.drop_index("ix_tool_calls_task_id", table_name="tool_calls")
    op.drop_table("tool_calls")
    op.drop_table("conversation_messages")
    op.drop_column("tasks", "max_tool_calls")
    op.drop_column("tasks", "tools")
    op.drop_column("tasks", "tools_requested")
