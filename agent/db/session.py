"""Async engine and session lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from agent.config import to_asyncpg_url


class DatabaseSessionManager:
    """Owns one async engine and hands out sessions.

    Example:
        >>> async with DatabaseSessionManager(url) as manager:
        ...     async for session in manager.get_session():
        ...         ...
    """

    def __init__(
        self, url: str, *, pool_size: int = 10, pre_ping: bool = True, **engine_kwargs: Any
    ) -> None:
        """Create the engine (connections open lazily).

        Args:
            url: PostgreSQL URL; `postgresql://` is converted to the asyncpg driver.
            pool_size: Connections kept in the pool.
            pre_ping: Test each connection with a round trip on checkout. Callers that
                retry a failed unit of work anyway (Temporal activities) turn it off and
                save one round trip per session.
            **engine_kwargs: Extra arguments for `create_async_engine`.
        """
        self._engine: AsyncEngine | None = create_async_engine(
            to_asyncpg_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=pre_ping,
            **engine_kwargs,
        )
        self._sessionmaker = async_sessionmaker(self._engine, expire_on_commit=False)

    @property
    def engine(self) -> AsyncEngine:
        """The engine; raises once the manager is closed."""
        if self._engine is None:
            raise RuntimeError("DatabaseSessionManager is closed")
        return self._engine

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Dispose of the engine and its pooled connections."""
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def get_session(self) -> AsyncIterator[AsyncSession]:
        """Yield one session; rolled back on error, always closed.

        Yields:
            An `AsyncSession` bound to this manager's engine.
        """
        if self._engine is None:
            raise RuntimeError("DatabaseSessionManager is closed")
        async with self._sessionmaker() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise

    def session(self) -> AsyncSession:
        """Return a new session for use as `async with manager.session() as s`."""
        if self._engine is None:
            raise RuntimeError("DatabaseSessionManager is closed")
        return self._sessionmaker()
