"""Read statements compiled once to the driver's SQL and run on asyncpg directly.

A hot read (the API's `GET /v1/tasks/{id}`) spent more CPU in SQLAlchemy's execution
(connection wrapper, parameter processing, result wrapping, the transaction it opens)
than in the driver. `PrebuiltQuery` keeps the statement built with SQLAlchemy, compiles
it once to asyncpg's `$n` SQL, and runs it on a pooled connection's asyncpg connection
in autocommit: one round trip, no BEGIN/ROLLBACK. The pool (size, checkout events) is
the engine's own; the engine's JSON codecs apply, so values are those SQLAlchemy returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import ClauseElement
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.sql.compiler import SQLCompiler

from agent.db.session import DatabaseSessionManager


class PrebuiltQuery:
    """A read statement compiled once for asyncpg.

    Args:
        statement: The SQLAlchemy statement; its bound parameters are named.
    """

    def __init__(self, statement: ClauseElement) -> None:
        dialect = pg_asyncpg.dialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self.sql = str(compiled)
        self.parameter_names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.defaults: dict[str, Any] = dict(compiled.params)

    def arguments(self, parameters: Mapping[str, Any]) -> list[Any]:
        """Positional arguments for `sql`: `parameters` over the statement's own values."""
        merged = {**self.defaults, **parameters}
        return [merged[name] for name in self.parameter_names]

    async def fetchrow(self, manager: DatabaseSessionManager, **parameters: Any) -> Any:
        """Run on a pooled connection in autocommit; the first row (an asyncpg Record) or None."""
        async with manager.engine.connect() as conn:
            pooled = await conn.get_raw_connection()
            driver = pooled.driver_connection
            assert driver is not None
            return await driver.fetchrow(self.sql, *self.arguments(parameters))
