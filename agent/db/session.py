"""Async engine and session lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

from sqlalchemy import event, exc
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
            pool_size: Half the connections the pool may open. It opens up to
                `2 * pool_size` as load needs them and keeps every one: an overflow pool
                closes the connections beyond `pool_size` on return, so under a
                concurrency above `pool_size` nearly every checkout opened a new
                connection (TLS probe, authentication, a backend process forked).
            pre_ping: Test each connection with a round trip on checkout (with asyncpg
                that is three: BEGIN, a statement, ROLLBACK). Without it a checkout only
                drops connections whose socket the server already closed (a restart or a
                terminated backend), which costs nothing; callers that retry a failed unit
                of work anyway (activities) or answer on a hot path (the API) turn it off.
            **engine_kwargs: Extra arguments for `create_async_engine`.
        """
        self._engine: AsyncEngine | None = create_async_engine(
            to_asyncpg_url(url),
            pool_size=2 * pool_size,
            max_overflow=0,
            pool_pre_ping=pre_ping,
            **engine_kwargs,
        )
        if not pre_ping:
            event.listen(self._engine.sync_engine.pool, "checkout", _drop_closed_connection)
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


def _drop_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout hook: refuse a connection whose socket is known closed.

    No round trip: asyncpg marks a connection closed as soon as the event loop saw the
    server close it. `DisconnectionError` makes the pool discard it and check out another
    (or connect anew).
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    if callable(is_closed) and is_closed():
        raise exc.DisconnectionError("the server closed this pooled connection")
