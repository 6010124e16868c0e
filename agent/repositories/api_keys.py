"""API keys: only a peppered hash of each key is stored; revocable, expiring, admin or not."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import structlog
from pydantic import SecretStr
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import ApiKey
from agent.repositories.base import BaseRepository

logger = structlog.get_logger(__name__)

API_KEY_PREFIX = "agk_"
API_KEY_RANDOM_CHARS = 32
API_KEY_DISPLAY_PREFIX_CHARS = 12
"""Characters of the plaintext kept to recognise a key in listings (`agk_` + 8)."""
MAX_API_KEY_CHARS = 128
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""`last_used_at` is rewritten at most this often per key (one UPDATE a minute, not a request)."""


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


@dataclass(frozen=True, slots=True)
class ResolvedApiKey:
    """What a valid key grants.

    Attributes:
        key_id: The key's row id (revocation, last-use, rate-limit buckets go by it).
        user_id: The key's owner.
        is_admin: Whether the key may change what every tenant shares.
        expires_at: When the key stops working, if ever.
    """

    key_id: UUID
    user_id: UUID
    is_admin: bool
    expires_at: datetime | None


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

    async def create_key(
        self,
        user_id: UUID,
        name: str | None = None,
        *,
        is_admin: bool = False,
        expires_at: datetime | None = None,
    ) -> tuple[str, ApiKey]:
        """Create a key for a user.

        Args:
            user_id: The key's owner.
            name: Optional label.
            is_admin: Whether the key may change the system prompts every tenant shares.
            expires_at: Optional end of validity.

        Returns:
            The plaintext key (shown once, never stored) and the stored record.
        """
        plaintext = generate_api_key()
        record = await self.create(
            user_id=user_id,
            key_hash=hash_api_key(self._pepper, plaintext),
            prefix=plaintext[:API_KEY_DISPLAY_PREFIX_CHARS],
            name=name,
            is_admin=is_admin,
            expires_at=expires_at,
        )
        logger.info(
            "api_key_created", user_id=str(user_id), prefix=record.prefix, is_admin=is_admin
        )
        return plaintext, record

    async def lookup(self, plaintext: str) -> ResolvedApiKey | None:
        """Return what a key grants, if it is valid now.

        Args:
            plaintext: The key as sent by a client.

        Returns:
            The key's grant, or None for unknown, malformed, revoked or expired keys.
        """
        if not plaintext.startswith(API_KEY_PREFIX) or len(plaintext) > MAX_API_KEY_CHARS:
            return None
        result = await self.session.execute(
            select(ApiKey.id, ApiKey.user_id, ApiKey.is_admin, ApiKey.expires_at).where(
                ApiKey.key_hash == hash_api_key(self._pepper, plaintext),
                ApiKey.revoked_at.is_(None),
                or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > func.now()),
            )
        )
        row = result.one_or_none()
        if row is None:
            return None
        return ResolvedApiKey(
            key_id=row.id, user_id=row.user_id, is_admin=row.is_admin, expires_at=row.expires_at
        )

    async def resolve(self, plaintext: str) -> UUID | None:
        """Return the user a key belongs to.

        Args:
            plaintext: The key as sent by a client.

        Returns:
            The user's id, or None for unknown, malformed, revoked or expired keys.
        """
        resolved = await self.lookup(plaintext)
        return resolved.user_id if resolved is not None else None

    async def is_valid(self, key_id: UUID) -> bool:
        """Whether a key (by id) is neither revoked nor expired; open sockets re-check this.

        Args:
            key_id: The key's row id.

        Returns:
            True while the key authenticates.
        """
        result = await self.session.execute(
            select(ApiKey.id).where(
                ApiKey.id == key_id,
                ApiKey.revoked_at.is_(None),
                or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > func.now()),
            )
        )
        return result.scalar_one_or_none() is not None

    async def list_keys(
        self, user_id: UUID | None = None, *, include_revoked: bool = False
    ) -> list[ApiKey]:
        """Keys, oldest first, optionally of one user; never their hashes' plaintext.

        Args:
            user_id: Only this user's keys, or every user's when None.
            include_revoked: Also list revoked keys.

        Returns:
            The key rows (the owner loaded for display).
        """
        statement = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
        if user_id is not None:
            statement = statement.where(ApiKey.user_id == user_id)
        if not include_revoked:
            statement = statement.where(ApiKey.revoked_at.is_(None))
        return list((await self.session.execute(statement)).scalars().all())

    async def find(self, id_or_prefix: str) -> ApiKey | None:
        """Find one key by its id or its display prefix (what `agent keys list` shows).

        Args:
            id_or_prefix: A key id, or a display prefix such as `agk_AbCd1234`.

        Returns:
            The key, or None when nothing or more than one key matches.
        """
        try:
            return await self.get_by_id(UUID(id_or_prefix))
        except ValueError:
            pass
        rows = (
            (await self.session.execute(select(ApiKey).where(ApiKey.prefix == id_or_prefix)))
            .scalars()
            .all()
        )
        return rows[0] if len(rows) == 1 else None

    async def revoke(self, key_id: UUID) -> bool:
        """Revoke a key (idempotent).

        Args:
            key_id: The key's row id.

        Returns:
            True when the key was active and is now revoked.
        """
        result = await self.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=func.now())
            .returning(ApiKey.id)
        )
        revoked = result.scalar_one_or_none() is not None
        if revoked:
            logger.info("api_key_revoked", key_id=str(key_id))
        return revoked

    async def rotate(
        self, key: ApiKey, *, expires_at: datetime | None = None
    ) -> tuple[str, ApiKey]:
        """Replace a key: a new key with the same owner, label and role; the old one revoked.

        Args:
            key: The key to replace.
            expires_at: Expiry of the new key (the old key's expiry when None).

        Returns:
            The new plaintext key and its record.
        """
        await self.revoke(key.id)
        return await self.create_key(
            key.user_id,
            key.name,
            is_admin=key.is_admin,
            expires_at=expires_at if expires_at is not None else key.expires_at,
        )

    async def set_admin(self, key_id: UUID, is_admin: bool) -> None:
        """Grant or withdraw the admin role of a key.

        Args:
            key_id: The key's row id.
            is_admin: The new role.
        """
        await self.session.execute(
            update(ApiKey).where(ApiKey.id == key_id).values(is_admin=is_admin)
        )

    async def touch_last_used(self, key_id: UUID) -> bool:
        """Record that a key authenticated, at most once per `LAST_USED_RESOLUTION`.

        The condition is in the UPDATE, so concurrent requests of one key write once.

        Args:
            key_id: The key's row id.

        Returns:
            True when the row was written.
        """
        result = await self.session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                or_(
                    ApiKey.last_used_at.is_(None),
                    ApiKey.last_used_at < func.now() - LAST_USED_RESOLUTION,
                ),
            )
            .values(last_used_at=func.now())
            .returning(ApiKey.id)
        )
        return result.scalar_one_or_none() is not None
