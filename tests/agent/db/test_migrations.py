"""The migrations build the schema from nothing and take it down again."""

from __future__ import annotations

import asyncpg

from agent.db import models  # noqa: F401
from agent.db.base import Base
from agent.db.migrate import downgrade_database, upgrade_database

EXPECTED_TABLES = {
    "users",
    "api_keys",
    "tasks",
    "milestones",
    "events",
    "prompts",
    "breakpoint_decisions",
    "conversation_messages",
    "tool_calls",
}


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"
        )
    finally:
        await conn.close()
    return {row["tablename"] for row in rows}


async def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    # Arrange: the test database starts at head; take it to base first.
    await _run(downgrade_database, database_url, "base")
    assert await _tables(database_url) == set()

    # Act
    await _run(upgrade_database, database_url, "head")

    # Assert
    assert await _tables(database_url) == EXPECTED_TABLES
    assert set(Base.metadata.tables) == EXPECTED_TABLES


async def _run(func: object, url: str, revision: str) -> None:
    import asyncio

    await asyncio.to_thread(func, url, revision)  # type: ignore[arg-type]
