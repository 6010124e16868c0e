"""ApiKeyRepository: peppered hashes, resolution."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta

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


async def test_expired_and_revoked_keys_do_not_resolve(session: AsyncSession, user: User) -> None:
    repo = ApiKeyRepository(session, PEPPER)
    expired, _ = await repo.create_key(user.id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    revoked, revoked_record = await repo.create_key(user.id)
    live, live_record = await repo.create_key(
        user.id, is_admin=True, expires_at=datetime.now(UTC) + timedelta(days=1)
    )
    assert await repo.revoke(revoked_record.id) is True
    assert await repo.revoke(revoked_record.id) is False
    await session.commit()

    grant = await repo.lookup(live)
    assert await repo.lookup(expired) is None
    assert await repo.lookup(revoked) is None
    assert grant is not None
    assert grant.is_admin
    assert grant.key_id == live_record.id
    assert await repo.is_valid(live_record.id)
    assert not await repo.is_valid(revoked_record.id)


async def test_find_by_prefix_or_id_and_rotate(session: AsyncSession, user: User) -> None:
    repo = ApiKeyRepository(session, PEPPER)
    old, record = await repo.create_key(user.id, "laptop", is_admin=True)
    await session.commit()

    by_prefix = await repo.find(record.prefix)
    by_id = await repo.find(str(record.id))
    new, new_record = await repo.rotate(record)
    await session.commit()

    assert by_prefix is by_id is record
    assert await repo.find("agk_nothing") is None
    assert await repo.resolve(old) is None
    assert await repo.resolve(new) == user.id
    assert new_record.name == "laptop"
    assert new_record.is_admin
    assert [k.id for k in await repo.list_keys(user.id)] == [new_record.id]
    assert len(await repo.list_keys(user.id, include_revoked=True)) == 2


async def test_last_use_is_written_at_most_once_a_minute(session: AsyncSession, user: User) -> None:
    repo = ApiKeyRepository(session, PEPPER)
    _, record = await repo.create_key(user.id)
    first = await repo.touch_last_used(record.id)
    second = await repo.touch_last_used(record.id)
    assert (first, second) == (True, False)
