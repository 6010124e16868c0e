"""BreakpointDecisionRepository: one audit record per breakpoint."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import User
from agent.repositories.decisions import BreakpointDecisionRepository
from tests.agent.repositories.conftest import TaskFactory


async def test_breakpoint_decision_is_recorded_once(
    session: AsyncSession, make_task: TaskFactory, user: User
) -> None:
    # Arrange
    task = await make_task()
    repo = BreakpointDecisionRepository(session)

    # Act
    first = await repo.record(
        task_id=task.id,
        breakpoint_id="bp-1",
        kind="after_plan",
        action="continue",
        edits={"remove": ["m2"]},
        feedback="looks good",
        user_id=user.id,
    )
    await session.commit()
    second = await repo.record(
        task_id=task.id, breakpoint_id="bp-1", kind="after_plan", action="abort"
    )
    other = await repo.record(task_id=task.id, breakpoint_id="bp-2", kind="x", action="retry")
    await session.commit()

    # Assert
    assert (first.created, second.created, other.created) == (True, False, True)
    assert second.decision.id == first.decision.id
    assert second.decision.action == "continue"
    assert second.decision.edits == {"remove": ["m2"]}
    assert second.decision.user_id == user.id
    assert other.decision.breakpoint_id == "bp-2"
    assert await repo.get_for_breakpoint(task.id, "bp-3") is None
