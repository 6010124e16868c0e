"""Read a task with its milestones as one row, in one SQL statement."""

from __future__ import annotations

from functools import cache
from types import SimpleNamespace
from typing import Any
from uuid import UUID

from sqlalchemy import Select, bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by

from agent.db.models import Milestone, Task, ToolCallRecord
from agent.db.prebuilt import PrebuiltQuery
from agent.db.session import DatabaseSessionManager
from api.schemas import MilestoneOut


async def load_task_detail(
    manager: DatabaseSessionManager, task_id: UUID, user_id: UUID
) -> SimpleNamespace | None:
    """Read the user's task: its columns, `milestones` and `tool_calls_made`.

    `milestones` is a JSON array in position order; `tool_calls_made` counts the task's
    tool calls that were executed (the workflow's `totals.tool_calls`, which only lives in
    its state and result while it runs).

    Args:
        manager: The application's session manager.
        task_id: The task.
        user_id: The caller; another user's task reads as missing.

    Returns:
        The row (its columns as attributes), or None when the user has no such task.
    """
    record = await _task_detail_query().fetchrow(manager, task_id=task_id, user_id=user_id)
    return SimpleNamespace(**record) if record is not None else None


@cache
def _task_detail_query() -> PrebuiltQuery:
    """The statement compiled once for the driver (it is the API's most frequent read)."""
    return PrebuiltQuery(_task_detail_statement())


@cache
def _task_detail_statement() -> Select[Any]:
    """The task's columns, its milestones as one JSON array and its executed tool calls.

    One statement is one consistent snapshot and one round trip whatever the milestone
    count; it runs in autocommit on the driver (`PrebuiltQuery`), so there is no
    BEGIN/ROLLBACK around it either. Built once: only `task_id` and `user_id` vary.
    """
    m = Milestone.__table__.alias("m")
    milestone_json = func.json_build_object(
        # Field names are identifiers of our own schema: literal SQL, not parameters.
        *(
            part
            for name in MilestoneOut.model_fields
            for part in (literal_column(f"'{name}'"), m.c[name])
        )
    )
    milestones = (
        select(
            func.coalesce(
                func.json_agg(aggregate_order_by(milestone_json, m.c.position)),
                literal_column("'[]'::json"),
            )
        )
        .where(m.c.task_id == Task.id)
        .scalar_subquery()
        .label("milestones")
    )
    calls = ToolCallRecord.__table__.alias("c")
    tool_calls_made = (
        select(func.count())
        .where(calls.c.task_id == Task.id, calls.c.executions > 0)
        .scalar_subquery()
        .label("tool_calls_made")
    )
    return select(*Task.__table__.c, milestones, tool_calls_made).where(
        Task.id == bindparam("task_id"), Task.user_id == bindparam("user_id")
    )
