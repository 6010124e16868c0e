"""Tool calls off the wire: from a whole answer, or assembled from streamed deltas."""

from __future__ import annotations

from openai.types.chat import ChatCompletionMessage
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from agent.contract.tools import ToolCall


def message_tool_calls(message: ChatCompletionMessage) -> list[ToolCall]:
    """The function calls of a non-streaming answer (other call kinds are not offered).

    Args:
        message: The answer's message.

    Returns:
        One `ToolCall` per function call, in order.
    """
    calls: list[ToolCall] = []
    for call in message.tool_calls or []:
        function = getattr(call, "function", None)
        if call.type != "function" or function is None:
            continue
        calls.append(
            ToolCall(id=call.id, function_name=function.name, arguments=function.arguments or "")
        )
    return calls


class ToolCallAssembler:
    """Rebuilds streamed `tool_calls` deltas into whole calls, as OpenAI sends them.

    Each call is keyed by its `index`: the first delta of a call carries its `id` and
    `function.name` (and usually empty arguments), later ones only `function.arguments`
    fragments, which are concatenated in order. Calls come out ordered by index.
    """

    def __init__(self) -> None:
        self._ids: dict[int, str] = {}
        self._names: dict[int, str] = {}
        self._arguments: dict[int, list[str]] = {}

    def add(self, delta: ChoiceDeltaToolCall) -> None:
        """Take one delta of one call."""
        index = self._index_of(delta)
        fragments = self._arguments.setdefault(index, [])
        if delta.id and index not in self._ids:
            self._ids[index] = delta.id
        function = delta.function
        if function is not None:
            if function.name and index not in self._names:
                self._names[index] = function.name
            if function.arguments:
                fragments.append(function.arguments)

    def _index_of(self, delta: ChoiceDeltaToolCall) -> int:
        # OpenAI always sends `index`; some compatible servers omit it: there a delta with
        # a new id starts the next call and one without continues the last.
        index: int | None = delta.index
        if index is not None:
            return index
        last = max(self._arguments, default=-1)
        if last < 0 or (delta.id and delta.id != self._ids.get(last)):
            return last + 1
        return last

    def calls(self) -> list[ToolCall]:
        """The calls assembled so far (the last one may still be partial)."""
        return [
            ToolCall(
                id=self._ids.get(index, ""),
                function_name=self._names.get(index, ""),
                arguments="".join(self._arguments[index]),
            )
            for index in sorted(self._arguments)
        ]
