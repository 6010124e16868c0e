"""TaskRepository and MilestoneRepository against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from agent.contract.task import MilestoneSpec
from agent.db.models import User
from agent.db.session import DatabaseSessionManager
from agent.events.types import MilestoneStatus, TaskStatus
from agent.repositories.errors import (
    InvalidCursorError,
    InvalidFieldError,
    InvalidPlanError,
    RecordNotFoundError,
)
from agent.repositories.milestones import MilestoneRepository
from agent.repositories.tasks import TaskRepository, workflow_id_for
from agent.repositories.users import UserRepository
from tests.agent.repositories.conftest import TaskFactory


def _plan(count: int) -> list[MilestoneSpec]:
    return [
        MilestoneSpec(
            key=f"m{i}",
            title=f"Step {i}",
            description=f"do step {i}",
            depends_on=[f"m{i - 1}"] if i else [],
        )
        for i in range(count)
    ]


async def test_create_defaults_workflow_id_from_task_id(session: AsyncSession, user: User) -> None:
    # Act
    task = await TaskRepository(session).create(user_id=user.id, goal="g")
    await session.commit()

    # Assert
    assert task.workflow_id == workflow_id_for(task.id) == f"task-{task.id}"
    assert task.status == TaskStatus.PENDING
    assert task.last_event_seq == 0


async def test_create_requires_user_and_goal(session: AsyncSession) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        await TaskRepository(session).create(goal="g")
    assert caught.value.fields == ["user_id"]


async def test_create_idempotent_returns_the_first_task(session: AsyncSession, user: User) -> None:
    # Arrange
    repo = TaskRepository(session)
    first, first_created = await repo.create_idempotent(
        user_id=user.id, idempotency_key="k1", goal="a"
    )
    await session.commit()

    # Act
    second, second_created = await repo.create_idempotent(
        user_id=user.id, idempotency_key="k1", goal="b"
    )

    # Assert
    assert (first_created, second_created) == (True, False)
    assert second.id == first.id
    assert second.goal == "a"


async def test_create_idempotent_under_concurrency_creates_one_task(
    session_manager: DatabaseSessionManager, user: User
) -> None:
    # Arrange
    async def attempt() -> tuple[str, bool]:
        async with session_manager.session() as s:
            task, created = await TaskRepository(s).create_idempotent(
                user_id=user.id, idempotency_key="same", goal="g"
            )
            await s.commit()
            return str(task.id), created

    # Act
    results = await asyncio.gather(*(attempt() for _ in range(5)))

    # Assert
    assert len({task_id for task_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_get_by_idempotency_key(
    session: AsyncSession, make_task: TaskFactory, user: User
) -> None:
    task = await make_task(idempotency_key="abc")
    repo = TaskRepository(session)
    assert (await repo.get_by_idempotency_key(user.id, "abc")).id == task.id  # type: ignore[union-attr]
    assert await repo.get_by_idempotency_key(user.id, "other") is None
    assert await repo.get_by_idempotency_key(uuid4(), "abc") is None


async def test_get_for_user_hides_other_users_tasks(
    session: AsyncSession, make_task: TaskFactory, user: User
) -> None:
    # Arrange
    task = await make_task()
    other = await UserRepository(session).get_or_create("mallory")
    repo = TaskRepository(session)

    # Act / Assert
    assert (await repo.get_for_user(task.id, user.id)) is not None
    assert await repo.get_for_user(task.id, other.id) is None
    assert await repo.get_for_user(uuid4(), user.id) is None


async def test_list_for_user_pages_newest_first_with_filters(
    session: AsyncSession, make_task: TaskFactory, user: User
) -> None:
    # Arrange: 25 tasks of the user (separate commits), 3 of someone else.
    session_id = uuid4()
    mine = [
        await make_task(session_id=session_id if i % 2 else None, status=TaskStatus.RUNNING)
        for i in range(25)
    ]
    other = await UserRepository(session).get_or_create("bob")
    for _ in range(3):
        await make_task(user_id=other.id)
    repo = TaskRepository(session)

    # Act
    seen = []
    cursor = None
    while True:
        page = await repo.list_for_user(user.id, limit=10, cursor=cursor)
        seen.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    in_session = await repo.list_for_user(user.id, session_id=session_id, limit=100)
    pending = await repo.list_for_user(user.id, status=TaskStatus.PENDING)

    # Assert
    assert [t.id for t in seen] == [t.id for t in reversed(mine)]
    assert len(in_session.items) == 12
    assert pending.items == []


async def test_list_for_user_rejects_cursor_of_other_filters(
    session: AsyncSession, make_task: TaskFactory, user: User
) -> None:
    for _ in range(3):
        await make_task()
    repo = TaskRepository(session)
    cursor = (await repo.list_for_user(user.id, limit=1)).next_cursor
    with pytest.raises(InvalidCursorError):
        await repo.list_for_user(user.id, status=TaskStatus.RUNNING, limit=1, cursor=cursor)
    with pytest.raises(InvalidCursorError):
        await repo.list_for_user(uuid4(), limit=1, cursor=cursor)


async def test_set_status_tracks_start_and_finish(
    session: AsyncSession, make_task: TaskFactory
) -> None:
    # Arrange
    task = await make_task()
    repo = TaskRepository(session)

    # Act
    running = await repo.set_status(task.id, TaskStatus.RUNNING)
    assert running is not None
    started_at = running.started_at
    await session.commit()
    done = await repo.set_status(task.id, TaskStatus.COMPLETED, result="the answer")
    await session.commit()

    # Assert
    assert done is not None
    assert done.status == TaskStatus.COMPLETED
    assert done.result == "the answer"
    assert done.started_at == started_at is not None
    assert done.finished_at is not None
    assert task.status == TaskStatus.COMPLETED  # the identity-map instance is refreshed


async def test_set_status_only_from_guards_terminal_states(
    session: AsyncSession, make_task: TaskFactory
) -> None:
    # Arrange
    task = await make_task(status=TaskStatus.CANCELLED)
    repo = TaskRepository(session)

    # Act
    updated = await repo.set_status(
        task.id, TaskStatus.COMPLETED, only_from=[TaskStatus.RUNNING, TaskStatus.PAUSED]
    )

    # Assert
    assert updated is None
    reloaded = await repo.get_by_id(task.id)
    assert reloaded is not None
    assert reloaded.status == TaskStatus.CANCELLED


async def test_set_status_of_missing_task_raises(session: AsyncSession) -> None:
    with pytest.raises(RecordNotFoundError):
        await TaskRepository(session).set_status(uuid4(), TaskStatus.RUNNING)


async def test_set_status_with_unknown_field_raises(
    session: AsyncSession, make_task: TaskFactory
) -> None:
    task = await make_task()
    with pytest.raises(InvalidFieldError):
        await TaskRepository(session).set_status(task.id, TaskStatus.RUNNING, colour="red")


async def test_add_usage_accumulates_and_flags_unknown_cost(
    session: AsyncSession, make_task: TaskFactory
) -> None:
    # Arrange
    task = await make_task()
    repo = TaskRepository(session)

    # Act
    first = await repo.add_usage(task.id, 10, 20, 0.5)
    second = await repo.add_usage(task.id, 1, 2, None)
    await session.commit()

    # Assert
    assert (first.input_tokens, first.output_tokens, first.cost_usd) == (10, 20, 0.5)
    assert first.cost_unknown is False
    assert (second.input_tokens, second.output_tokens, second.cost_usd) == (11, 22, 0.5)
    assert second.cost_unknown is True
    assert second.tokens == 33
    session.expunge_all()
    reloaded = await repo.get_by_id(task.id)
    assert reloaded is not None
    assert (reloaded.input_tokens, reloaded.output_tokens, reloaded.cost_unknown) == (11, 22, True)


async def test_add_usage_is_atomic_under_concurrency(
    session_manager: DatabaseSessionManager, make_task: TaskFactory
) -> None:
    # Arrange
    task = await make_task()

    async def add() -> None:
        async with session_manager.session() as s:
            await TaskRepository(s).add_usage(task.id, 1, 2, 0.25)
            await s.commit()

    # Act
    await asyncio.gather(*(add() for _ in range(20)))

    # Assert
    async with session_manager.session() as s:
        reloaded = await TaskRepository(s).get_by_id(task.id)
    assert reloaded is not None
    assert (reloaded.input_tokens, reloaded.output_tokens, reloaded.cost_usd) == (20, 40, 5.0)


async def test_add_usage_rejects_missing_task_and_negative_values(session: AsyncSession) -> None:
    repo = TaskRepository(session)
    with pytest.raises(RecordNotFoundError):
        await repo.add_usage(uuid4(), 1, 1, 0.1)
    with pytest.raises(ValueError, match="negative"):
        await repo.add_usage(uuid4(), -1, 1, 0.1)


async def test_replace_plan_inserts_updates_and_deletes(
    session: AsyncSession, make_task: TaskFactory
) -> None:
    # Arrange
    task = await make_task()
    repo = MilestoneRepository(session)
    await repo.replace_plan(task.id, _plan(3))
    await repo.set_status(task.id, "m1", MilestoneStatus.PASSED, attempt=1)
    await session.commit()
    new_plan = [
        MilestoneSpec(key="m1", title="Step 1 renamed", depends_on=[]),
        MilestoneSpec(key="m3", title="New step", depends_on=["m1"]),
    ]

    # Act
    milestones = await repo.replace_plan(task.id, new_plan)
    await session.commit()

    # Assert
    assert [(m.key, m.position, m.title) for m in milestones] == [
        ("m1", 0, "Step 1 renamed"),
        ("m3", 1, "New step"),
    ]
    assert milestones[0].status == MilestoneStatus.PASSED  # kept across the re-plan
    assert milestones[1].depends_on == ["m1"]
    assert await repo.get_by_key(task.id, "m0") is None


async def test_replace_plan_twice_is_idempotent(
    session: AsyncSession, make_task: TaskFactory
) -> None:
    # Arrange
    task = await make_task()
    repo = MilestoneRepository(session)
    first = await repo.replace_plan(task.id, _plan(4))
    await session.commit()
    before = {m.key: (m.id, m.updated_at) for m in first}

    # Act
    second = await repo.replace_plan(task.id, _plan(4))
    await session.commit()

    # Assert: same rows, not even touched.
    assert {m.key: (m.id, m.updated_at) for m in second} == before


async def test_replace_plan_rejects_duplicate_keys(
    session: AsyncSession, make_task: TaskFactory
) -> None:
    task = await make_task()
    plan = [MilestoneSpec(key="a", title="x"), MilestoneSpec(key="a", title="y")]
    with pytest.raises(InvalidPlanError):
        await MilestoneRepository(session).replace_plan(task.id, plan)


async def test_replace_plan_with_empty_plan_deletes_all(
    session: AsyncSession, make_task: TaskFactory
) -> None:
    task = await make_task()
    repo = MilestoneRepository(session)
    await repo.replace_plan(task.id, _plan(2))
    assert await repo.replace_plan(task.id, []) == []
    assert await repo.list_for_task(task.id) == []


async def test_milestone_set_status_lifecycle(
    session: AsyncSession, make_task: TaskFactory
) -> None:
    # Arrange
    task = await make_task()
    repo = MilestoneRepository(session)
    await repo.replace_plan(task.id, _plan(1))

    # Act
    started = await repo.set_status(task.id, "m0", MilestoneStatus.IN_PROGRESS, attempt=2)
    started_at, started_finished_at = started.started_at, started.finished_at
    stale = await repo.set_status(task.id, "m0", MilestoneStatus.IN_PROGRESS, attempt=1)
    stale_attempts = stale.attempts
    failed = await repo.set_status(task.id, "m0", MilestoneStatus.FAILED, feedback="too short")

    # Assert (the three results are one identity-map instance, hence the copies above)
    assert started_at is not None
    assert started_finished_at is None
    assert stale_attempts == 2  # attempts never go backwards
    assert failed.status == MilestoneStatus.FAILED
    assert failed.feedback == "too short"
    assert failed.started_at == started_at
    assert failed.finished_at is not None


async def test_milestone_set_status_of_missing_key_raises(
    session: AsyncSession, make_task: TaskFactory
) -> None:
    task = await make_task()
    with pytest.raises(RecordNotFoundError):
        await MilestoneRepository(session).set_status(task.id, "nope", MilestoneStatus.PASSED)


async def test_record_output_once_per_attempt(
    session: AsyncSession, make_task: TaskFactory
) -> None:
    # Arrange
    task = await make_task()
    repo = MilestoneRepository(session)
    await repo.replace_plan(task.id, _plan(1))

    # Act
    first = await repo.record_output(
        task.id, "m0", 1, "out-1", input_tokens=5, output_tokens=7, cost_usd=0.1
    )
    retry = await repo.record_output(
        task.id, "m0", 1, "out-1 again", input_tokens=5, output_tokens=7, cost_usd=0.1
    )
    second = await repo.record_output(task.id, "m0", 2, "out-2", input_tokens=1, cost_usd=None)
    stale = await repo.record_output(task.id, "m0", 1, "late", input_tokens=100)
    await session.commit()

    # Assert
    assert (first, retry, second, stale) == (True, False, True, False)
    milestone = await repo.get_by_key(task.id, "m0")
    assert milestone is not None
    assert milestone.output == "out-2"
    assert milestone.output_attempt == 2
    assert milestone.attempts == 2
    assert (milestone.input_tokens, milestone.output_tokens) == (6, 7)
    assert milestone.cost_usd == pytest.approx(0.1)


async def test_record_output_errors(session: AsyncSession, make_task: TaskFactory) -> None:
    task = await make_task()
    repo = MilestoneRepository(session)
    with pytest.raises(RecordNotFoundError):
        await repo.record_output(task.id, "missing", 1, "x")
    with pytest.raises(ValueError, match="attempt"):
        await repo.record_output(task.id, "missing", 0, "x")


async def test_milestone_add_usage(session: AsyncSession, make_task: TaskFactory) -> None:
    # Arrange
    task = await make_task()
    repo = MilestoneRepository(session)
    await repo.replace_plan(task.id, _plan(1))

    # Act
    await repo.add_usage(task.id, "m0", 3, 4, 0.5)
    await repo.add_usage(task.id, "m0", 3, 4, None)

    # Assert
    milestone = await repo.get_by_key(task.id, "m0")
    assert milestone is not None
    assert (milestone.input_tokens, milestone.output_tokens, milestone.cost_usd) == (6, 8, 0.5)
    with pytest.raises(RecordNotFoundError):
        await repo.add_usage(task.id, "other", 1, 1, None)
