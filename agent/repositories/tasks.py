"""Tasks and their milestones."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID, uuid4

import structlog
from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from agent.db.models import Milestone, Task
from agent.events.types import MilestoneStatus, TaskStatus
from agent.repositories.base import DEFAULT_PAGE_SIZE, BaseRepository, Page, paginate
from agent.repositories.errors import InvalidFieldError, InvalidPlanError, RecordNotFoundError

logger = structlog.get_logger(__name__)

WORKFLOW_ID_PREFIX = "task-"
"""A task's workflow id is `f"{WORKFLOW_ID_PREFIX}{task_id}"`."""

FINISHED_MILESTONE_STATUSES = frozenset(
    {MilestoneStatus.PASSED, MilestoneStatus.FAILED, MilestoneStatus.SKIPPED}
)


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


class MilestoneSpecLike(Protocol):
    """What `replace_plan` reads from a plan entry (e.g. `agent.contract.task.MilestoneSpec`)."""

    @property
    def key(self) -> str:
        """Unique key within the task."""

    @property
    def title(self) -> str:
        """Short title."""

    @property
    def description(self) -> str:
        """What to do."""

    @property
    def depends_on(self) -> list[str]:
        """Keys this milestone waits for."""


def _check_usage(input_tokens: int, output_tokens: int, cost_usd: float | None) -> None:
    if input_tokens < 0 or output_tokens < 0 or (cost_usd is not None and cost_usd < 0):
        raise ValueError("usage increments must not be negative")


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

    async def get_with_milestones(self, task_id: UUID, user_id: UUID | None = None) -> Task | None:
        """Load a task and its milestones in exactly two statements.

        Args:
            task_id: The task.
            user_id: When given, only the owner's task is returned.

        Returns:
            The task with `milestones` loaded (ordered by position), or None.
        """
        stmt = select(Task).where(Task.id == task_id).options(selectinload(Task.milestones))
        if user_id is not None:
            stmt = stmt.where(Task.user_id == user_id)
        result = await self.session.execute(stmt.execution_options(populate_existing=True))
        return result.scalar_one_or_none()

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

    async def add_usage(
        self,
        task_id: UUID,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float | None,
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

        Returns:
            The totals after the increment.

        Raises:
            RecordNotFoundError: When the task does not exist.
            ValueError: On negative increments.
        """
        _check_usage(input_tokens, output_tokens, cost_usd)
        values: dict[str, Any] = {
            "input_tokens": Task.input_tokens + input_tokens,
            "output_tokens": Task.output_tokens + output_tokens,
        }
        if cost_usd is None:
            values["cost_unknown"] = True
        else:
            values["cost_usd"] = Task.cost_usd + cost_usd
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


class MilestoneRepository(BaseRepository[Milestone]):
    """Milestones of a task, addressed by (task_id, key)."""

    def __init__(self, session: AsyncSession) -> None:
        """Bind the repository to the caller's session.

        Args:
            session: The session (and transaction) to work in.
        """
        super().__init__(Milestone, session)

    async def replace_plan(
        self, task_id: UUID, specs: Sequence[MilestoneSpecLike]
    ) -> list[Milestone]:
        """Make the task's milestones match a plan (insert, update, delete), idempotently.

        Milestones whose key stays keep their status, attempts and output; only title,
        description, dependencies and position follow the plan. Applying the same plan
        twice changes nothing.

        Args:
            task_id: The task.
            specs: The plan, in order (position = index).

        Returns:
            The task's milestones after the change, ordered by position.

        Raises:
            InvalidPlanError: When keys repeat.
        """
        keys = [spec.key for spec in specs]
        if len(set(keys)) != len(keys):
            raise InvalidPlanError("milestone keys must be unique within a plan")
        if specs:
            rows = [
                {
                    "id": uuid4(),
                    "task_id": task_id,
                    "key": spec.key,
                    "title": spec.title,
                    "description": spec.description,
                    "depends_on": list(spec.depends_on),
                    "position": position,
                }
                for position, spec in enumerate(specs)
            ]
            insert_stmt = pg_insert(Milestone).values(rows)
            excluded = insert_stmt.excluded
            changed = or_(
                Milestone.title.is_distinct_from(excluded.title),
                Milestone.description.is_distinct_from(excluded.description),
                Milestone.depends_on.is_distinct_from(excluded.depends_on),
                Milestone.position.is_distinct_from(excluded.position),
            )
            await self.session.execute(
                insert_stmt.on_conflict_do_update(
                    index_elements=[Milestone.task_id, Milestone.key],
                    set_={
                        "title": excluded.title,
                        "description": excluded.description,
                        "depends_on": excluded.depends_on,
                        "position": excluded.position,
                        "updated_at": func.now(),
                    },
                    where=changed,
                )
            )
        await self.session.execute(
            delete(Milestone)
            .where(Milestone.task_id == task_id, Milestone.key.not_in(keys))
            .execution_options(synchronize_session="fetch")
        )
        logger.debug("plan_replaced", task_id=str(task_id), milestones=len(keys))
        return await self.list_for_task(task_id)

    async def get_by_key(self, task_id: UUID, key: str) -> Milestone | None:
        """Get one milestone of a task.

        Args:
            task_id: The task.
            key: The milestone's key.

        Returns:
            The milestone, or None.
        """
        result = await self.session.execute(
            select(Milestone)
            .where(Milestone.task_id == task_id, Milestone.key == key)
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def list_for_task(self, task_id: UUID) -> list[Milestone]:
        """All milestones of a task, ordered by position.

        Args:
            task_id: The task.

        Returns:
            The milestones.
        """
        result = await self.session.execute(
            select(Milestone)
            .where(Milestone.task_id == task_id)
            .order_by(Milestone.position)
            .execution_options(populate_existing=True)
        )
        return list(result.scalars())

    async def _update_one(
        self, task_id: UUID, key: str, values: dict[str, Any], *extra: ColumnElement[bool]
    ) -> Milestone | None:
        stmt = (
            update(Milestone)
            .where(Milestone.task_id == task_id, Milestone.key == key, *extra)
            .values(**values)
            .returning(Milestone)
            .execution_options(synchronize_session="fetch", populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def _raise_if_missing(self, task_id: UUID, key: str) -> None:
        if await self.get_by_key(task_id, key) is None:
            raise RecordNotFoundError(self.model_name, f"{task_id}/{key}")

    async def set_status(
        self,
        task_id: UUID,
        key: str,
        status: MilestoneStatus,
        *,
        attempt: int | None = None,
        feedback: str | None = None,
    ) -> Milestone:
        """Set a milestone's status.

        `in_progress` sets `started_at` once and clears `finished_at`; passed, failed and
        skipped set `finished_at`. `attempt` only ever raises `attempts` (a retried
        activity reporting an older attempt changes nothing).

        Args:
            task_id: The task.
            key: The milestone's key.
            status: New status.
            attempt: The attempt number now running or just finished.
            feedback: The verifier's feedback to keep.

        Returns:
            The updated milestone.

        Raises:
            RecordNotFoundError: When the milestone does not exist.
        """
        values: dict[str, Any] = {"status": status}
        if status == MilestoneStatus.IN_PROGRESS:
            values["started_at"] = func.coalesce(Milestone.started_at, func.now())
            values["finished_at"] = None
        elif status in FINISHED_MILESTONE_STATUSES:
            values["finished_at"] = func.now()
        if attempt is not None:
            values["attempts"] = func.greatest(Milestone.attempts, attempt)
        if feedback is not None:
            values["feedback"] = feedback
        milestone = await self._update_one(task_id, key, values)
        if milestone is None:
            raise RecordNotFoundError(self.model_name, f"{task_id}/{key}")
        return milestone

    async def record_output(
        self,
        task_id: UUID,
        key: str,
        attempt: int,
        output: str,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost_usd: float | None = 0.0,
    ) -> bool:
        """Store an attempt's output and usage once; a retry of the same attempt is a no-op.

        The row is only written when no output of this or a later attempt is stored,
        so usage is never counted twice and a late, stale attempt never overwrites a
        newer output.

        Args:
            task_id: The task.
            key: The milestone's key.
            attempt: Attempt number (1-based) the output belongs to.
            output: The worker's full output (stored here, not in workflow history).
            input_tokens: Tokens to add to the milestone's totals.
            output_tokens: Tokens to add to the milestone's totals.
            cost_usd: Cost to add; None adds nothing (unknown price).

        Returns:
            True when this call stored the output, False when it was already stored.

        Raises:
            RecordNotFoundError: When the milestone does not exist.
            ValueError: On negative usage or attempt < 1.
        """
        if attempt < 1:
            raise ValueError("attempt numbers start at 1")
        _check_usage(input_tokens, output_tokens, cost_usd)
        values: dict[str, Any] = {
            "output": output,
            "output_attempt": attempt,
            "attempts": func.greatest(Milestone.attempts, attempt),
            "input_tokens": Milestone.input_tokens + input_tokens,
            "output_tokens": Milestone.output_tokens + output_tokens,
        }
        if cost_usd is not None:
            values["cost_usd"] = Milestone.cost_usd + cost_usd
        not_recorded = or_(Milestone.output_attempt.is_(None), Milestone.output_attempt < attempt)
        milestone = await self._update_one(task_id, key, values, and_(not_recorded))
        if milestone is None:
            await self._raise_if_missing(task_id, key)
            return False
        return True

    async def add_usage(
        self,
        task_id: UUID,
        key: str,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float | None,
    ) -> None:
        """Atomically add usage (e.g. a verifier call) to a milestone's totals.

        Not idempotent by itself; see `TaskRepository.add_usage`.

        Args:
            task_id: The task.
            key: The milestone's key.
            input_tokens: Tokens to add.
            output_tokens: Tokens to add.
            cost_usd: Cost to add; None adds nothing.

        Raises:
            RecordNotFoundError: When the milestone does not exist.
        """
        _check_usage(input_tokens, output_tokens, cost_usd)
        values: dict[str, Any] = {
            "input_tokens": Milestone.input_tokens + input_tokens,
            "output_tokens": Milestone.output_tokens + output_tokens,
        }
        if cost_usd is not None:
            values["cost_usd"] = Milestone.cost_usd + cost_usd
        if await self._update_one(task_id, key, values) is None:
            raise RecordNotFoundError(self.model_name, f"{task_id}/{key}")
