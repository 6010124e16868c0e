"""API-key authentication: `Authorization: Bearer <key>` (or `?token=` on sockets)."""

from __future__ import annotations

import time
from collections import OrderedDict
from uuid import UUID

from pydantic import SecretStr
from starlette.requests import HTTPConnection

from agent.db.session import DatabaseSessionManager
from agent.repositories.api_keys import MAX_API_KEY_CHARS, ApiKeyRepository, hash_api_key

AUTH_CACHE_TTL_SECONDS = 30.0
"""A revoked key keeps working on this process for at most this long."""
AUTH_CACHE_MAX_ENTRIES = 1024
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
    """Resolves keys to user ids through `ApiKeyRepository`, with a small TTL cache.

    Only the key's hash is kept in memory, and only successful lookups are cached (so
    random keys cannot flood the cache).

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
        self._cache: OrderedDict[str, tuple[UUID, float]] = OrderedDict()

    async def resolve(self, plaintext: str) -> UUID | None:
        """Return the user of a key, or None for unknown, malformed or revoked keys."""
        if len(plaintext) > MAX_API_KEY_CHARS:
            return None
        digest = hash_api_key(self._pepper, plaintext)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            self._cache.move_to_end(digest)
            return cached[0]
        async with self._manager.session() as session:
            user_id = await ApiKeyRepository(session, self._pepper).resolve(plaintext)
        if user_id is None:
            self._cache.pop(digest, None)
            return None
        self._cache[digest] = (user_id, now + self._ttl)
        self._cache.move_to_end(digest)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return user_id
