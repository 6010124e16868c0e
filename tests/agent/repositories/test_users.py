"""UserRepository, ApiKeyRepository and BreakpointDecisionRepository."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from uuid import uuid4

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import ApiKey, User
from agent.db.session import DatabaseSessionManager
from agent.repositories import (
    ApiKeyRepository,
    BreakpointDecisionRepository,
    UserRepository,
)
from tests.agent.repositories.conftest import TaskFactory

PEPPER = SecretStr("test-pepper")
KEY_PATTERN = re.compile(r"^agk_[A-Za-z0-9_-]{32}$")


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


async def test_create_key_stores_only_a_peppered_hash(session: AsyncSession, user: User) -> None:
    # Act
    plaintext, record = await ApiKeyRepository(session, PEPPER).create_key(user.id, "laptop")
    await session.commit()

    # Assert
    assert KEY_PATTERN.match(plaintext)
    assert record.prefix == plaintext[:12]
    assert record.name == "laptop"
    expected = hmac.new(b"test-pepper", plaintext.encode(), hashlib.sha256).hexdigest()
    stored = (await session.execute(select(ApiKey.key_hash))).scalars().all()
    assert stored == [expected]
    assert plaintext not in stored


async def test_resolve_returns_the_owner(session: AsyncSession, user: User) -> None:
    # Arrange
    repo = ApiKeyRepository(session, PEPPER)
    plaintext, _ = await repo.create_key(user.id)
    await session.commit()

    # Act / Assert
    assert await repo.resolve(plaintext) == user.id
    assert await repo.resolve(plaintext + "x") is None
    assert await repo.resolve("agk_" + "A" * 32) is None
    assert await repo.resolve("not-a-key") is None
    assert await repo.resolve("agk_" + "A" * 500) is None


async def test_key_does_not_resolve_with_another_pepper(session: AsyncSession, user: User) -> None:
    plaintext, _ = await ApiKeyRepository(session, PEPPER).create_key(user.id)
    other = ApiKeyRepository(session, SecretStr("other-pepper"))
    assert await other.resolve(plaintext) is None


async def test_revoked_key_no_longer_resolves(session: AsyncSession, user: User) -> None:
    # Arrange
    repo = ApiKeyRepository(session, PEPPER)
    plaintext, record = await repo.create_key(user.id)
    await session.commit()

    # Act
    revoked = await repo.revoke(record.id)
    again = await repo.revoke(record.id)
    await session.commit()

    # Assert
    assert (revoked, again) == (True, False)
    assert await repo.resolve(plaintext) is None


async def test_keys_are_unique(session: AsyncSession, user: User) -> None:
    repo = ApiKeyRepository(session, PEPPER)
    keys = {(await repo.create_key(user.id))[0] for _ in range(20)}
    assert len(keys) == 20


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
    assert [d.breakpoint_id for d in await repo.list_for_task(task.id)] == ["bp-1", "bp-2"]
    assert await repo.get_for_breakpoint(task.id, "bp-3") is None
    assert await repo.list_for_task(uuid4()) == []
