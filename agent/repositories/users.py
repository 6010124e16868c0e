"""Users, looked up by their unique name."""

from __future__ import annotations

from uuid import UUID, uuid4

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import User
from agent.repositories.base import BaseRepository
from agent.repositories.errors import RecordNotFoundError


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

    async def names_by_id(self, user_ids: set[UUID]) -> dict[UUID, str]:
        """Map user ids to names (for listings).

        Args:
            user_ids: The users to name.

        Returns:
            Name by id for those that exist.
        """
        if not user_ids:
            return {}
        result = await self.session.execute(select(User.id, User.name).where(User.id.in_(user_ids)))
        return {row.id: row.name for row in result}
