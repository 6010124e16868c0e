"""API keys: only a peppered hash of each key is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from uuid import UUID

import structlog
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import ApiKey
from agent.repositories.base import BaseRepository

logger = structlog.get_logger(__name__)

API_KEY_PREFIX = "agk_"
API_KEY_RANDOM_CHARS = 32
API_KEY_DISPLAY_PREFIX_CHARS = 12
"""Characters of the plaintext kept to recognise a key in listings (`agk_` + 8)."""
MAX_API_KEY_CHARS = 128


def hash_api_key(pepper: SecretStr, plaintext: str) -> str:
    """Hash an API key for storage and lookup.

    HMAC-SHA256 keyed with the server-side pepper: a leaked table alone does not allow
    checking guesses offline. Lookups go by the hash (an indexed equality), so no
    secret-dependent comparison happens in Python.

    Args:
        pepper: The server's secret pepper (`Settings.api_key_pepper`).
        plaintext: The key as the client sends it.

    Returns:
        64 lowercase hex characters.
    """
    return hmac.new(
        pepper.get_secret_value().encode(), plaintext.encode(), hashlib.sha256
    ).hexdigest()


def generate_api_key() -> str:
    """Return a new random key: `agk_` + 32 URL-safe characters (192 bits)."""
    # token_urlsafe(24) encodes 24 random bytes as exactly 32 base64url characters.
    return API_KEY_PREFIX + secrets.token_urlsafe(API_KEY_RANDOM_CHARS * 3 // 4)


class ApiKeyRepository(BaseRepository[ApiKey]):
    """API keys: only an HMAC of each key is stored."""

    def __init__(self, session: AsyncSession, pepper: SecretStr) -> None:
        """Bind the repository to the caller's session and the server's pepper.

        Args:
            session: The session (and transaction) to work in.
            pepper: `Settings.api_key_pepper`.
        """
        super().__init__(ApiKey, session)
        self._pepper = pepper

    async def create_key(self, user_id: UUID, name: str | None = None) -> tuple[str, ApiKey]:
        """Create a key for a user.

        Args:
            user_id: The key's owner.
            name: Optional label.

        Returns:
            The plaintext key (shown once, never stored) and the stored record.
        """
        plaintext = generate_api_key()
        record = await self.create(
            user_id=user_id,
            key_hash=hash_api_key(self._pepper, plaintext),
            prefix=plaintext[:API_KEY_DISPLAY_PREFIX_CHARS],
            name=name,
        )
        logger.info("api_key_created", user_id=str(user_id), prefix=record.prefix)
        return plaintext, record

    async def resolve(self, plaintext: str) -> UUID | None:
        """Return the user a key belongs to.

        Args:
            plaintext: The key as sent by a client.

        Returns:
            The user's id, or None for unknown, malformed or revoked keys.
        """
        if not plaintext.startswith(API_KEY_PREFIX) or len(plaintext) > MAX_API_KEY_CHARS:
            return None
        result = await self.session.execute(
            select(ApiKey.user_id).where(
                ApiKey.key_hash == hash_api_key(self._pepper, plaintext),
                ApiKey.revoked_at.is_(None),
            )
        )
        return result.scalar_one_or_none()
