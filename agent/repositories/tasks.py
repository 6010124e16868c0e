"""Tasks: creation, reads, listing, status and usage totals."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import structlog
from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import Task
from agent.events.types import TaskStatus
from agent.repositories.base import (
    DEFAULT_PAGE_SIZE,
    BaseRepository,
    Page,
    check_usage_increments,
    paginate,
)
from agent.repositories.errors import InvalidFieldError, RecordNotFoundError

logger = structlog.get_logger(__name__)

WORKFLOW_ID_PREFIX = "task-"
"""A task's workflow id is `f"{WORKFLOW_ID_PREFIX}{task_id}"`."""


def workflow_id_for(task_id: UUID) -> str:
    """Return the Temporal workflow id of a task.

    Args:
        task_id: The task's id.

    Returns:
        `task-{task_id}`.
    """
    return f"{WORKFLOW_ID_PREFIX}{task_id}"


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Running usage totals after an increment.

    Attributes:
        input_tokens: Input tokens so far.
        output_tokens: Output tokens so far.
        cost_usd: Known cost so far.
        cost_unknown: Whether some usage had no known price.
    """

    input_tokens: int
    output_tokens: int
    cost_usd: float
    cost_unknown: bool

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


class TaskRepository(BaseRepository[Task]):
    """Tasks: creation, per-user reads, listing, status and usage updates."""

    def __init__(self, session: AsyncSession) -> None:
        """Bind the repository to the caller's session.

        Args:
            session: The session (and transaction) to work in.
        """
        super().__init__(Task, session)

    async def create(self, **fields: Any) -> Task:
        """Insert a task; `id` and `workflow_id` (`task-{id}`) default when not given.

        Args:
            **fields: Task columns; at least `user_id` and `goal`.

        Returns:
            The new, flushed task.

        Raises:
            InvalidFieldError: Unknown fields, or `user_id`/`goal` missing.
        """
        missing = [name for name in ("user_id", "goal") if fields.get(name) is None]
        if missing:
            raise InvalidFieldError(self.model_name, missing)
        fields.setdefault("id", uuid4())
        fields.setdefault("workflow_id", workflow_id_for(fields["id"]))
        return await super().create(**fields)

    async def create_idempotent(
        self, *, user_id: UUID, idempotency_key: str, **fields: Any
    ) -> tuple[Task, bool]:
        """Create a task unless the user already has one with this idempotency key.

        Safe under concurrent requests with the same key: the insert is
        `ON CONFLICT (user_id, idempotency_key) DO NOTHING`, and the loser reads the
        winner's task.

        Args:
            user_id: Owner.
            idempotency_key: Client-chosen key (e.g. the `Idempotency-Key` header).
            **fields: Other task columns (at least `goal`).

        Returns:
            The task and whether it was created by this call.

        Raises:
            InvalidFieldError: Unknown fields or `goal` missing.
        """
        if fields.get("goal") is None:
            raise InvalidFieldError(self.model_name, ["goal"])
        self._check_fields(fields)
        task_id = fields.pop("id", None) or uuid4()
        fields.setdefault("workflow_id", workflow_id_for(task_id))
        stmt = (
            pg_insert(Task)
            .values(id=task_id, user_id=user_id, idempotency_key=idempotency_key, **fields)
            .on_conflict_do_nothing(index_elements=[Task.user_id, Task.idempotency_key])
            .returning(Task.id)
        )
        created_id = (await self.session.execute(stmt)).scalar_one_or_none()
        task = await self.get_by_idempotency_key(user_id, idempotency_key)
        if task is None:  # pragma: no cover - the conflicting row exists by definition
            raise RecordNotFoundError(self.model_name, idempotency_key)
        return task, created_id is not None

    async def get_for_user(self, task_id: UUID, user_id: UUID) -> Task | None:
        """Get a task only if it belongs to `user_id` (another user's task reads as absent).

        Args:
            task_id: The task.
            user_id: The requesting user.

        Returns:
            The task, or None (missing or someone else's: the API answers 404 for both).
        """
        result = await self.session.execute(
            select(Task).where(Task.id == task_id, Task.user_id == user_id)
        )
        return result.scalar_one_or_none()

    async def get_by_idempotency_key(self, user_id: UUID, key: str) -> Task | None:
        """Get the user's task created with an idempotency key.

        Args:
            user_id: Owner.
            key: The idempotency key.

        Returns:
            The task, or None.
        """
        result = await self.session.execute(
            select(Task).where(Task.user_id == user_id, Task.idempotency_key == key)
        )
        return result.scalar_one_or_none()

    async def list_for_user(
        self,
        user_id: UUID,
        *,
        status: TaskStatus | None = None,
        session_id: UUID | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> Page[Task]:
        """List a user's tasks, newest first, one keyset page at a time.

        Args:
            user_id: Owner.
            status: Only tasks in this status.
            session_id: Only tasks of this session.
            limit: Page size.
            cursor: `next_cursor` of the previous page.

        Returns:
            The page, ordered by (created_at desc, id desc).

        Raises:
            InvalidCursorError: When the cursor is malformed or from another listing
                (including the same listing with other filters).
            InvalidPageSizeError: When `limit` is out of range.
        """
        stmt = select(Task).where(Task.user_id == user_id)
        if status is not None:
            stmt = stmt.where(Task.status == status)
        if session_id is not None:
            stmt = stmt.where(Task.session_id == session_id)
        scope = f"tasks:user:{user_id}:{status or ''}:{session_id or ''}"
        return await paginate(
            self.session,
            stmt,
            [Task.created_at, Task.id],
            scope=scope,
            limit=limit,
            after=cursor,
            descending=True,
        )

    async def set_status(
        self,
        task_id: UUID,
        status: TaskStatus,
        *,
        only_from: Collection[TaskStatus] | None = None,
        **fields: Any,
    ) -> Task | None:
        """Set a task's status (and other columns) in one `UPDATE ... RETURNING`.

        `started_at` is set the first time the task runs; `finished_at` when it reaches
        a terminal status.

        Args:
            task_id: The task.
            status: New status.
            only_from: When given, change only a task currently in one of these statuses
                (e.g. never turn a cancelled task into a completed one).
            **fields: Other columns to set (`result`, `error`, `failure_reason`,
                `pause_state`, `complexity`, ...).

        Returns:
            The updated task, or None when `only_from` did not match.

        Raises:
            RecordNotFoundError: When the task does not exist.
            InvalidFieldError: Unknown fields.
        """
        self._check_fields(fields)
        values: dict[str, Any] = {"status": status, **fields}
        if status == TaskStatus.RUNNING:
            values["started_at"] = func.coalesce(Task.started_at, func.now())
        if status.is_terminal:
            values["finished_at"] = func.coalesce(Task.finished_at, func.now())
        conditions: list[ColumnElement[bool]] = [Task.id == task_id]
        if only_from is not None:
            conditions.append(Task.status.in_([s.value for s in only_from]))
        stmt = (
            update(Task)
            .where(*conditions)
            .values(**values)
            .returning(Task)
            .execution_options(synchronize_session="fetch", populate_existing=True)
        )
        task = (await self.session.execute(stmt)).scalar_one_or_none()
        if task is None and await self.get_by_id(task_id) is None:
            raise RecordNotFoundError(self.model_name, task_id)
        return task

    async def set_fields(self, task_id: UUID, **fields: Any) -> None:
        """Set columns of a task (its result, its complexity) without touching its status.

        Args:
            task_id: The task.
            **fields: Columns to set.

        Raises:
            InvalidFieldError: Unknown fields.
        """
        self._check_fields(fields)
        await self.session.execute(
            update(Task)
            .where(Task.id == task_id)
            .values(**fields)
            .execution_options(synchronize_session="fetch")
        )

    async def usage_totals(self, task_id: UUID) -> UsageTotals:
        """The task's usage totals as stored now.

        Args:
            task_id: The task.

        Returns:
            The totals.

        Raises:
            RecordNotFoundError: When the task does not exist.
        """
        row = (
            await self.session.execute(
                select(
                    Task.input_tokens, Task.output_tokens, Task.cost_usd, Task.cost_unknown
                ).where(Task.id == task_id)
            )
        ).one_or_none()
        if row is None:
            raise RecordNotFoundError(self.model_name, task_id)
        return UsageTotals(
            input_tokens=int(row[0]),
            output_tokens=int(row[1]),
            cost_usd=float(row[2]),
            cost_unknown=bool(row[3]),
        )

    async def add_usage(
        self,
        task_id: UUID,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float | None,
        *,
        estimated: bool = False,
    ) -> UsageTotals:
        """Atomically add one LLM call's usage to the task's totals.

        A single `UPDATE ... SET x = x + :n`, so concurrent milestones never lose an
        increment. Not idempotent by itself: call it in the same transaction as an
        idempotent write that reported "new" (e.g. an event `append` that returned the
        `LLM_COMPLETE` event, or `MilestoneRepository.record_output` returning True).

        Args:
            task_id: The task.
            input_tokens: Prompt tokens of the call.
            output_tokens: Completion tokens of the call.
            cost_usd: Cost of the call, or None when the model has no known price
                (then `cost_unknown` becomes true).
            estimated: The usage was estimated, not reported by the provider (then
                `usage_estimated` becomes true).

        Returns:
            The totals after the increment.

        Raises:
            RecordNotFoundError: When the task does not exist.
            ValueError: On negative increments.
        """
        check_usage_increments(input_tokens, output_tokens, cost_usd)
        values: dict[str, Any] = {
            "input_tokens": Task.input_tokens + input_tokens,
            "output_tokens": Task.output_tokens + output_tokens,
        }
        if cost_usd is None:
            values["cost_unknown"] = True
        else:
            values["cost_usd"] = Task.cost_usd + cost_usd
        if estimated:
            values["usage_estimated"] = True
        stmt = (
            update(Task)
            .where(Task.id == task_id)
            .values(**values)
            .returning(Task.input_tokens, Task.output_tokens, Task.cost_usd, Task.cost_unknown)
            .execution_options(synchronize_session="fetch")
        )
        row = (await self.session.execute(stmt)).one_or_none()
        if row is None:
            raise RecordNotFoundError(self.model_name, task_id)
        return UsageTotals(
            input_tokens=int(row[0]),
            output_tokens=int(row[1]),
            cost_usd=float(row[2]),
            cost_unknown=bool(row[3]),
        )

    async def pin_tools(self, task_id: UUID, specs: list[dict[str, Any]]) -> None:
        """Pin the task's tool specs, once: a task that already has them keeps them.

        Args:
            task_id: The task.
            specs: `ToolSpec` dumps (JSON).
        """
        await self.session.execute(
            update(Task).where(Task.id == task_id, Task.tools.is_(None)).values(tools=specs)
        )
