"""DatabaseSessionManager without pre-ping: a pooled connection the server closed is dropped."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import text

from agent.db.session import DatabaseSessionManager
from tests.polling import wait_until


async def test_checkout_drops_a_connection_the_server_terminated(database_url: str) -> None:
    # Arrange: one pooled connection, then its backend terminated from outside.
    async with DatabaseSessionManager(database_url, pool_size=1, pre_ping=False) as manager:
        async with manager.engine.connect() as conn:
            first_pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
        admin = await asyncpg.connect(database_url)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first_pid)
        finally:
            await admin.close()

        async def noticed_closed() -> bool:
            await asyncio.sleep(0)
            return bool(driver.is_closed())

        await wait_until(noticed_closed, "the pooled connection seen closed")

        # Act: the next unit of work, with no ping round trip on checkout.
        async with manager.session() as session:
            second_pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()

    # Assert: it ran on a fresh connection instead of failing on the dead one.
    assert second_pid != first_pid
