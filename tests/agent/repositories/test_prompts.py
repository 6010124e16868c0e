"""PromptRepository and PromptCache against real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import User
from agent.db.session import DatabaseSessionManager
from agent.prompts.cache import PromptCache, latest_key, version_key
from agent.repositories.errors import InvalidCursorError
from agent.repositories.prompts import PromptRepository
from agent.stack.ports import free_port
from tests.agent.repositories.conftest import StatementCounter

TTL_SECONDS = 600


@pytest.fixture
def cache(redis_client: Redis) -> PromptCache:
    return PromptCache(redis_client, ttl_seconds=TTL_SECONDS)


@pytest.fixture
async def dead_redis() -> AsyncIterator[Redis]:
    """A client of a port nothing listens on: every command fails to connect."""
    client: Redis = Redis(
        host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    yield client
    await client.aclose()


async def test_first_version_is_one_with_sha256(session: AsyncSession, user: User) -> None:
    # Act
    result = await PromptRepository(session).create_version(
        "t-planner", "Plan it.", category="system", created_by=user.id
    )
    await session.commit()

    # Assert
    assert result.created is True
    assert result.prompt.version == 1
    assert result.prompt.sha256 == hashlib.sha256(b"Plan it.").hexdigest()
    assert result.prompt.category == "system"
    assert result.prompt.created_by == user.id
    assert result.prompt.created_at is not None


async def test_identical_content_returns_latest_unchanged(session: AsyncSession) -> None:
    # Arrange
    repo = PromptRepository(session)
    first = await repo.create_version("t-p", "same")
    await session.commit()

    # Act
    again = await repo.create_version("t-p", "same")

    # Assert
    assert again.created is False
    assert again.prompt == first.prompt
    assert await repo.get_version("t-p", 2) is None


async def test_new_content_makes_next_version_and_old_stays(session: AsyncSession) -> None:
    # Arrange
    repo = PromptRepository(session)
    await repo.create_version("t-p", "one")
    await repo.create_version("t-p", "two")
    await repo.create_version("t-p", "one")  # back to old content: still a new version
    await session.commit()

    # Act
    latest = await repo.get_by_name("t-p")
    versions = [await repo.get_version("t-p", v) for v in (1, 2, 3)]

    # Assert
    assert latest is not None
    assert (latest.version, latest.content) == (3, "one")
    assert [(p.version, p.content) for p in versions if p] == [(1, "one"), (2, "two"), (3, "one")]


async def test_missing_prompt_reads_as_none(session: AsyncSession, cache: PromptCache) -> None:
    for repo in (PromptRepository(session), PromptRepository(session, cache)):
        assert await repo.get_by_name("t-nope") is None
        assert await repo.get_version("t-nope", 1) is None


async def test_concurrent_creates_get_distinct_versions(
    session_manager: DatabaseSessionManager,
) -> None:
    # Arrange
    async def create(index: int) -> int:
        async with session_manager.session() as s:
            result = await PromptRepository(s).create_version("t-shared", f"content {index}")
            await s.commit()
            return result.prompt.version

    # Act
    versions = await asyncio.gather(*(create(i) for i in range(10)))

    # Assert
    assert sorted(versions) == list(range(1, 11))


async def test_list_latest_pages_over_names(session: AsyncSession) -> None:
    # Arrange: 25 prompts, every third with two versions.
    repo = PromptRepository(session)
    for i in range(25):
        await repo.create_version(f"t-prompt-{i:02d}", "v1")
        if i % 3 == 0:
            await repo.create_version(f"t-prompt-{i:02d}", "v2")
    await session.commit()

    # Act
    seen = []
    cursor = None
    while True:
        page = await repo.list_latest(limit=10, cursor=cursor)
        seen.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break

    # Assert: every name once, in order (migrations seed other prompts too).
    names = [p.name for p in seen]
    assert names == sorted(set(names))
    ours = [p for p in seen if p.name.startswith("t-prompt-")]
    assert [p.name for p in ours] == [f"t-prompt-{i:02d}" for i in range(25)]
    assert [p.version for p in ours] == [2 if i % 3 == 0 else 1 for i in range(25)]


async def test_list_latest_rejects_bad_cursor(session: AsyncSession) -> None:
    with pytest.raises(InvalidCursorError):
        await PromptRepository(session).list_latest(cursor="garbage")


async def test_cache_miss_fills_redis_and_hit_skips_postgres(
    session: AsyncSession,
    cache: PromptCache,
    redis_client: Redis,
    statements: StatementCounter,
) -> None:
    # Arrange
    await PromptRepository(session).create_version("t-worker", "Do the work.")
    await session.commit()
    repo = PromptRepository(session, cache)

    # Act
    statements.active = True
    miss = await repo.get_by_name("t-worker")
    miss_statements = statements.count
    statements.reset()
    hit = await repo.get_by_name("t-worker")
    version_hit = await repo.get_version("t-worker", 1)
    hit_statements = statements.count
    statements.active = False

    # Assert
    assert miss == hit == version_hit
    assert miss_statements == 1
    assert hit_statements == 0
    assert await redis_client.get(latest_key("t-worker")) == "1"
    assert await redis_client.get(version_key("t-worker", 1)) is not None
    assert 0 < await redis_client.ttl(latest_key("t-worker")) <= TTL_SECONDS


async def test_get_version_miss_caches_only_that_version(
    session: AsyncSession, cache: PromptCache, redis_client: Redis
) -> None:
    # Arrange
    plain = PromptRepository(session)
    await plain.create_version("t-p", "a")
    await plain.create_version("t-p", "b")
    await session.commit()

    # Act
    record = await PromptRepository(session, cache).get_version("t-p", 1)

    # Assert
    assert record is not None
    assert record.content == "a"
    assert await redis_client.exists(version_key("t-p", 1)) == 1
    assert await redis_client.exists(latest_key("t-p")) == 0


async def test_new_version_reaches_the_cache_only_after_commit_and_publish(
    session: AsyncSession, cache: PromptCache, redis_client: Redis
) -> None:
    # Arrange: v1 is cached as latest.
    repo = PromptRepository(session, cache)
    published = await repo.create_version("t-p", "one")
    await session.commit()
    await repo.publish(published)
    assert await redis_client.get(latest_key("t-p")) == "1"

    # Act
    result = await repo.create_version("t-p", "two")
    during_txn = await redis_client.get(latest_key("t-p"))
    own_read = await repo.get_by_name("t-p")
    await session.commit()
    await repo.publish(result)

    # Assert
    assert during_txn == "1"  # nothing uncommitted ever reaches Redis
    assert own_read is not None
    assert own_read.version == 2  # the writer's own transaction sees its version
    assert await redis_client.get(latest_key("t-p")) == "2"
    assert await redis_client.exists(version_key("t-p", 2)) == 1
    other = await PromptRepository(session, cache).get_by_name("t-p")
    assert other is not None
    assert other.content == "two"


async def test_rolled_back_version_never_reaches_the_cache(
    session: AsyncSession, cache: PromptCache, redis_client: Redis
) -> None:
    # Arrange
    repo = PromptRepository(session, cache)

    # Act
    await repo.create_version("t-p", "doomed")
    await repo.get_by_name("t-p")
    await repo.get_version("t-p", 1)
    await session.rollback()

    # Assert
    assert await redis_client.keys("prompt:t-p:*") == []
    assert await PromptRepository(session, cache).get_by_name("t-p") is None


async def test_latest_pointer_never_moves_backwards(
    cache: PromptCache, redis_client: Redis
) -> None:
    # Act
    await cache.advance_latest("t-p", 3)
    await cache.advance_latest("t-p", 2)

    # Assert
    assert await redis_client.get(latest_key("t-p")) == "3"
    assert await cache.get_latest_version("t-p") == 3


async def test_invalidate_forgets_the_latest_pointer(
    cache: PromptCache, redis_client: Redis
) -> None:
    await cache.advance_latest("t-p", 1)
    await cache.invalidate("t-p")
    assert await redis_client.exists(latest_key("t-p")) == 0


async def test_corrupt_cache_entries_read_as_misses(
    session: AsyncSession, cache: PromptCache, redis_client: Redis
) -> None:
    # Arrange
    await PromptRepository(session).create_version("t-p", "real")
    await session.commit()
    await redis_client.set(latest_key("t-p"), "1")
    await redis_client.set(version_key("t-p", 1), "{not json")

    # Act
    record = await PromptRepository(session, cache).get_by_name("t-p")

    # Assert
    assert record is not None
    assert record.content == "real"


async def test_redis_down_falls_through_to_postgres(
    session: AsyncSession, dead_redis: Redis
) -> None:
    # Arrange
    cache = PromptCache(dead_redis, ttl_seconds=TTL_SECONDS)
    repo = PromptRepository(session, cache)

    # Act
    result = await repo.create_version("t-p", "text")
    await session.commit()
    await repo.publish(result)
    latest = await repo.get_by_name("t-p")
    version = await repo.get_version("t-p", 1)
    await cache.invalidate("t-p")

    # Assert
    assert latest is not None
    assert latest.content == "text"
    assert version == latest
    assert cache.available is False  # cooling down: later reads skip Redis entirely


async def test_cache_is_used_again_after_the_cooldown(
    session: AsyncSession, redis_client: Redis, dead_redis: Redis
) -> None:
    # Arrange: a cache that failed once, with no cool-down left.
    cache = PromptCache(redis_client, ttl_seconds=TTL_SECONDS, failure_cooldown_seconds=0)
    failing = PromptCache(dead_redis, ttl_seconds=TTL_SECONDS, failure_cooldown_seconds=0)
    await failing.get_latest_version("t-p")
    await PromptRepository(session).create_version("t-p", "text")
    await session.commit()

    # Act
    await PromptRepository(session, cache).get_by_name("t-p")

    # Assert
    assert failing.available is True
    assert await redis_client.get(latest_key("t-p")) == "1"


def test_cache_rejects_a_zero_ttl(redis_client: Redis) -> None:
    with pytest.raises(ValueError, match="ttl"):
        PromptCache(redis_client, ttl_seconds=0)
