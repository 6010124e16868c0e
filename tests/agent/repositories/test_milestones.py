"""MilestoneRepository reads of one milestone's attempt, against a real PostgreSQL."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from agent.contract.task import MilestoneSpec
from agent.repositories.milestones import MilestoneRepository
from tests.agent.repositories.conftest import TaskFactory

DIAMOND = [
    MilestoneSpec(key="a", title="A"),
    MilestoneSpec(key="b", title="B", depends_on=["a"]),
    MilestoneSpec(key="c", title="C", depends_on=["a"]),
    MilestoneSpec(key="d", title="D", depends_on=["b", "c"]),
    MilestoneSpec(key="e", title="E", depends_on=["d"]),
]


async def test_get_with_dependencies_reads_the_milestone_and_its_dependencies_only(
    session: AsyncSession, make_task: TaskFactory
) -> None:
    # Arrange
    task = await make_task()
    repo = MilestoneRepository(session)
    await repo.replace_plan(task.id, DIAMOND)
    await repo.record_output(task.id, "b", 1, "result of b")
    await session.commit()

    # Act
    found = await repo.get_with_dependencies(task.id, "d")
    first = await repo.get_with_dependencies(task.id, "a")

    # Assert: d and what it depends on, not a (a dependency of a dependency) nor e.
    assert sorted(found) == ["b", "c", "d"]
    assert found["b"].output == "result of b"
    assert found["c"].output is None
    assert sorted(first) == ["a"]


async def test_get_with_dependencies_of_a_missing_key_is_empty(
    session: AsyncSession, make_task: TaskFactory
) -> None:
    # Arrange
    task = await make_task()
    await MilestoneRepository(session).replace_plan(task.id, DIAMOND)
    await session.commit()

    # Act
    found = await MilestoneRepository(session).get_with_dependencies(task.id, "nope")

    # Assert
    assert found == {}
