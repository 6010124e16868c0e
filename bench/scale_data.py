"""Synthetic stored history at scale: users, finished tasks and their events, in bulk.

Test and benchmark data only (the application writes events through `EventRepository`):
`INSERT ... SELECT generate_series` loads a million events in seconds. Tasks are spread
round-robin over the given users, a few tasks per session; each task's events are
interleaved with every other task's in `events.id` order, as when tasks run concurrently
(the pessimistic case for reading one task's log: its rows are spread over the table).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import DateTime, Integer, String, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection

EVENT_TYPES = (
    "AGENT_STARTED",
    "LLM_COMPLETE",
    "AGENT_COMPLETED",
    "MILESTONE_STATUS_CHANGED",
    "TASK_PROGRESS",
)

_USERS = text(
    """
    INSERT INTO users (id, name)
    SELECT gen_random_uuid(), :prefix || '-user-' || u FROM generate_series(1, :count) u
    RETURNING id
    """
).bindparams(bindparam("prefix", type_=String), bindparam("count", type_=Integer))

_TASKS = text(
    """
    INSERT INTO tasks (
        id, user_id, session_id, goal, status, workflow_id, breakpoints, max_parallel,
        max_attempts, input_tokens, output_tokens, cost_usd, cost_unknown, prompt_versions,
        last_event_seq, created_at, updated_at, started_at, finished_at
    )
    SELECT
        gen_random_uuid(),
        owners.user_id,
        md5(:prefix || ':' || owners.ord || ':' || (t / cardinality(:users) / :per_session))::uuid,
        'synthetic task ' || t,
        'completed',
        :prefix || '-task-' || t,
        '[]'::jsonb, 4, 3, 1000, 500, 0.01, false, '{}'::jsonb,
        :events,
        stamp, stamp, stamp, stamp + interval '10 minutes'
    FROM generate_series(0, :count - 1) t
    CROSS JOIN LATERAL (
        SELECT (:users)[1 + t % cardinality(:users)] AS user_id,
               1 + t % cardinality(:users) AS ord,
               :oldest + t * interval '1 minute' AS stamp
    ) owners
    """
).bindparams(
    bindparam("prefix", type_=String),
    bindparam("users", type_=ARRAY(PG_UUID(as_uuid=True))),
    bindparam("per_session", type_=Integer),
    bindparam("count", type_=Integer),
    bindparam("events", type_=Integer),
    bindparam("oldest", type_=DateTime(timezone=True)),
)

_EVENTS = text(
    """
    INSERT INTO events (
        task_id, sequence_number, type, session_id, agent, status, message, details,
        idempotency_key, created_at
    )
    SELECT
        t.id, s, (:types)[1 + s % cardinality(:types)], t.session_id, 'worker', NULL,
        'synthetic event ' || s || ' of a task that did some work',
        '{"note": "synthetic"}'::jsonb,
        'k' || s,
        t.created_at + s * interval '1 second'
    FROM generate_series(1, :events) s
    CROSS JOIN LATERAL (
        SELECT id, session_id, workflow_id, created_at FROM tasks
        WHERE workflow_id LIKE :prefix || '-task-%'
    ) t
    """
).bindparams(
    bindparam("prefix", type_=String),
    bindparam("events", type_=Integer),
    bindparam("types", type_=ARRAY(String)),
)


@dataclass(frozen=True, slots=True)
class LoadedTasks:
    """What `load_tasks` stored."""

    tasks: int
    events: int


async def create_users(conn: AsyncConnection, prefix: str, count: int) -> list[UUID]:
    """Insert `count` users named after `prefix` and return their ids.

    Args:
        conn: A connection in a transaction.
        prefix: Unique per load (names must be unique).
        count: How many users.

    Returns:
        Their ids.
    """
    rows = await conn.execute(_USERS, {"prefix": prefix, "count": count})
    return [row[0] for row in rows]


async def load_tasks(
    conn: AsyncConnection,
    prefix: str,
    users: list[UUID],
    *,
    tasks: int,
    events_per_task: int,
    tasks_per_session: int = 10,
    oldest: datetime | None = None,
) -> LoadedTasks:
    """Insert finished tasks of `users` (round-robin) with `events_per_task` events each.

    Args:
        conn: A connection in a transaction (commit it, then ANALYZE).
        prefix: Unique per load: task workflow ids and session ids derive from it.
        users: Owners of the tasks.
        tasks: How many tasks.
        events_per_task: Events stored per task (sequence numbers 1..n).
        tasks_per_session: Tasks of one user that share a session id.
        oldest: `created_at` of the first task (a datetime; None: 30 days ago).

    Returns:
        How many tasks and events were stored.
    """
    await conn.execute(
        _TASKS,
        {
            "oldest": oldest if oldest is not None else datetime.now(UTC) - timedelta(days=30),
            "prefix": prefix,
            "users": list(users),
            "per_session": tasks_per_session,
            "count": tasks,
            "events": events_per_task,
        },
    )
    # Maintaining the events indexes row by row is most of the cost of a bulk insert: they
    # are dropped and rebuilt from their own definitions (the migrated schema's, whatever
    # it holds), which sorts once instead.
    definitions = await _drop_event_indexes(conn)
    inserted = await conn.execute(
        _EVENTS, {"prefix": prefix, "events": events_per_task, "types": list(EVENT_TYPES)}
    )
    for statement in definitions:
        await conn.execute(text(statement))
    return LoadedTasks(tasks=tasks, events=int(inserted.rowcount or 0))


async def _drop_event_indexes(conn: AsyncConnection) -> list[str]:
    """Drop the secondary indexes and unique constraints of `events`; return their DDL."""
    constraints = (
        await conn.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'events'::regclass AND contype = 'u'"
            )
        )
    ).all()
    indexes = (
        await conn.execute(
            text(
                "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid "
                "WHERE x.indrelid = 'events'::regclass AND NOT x.indisprimary "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)"
            )
        )
    ).all()
    for name, _ in constraints:
        await conn.execute(text(f'ALTER TABLE events DROP CONSTRAINT "{name}"'))
    for name, _ in indexes:
        await conn.execute(text(f'DROP INDEX "{name}"'))
    return [f'ALTER TABLE events ADD CONSTRAINT "{name}" {ddl}' for name, ddl in constraints] + [
        ddl for _, ddl in indexes
    ]
