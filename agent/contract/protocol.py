"""The event sockets' protocol: message kinds and close codes.

The server writes these (`api.ws`), the client SDK and the CLI read them, and the web
console gets them from `/console/config.json`; nobody keeps a copy. Message shapes are
described in `api.ws.protocol`.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

from pydantic import BaseModel, Field


class CloseCode(IntEnum):
    """WebSocket close codes the event sockets use."""

    NORMAL = 1000
    SERVER_SHUTDOWN = 1001
    INTERNAL_ERROR = 1011
    SLOW_CONSUMER = 4008
    """The client's queue overflowed; reconnect with ``after_seq`` = last cursor seen."""
    UNAUTHORIZED = 4401
    NOT_FOUND = 4404
    INVALID_REQUEST = 4422
    """A query parameter is invalid (e.g. ``after_seq``); the close reason names it."""


class MessageKind(StrEnum):
    """Values of the ``kind`` field of a socket message."""

    EVENT = "event"
    EPHEMERAL = "ephemeral"
    CAUGHT_UP = "caught_up"
    PING = "ping"
    PONG = "pong"


CONSOLE_CONFIG_PATH = "/console/config.json"
"""Where the API serves `ConsoleConfig` (no key needed)."""


def _close_codes() -> dict[str, int]:
    return {code.name.lower(): int(code) for code in CloseCode}


class ConsoleConfig(BaseModel):
    """Public, non-secret hints the server gives its clients at `CONSOLE_CONFIG_PATH`."""

    temporal_ui_url: str | None = None
    temporal_namespace: str = "default"
    trace_ui_url: str | None = None
    """Trace viewer URL template with `{trace_id}`; events link to their trace when set."""
    close_codes: dict[str, int] = Field(default_factory=_close_codes)
    """The socket close codes by name (`unauthorized`, `not_found`, `slow_consumer`, ...)."""
