"""The two statements of an event append: take the locks, then store and notify.

`EventRepository.append` used to send six statements per append (advisory lock, row lock,
key check, counter update, insert, NOTIFY), each a round trip through the ORM session.
On a busy producer the round trips, not PostgreSQL, were the cost (see
docs/performance.md), so an append is now two prebuilt statements:

1. `LOCK_STATEMENT`: the session advisory locks (sorted, taken first) and the task row lock
   in one statement.
2. `APPEND_STATEMENT`: under those locks, one statement with data-modifying CTEs drops the
   drafts whose idempotency key is stored, advances `tasks.last_event_seq` by the number
   of new events, inserts them with consecutive sequence numbers and sends the `stored`
   NOTIFY (delivered on commit only).

They must stay two: in READ COMMITTED a statement's snapshot is taken when it starts, so a
key check in the statement that waited for the row lock would not see a concurrent retry
that committed the same keys meanwhile; the second statement starts after the lock is held
and sees every commit before it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

if TYPE_CHECKING:
    from agent.repositories.events import EventDraft

LOCK_STATEMENT = text(
    """
    SELECT t.id
    FROM tasks AS t
    WHERE t.id = CAST(:task_id AS uuid)
      AND (
        SELECT count(*)
        FROM (
            SELECT pg_advisory_xact_lock(CAST(:namespace AS integer), hashtext(u.session_key))
            FROM unnest(CAST(:session_keys AS text[])) AS u(session_key)
        ) AS locks
      ) >= 0
    FOR UPDATE OF t
    """
)
"""Session advisory locks, in the order of `:session_keys` (sorted by the caller), then the
task row. The uncorrelated sub-select runs before the row is locked (the row lock is taken
above the scan, once the row passed the filter), so the order is always sessions first."""

APPEND_STATEMENT = text(
    """
    WITH drafts AS (
        SELECT d.*
        FROM json_to_recordset(CAST(CAST(:drafts AS text) AS json)) AS d(
            ord integer, idempotency_key text, type text, session_id uuid, milestone_id uuid,
            agent text, status text, message text, details jsonb, created_at timestamptz
        )
    ),
    new AS (
        SELECT d.*, row_number() OVER (ORDER BY d.ord) AS rn, count(*) OVER () AS n
        FROM drafts AS d
        WHERE NOT EXISTS (
            SELECT 1 FROM events AS e
            WHERE e.task_id = CAST(:task_id AS uuid) AND e.idempotency_key = d.idempotency_key
        )
    ),
    bumped AS (
        UPDATE tasks
        SET last_event_seq = tasks.last_event_seq + (SELECT count(*) FROM new)
        WHERE tasks.id = CAST(:task_id AS uuid) AND EXISTS (SELECT 1 FROM new)
        RETURNING tasks.last_event_seq AS last_seq
    ),
    inserted AS (
        INSERT INTO events (
            task_id, sequence_number, type, session_id, milestone_id, agent, status,
            message, details, idempotency_key, created_at
        )
        SELECT CAST(:task_id AS uuid), b.last_seq - n.n + n.rn, n.type, n.session_id,
               n.milestone_id, n.agent, n.status, n.message, n.details, n.idempotency_key,
               n.created_at
        FROM new AS n CROSS JOIN bumped AS b
        ON CONFLICT (task_id, idempotency_key) DO NOTHING
        RETURNING sequence_number
    )
    SELECT b.last_seq,
           (SELECT count(*) FROM inserted) AS inserted,
           (SELECT array_agg(n.ord ORDER BY n.ord) FROM new AS n) AS new_ords,
           pg_notify(
               CAST(:channel AS text),
               CAST(:payload_head AS text) || b.last_seq::text || CAST(:payload_tail AS text)
           ) AS notified
    FROM bumped AS b
    """
)
"""Key check, counter, insert and NOTIFY in one statement; no row when nothing was new."""


def drafts_json(drafts: Sequence[EventDraft]) -> str:
    """The drafts as the JSON array `APPEND_STATEMENT` reads (one parameter, any count).

    Args:
        drafts: The drafts, in order; `ord` is the position in this list.

    Returns:
        The JSON text.
    """
    rows: list[dict[str, Any]] = []
    for ord_, draft in enumerate(drafts):
        event = draft.event
        timestamp = event.timestamp
        if timestamp.tzinfo is None:  # as asyncpg stores a naive datetime: UTC
            timestamp = timestamp.replace(tzinfo=UTC)
        rows.append(
            {
                "ord": ord_,
                "idempotency_key": draft.idempotency_key,
                "type": event.type.value,
                "session_id": str(event.session_id) if event.session_id else None,
                "milestone_id": str(event.milestone_id) if event.milestone_id else None,
                "agent": event.agent.value if event.agent else None,
                "status": event.status.value if event.status else None,
                "message": event.message,
                "details": event.details,
                "created_at": timestamp.isoformat(),
            }
        )
    return json.dumps(rows, ensure_ascii=False)
