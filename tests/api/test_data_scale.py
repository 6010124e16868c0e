"""At a million stored events the API's reads use indexes: EXPLAIN of the statements the
code itself issues (captured on the engine while the real repository and socket-source code
runs), for an event page, a session socket's backfill and `GET /v1/tasks`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.db.models import Event, Task
from agent.db.session import DatabaseSessionManager
from agent.repositories.events import EventRepository
from agent.repositories.tasks import TaskRepository
from api.ws.manager import DEFAULT_PAGE_SIZE
from api.ws.source import DatabaseEventSource
from api.ws.streams import SessionStream
from bench.scale_data import create_users, load_tasks

USERS = 8
TASKS = 2_000
EVENTS_PER_TASK = 500
SCANNED_TABLES = {"events", "tasks"}

Captured = list[tuple[str, Any]]


class StatementCapture:
    """The statements (with their parameters) sent through an engine while `active`."""

    def __init__(self) -> None:
        self.statements: Captured = []
        self.active = False

    def __call__(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if self.active and statement.lstrip().upper().startswith("SELECT"):
            self.statements.append((statement, params))


@pytest.fixture
def capture(session_manager: DatabaseSessionManager) -> Iterator[StatementCapture]:
    """Capture of the test engine's SELECTs; set `.active = True` around the reads."""
    capturing = StatementCapture()
    sync_engine = session_manager.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", capturing)
    yield capturing
    event.remove(sync_engine, "before_cursor_execute", capturing)


async def _plan(conn: AsyncConnection, statement: str, params: Any) -> dict[str, Any]:
    result = await conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", params)
    document = result.scalar_one()
    plan: dict[str, Any] = (json.loads(document) if isinstance(document, str) else document)[0][
        "Plan"
    ]
    return plan


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """(node type, relation or index) of every scan in a plan."""
    return [
        (node["Node Type"], node.get("Relation Name") or node.get("Index Name", ""))
        for node in _nodes(plan)
        if "Scan" in node["Node Type"]
    ]


def _index_names(plan: dict[str, Any]) -> set[str]:
    return {node["Index Name"] for node in _nodes(plan) if "Index Name" in node}


async def _reads_at_scale(
    manager: DatabaseSessionManager, capture: StatementCapture
) -> dict[str, Captured]:
    """Run each read as the API does, capturing its statements per read."""
    async with manager.session() as session:
        user_id, task_id, session_id = (
            await session.execute(
                select(Task.user_id, Task.id, Task.session_id)
                .order_by(Task.created_at)
                .offset(TASKS // 2)
                .limit(1)
            )
        ).one()
        assert session_id is not None
        cursor_id = (
            await session.execute(
                select(func.min(Event.id)).where(
                    Event.task_id == task_id, Event.sequence_number == EVENTS_PER_TASK // 2
                )
            )
        ).scalar_one()
    reads: dict[str, Captured] = {}

    async def run(name: str, read: Any) -> None:
        capture.statements = []
        capture.active = True
        try:
            await read()
        finally:
            capture.active = False
        reads[name] = capture.statements

    async def event_page() -> None:
        async with manager.session() as session:
            page = await EventRepository(session).list_after(task_id, EVENTS_PER_TASK // 2, 100)
        assert len(page) == 100

    async def session_backfill() -> None:
        stream = SessionStream(
            DatabaseEventSource(manager), session_id, user_id, cursor_id, DEFAULT_PAGE_SIZE
        )
        assert await stream.backfill()

    async def task_list() -> None:
        async with manager.session() as session:
            first = await TaskRepository(session).list_for_user(user_id, limit=50)
            assert first.next_cursor is not None
            await TaskRepository(session).list_for_user(user_id, limit=50, cursor=first.next_cursor)

    await run("event page", event_page)
    await run("session socket backfill", session_backfill)
    await run("GET /v1/tasks", task_list)
    return {name: _distinct(statements) for name, statements in reads.items()}


def _distinct(statements: Captured) -> Captured:
    seen: dict[str, Any] = {}
    for statement, params in statements:
        seen.setdefault(statement, params)
    return list(seen.items())


async def test_the_api_reads_use_indexes_at_a_million_events(
    session_manager: DatabaseSessionManager, capture: StatementCapture
) -> None:
    # Arrange
    async with session_manager.engine.begin() as conn:
        users = await create_users(conn, "scale", USERS)
        loaded = await load_tasks(
            conn, "scale", users, tasks=TASKS, events_per_task=EVENTS_PER_TASK
        )
    async with session_manager.engine.connect() as conn:
        await conn.execute(text("ANALYZE events"))
        await conn.execute(text("ANALYZE tasks"))
        await conn.commit()
    reads = await _reads_at_scale(session_manager, capture)

    # Act
    plans: dict[str, list[dict[str, Any]]] = {}
    async with session_manager.engine.connect() as conn:
        for name, statements in reads.items():
            plans[name] = [await _plan(conn, sql, params) for sql, params in statements]

    # Assert
    assert loaded.events == TASKS * EVENTS_PER_TASK
    for name, read_plans in plans.items():
        assert read_plans, f"{name}: no statement captured"
        for plan in read_plans:
            scans = _scans(plan)
            seq_scans = [s for s in scans if s[0] == "Seq Scan" and s[1] in SCANNED_TABLES]
            assert not seq_scans, f"{name}: {seq_scans} in {json.dumps(plan)[:2000]}"
            assert _index_names(plan), f"{name}: no index used: {scans}"
