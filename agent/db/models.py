"""The domain model: users, tasks, milestones, events, prompts, breakpoint decisions, tools."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from agent.db.base import Base, TimestampMixin
from agent.events.types import MilestoneStatus, TaskStatus


class User(TimestampMixin, Base):
    """A person or system that owns tasks."""

    __tablename__ = "users"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    daily_token_limit: Mapped[int | None] = mapped_column(BigInteger)
    """Tokens this user's tasks may spend per UTC day (None: the server default)."""
    daily_cost_limit_usd: Mapped[float | None] = mapped_column(Float)
    """USD this user's tasks may spend per UTC day (None: the server default)."""
    max_running_tasks: Mapped[int | None] = mapped_column(Integer)
    """Tasks this user may have running at once (None: the server default)."""

    api_keys: Mapped[list[ApiKey]] = relationship(back_populates="user")


class ApiKey(Base):
    """An API key; only its hash is stored."""

    __tablename__ = "api_keys"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """An admin key may change what every tenant shares (the system prompts)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """After this instant the key no longer authenticates (None: never expires)."""
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Refreshed at most once a minute per key, so a busy key costs no write per request."""

    user: Mapped[User] = relationship(back_populates="api_keys")


class Task(TimestampMixin, Base):
    """One agent task: a goal planned into milestones and run by a workflow."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        Index("ix_tasks_user_id_created_at_id", "user_id", "created_at", "id"),
        # A user's queue, in submission order (queue positions).
        Index(
            "ix_tasks_queued_user_created_at_id",
            "user_id",
            "created_at",
            "id",
            postgresql_where=text("status = 'queued'"),
        ),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_id: Mapped[UUID | None] = mapped_column(index=True)
    goal: Mapped[str] = mapped_column(Text)
    complexity: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[TaskStatus] = mapped_column(String(32), default=TaskStatus.PENDING)
    workflow_id: Mapped[str] = mapped_column(String(255), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the create request; an `Idempotency-Key` replay must match it."""
    breakpoints: Mapped[list[str]] = mapped_column(JSONB, default=list)
    max_parallel: Mapped[int] = mapped_column(Integer, default=4)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    max_cost_usd: Mapped[float | None] = mapped_column(Float)
    max_tokens: Mapped[int | None] = mapped_column(BigInteger)
    max_tool_calls: Mapped[int | None] = mapped_column(Integer)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    cost_unknown: Mapped[bool] = mapped_column(Boolean, default=False)
    usage_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    """Some usage in the totals was estimated because the provider reported none."""
    prompt_versions: Mapped[dict[str, int]] = mapped_column(JSONB, default=dict)
    tools_requested: Mapped[list[str] | None] = mapped_column(JSONB)
    """The `tools` the task was created with; None means every allowed tool."""
    tools: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    """Tool specs pinned at task start (`ToolSpec` dumps); None until pinned."""
    pause_state: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    result: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(String(64))
    last_event_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    traceparent: Mapped[str | None] = mapped_column(String(64))
    """W3C `traceparent` of the creating request (None untraced); resumes link to it."""
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    events_pruned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When `agent db prune` deleted the task's events and outputs (None: log whole)."""

    milestones: Mapped[list[Milestone]] = relationship(
        back_populates="task",
        order_by="Milestone.position",
        cascade="all, delete-orphan",
    )


class Milestone(TimestampMixin, Base):
    """One step of a task's plan."""

    __tablename__ = "milestones"
    __table_args__ = (UniqueConstraint("task_id", "key"),)

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    task_id: Mapped[UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    depends_on: Mapped[list[str]] = mapped_column(JSONB, default=list)
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[MilestoneStatus] = mapped_column(String(32), default=MilestoneStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    output: Mapped[str | None] = mapped_column(Text)
    # Attempt whose output is stored; makes recording an attempt's output idempotent.
    output_attempt: Mapped[int | None] = mapped_column(Integer)
    feedback: Mapped[str | None] = mapped_column(Text)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    usage_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    """Some usage in the totals was estimated because the provider reported none."""
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    task: Mapped[Task] = relationship(back_populates="milestones")


class Event(Base):
    """A stored agent event; `sequence_number` is gapless per task."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("task_id", "sequence_number"),
        UniqueConstraint("task_id", "idempotency_key"),
        Index("ix_events_session_id_id", "session_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    task_id: Mapped[UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    sequence_number: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[UUID | None] = mapped_column()
    milestone_id: Mapped[UUID | None] = mapped_column()
    agent: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Prompt(Base):
    """One immutable version of a named prompt."""

    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class BreakpointDecision(Base):
    """Audit record of one resume decision at a breakpoint."""

    __tablename__ = "breakpoint_decisions"
    __table_args__ = (UniqueConstraint("task_id", "breakpoint_id"),)

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    task_id: Mapped[UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    breakpoint_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    edits: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    feedback: Mapped[str | None] = mapped_column(Text)
    new_budget: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    user_id: Mapped[UUID | None] = mapped_column()
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConversationMessage(Base):
    """One message of a milestone attempt that uses tools (tool results: `ToolCallRecord`)."""

    __tablename__ = "conversation_messages"
    __table_args__ = (UniqueConstraint("task_id", "milestone_key", "attempt", "position"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    task_id: Mapped[UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    milestone_key: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    turn: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    tool_calls: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ToolCallRecord(Base):
    """One tool call a model asked for: arguments, decision, executions and whole result."""

    __tablename__ = "tool_calls"
    __table_args__ = (
        UniqueConstraint("task_id", "milestone_key", "attempt", "turn", "position"),
        Index("ix_tool_calls_task_id", "task_id"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    task_id: Mapped[UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    milestone_key: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    turn: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    call_id: Mapped[str] = mapped_column(String(255))
    function_name: Mapped[str] = mapped_column(String(255))
    server: Mapped[str | None] = mapped_column(String(255))
    tool: Mapped[str | None] = mapped_column(String(255))
    arguments: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(32))
    executions: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[str | None] = mapped_column(Text)
    is_error: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
