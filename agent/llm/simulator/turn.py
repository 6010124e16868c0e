"""One turn of the simulated model: a text answer, or tool calls.

Puts together the role's answer (`responder`), function calling (`tool_calls`) and
structured output (`structured`): when the request offers tools and the conversation's
`[tool=...]` directives have calls without a result yet, the turn asks for those calls;
otherwise it answers, quoting the tool results it received (free-text roles only: the JSON
answers of planner, verifier and classifier stay JSON) and fitting a `json_schema`
response format when one is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agent.llm.simulator.messages import Message, SimToolCall
from agent.llm.simulator.structured import structured_answer
from agent.llm.simulator.tool_calls import pending_calls, planned_calls, quoted_results
from agent.llm.tokens import CHARS_PER_TOKEN, count_tokens

FINISH_STOP = "stop"
FINISH_LENGTH = "length"
FINISH_TOOL_CALLS = "tool_calls"


@dataclass(frozen=True)
class TurnRequest:
    """What decides a turn, read from the request."""

    messages: Sequence[Message]
    conversation: str
    """The conversation's key (`responder.conversation_key`): call ids derive from it."""
    answer: Callable[[], str]
    """The role's answer (`responder.answer`), asked for only when the turn answers."""
    answers_json: bool
    """The role answers JSON (`responder.JSON_ROLES`): tool results are not quoted."""
    offers_tools: bool
    """The request offers tools and `tool_choice` is not `none`."""
    schema: dict[str, Any] | None
    """The `json_schema.schema` of a structured-output `response_format`."""
    max_tokens: int | None


@dataclass(frozen=True)
class Turn:
    """The model's answer: text, or calls (with `finish_reason` `tool_calls`)."""

    text: str
    tool_calls: tuple[SimToolCall, ...]
    finish_reason: str

    @property
    def completion_tokens(self) -> int:
        """Output tokens: the text's, plus every call's arguments."""
        return count_tokens(self.text) + sum(count_tokens(c.arguments) for c in self.tool_calls)


def _text(request: TurnRequest) -> str:
    text = request.answer()
    if not request.answers_json and request.schema is None:
        quotes = quoted_results(request.messages)
        if quotes:
            text = f"{quotes}\n\n{text}"
    if request.schema is not None:
        text = structured_answer(text, request.schema)
    return text


def take_turn(request: TurnRequest) -> Turn:
    """Decide the model's turn.

    Args:
        request: The request's messages, the role's answer and the options.

    Returns:
        The calls still to make, or the answer (cut to `max_tokens` with `length`).
    """
    if request.offers_tools:
        planned = planned_calls(request.messages, request.conversation)
        pending = pending_calls(planned, request.messages)
        if pending:
            return Turn("", tuple(pending), FINISH_TOOL_CALLS)
    text = _text(request)
    limit = request.max_tokens
    if limit is not None and limit > 0 and count_tokens(text) > limit:
        return Turn(text[: limit * CHARS_PER_TOKEN], (), FINISH_LENGTH)
    return Turn(text, (), FINISH_STOP)
