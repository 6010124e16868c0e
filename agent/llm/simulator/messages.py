"""The messages and tools of a request, as the simulator reads them off the wire.

The simulator stands alone (it imports nothing of the project but `agent.llm`), so it has
its own small types rather than the contract's `ToolCall`; the wire format is OpenAI's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agent.llm.tokens import tool_definition_text


@dataclass(frozen=True)
class SimToolCall:
    """One function call: the model's (the simulator's) or one read from an assistant message."""

    id: str
    name: str
    arguments: str

    def wire(self) -> dict[str, Any]:
        """The call as a message's `tool_calls` entry."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True)
class Message:
    """One chat message as the simulator sees it."""

    role: str
    content: str
    tool_calls: tuple[SimToolCall, ...] = ()
    """Assistant messages: the calls the model asked for in that turn."""
    tool_call_id: str | None = None
    """Tool messages: the call this message answers."""

    def token_texts(self) -> Iterator[str]:
        """The texts that count as input tokens (as `agent.llm.types.ChatMessage` counts)."""
        yield self.content
        for call in self.tool_calls:
            yield call.arguments


def content_text(content: Any) -> str:
    """A message's `content`: a string, or the text of its content parts (null is "")."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _tool_calls(raw: Any) -> tuple[SimToolCall, ...]:
    if not isinstance(raw, list):
        return ()
    calls: list[SimToolCall] = []
    for item in raw:
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments")
        calls.append(
            SimToolCall(
                id=str(item.get("id", "")),
                name=str(function.get("name", "")),
                arguments=arguments if isinstance(arguments, str) else "",
            )
        )
    return tuple(calls)


def parse_message(raw: dict[str, Any]) -> Message:
    """Read one message of a request body (unknown fields are ignored)."""
    call_id = raw.get("tool_call_id")
    return Message(
        role=str(raw.get("role", "user")),
        content=content_text(raw.get("content")),
        tool_calls=_tool_calls(raw.get("tool_calls")),
        tool_call_id=call_id if isinstance(call_id, str) else None,
    )


@dataclass(frozen=True)
class OfferedTools:
    """The functions a request offers (`tools`) and the input tokens their definitions cost."""

    names: frozenset[str]
    definition_texts: tuple[str, ...]


def parse_tools(raw: Any) -> OfferedTools | str:
    """Read a request's `tools`.

    Args:
        raw: The `tools` value of the body (absent is None).

    Returns:
        The offered functions, or the reason the value is invalid (a 400's message).
    """
    if raw is None:
        return OfferedTools(frozenset(), ())
    if not isinstance(raw, list):
        return "'tools' must be an array"
    names: set[str] = set()
    texts: list[str] = []
    for index, tool in enumerate(raw):
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not name:
            return f"tools[{index}] must be {{'type': 'function', 'function': {{'name': ...}}}}"
        names.add(str(name))
        texts.append(tool_definition_text(tool))
    return OfferedTools(frozenset(names), tuple(texts))


def response_schema(response_format: Any) -> dict[str, Any] | None:
    """The schema of a `response_format` of type `json_schema` (None for any other format)."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    return schema if isinstance(schema, dict) else None
