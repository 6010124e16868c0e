"""Fixtures of the repository tests: a user, a task factory and a SQL statement counter."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import Task, User
from agent.db.session import DatabaseSessionManager
from agent.repositories.tasks import TaskRepository
from agent.repositories.users import UserRepository

TaskFactory = Callable[..., Awaitable[Task]]


class StatementCounter:
    """Counts SQL statements sent through an engine while `active`."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.active = False

    def __call__(self, *args: Any) -> None:
        if self.active:
            self.statements.append(str(args[2]))

    @property
    def count(self) -> int:
        return len(self.statements)

    def reset(self) -> None:
        self.statements.clear()


@pytest.fixture
def statements(session_manager: DatabaseSessionManager) -> Iterator[StatementCounter]:
    """Counter of statements on the test engine; set `.active = True` around the act."""
    counter = StatementCounter()
    sync_engine = session_manager.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", counter)
    yield counter
    event.remove(sync_engine, "before_cursor_execute", counter)


@pytest.fixture
async def user(session: AsyncSession) -> User:
    """A committed user."""
    created = await UserRepository(session).get_or_create("alice")
    await session.commit()
    return created


@pytest.fixture
def make_task(session: AsyncSession, user: User) -> TaskFactory:
    """Create and commit a task of `user` (or of `user_id=`)."""

    async def factory(user_id: UUID | None = None, **fields: Any) -> Task:
        fields.setdefault("goal", "write a haiku")
        task = await TaskRepository(session).create(user_id=user_id or user.id, **fields)
        await session.commit()
        return task

    return factory
