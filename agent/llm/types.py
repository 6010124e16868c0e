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


class LLMResponse(BaseModel):
    """The result of one call. `cost_usd` is None when the model's price is unknown."""

    content: str
    usage: Usage
    cost_usd: float | None
    model: str
    finish_reason: str | None = None
    """The provider's finish reason (`stop`, `length`, ...); None for a partial response."""
