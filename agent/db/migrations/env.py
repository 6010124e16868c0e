"""Alembic environment: runs migrations on the async engine."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from agent.config import get_settings, to_asyncpg_url
from agent.db import models  # noqa: F401  (registers every table on the metadata)
from agent.db.base import Base

target_metadata = Base.metadata


def _database_url() -> str:
    configured = context.config.get_main_option("sqlalchemy.url")
    if configured:
        return to_asyncpg_url(configured)
    return get_settings().database_url_value()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_database_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


def run_migrations_online() -> None:
    """Run migrations against a live database."""
    connectable = context.config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    asyncio.run(_run_async())


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
