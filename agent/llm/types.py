"""Request and response types of the LLM layer, and their OpenAI wire form.

Function calling follows the OpenAI Chat Completions API: a request offers `tools`, an
assistant message may carry `tool_calls` (its content is then usually empty), and each call
is answered by a `role: tool` message carrying the call's id. Tools and calls are the
shared `agent.contract.tools` types; the model sees a tool by its `function_name`
(`server__tool`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.contract.tools import ToolCall, ToolResult, ToolSpec
from agent.events.types import AgentRole
from agent.llm.tokens import count_message_tokens, count_tokens, tool_definition_text

ChatRole = Literal["system", "user", "assistant", "tool"]

FINISH_TOOL_CALLS = "tool_calls"
"""The finish reason of an answer that asks for tool calls instead of giving text."""


class ChatMessage(BaseModel):
    """One chat message sent to the model.

    An assistant message may carry `tool_calls` (the model's earlier request for calls;
    `content` is then usually empty); a `tool` message answers one call and carries its
    `tool_call_id`.
    """

    role: ChatRole
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    """Assistant messages only: the calls the model asked for in that turn."""
    tool_call_id: str | None = None
    """Tool messages only: the id of the call this message answers."""

    @model_validator(mode="after")
    def _check_tool_fields(self) -> Self:
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("a tool message, and only a tool message, has a tool_call_id")
        return self

    @classmethod
    def assistant_tool_calls(cls, calls: list[ToolCall], content: str = "") -> ChatMessage:
        """The model's turn that asked for `calls` (append it before their results)."""
        return cls(role="assistant", content=content, tool_calls=calls)

    @classmethod
    def tool_result(cls, result: ToolResult) -> ChatMessage:
        """The `role: tool` message that hands `result` back to the model.

        The content is sent as is: OpenAI has no error flag, so whoever builds an error
        result words its content so the model can tell (`ToolResult.is_error`).
        """
        return cls(role="tool", content=result.content, tool_call_id=result.call_id)

    def to_openai(self) -> dict[str, Any]:
        """The message as the Chat Completions API takes it."""
        if self.role == "tool":
            return {"role": "tool", "tool_call_id": self.tool_call_id, "content": self.content}
        if self.tool_calls:
            return {
                "role": "assistant",
                # OpenAI sends null content with tool calls; an empty string is refused by
                # some compatible servers.
                "content": self.content or None,
                "tool_calls": [openai_tool_call(call) for call in self.tool_calls],
            }
        return {"role": self.role, "content": self.content}

    def token_texts(self) -> Iterator[str]:
        """The texts of this message that count as input tokens (content, call arguments)."""
        yield self.content
        for call in self.tool_calls:
            yield call.arguments


def openai_tool(spec: ToolSpec) -> dict[str, Any]:
    """A tool as offered in a request's `tools` (the model sees `spec.function_name`)."""
    return {
        "type": "function",
        "function": {
            "name": spec.function_name,
            "description": spec.description,
            "parameters": spec.input_schema,
        },
    }


def openai_tool_call(call: ToolCall) -> dict[str, Any]:
    """A call as an assistant message carries it in `tool_calls`."""
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.function_name, "arguments": call.arguments},
    }


class JsonSchemaFormat(BaseModel):
    """Structured output: the answer must be JSON that fits `json_schema`.

    Sent as OpenAI's `response_format={"type": "json_schema", "json_schema": {...}}`; only
    for routes whose provider supports it (callers keep a re-ask as the fallback).
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    json_schema: dict[str, Any]
    """The JSON Schema of the answer (sent as `json_schema.schema`)."""
    description: str | None = None
    strict: bool = True

    def to_openai(self) -> dict[str, Any]:
        """The `response_format` parameter."""
        spec: dict[str, Any] = {
            "name": self.name,
            "schema": self.json_schema,
            "strict": self.strict,
        }
        if self.description is not None:
            spec["description"] = self.description
        return {"type": "json_schema", "json_schema": spec}


class LLMRequest(BaseModel):
    """One chat completion request."""

    model: str
    messages: list[ChatMessage]
    role: AgentRole | None = None
    task_id: UUID | None = None
    """The task the call is for; sent as a header so a provider proxy can attribute it."""
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    json_mode: bool = False
    response_format: JsonSchemaFormat | None = None
    """Structured output with a JSON schema; wins over `json_mode` when both are set."""
    tools: list[ToolSpec] = Field(default_factory=list)
    """Tools the model may call (sent as `tools`; none sends no `tools` parameter)."""

    def openai_tools(self) -> list[dict[str, Any]]:
        """`tools` as the Chat Completions API takes them."""
        return [openai_tool(spec) for spec in self.tools]

    def estimated_input_tokens(self) -> int:
        """Estimate the request's input tokens with `count_tokens`.

        Counts every message's content and tool-call arguments, plus each offered tool's
        definition (as compact JSON): the same count the simulator reports.
        """
        texts = [text for message in self.messages for text in message.token_texts()]
        texts.extend(tool_definition_text(tool) for tool in self.openai_tools())
        return count_message_tokens(texts)


UsageSource = Literal["provider", "estimated"]
"""Provenance of recorded usage: reported by the provider, or counted by `count_tokens`."""


class Usage(BaseModel):
    """Token usage of one call."""

    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False
    """True when counted with `count_tokens` because the provider reported no usage."""

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    @property
    def source(self) -> UsageSource:
        """Where the numbers come from: the provider's report or our own estimate."""
        return "estimated" if self.estimated else "provider"

    def as_details(self, cost_usd: float | None) -> dict[str, object]:
        """The usage as recorded in event details, with its provenance (`usage_source`)."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": cost_usd,
            "usage_source": self.source,
        }


def estimated_output_tokens(content: str, tool_calls: list[ToolCall]) -> int:
    """Estimate an answer's output tokens: its text plus its tool calls' arguments."""
    return count_tokens(content) + sum(count_tokens(call.arguments) for call in tool_calls)


class LLMResponse(BaseModel):
    """The result of one call. `cost_usd` is None when the model's price is unknown."""

    content: str
    usage: Usage
    cost_usd: float | None
    model: str
    finish_reason: str | None = None
    """The provider's finish reason (`stop`, `length`, `tool_calls`, ...); None for a
    partial response."""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    """The calls the model asked for, in order (empty when it answered with text)."""
