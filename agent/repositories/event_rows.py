"""Stored events as rows: the one column set, the one row mapping, the relay's read.

Every read of event rows (the repository's listings, the LISTEN relay) selects
`EVENT_COLUMNS` and maps rows with `to_event`, so an event reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, RowMapping, Select, and_, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from agent.db.models import Event
from agent.events.types import AgentActivityEvent

EVENT_COLUMNS = (
    Event.type,
    Event.session_id,
    Event.task_id,
    Event.milestone_id,
    Event.sequence_number,
    Event.agent,
    Event.status,
    Event.message,
    Event.details,
    Event.created_at.label("timestamp"),
)
"""The columns of a stored event, named as `AgentActivityEvent`'s fields."""


def to_event(row: RowMapping) -> AgentActivityEvent:
    """Map a row of `EVENT_COLUMNS` to the event it stores (the one mapping of event rows).

    Args:
        row: A row selected with `EVENT_COLUMNS` (more columns are ignored).

    Returns:
        The event, with its sequence number and its commit-time timestamp.
    """
    return AgentActivityEvent.model_validate(
        {name: row[name] for name in AgentActivityEvent.model_fields if name in row}
    )


def event_select() -> Select[Any]:
    """A select of `EVENT_COLUMNS` (add filters and order)."""
    return select(*EVENT_COLUMNS)


async def read_windows(
    conn: AsyncConnection | AsyncSession, windows: Mapping[UUID, tuple[int, int]]
) -> list[AgentActivityEvent]:
    """Stored events of several tasks, each in its own `(after, up_to]` sequence window.

    One statement whatever the number of tasks (the windows travel as arrays), so the
    event relay reads every task its queued notifications name in one round trip.

    Args:
        conn: A connection (the relay's own) or a session to read on.
        windows: Per task, the last sequence number the reader has and the highest it
            wants.

    Returns:
        The events, by task and then ascending sequence number.
    """
    if not windows:
        return []
    task_ids = list(windows)
    bounds = (
        func.unnest(
            literal(task_ids, ARRAY(PG_UUID(as_uuid=True))),
            literal([windows[t][0] for t in task_ids], ARRAY(BigInteger)),
            literal([windows[t][1] for t in task_ids], ARRAY(BigInteger)),
        )
        .table_valued("task_id", "after_seq", "up_to")
        .render_derived(name="w")
    )
    stmt = (
        event_select()
        .join(
            bounds,
            and_(
                Event.task_id == bounds.c.task_id,
                Event.sequence_number > bounds.c.after_seq,
                Event.sequence_number <= bounds.c.up_to,
            ),
        )
        .order_by(Event.task_id, Event.sequence_number)
    )
    rows = await conn.execute(stmt)
    return [to_event(row) for row in rows.mappings()]
