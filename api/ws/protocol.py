"""The event WebSocket protocol: close codes and message shapes.

Server -> client messages are JSON objects with a ``kind``:

- ``{"kind": "event", "cursor": N, "event": {...}}``: a stored event. ``cursor`` is the
  value to pass back as ``after_seq`` when reconnecting: the event's ``sequence_number``
  on a task socket, the event's row id on a session socket.
- ``{"kind": "ephemeral", "event": {...}}``: a live-only event (``LLM_CHUNK``); never
  replayed, carries no cursor.
- ``{"kind": "caught_up", "cursor": N}``: every stored event up to N has been sent; what
  follows is live.
- ``{"kind": "ping"}``: keep-alive, sent when the socket has been idle for the ping interval.
- ``{"kind": "pong"}``: the answer to a client's ``{"kind": "ping"}``.

Close codes are listed in `CloseCode`.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any

from agent.events.types import AgentActivityEvent


class CloseCode(IntEnum):
    """WebSocket close codes the event sockets use."""

    NORMAL = 1000
    SERVER_SHUTDOWN = 1001
    INTERNAL_ERROR = 1011
    SLOW_CONSUMER = 4008
    """The client's queue overflowed; reconnect with ``after_seq`` = last cursor seen."""
    UNAUTHORIZED = 4401
    NOT_FOUND = 4404


class MessageKind(StrEnum):
    """Values of the ``kind`` field of a socket message."""

    EVENT = "event"
    EPHEMERAL = "ephemeral"
    CAUGHT_UP = "caught_up"
    PING = "ping"
    PONG = "pong"


def event_message(event: AgentActivityEvent, cursor: int) -> dict[str, Any]:
    """Build the message for a stored event."""
    return {"kind": MessageKind.EVENT, "cursor": cursor, "event": event.model_dump(mode="json")}


def ephemeral_message(event: AgentActivityEvent) -> dict[str, Any]:
    """Build the message for a live-only event."""
    return {"kind": MessageKind.EPHEMERAL, "event": event.model_dump(mode="json")}


def caught_up_message(cursor: int) -> dict[str, Any]:
    """Build the message that marks the end of the stored backfill."""
    return {"kind": MessageKind.CAUGHT_UP, "cursor": cursor}


def control_message(kind: MessageKind) -> dict[str, Any]:
    """Build a ping or pong message."""
    return {"kind": kind}
