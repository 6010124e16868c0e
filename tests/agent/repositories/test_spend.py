"""`SpendRepository.task_window`: a running task's view of its user's day, in one query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import Task, User
from agent.repositories.spend import SpendRepository, UserSpendLimits
from agent.repositories.users import UserRepository
from tests.agent.repositories.conftest import StatementCounter, TaskFactory


async def _usage(
    session: AsyncSession, task: Task, tokens: int, cost: float, **row: object
) -> None:
    await session.execute(
        update(Task)
        .where(Task.id == task.id)
        .values(input_tokens=tokens, output_tokens=1, cost_usd=cost, **row)
    )
    await session.commit()


async def test_task_window_sums_the_users_day_and_reads_the_task_and_limits(
    session: AsyncSession, user: User, make_task: TaskFactory, statements: StatementCounter
) -> None:
    # Arrange: two of alice's tasks today, one yesterday, one of bob's today.
    now = datetime.now(UTC)
    since = now - timedelta(hours=1)
    running = await make_task()
    other = await make_task()
    yesterday = await make_task()
    bob = await UserRepository(session).get_or_create("bob")
    bobs = await make_task(user_id=bob.id)
    await _usage(session, running, 99, 0.5)
    await _usage(session, other, 199, 1.0)
    await _usage(session, yesterday, 999, 9.0, created_at=now - timedelta(days=1))
    await _usage(session, bobs, 9999, 99.0)
    await SpendRepository(session).set_limits(user.id, UserSpendLimits(5000, None))
    await session.commit()

    # Act
    statements.active = True
    found = await SpendRepository(session).task_window(running.id, since)
    statements.active = False

    # Assert
    assert found is not None
    assert (found.window.tokens, found.window.cost_usd) == (100 + 200, 1.5)
    assert (found.task.tokens, found.task.cost_usd) == (100, 0.5)
    assert found.task_created_at >= since
    assert found.limits == UserSpendLimits(5000, None)
    assert statements.count == 1


async def test_task_window_of_an_unknown_task_is_none(session: AsyncSession) -> None:
    assert await SpendRepository(session).task_window(uuid4(), datetime.now(UTC)) is None
