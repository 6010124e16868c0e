"""What a task waits on: the `WaitingOn` search attribute's values and the signal that sets it.

An LLM activity that starts waiting out a provider outage signals its workflow
(`PROVIDER_WAITING_SIGNAL` with a `ProviderWait`), once per call; the workflow shows
`WaitingOn = llm:<model>` until that call ends, `person` while paused at a breakpoint,
and nothing otherwise. The signal's name is defined here, once, because activities sit
below the workflow and cannot name its handler method.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from agent.events.types import AgentRole

PROVIDER_WAITING_SIGNAL = "provider_waiting"
"""Name of `TaskWorkflow.provider_waiting`."""

WAITING_ON_PERSON = "person"
"""`WaitingOn` of a task paused at a breakpoint."""


def waiting_on_provider(model: str) -> str:
    """`WaitingOn` of a task whose call waits out an outage, e.g. `llm:gpt-4o-mini`."""
    return f"llm:{model}"


def call_key(role: AgentRole, milestone_key: str | None) -> str:
    """Which of a task's calls (one role, one milestone at a time) a wait belongs to."""
    return f"{role.value}:{milestone_key or ''}"


class ProviderWait(BaseModel):
    """One call started waiting out a provider outage."""

    call: str
    """`call_key` of the waiting call."""
    model: str
    endpoint: str
    since: datetime
    next_try_at: datetime
    last_error: str
