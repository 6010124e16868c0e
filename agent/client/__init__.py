"""A small typed async client of the public HTTP API and event WebSocket.

Used by the `agent` CLI (`run`, `follow`, `tasks`, ...) and by tests; it depends only on
the documented wire format, never on server internals.
"""

from agent.client.client import AgentApiClient, ApiRequestError, EventStreamClosedError
from agent.client.models import (
    EventPage,
    MilestoneOut,
    ResumeOut,
    StreamMessage,
    TaskDetail,
    TaskOut,
    TaskPage,
)
from agent.client.target import ApiTarget, ApiTargetError, resolve_target
from agent.contract.protocol import ConsoleConfig

__all__ = [
    "AgentApiClient",
    "ApiRequestError",
    "ApiTarget",
    "ApiTargetError",
    "ConsoleConfig",
    "EventPage",
    "EventStreamClosedError",
    "MilestoneOut",
    "ResumeOut",
    "StreamMessage",
    "TaskDetail",
    "TaskOut",
    "TaskPage",
    "resolve_target",
]
