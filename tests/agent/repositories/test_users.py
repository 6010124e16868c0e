"""UserRepository."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.session import DatabaseSessionManager
from agent.repositories.users import UserRepository


async def test_get_or_create_returns_the_same_user(session: AsyncSession) -> None:
    # Arrange
    repo = UserRepository(session)

    # Act
    first = await repo.get_or_create("bob")
    second = await repo.get_or_create("bob")

    # Assert
    assert first.id == second.id
    assert (await repo.get_by_name("bob")).id == first.id  # type: ignore[union-attr]
    assert await repo.get_by_name("nobody") is None


async def test_get_or_create_under_concurrency_creates_one_user(
    session_manager: DatabaseSessionManager,
) -> None:
    async def create() -> str:
        async with session_manager.session() as s:
            user = await UserRepository(s).get_or_create("racer")
            await s.commit()
            return str(user.id)

    ids = await asyncio.gather(*(create() for _ in range(5)))
    assert len(set(ids)) == 1
