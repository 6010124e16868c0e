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

Message kinds and close codes are part of the contract (`agent.contract.protocol`).
"""

from __future__ import annotations

import json

from agent.contract.protocol import MessageKind
from agent.events.types import AgentActivityEvent


class LiveEvent:
    """An event on its way to sockets, serialised once however many sockets get it.

    Args:
        event: The event.
    """

    __slots__ = ("_event_json", "_task_message", "event")

    def __init__(self, event: AgentActivityEvent) -> None:
        self.event = event
        self._event_json: str | None = None
        self._task_message: str | None = None

    @property
    def event_json(self) -> str:
        """The event as JSON (encoded on first use, then shared)."""
        if self._event_json is None:
            self._event_json = self.event.model_dump_json()
        return self._event_json

    def task_message(self) -> str:
        """The message every task socket sends for this event (built once).

        A stored event carries its sequence number as cursor; an ephemeral one none.
        """
        if self._task_message is None:
            seq = self.event.sequence_number
            self._task_message = (
                ephemeral_message(self.event_json)
                if seq is None
                else event_message(self.event_json, seq)
            )
        return self._task_message


def event_message(event_json: str, cursor: int) -> str:
    """Build the message for a stored event already encoded as JSON."""
    return f'{{"kind":"{MessageKind.EVENT.value}","cursor":{cursor},"event":{event_json}}}'


def ephemeral_message(event_json: str) -> str:
    """Build the message for a live-only event already encoded as JSON."""
    return f'{{"kind":"{MessageKind.EPHEMERAL.value}","event":{event_json}}}'


def caught_up_message(cursor: int) -> str:
    """Build the message that marks the end of the stored backfill."""
    return json.dumps({"kind": MessageKind.CAUGHT_UP.value, "cursor": cursor})


def control_message(kind: MessageKind) -> str:
    """Build a ping or pong message."""
    return json.dumps({"kind": kind.value})
