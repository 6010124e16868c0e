"""Redis cache of prompt versions.

Keys:
- `prompt:{name}:v{version}` -> the version as JSON. Versions are immutable, so an entry
  never needs invalidating; the TTL only bounds memory.
- `prompt:{name}:latest` -> the latest version number. Only ever moves forward (a Lua
  compare-and-set), so a reader that cached an older number it read from PostgreSQL
  cannot overwrite a newer pointer written after a commit.

Redis is optional (DESIGN §2): every Redis error is logged and reported as a miss, and
callers fall through to PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = structlog.get_logger(__name__)

KEY_PREFIX = "prompt"

# Sets KEYS[1] to ARGV[1] (with TTL ARGV[2] seconds) unless it already holds a number
# >= ARGV[1]. Returns 1 when the pointer moved.
_ADVANCE_LATEST_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) and tonumber(current) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
return 1
"""


class PromptRecord(BaseModel):
    """One immutable prompt version, as repositories return it and the cache stores it."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: UUID
    name: str
    version: int
    content: str
    sha256: str
    category: str | None = None
    created_by: UUID | None = None
    created_at: datetime


def version_key(name: str, version: int) -> str:
    """Return the cache key of one prompt version."""
    return f"{KEY_PREFIX}:{name}:v{version}"


def latest_key(name: str) -> str:
    """Return the cache key of a prompt's latest-version pointer."""
    return f"{KEY_PREFIX}:{name}:latest"


class PromptCache:
    """Read-through cache of prompt versions on Redis; never raises on Redis errors."""

    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        """Wrap a Redis client.

        Args:
            redis: An asyncio Redis client (decoded or raw responses both work).
            ttl_seconds: Expiry of every entry (`Settings.prompt_cache_ttl_seconds`).
        """
        if ttl_seconds < 1:
            raise ValueError("ttl_seconds must be at least 1")
        self._redis = redis
        self._ttl = ttl_seconds

    async def get_version(self, name: str, version: int) -> PromptRecord | None:
        """Return a cached version, or None on a miss or a Redis error."""
        try:
            raw = await self._redis.get(version_key(name, version))
        except (RedisError, OSError) as exc:
            logger.warning("prompt_cache_unavailable", op="get_version", error=str(exc))
            return None
        if raw is None:
            return None
        try:
            return PromptRecord.model_validate_json(raw)
        except ValidationError:
            logger.warning("prompt_cache_corrupt_entry", key=version_key(name, version))
            return None

    async def set_version(self, record: PromptRecord) -> None:
        """Cache one version (immutable, so always safe to write)."""
        try:
            await self._redis.set(
                version_key(record.name, record.version),
                record.model_dump_json(),
                ex=self._ttl,
            )
        except (RedisError, OSError) as exc:
            logger.warning("prompt_cache_unavailable", op="set_version", error=str(exc))

    async def get_latest_version(self, name: str) -> int | None:
        """Return the cached latest version number, or None on a miss or a Redis error."""
        try:
            raw = await self._redis.get(latest_key(name))
        except (RedisError, OSError) as exc:
            logger.warning("prompt_cache_unavailable", op="get_latest", error=str(exc))
            return None
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError:
            logger.warning("prompt_cache_corrupt_entry", key=latest_key(name))
            return None

    async def advance_latest(self, name: str, version: int) -> None:
        """Point `latest` at `version` unless it already points at a newer one.

        Only call this with a version read from, or committed to, PostgreSQL: a pointer
        to an uncommitted version would send readers to a row that may never exist.
        """
        try:
            await self._redis.eval(
                _ADVANCE_LATEST_SCRIPT, 1, latest_key(name), str(version), str(self._ttl)
            )
        except (RedisError, OSError) as exc:
            logger.warning("prompt_cache_unavailable", op="advance_latest", error=str(exc))

    async def remember(self, record: PromptRecord, *, is_latest: bool) -> None:
        """Cache a committed version and, when it is the latest, move the pointer."""
        await self.set_version(record)
        if is_latest:
            await self.advance_latest(record.name, record.version)

    async def invalidate(self, name: str) -> None:
        """Forget a prompt's latest pointer (versions stay; they never change)."""
        try:
            await self._redis.delete(latest_key(name))
        except (RedisError, OSError) as exc:
            logger.warning("prompt_cache_unavailable", op="invalidate", error=str(exc))
