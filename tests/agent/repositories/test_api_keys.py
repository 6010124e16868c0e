"""ApiKeyRepository: peppered hashes, resolution."""

from __future__ import annotations

import hashlib
import hmac
import re

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import ApiKey, User
from agent.repositories.api_keys import ApiKeyRepository

PEPPER = SecretStr("test-pepper")
KEY_PATTERN = re.compile(r"^agk_[A-Za-z0-9_-]{32}$")


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


async def test_keys_are_unique(session: AsyncSession, user: User) -> None:
    repo = ApiKeyRepository(session, PEPPER)
    keys = {(await repo.create_key(user.id))[0] for _ in range(20)}
    assert len(keys) == 20
