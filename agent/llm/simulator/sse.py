"""The SSE events of a streamed completion, framed as OpenAI frames them.

A text answer: a role event (`{"role": "assistant", "content": ""}`), then content events.
A tool-call answer, as the API streams one: the first event carries the role, null content
and the first call's `index`, `id`, `type` and `function.name` with empty arguments; the
arguments follow in fragments (one token each) that carry only `index` and
`function.arguments`; every further call starts with its own `index`/`id`/name event. Then
the finish event, the usage event (`stream_options.include_usage`) and `data: [DONE]`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent.llm.simulator.messages import SimToolCall
from agent.llm.tokens import CHARS_PER_TOKEN

_COMPACT = (",", ":")


@dataclass(frozen=True)
class SSEEvent:
    """One `data: ...` event and the output tokens it carries."""

    data: str
    tokens: int


@dataclass(frozen=True)
class StreamFraming:
    """What every `chat.completion.chunk` of one completion repeats."""

    completion_id: str
    created: int
    model: str
    system_fingerprint: str
    include_usage: bool

    def _prefix(self) -> str:
        return (
            f'data: {{"id":"{self.completion_id}","object":"chat.completion.chunk",'
            f'"created":{self.created},"model":{json.dumps(self.model)},'
            f'"system_fingerprint":"{self.system_fingerprint}","choices":['
        )

    def choice_event(self, delta: str, finish_reason: str | None = None) -> str:
        """An event of choice 0 with `delta` (JSON text) and `finish_reason`."""
        usage = ',"usage":null' if self.include_usage else ""
        return (
            f'{self._prefix()}{{"index":0,"delta":{delta},"logprobs":null,'
            f'"finish_reason":{json.dumps(finish_reason)}}}]{usage}}}\n\n'
        )

    def finish_event(self, finish_reason: str) -> str:
        """The last choice event: an empty delta and the finish reason."""
        return self.choice_event("{}", finish_reason)

    def usage_event(self, usage: dict[str, int]) -> str:
        """The final usage chunk (no choices)."""
        return f'{self._prefix()}],"usage":{json.dumps(usage)}}}\n\n'


def _pieces(text: str, boundaries: Sequence[int]) -> list[tuple[str, int]]:
    """`text` cut at the token `boundaries` (ascending, last = its token count)."""
    pieces: list[tuple[str, int]] = []
    previous = 0
    for boundary in boundaries:
        if boundary > previous:
            piece = text[previous * CHARS_PER_TOKEN : boundary * CHARS_PER_TOKEN]
            pieces.append((piece, boundary - previous))
            previous = boundary
    return pieces


def _text_events(
    framing: StreamFraming, text: str, per_write: int, cut_at: int | None
) -> list[SSEEvent]:
    events = [SSEEvent(framing.choice_event('{"role":"assistant","content":""}'), 0)]
    n_tokens = -(-len(text) // CHARS_PER_TOKEN)
    boundaries = set(range(per_write, n_tokens, per_write)) | {n_tokens}
    if cut_at is not None:
        boundaries.add(cut_at)
    for piece, tokens in _pieces(text, sorted(boundaries)):
        delta = '{"content":' + json.dumps(piece) + "}"
        events.append(SSEEvent(framing.choice_event(delta), tokens))
    return events


def _call_header(index: int, call: SimToolCall) -> dict[str, Any]:
    return {
        "index": index,
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": ""},
    }


def _tool_call_events(framing: StreamFraming, calls: Sequence[SimToolCall]) -> list[SSEEvent]:
    events: list[SSEEvent] = []
    for index, call in enumerate(calls):
        header: dict[str, Any] = {"tool_calls": [_call_header(index, call)]}
        if index == 0:
            header = {"role": "assistant", "content": None, **header}
        events.append(SSEEvent(framing.choice_event(json.dumps(header, separators=_COMPACT)), 0))
        n_tokens = -(-len(call.arguments) // CHARS_PER_TOKEN)
        for piece, tokens in _pieces(call.arguments, range(1, n_tokens + 1)):
            fragment = {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            delta = json.dumps(fragment, separators=_COMPACT)
            events.append(SSEEvent(framing.choice_event(delta), tokens))
    return events


def stream_events(
    framing: StreamFraming,
    text: str,
    tool_calls: Sequence[SimToolCall],
    per_write: int,
    cut_at: int | None,
) -> list[SSEEvent]:
    """Every event of a completion before its finish event.

    Args:
        framing: The completion's chunk framing.
        text: The answer's text (a text answer).
        tool_calls: The calls (a tool-call answer; `text` is then ignored).
        per_write: Text tokens per content event.
        cut_at: A token count no content event may straddle (a cut or truncate fault).

    Returns:
        The events in order, each with the output tokens it carries.
    """
    if tool_calls:
        return _tool_call_events(framing, tool_calls)
    return _text_events(framing, text, per_write, cut_at)
