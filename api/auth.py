"""API-key authentication: `Authorization: Bearer <key>` (or `?token=` on sockets)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from datetime import UTC, datetime
from uuid import UUID

import structlog
from pydantic import SecretStr
from starlette.requests import HTTPConnection

from agent.db.session import DatabaseSessionManager
from agent.repositories.api_keys import (
    LAST_USED_RESOLUTION,
    MAX_API_KEY_CHARS,
    ApiKeyRepository,
    ResolvedApiKey,
    hash_api_key,
)

logger = structlog.get_logger(__name__)

AUTH_CACHE_TTL_SECONDS = 5.0
"""A key revoked elsewhere (the CLI, another API process) keeps working here this long at
most; the process that revokes a key forgets it at once."""
AUTH_CACHE_MAX_ENTRIES = 1024
KEY_RECHECK_SECONDS = 2.0
"""An open socket asks whether its key still works this often: a revoked key's sockets
close with 4401 within this (plus the validity cache below)."""
VALIDITY_CACHE_SECONDS = 1.0
"""Sockets of one key share one validity answer for this long (one query, not one per socket)."""
TOKEN_QUERY_PARAMETER = "token"
BEARER_SCHEME = "bearer"


def bearer_token(conn: HTTPConnection) -> str | None:
    """Return the key a request or socket presents, if any.

    Browsers cannot set headers on a WebSocket, so sockets may pass `?token=` instead.
    """
    header = conn.headers.get("authorization")
    if header:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == BEARER_SCHEME and credentials.strip():
            return credentials.strip()
        return None
    if conn.scope["type"] == "websocket":
        token = conn.query_params.get(TOKEN_QUERY_PARAMETER)
        return token or None
    return None


class ApiKeyResolver:
    """Resolves keys to their grant through `ApiKeyRepository`, with a small TTL cache.

    Only the key's hash is kept in memory, and only successful lookups are cached (so
    random keys cannot flood the cache). A cached grant never outlives the key's expiry.
    Each resolution also refreshes the key's `last_used_at`, at most once a minute per key
    and process.

    Args:
        manager: Session manager for the lookups (short sessions of their own).
        pepper: The server's API-key pepper.
        ttl_seconds: How long a resolved key is trusted without asking the database.
        max_entries: Bound of the cache.
    """

    def __init__(
        self,
        manager: DatabaseSessionManager,
        pepper: SecretStr,
        *,
        ttl_seconds: float = AUTH_CACHE_TTL_SECONDS,
        max_entries: int = AUTH_CACHE_MAX_ENTRIES,
    ) -> None:
        self._manager = manager
        self._pepper = pepper
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._cache: OrderedDict[str, tuple[ResolvedApiKey, float]] = OrderedDict()
        self._touched: OrderedDict[UUID, float] = OrderedDict()
        self._validity: dict[UUID, tuple[bool, float]] = {}

    async def resolve(self, plaintext: str) -> ResolvedApiKey | None:
        """Return what a key grants, or None for unknown, malformed, revoked or expired keys."""
        if len(plaintext) > MAX_API_KEY_CHARS:
            return None
        digest = hash_api_key(self._pepper, plaintext)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            self._cache.move_to_end(digest)
            await self._touch(cached[0].key_id, now)
            return cached[0]
        async with self._manager.session() as session:
            resolved = await ApiKeyRepository(session, self._pepper).lookup(plaintext)
        if resolved is None:
            self._cache.pop(digest, None)
            return None
        self._cache[digest] = (resolved, now + self._trust_seconds(resolved))
        self._cache.move_to_end(digest)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        await self._touch(resolved.key_id, now)
        return resolved

    def is_cached(self, plaintext: str) -> bool:
        """Whether a key is known valid here without asking the database."""
        if len(plaintext) > MAX_API_KEY_CHARS:
            return False
        cached = self._cache.get(hash_api_key(self._pepper, plaintext))
        return cached is not None and cached[1] > time.monotonic()

    async def is_valid(self, key_id: UUID) -> bool:
        """Whether a key still authenticates (open sockets re-check with this).

        Answers are shared for `VALIDITY_CACHE_SECONDS`, and a revoked key stays revoked.
        """
        now = time.monotonic()
        known = self._validity.get(key_id)
        if known is not None and (not known[0] or known[1] > now):
            return known[0]
        async with self._manager.session() as session:
            valid = await ApiKeyRepository(session, self._pepper).is_valid(key_id)
        if len(self._validity) >= self._max_entries:
            self._validity = {k: v for k, v in self._validity.items() if v[1] > now}
        self._validity[key_id] = (valid, now + VALIDITY_CACHE_SECONDS)
        if not valid:
            self.forget(key_id)
        return valid

    async def wait_invalid(
        self, key_id: UUID, interval_seconds: float = KEY_RECHECK_SECONDS
    ) -> None:
        """Return once a key no longer authenticates (revoked or expired).

        A database outage is not a revocation: the check is retried on the next round.

        Args:
            key_id: The key of an open socket.
            interval_seconds: Time between checks.
        """
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                if not await self.is_valid(key_id):
                    return
            except Exception as exc:
                logger.warning("api_key_recheck_failed", error=repr(exc))

    def forget(self, key_id: UUID) -> None:
        """Drop a key from the cache (it was revoked): this process refuses it at once."""
        self._validity[key_id] = (False, time.monotonic())
        for digest in [d for d, (grant, _) in self._cache.items() if grant.key_id == key_id]:
            del self._cache[digest]

    def _trust_seconds(self, resolved: ResolvedApiKey) -> float:
        if resolved.expires_at is None:
            return self._ttl
        left = (resolved.expires_at - datetime.now(UTC)).total_seconds()
        return max(0.0, min(self._ttl, left))

    async def _touch(self, key_id: UUID, now: float) -> None:
        last = self._touched.get(key_id)
        if last is not None and now - last < LAST_USED_RESOLUTION.total_seconds():
            return
        self._touched[key_id] = now
        self._touched.move_to_end(key_id)
        while len(self._touched) > self._max_entries:
            self._touched.popitem(last=False)
        # A lost last-use stamp must never fail the request it belongs to.
        try:
            async with self._manager.session() as session:
                await ApiKeyRepository(session, self._pepper).touch_last_used(key_id)
                await session.commit()
        except Exception as exc:
            logger.warning("api_key_last_used_not_recorded", error=repr(exc))
