"""What an agent call is: who calls, its event positions, messages and answers.

Pure helpers shared by every LLM activity (no I/O).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from activities.common import draft
from activities.models import CallUsage
from agent.events.types import AgentRole, EventStatus, EventType
from agent.llm.types import ChatMessage, LLMResponse
from agent.repositories.events import EventDraft

MAX_OUTPUT_TOKENS: dict[AgentRole, int] = {
    AgentRole.CLASSIFIER: 64,
    AgentRole.PLANNER: 4096,
    AgentRole.WORKER: 4096,
    AgentRole.VERIFIER: 1024,
    AgentRole.SUMMARISER: 2048,
    AgentRole.COMPRESSOR: 4096,
}
"""`max_tokens` of each role's calls; also the output side of the budget estimate."""

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class EventIndex:
    """Positions of an LLM activity's events (idempotency key indices)."""

    STARTED = "started"
    IN_PROGRESS = "in-progress"
    COMPLETE = "complete"
    AGENT_DONE = "agent-done"
    STATE = "state"
    STATE_2 = "state-2"
    PROGRESS = "progress"


@dataclass(frozen=True)
class Call:
    """Who is calling: the task, the role, and the milestone when there is one."""

    task_id: UUID
    session_id: UUID | None
    role: AgentRole
    model: str
    milestone_id: UUID | None = None
    milestone_key: str | None = None
    milestone_attempt: int | None = None


class InvalidAgentAnswerError(Exception):
    """An agent answered with text that does not parse (retried by Temporal)."""


def parse_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in an agent's answer.

    Raises:
        InvalidAgentAnswerError: When there is none or it does not parse.
    """
    match = _JSON_OBJECT.search(text)
    if match is None:
        raise InvalidAgentAnswerError("the answer holds no JSON object")
    try:
        value = json.loads(match.group(0))
    except json.JSONDecodeError as exc:
        raise InvalidAgentAnswerError(f"the answer is not valid JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise InvalidAgentAnswerError("the answer is not a JSON object")
    return value


def call_usage(response: LLMResponse) -> CallUsage:
    """The usage an activity hands back to the workflow."""
    return CallUsage(
        input_tokens=response.usage.input_tokens,
        output_tokens=response.usage.output_tokens,
        cost_usd=response.cost_usd,
        model=response.model,
        estimated=response.usage.estimated,
    )


def system_message(content: str) -> ChatMessage:
    """A system message."""
    return ChatMessage(role="system", content=content)


def user_message(content: str) -> ChatMessage:
    """A user message."""
    return ChatMessage(role="user", content=content)


def assistant_message(content: str) -> ChatMessage:
    """An assistant message (the model's own earlier answer)."""
    return ChatMessage(role="assistant", content=content)


def call_draft(
    call: Call,
    index: str,
    type_: EventType,
    *,
    status: EventStatus | None,
    message: str,
    details: dict[str, Any],
    agent: AgentRole | None = None,
) -> EventDraft:
    """An event draft of the running activity about `call`'s task and milestone."""
    return draft(
        index,
        type_,
        task_id=call.task_id,
        session_id=call.session_id,
        milestone_id=call.milestone_id,
        agent=agent,
        status=status,
        message=message,
        details=details,
    )
