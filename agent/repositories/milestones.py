"""Milestones of a task, addressed by (task_id, key)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, Protocol
from uuid import UUID, uuid4

import structlog
from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import Milestone
from agent.events.types import MilestoneStatus
from agent.repositories.base import BaseRepository, check_usage_increments
from agent.repositories.errors import InvalidPlanError, RecordNotFoundError

logger = structlog.get_logger(__name__)

FINISHED_MILESTONE_STATUSES = frozenset(
    {MilestoneStatus.PASSED, MilestoneStatus.FAILED, MilestoneStatus.SKIPPED}
)


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
            await self.session.execute(_upsert_statement(), rows)
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

    async def get_with_dependencies(self, task_id: UUID, key: str) -> dict[str, Milestone]:
        """One milestone of a task and the milestones it depends on, by key.

        What an attempt reads: its own row and its dependencies' results, never the
        whole plan (a task of thousands of milestones would read every row per attempt).

        Args:
            task_id: The task.
            key: The milestone's key.

        Returns:
            The milestone and its existing dependencies by key; empty when there is no
            milestone `key`.
        """
        milestone = await self.get_by_key(task_id, key)
        if milestone is None:
            return {}
        found = {milestone.key: milestone}
        if milestone.depends_on:
            result = await self.session.execute(
                select(Milestone)
                .where(Milestone.task_id == task_id, Milestone.key.in_(milestone.depends_on))
                .execution_options(populate_existing=True)
            )
            found.update({m.key: m for m in result.scalars()})
        return found

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

    async def count_by_status(self, task_id: UUID) -> dict[MilestoneStatus, int]:
        """How many milestones of a task are in each status (every status present).

        Args:
            task_id: The task.

        Returns:
            Status -> count, zero for statuses no milestone is in.
        """
        counts = dict.fromkeys(MilestoneStatus, 0)
        rows = await self.session.execute(
            select(Milestone.status, func.count())
            .where(Milestone.task_id == task_id)
            .group_by(Milestone.status)
        )
        for status, count in rows.all():
            counts[MilestoneStatus(status)] = int(count)
        return counts

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
        check_usage_increments(input_tokens, output_tokens, cost_usd)
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
        *,
        estimated: bool = False,
    ) -> None:
        """Atomically add usage (e.g. a verifier call) to a milestone's totals.

        Not idempotent by itself; see `TaskRepository.add_usage`.

        Args:
            task_id: The task.
            key: The milestone's key.
            input_tokens: Tokens to add.
            output_tokens: Tokens to add.
            cost_usd: Cost to add; None adds nothing.
            estimated: The usage was estimated (sets `usage_estimated`).

        Raises:
            RecordNotFoundError: When the milestone does not exist.
        """
        check_usage_increments(input_tokens, output_tokens, cost_usd)
        values: dict[str, Any] = {
            "input_tokens": Milestone.input_tokens + input_tokens,
            "output_tokens": Milestone.output_tokens + output_tokens,
        }
        if cost_usd is not None:
            values["cost_usd"] = Milestone.cost_usd + cost_usd
        if estimated:
            values["usage_estimated"] = True
        if await self._update_one(task_id, key, values) is None:
            raise RecordNotFoundError(self.model_name, f"{task_id}/{key}")


@cache
def _upsert_statement() -> Any:
    """The plan upsert, built once (executed with one parameter set per milestone).

    `excluded` builds a table alias with new column objects: built per call, that was a
    measurable share of the worker's CPU on planning.
    """
    insert_stmt = pg_insert(Milestone)
    excluded = insert_stmt.excluded
    changed = or_(
        Milestone.title.is_distinct_from(excluded.title),
        Milestone.description.is_distinct_from(excluded.description),
        Milestone.depends_on.is_distinct_from(excluded.depends_on),
        Milestone.position.is_distinct_from(excluded.position),
    )
    return insert_stmt.on_conflict_do_update(
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
