"""Redis cache of prompt versions.

Keys:
- `prompt:{name}:v{version}` -> the version as JSON. Versions are immutable, so an entry
  never needs invalidating; the TTL only bounds memory.
- `prompt:{name}:latest` -> the latest version number. Only ever moves forward (a Lua
  compare-and-set), so a reader that cached an older number it read from PostgreSQL
  cannot overwrite a newer pointer written after a commit.

Redis is optional (docs/architecture.md): every Redis error is logged and reported as a miss, and
callers fall through to PostgreSQL. After an error the cache stays off for a cool-down,
so a dead Redis (whose client may retry with back-off) does not slow every read.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar
from uuid import UUID

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = structlog.get_logger(__name__)

KEY_PREFIX = "prompt"
DEFAULT_FAILURE_COOLDOWN_SECONDS = 10.0
"""How long the cache stays off after a Redis error before trying Redis again."""

ResultT = TypeVar("ResultT")

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

    def __init__(
        self,
        redis: Redis,
        ttl_seconds: int,
        *,
        failure_cooldown_seconds: float = DEFAULT_FAILURE_COOLDOWN_SECONDS,
    ) -> None:
        """Wrap a Redis client.

        Args:
            redis: An asyncio Redis client (decoded or raw responses both work).
            ttl_seconds: Expiry of every entry (`Settings.prompt_cache_ttl_seconds`).
            failure_cooldown_seconds: How long to bypass Redis after an error.
        """
        if ttl_seconds < 1:
            raise ValueError("ttl_seconds must be at least 1")
        self._redis = redis
        self._ttl = ttl_seconds
        self._cooldown = failure_cooldown_seconds
        self._off_until = 0.0

    @property
    def available(self) -> bool:
        """False while cooling down after a Redis error."""
        return time.monotonic() >= self._off_until

    async def _call(
        self, op: str, action: Callable[[], Awaitable[ResultT]]
    ) -> tuple[bool, ResultT | None]:
        """Run one Redis command; (False, None) when off or failing."""
        if not self.available:
            return False, None
        try:
            return True, await action()
        except (RedisError, OSError) as exc:
            self._off_until = time.monotonic() + self._cooldown
            logger.warning(
                "prompt_cache_unavailable", op=op, error=str(exc), cooldown_s=self._cooldown
            )
            return False, None

    async def get_version(self, name: str, version: int) -> PromptRecord | None:
        """Return a cached version, or None on a miss or a Redis error."""
        key = version_key(name, version)
        _, raw = await self._call("get_version", lambda: self._redis.get(key))
        if raw is None:
            return None
        try:
            return PromptRecord.model_validate_json(raw)
        except ValidationError:
            logger.warning("prompt_cache_corrupt_entry", key=key)
            return None

    async def set_version(self, record: PromptRecord) -> None:
        """Cache one version (immutable, so always safe to write)."""
        key = version_key(record.name, record.version)
        payload = record.model_dump_json()
        await self._call("set_version", lambda: self._redis.set(key, payload, ex=self._ttl))

    async def get_latest_version(self, name: str) -> int | None:
        """Return the cached latest version number, or None on a miss or a Redis error."""
        key = latest_key(name)
        _, raw = await self._call("get_latest", lambda: self._redis.get(key))
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError:
            logger.warning("prompt_cache_corrupt_entry", key=key)
            return None

    async def advance_latest(self, name: str, version: int) -> None:
        """Point `latest` at `version` unless it already points at a newer one.

        Only call this with a version read from, or committed to, PostgreSQL: a pointer
        to an uncommitted version would send readers to a row that may never exist.
        """
        key = latest_key(name)

        async def run() -> object:
            return await self._redis.eval(
                _ADVANCE_LATEST_SCRIPT, 1, key, str(version), str(self._ttl)
            )

        await self._call("advance_latest", run)

    async def remember(self, record: PromptRecord, *, is_latest: bool) -> None:
        """Cache a committed version and, when it is the latest, move the pointer."""
        await self.set_version(record)
        if is_latest:
            await self.advance_latest(record.name, record.version)

    async def invalidate(self, name: str) -> None:
        """Forget a prompt's latest pointer (versions stay; they never change)."""
        key = latest_key(name)
        await self._call("invalidate", lambda: self._redis.delete(key))
