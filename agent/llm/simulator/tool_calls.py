"""The simulated model's function calling: which calls a turn makes, what the answer quotes.

`[tool=...]` directives in the first system or user message that has any are the calls of
the conversation, all made in one turn. A call is made only while no `role: tool` message
answers it; once every call has its result the model gives its final answer, which quotes
each result it received (`tool result <function>: <content>`), so a test can prove a
result reached the model. Call ids are derived from the conversation, so a retried request
asks for the same calls under the same ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from agent.llm.simulator.directives import parse_tool_directives
from agent.llm.simulator.messages import Message, SimToolCall

CALL_ID_PREFIX = "call_"
CALL_ID_HEX_CHARS = 24
UNKNOWN_FUNCTION = "unknown"
"""Named in a quote when no assistant message carries the answered call."""
DIRECTIVE_ROLES = frozenset({"system", "developer", "user"})
"""Messages whose directives count: never tool results or the model's own answers."""


def _call_id(conversation: str, index: int) -> str:
    digest = hashlib.sha256(f"{conversation}:{index}".encode()).hexdigest()
    return f"{CALL_ID_PREFIX}{digest[:CALL_ID_HEX_CHARS]}"


def planned_calls(messages: Sequence[Message], conversation: str) -> list[SimToolCall]:
    """Every call the conversation's tool directives ask for, with stable ids.

    Args:
        messages: The request's messages.
        conversation: The conversation's key (`responder.conversation_key`).

    Returns:
        The calls of the first system/user message with tool directives, in order.
    """
    for message in messages:
        if message.role not in DIRECTIVE_ROLES:
            continue
        directives = parse_tool_directives(message.content)
        if directives:
            return [
                SimToolCall(_call_id(conversation, i), d.function_name, d.arguments)
                for i, d in enumerate(directives)
            ]
    return []


def _issued_calls(messages: Sequence[Message]) -> dict[str, SimToolCall]:
    return {call.id: call for m in messages if m.role == "assistant" for call in m.tool_calls}


def pending_calls(planned: Sequence[SimToolCall], messages: Sequence[Message]) -> list[SimToolCall]:
    """The planned calls no `role: tool` message answers yet.

    A call counts as answered when a tool message carries its id, or answers an earlier
    call of the same function with the same arguments (a caller that rebuilt the
    conversation under other ids).
    """
    answered_ids = {m.tool_call_id for m in messages if m.role == "tool" and m.tool_call_id}
    answered = {
        (call.name, call.arguments)
        for call_id, call in _issued_calls(messages).items()
        if call_id in answered_ids
    }
    return [
        call
        for call in planned
        if call.id not in answered_ids and (call.name, call.arguments) not in answered
    ]


def quoted_results(messages: Sequence[Message]) -> str:
    """One `tool result <function>: <content>` line per tool message, in order ("" if none)."""
    issued = _issued_calls(messages)
    lines = []
    for message in messages:
        if message.role != "tool":
            continue
        call = issued.get(message.tool_call_id or "")
        name = call.name if call is not None else UNKNOWN_FUNCTION
        lines.append(f"tool result {name}: {message.content}")
    return "\n".join(lines)
