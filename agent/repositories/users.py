"""Users, API keys and the breakpoint-decision audit trail."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import structlog
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import ApiKey, BreakpointDecision, User
from agent.repositories.base import BaseRepository
from agent.repositories.errors import RecordNotFoundError

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


class UserRepository(BaseRepository[User]):
    """Users, looked up by their unique name."""

    def __init__(self, session: AsyncSession) -> None:
        """Bind the repository to the caller's session.

        Args:
            session: The session (and transaction) to work in.
        """
        super().__init__(User, session)

    async def get_by_name(self, name: str) -> User | None:
        """Get a user by name.

        Args:
            name: The unique user name.

        Returns:
            The user, or None.
        """
        result = await self.session.execute(select(User).where(User.name == name))
        return result.scalar_one_or_none()

    async def get_or_create(self, name: str) -> User:
        """Get a user by name, creating it if needed (safe under concurrency).

        Args:
            name: The unique user name.

        Returns:
            The existing or new user.
        """
        await self.session.execute(
            pg_insert(User)
            .values(id=uuid4(), name=name)
            .on_conflict_do_nothing(index_elements=[User.name])
        )
        user = await self.get_by_name(name)
        if user is None:  # pragma: no cover - the row exists after the upsert
            raise RecordNotFoundError(self.model_name, name)
        return user


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

    async def revoke(self, key_id: UUID) -> bool:
        """Revoke a key (kept for audit, never resolves again).

        Args:
            key_id: The key record's id.

        Returns:
            True when the key was active and is now revoked.
        """
        result = await self.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
            .returning(ApiKey.id)
            .execution_options(synchronize_session="fetch")
        )
        return result.scalar_one_or_none() is not None


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    """Result of `BreakpointDecisionRepository.record`.

    Attributes:
        decision: The stored decision (the first one for this breakpoint).
        created: Whether this call stored it (False: an earlier call did).
    """

    decision: BreakpointDecision
    created: bool


class BreakpointDecisionRepository(BaseRepository[BreakpointDecision]):
    """The audit trail of resume decisions, one per breakpoint."""

    def __init__(self, session: AsyncSession) -> None:
        """Bind the repository to the caller's session.

        Args:
            session: The session (and transaction) to work in.
        """
        super().__init__(BreakpointDecision, session)

    async def record(
        self,
        *,
        task_id: UUID,
        breakpoint_id: str,
        kind: str,
        action: str,
        edits: dict[str, Any] | None = None,
        feedback: str | None = None,
        new_budget: dict[str, Any] | None = None,
        user_id: UUID | None = None,
        decided_at: datetime | None = None,
    ) -> RecordedDecision:
        """Record the decision taken at a breakpoint, exactly once.

        `ON CONFLICT (task_id, breakpoint_id) DO NOTHING`: a retried activity or a
        duplicate resume gets the first decision back, unchanged.

        Args:
            task_id: The task.
            breakpoint_id: The breakpoint's id (unique within the task).
            kind: `BreakpointKind` value.
            action: `ResumeAction` value.
            edits: The plan edit, as JSON.
            feedback: The person's feedback.
            new_budget: The new budget, as JSON.
            user_id: Who decided.
            decided_at: When (defaults to now).

        Returns:
            The stored decision and whether this call created it.
        """
        inserted = (
            await self.session.execute(
                pg_insert(BreakpointDecision)
                .values(
                    id=uuid4(),
                    task_id=task_id,
                    breakpoint_id=breakpoint_id,
                    kind=kind,
                    action=action,
                    edits=edits,
                    feedback=feedback,
                    new_budget=new_budget,
                    user_id=user_id,
                    decided_at=decided_at or datetime.now(UTC),
                )
                .on_conflict_do_nothing(
                    index_elements=[BreakpointDecision.task_id, BreakpointDecision.breakpoint_id]
                )
                .returning(BreakpointDecision.id)
            )
        ).scalar_one_or_none()
        decision = await self.get_for_breakpoint(task_id, breakpoint_id)
        if decision is None:  # pragma: no cover - the row exists after the upsert
            raise RecordNotFoundError(self.model_name, f"{task_id}/{breakpoint_id}")
        return RecordedDecision(decision=decision, created=inserted is not None)

    async def get_for_breakpoint(
        self, task_id: UUID, breakpoint_id: str
    ) -> BreakpointDecision | None:
        """Get the decision taken at one breakpoint.

        Args:
            task_id: The task.
            breakpoint_id: The breakpoint's id.

        Returns:
            The decision, or None.
        """
        result = await self.session.execute(
            select(BreakpointDecision).where(
                BreakpointDecision.task_id == task_id,
                BreakpointDecision.breakpoint_id == breakpoint_id,
            )
        )
        return result.scalar_one_or_none()

    async def list_for_task(self, task_id: UUID) -> list[BreakpointDecision]:
        """All decisions of a task, oldest first.

        Args:
            task_id: The task.

        Returns:
            The decisions.
        """
        result = await self.session.execute(
            select(BreakpointDecision)
            .where(BreakpointDecision.task_id == task_id)
            .order_by(BreakpointDecision.decided_at, BreakpointDecision.id)
        )
        return list(result.scalars())
