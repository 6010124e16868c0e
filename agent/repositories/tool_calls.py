"""Tool calls: what a model asked for, the decision on it, its executions and its result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from agent.contract.tools import ToolCallStatus
from agent.db.models import ToolCallRecord
from agent.repositories.base import BaseRepository
from agent.repositories.errors import RecordNotFoundError


@dataclass(frozen=True, slots=True)
class NewToolCall:
    """One call of a model's turn, as it is first stored."""

    call_id: str
    function_name: str
    server: str | None
    tool: str | None
    arguments: str
    status: ToolCallStatus
    result: str | None = None
    """The error result of a call rejected before it ran."""


class ToolCallRepository(BaseRepository[ToolCallRecord]):
    """Tool calls of milestone attempts, keyed by (task, milestone, attempt, turn, position)."""

    def __init__(self, session: AsyncSession) -> None:
        """Bind the repository to the caller's session.

        Args:
            session: The session (and transaction) to work in.
        """
        super().__init__(ToolCallRecord, session)

    async def add_turn(
        self,
        task_id: UUID,
        milestone_key: str,
        attempt: int,
        turn: int,
        calls: Sequence[NewToolCall],
    ) -> list[ToolCallRecord]:
        """Store the calls of one model turn, idempotently; return the stored rows in order.

        A retried activity that stores the same turn again gets the first rows back.
        """
        if calls:
            now = datetime.now(UTC)
            rows = [
                {
                    "id": uuid4(),
                    "task_id": task_id,
                    "milestone_key": milestone_key,
                    "attempt": attempt,
                    "turn": turn,
                    "position": position,
                    "call_id": call.call_id,
                    "function_name": call.function_name,
                    "server": call.server,
                    "tool": call.tool,
                    "arguments": call.arguments,
                    "status": call.status.value,
                    "result": call.result,
                    "is_error": call.result is not None,
                    "finished_at": now if call.status.is_final else None,
                }
                for position, call in enumerate(calls)
            ]
            await self.session.execute(
                pg_insert(ToolCallRecord)
                .values(rows)
                .on_conflict_do_nothing(
                    index_elements=["task_id", "milestone_key", "attempt", "turn", "position"]
                )
            )
        return await self.for_turn(task_id, milestone_key, attempt, turn)

    async def for_turn(
        self, task_id: UUID, milestone_key: str, attempt: int, turn: int
    ) -> list[ToolCallRecord]:
        """The calls of one turn, in the order the model asked for them."""
        rows = await self.session.execute(
            select(ToolCallRecord)
            .where(
                ToolCallRecord.task_id == task_id,
                ToolCallRecord.milestone_key == milestone_key,
                ToolCallRecord.attempt == attempt,
                ToolCallRecord.turn == turn,
            )
            .order_by(ToolCallRecord.position)
        )
        return list(rows.scalars())

    async def for_attempt(
        self, task_id: UUID, milestone_key: str, attempt: int
    ) -> list[ToolCallRecord]:
        """Every call of a milestone attempt, by turn and position."""
        rows = await self.session.execute(
            select(ToolCallRecord)
            .where(
                ToolCallRecord.task_id == task_id,
                ToolCallRecord.milestone_key == milestone_key,
                ToolCallRecord.attempt == attempt,
            )
            .order_by(ToolCallRecord.turn, ToolCallRecord.position)
        )
        return list(rows.scalars())

    async def for_task(self, task_id: UUID) -> list[ToolCallRecord]:
        """Every call of a task, oldest first (calls of one turn in the model's order)."""
        rows = await self.session.execute(
            select(ToolCallRecord)
            .where(ToolCallRecord.task_id == task_id)
            .order_by(
                ToolCallRecord.created_at,
                ToolCallRecord.milestone_key,
                ToolCallRecord.attempt,
                ToolCallRecord.turn,
                ToolCallRecord.position,
            )
        )
        return list(rows.scalars())

    async def lock(self, call_id: UUID) -> ToolCallRecord:
        """The call, locked until the transaction ends (one executor at a time).

        Raises:
            RecordNotFoundError: When there is no such call.
        """
        row = (
            await self.session.execute(
                select(ToolCallRecord)
                .where(ToolCallRecord.id == call_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if row is None:
            raise RecordNotFoundError("ToolCall", call_id)
        return row

    async def start_execution(self, call_id: UUID) -> None:
        """Count one execution and mark the call running (commit before calling the tool)."""
        await self.session.execute(
            update(ToolCallRecord)
            .where(ToolCallRecord.id == call_id)
            .values(
                executions=ToolCallRecord.executions + 1,
                status=ToolCallStatus.RUNNING.value,
                started_at=datetime.now(UTC),
            )
        )

    async def decide(
        self, call_id: UUID, status: ToolCallStatus, *, arguments: str | None = None
    ) -> None:
        """Record a person's decision (approved, possibly with edited arguments)."""
        values: dict[str, object] = {"status": status.value}
        if arguments is not None:
            values["arguments"] = arguments
        await self.session.execute(
            update(ToolCallRecord).where(ToolCallRecord.id == call_id).values(**values)
        )

    async def finish(
        self,
        call_id: UUID,
        status: ToolCallStatus,
        result: str,
        *,
        is_error: bool,
        error: str | None = None,
    ) -> None:
        """Store a call's final status and its whole result."""
        await self.session.execute(
            update(ToolCallRecord)
            .where(ToolCallRecord.id == call_id)
            .values(
                status=status.value,
                result=result,
                is_error=is_error,
                error=error,
                finished_at=datetime.now(UTC),
            )
        )

    async def undo_execution(self, call_id: UUID) -> None:
        """Take back an execution that never reached the tool (its server was unreachable)."""
        await self.session.execute(
            update(ToolCallRecord)
            .where(
                ToolCallRecord.id == call_id,
                ToolCallRecord.status == ToolCallStatus.RUNNING.value,
            )
            .values(
                executions=ToolCallRecord.executions - 1,
                status=ToolCallStatus.APPROVED.value,
                started_at=None,
            )
        )
