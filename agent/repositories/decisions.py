"""The audit trail of resume decisions at breakpoints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import BreakpointDecision
from agent.repositories.base import BaseRepository
from agent.repositories.errors import RecordNotFoundError


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    """Result of `BreakpointDecisionRepository.record`.

    Attributes:
        decision: The stored decision (the first one for this breakpoint).
        created: Whether this call stored it (False: an earlier call did).
    """

    decision: BreakpointDecision
    created: bool


class BreakpointDecisionRepository(BaseRepository[BreakpointDecision]):
    """The audit trail of resume decisions, one per breakpoint."""

    def __init__(self, session: AsyncSession) -> None:
        """Bind the repository to the caller's session.

        Args:
            session: The session (and transaction) to work in.
        """
        super().__init__(BreakpointDecision, session)

    async def record(
        self,
        *,
        task_id: UUID,
        breakpoint_id: str,
        kind: str,
        action: str,
        edits: dict[str, Any] | None = None,
        feedback: str | None = None,
        new_budget: dict[str, Any] | None = None,
        user_id: UUID | None = None,
        decided_at: datetime | None = None,
    ) -> RecordedDecision:
        """Record the decision taken at a breakpoint, exactly once.

        `ON CONFLICT (task_id, breakpoint_id) DO NOTHING`: a retried activity or a
        duplicate resume gets the first decision back, unchanged.

        Args:
            task_id: The task.
            breakpoint_id: The breakpoint's id (unique within the task).
            kind: `BreakpointKind` value.
            action: `ResumeAction` value.
            edits: The plan edit, as JSON.
            feedback: The person's feedback.
            new_budget: The new budget, as JSON.
            user_id: Who decided.
            decided_at: When (defaults to now).

        Returns:
            The stored decision and whether this call created it.
        """
        inserted = (
            await self.session.execute(
                pg_insert(BreakpointDecision)
                .values(
                    id=uuid4(),
                    task_id=task_id,
                    breakpoint_id=breakpoint_id,
                    kind=kind,
                    action=action,
                    edits=edits,
                    feedback=feedback,
                    new_budget=new_budget,
                    user_id=user_id,
                    decided_at=decided_at or datetime.now(UTC),
                )
                .on_conflict_do_nothing(
                    index_elements=[BreakpointDecision.task_id, BreakpointDecision.breakpoint_id]
                )
                .returning(BreakpointDecision.id)
            )
        ).scalar_one_or_none()
        decision = await self.get_for_breakpoint(task_id, breakpoint_id)
        if decision is None:  # pragma: no cover - the row exists after the upsert
            raise RecordNotFoundError(self.model_name, f"{task_id}/{breakpoint_id}")
        return RecordedDecision(decision=decision, created=inserted is not None)

    async def get_for_breakpoint(
        self, task_id: UUID, breakpoint_id: str
    ) -> BreakpointDecision | None:
        """Get the decision taken at one breakpoint.

        Args:
            task_id: The task.
            breakpoint_id: The breakpoint's id.

        Returns:
            The decision, or None.
        """
        result = await self.session.execute(
            select(BreakpointDecision).where(
                BreakpointDecision.task_id == task_id,
                BreakpointDecision.breakpoint_id == breakpoint_id,
            )
        )
        return result.scalar_one_or_none()
