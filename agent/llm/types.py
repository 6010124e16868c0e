"""Request and response types of the LLM layer."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from agent.events.types import AgentRole


class ChatMessage(BaseModel):
    """One chat message sent to the model."""

    role: Literal["system", "user", "assistant"]
    content: str


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


class LLMResponse(BaseModel):
    """The result of one call. `cost_usd` is None when the model's price is unknown."""

    content: str
    usage: Usage
    cost_usd: float | None
    model: str
    finish_reason: str | None = None
    """The provider's finish reason (`stop`, `length`, ...); None for a partial response."""
