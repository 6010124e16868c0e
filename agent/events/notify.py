"""PostgreSQL NOTIFY payloads on the `agent_events` channel.

Two kinds of notification travel on one channel:

- `stored`: sent by `EventRepository.append` in the transaction that stored events. It
  carries only where to read (task, session, last sequence number); the rows are the
  truth and a listener reads them with `list_after`. PostgreSQL delivers it on commit and
  never after a rollback, so a reader can never see an event that was not stored.
- `ephemeral`: a whole event that is never stored (`LLM_CHUNK`). A text too long for one
  payload is split into several notifications, sent in order within one transaction.

Delivery happens on COMMIT of the sending transaction: `publish_ephemeral` does not
commit; the caller commits (or uses a connection in autocommit mode, where every
statement commits on its own).
"""

from __future__ import annotations

import json
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from agent.events.types import AgentActivityEvent

EVENTS_CHANNEL = "agent_events"
"""The LISTEN/NOTIFY channel of every event notification."""

NOTIFY_PAYLOAD_LIMIT_BYTES = 7900
"""Upper bound (exclusive) of one payload; PostgreSQL's hard limit is 8000 bytes."""


class NotificationError(ValueError):
    """A notification payload that is not one of ours."""


class NotificationTooLargeError(ValueError):
    """An ephemeral event whose non-text fields alone exceed the payload limit."""


class StoredNotification(BaseModel):
    """Stored events up to `seq` exist for `task_id`; read them from the table."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["stored"] = "stored"
    task_id: UUID
    session_id: UUID | None = None
    seq: int = Field(ge=1)


class EphemeralNotification(BaseModel):
    """A live-only event, possibly one part of a split text.

    Attributes:
        event: The event; for a split text `event.message` holds this part only.
        part: Zero-based index of this part.
        parts: Number of parts the text was split into (1 when it fitted).
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["ephemeral"] = "ephemeral"
    event: AgentActivityEvent
    part: int = Field(default=0, ge=0)
    parts: int = Field(default=1, ge=1)


Notification = Annotated[StoredNotification | EphemeralNotification, Field(discriminator="kind")]
_NOTIFICATION_ADAPTER: TypeAdapter[StoredNotification | EphemeralNotification] = TypeAdapter(
    Notification
)


def parse_notification(payload: str | bytes) -> StoredNotification | EphemeralNotification:
    """Parse a payload received on `EVENTS_CHANNEL`.

    Args:
        payload: The notification's payload text.

    Returns:
        The typed notification.

    Raises:
        NotificationError: When the payload is not a valid notification.
    """
    try:
        return _NOTIFICATION_ADAPTER.validate_json(payload)
    except ValidationError as exc:
        raise NotificationError(
            f"invalid notification payload: {exc.error_count()} error(s)"
        ) from exc


def stored_payload_parts(task_id: UUID, session_id: UUID | None) -> tuple[str, str]:
    """The text around `seq` in a `stored` payload, for a statement that knows `seq` only.

    `StoredNotification(...).model_dump_json()` stays the one definition of the payload:
    `head + str(seq) + tail` is exactly that JSON for any `seq`.

    Args:
        task_id: The task.
        session_id: Its session, if any.

    Returns:
        `(head, tail)`.
    """
    probe = StoredNotification(task_id=task_id, session_id=session_id, seq=1).model_dump_json()
    marker = '"seq":1'
    at = probe.rindex(marker) + len(marker) - 1
    return probe[:at], probe[at + 1 :]


def _encoded_len(text: str) -> int:
    """Bytes `text` takes inside a JSON string (escapes included), as pydantic writes it."""
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


def split_ephemeral(event: AgentActivityEvent) -> list[EphemeralNotification]:
    """Build the notifications of one ephemeral event, splitting its text to fit.

    The text (`event.message`) is cut on character boundaries into the fewest parts
    whose payloads stay below `NOTIFY_PAYLOAD_LIMIT_BYTES`.

    Args:
        event: The event to send.

    Returns:
        The notifications, in order.

    Raises:
        NotificationTooLargeError: When the event without its text is already too large.
    """
    whole = EphemeralNotification(event=event)
    if len(whole.model_dump_json().encode()) < NOTIFY_PAYLOAD_LIMIT_BYTES:
        return [whole]
    # Overhead of an envelope with an empty text; generous part/parts digits.
    empty = EphemeralNotification(
        event=event.model_copy(update={"message": ""}), part=99999, parts=99999
    )
    budget = NOTIFY_PAYLOAD_LIMIT_BYTES - 1 - len(empty.model_dump_json().encode())
    if budget <= 0:
        raise NotificationTooLargeError("ephemeral event is too large even without its text")
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for char in event.message:
        char_len = _encoded_len(char)
        if size + char_len > budget and current:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += char_len
    if current:
        pieces.append("".join(current))
    return [
        EphemeralNotification(
            event=event.model_copy(update={"message": piece}), part=index, parts=len(pieces)
        )
        for index, piece in enumerate(pieces)
    ]


async def notify(conn_or_session: AsyncSession | AsyncConnection, payload: str) -> None:
    """Send one NOTIFY on `EVENTS_CHANNEL` (delivered when the transaction commits).

    Args:
        conn_or_session: Session or connection whose transaction carries the notification.
        payload: The payload text (must be below the payload limit).
    """
    await conn_or_session.execute(select(func.pg_notify(EVENTS_CHANNEL, payload)))


async def publish_ephemeral(
    conn_or_session: AsyncSession | AsyncConnection, event: AgentActivityEvent
) -> int:
    """Publish a live-only event (for example an `LLM_CHUNK` batch) on `EVENTS_CHANNEL`.

    The caller commits (or passes an autocommit connection): PostgreSQL delivers
    notifications at commit, in the order they were sent. PostgreSQL also folds
    identical payloads sent in one transaction into one; split parts differ by `part`.

    Args:
        conn_or_session: Session or connection to send on.
        event: The event; its `message` is the text that may be split.

    Returns:
        How many notifications were sent.

    Raises:
        NotificationTooLargeError: When the event cannot fit even with its text split.
    """
    notifications = split_ephemeral(event)
    for notification in notifications:
        await notify(conn_or_session, notification.model_dump_json())
    return len(notifications)
