"""The history baseline: a bare workflow that carries each call's context through history.

`ConversationWorkflow` does what the peers do: the conversation so far goes into every
LLM activity's input and each answer comes back as its output, so both land in the
workflow's history. It makes the calls of a sequential task (a plan, then a worker and a
verifier call per milestone) through the same `LLMClient` and simulator as the project,
records its history's length and size (as the server counts them) after every milestone,
and stops before the server's limits would end it.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from agent.events.types import AgentRole
    from agent.llm.client import LLMClient
    from agent.llm.types import ChatMessage, LLMRequest

PEER_CALL_TIMEOUT = timedelta(minutes=5)
PEER_RETRY_POLICY = RetryPolicy(maximum_attempts=3)
PEER_MODEL = "gpt-4o-mini"
PEER_MAX_TOKENS = 4096

HISTORY_SIZE_LIMIT_BYTES = 50 * 2**20
"""Temporal's default `limit.historySize.error`: a run past it is terminated."""
HISTORY_COUNT_LIMIT = 51_200
"""Temporal's default `limit.historyCount.error`."""


class PeerCall(BaseModel):
    """One call: the role and the whole conversation so far (the peers' way)."""

    role: AgentRole
    messages: list[ChatMessage]


class PeerReply(BaseModel):
    """The answer, carried back through history."""

    content: str


class HistoryPoint(BaseModel):
    """The run's history after `milestones` milestones (`calls` model calls)."""

    milestones: int
    calls: int
    events: int
    bytes: int


class ConversationInput(BaseModel):
    """How far to go, and how close to the limits to stop."""

    goal: str
    milestones: int = Field(ge=1)
    stop_fraction: float = Field(gt=0, lt=1)
    """Stop once the history passes this fraction of either limit."""


class ConversationResult(BaseModel):
    """One point per milestone done; whether it stopped near a limit."""

    points: list[HistoryPoint]
    stopped_near_limit: bool


class PeerActivities:
    """The baseline's activity: one streamed call on the whole conversation.

    Args:
        llm: The same client the project's worker uses.
    """

    def __init__(self, llm: LLMClient) -> None:
        self._llm = llm

    @activity.defn(name="peer_conversation_call")
    async def call(self, data: PeerCall) -> PeerReply:
        """Stream one completion to its end and return its text."""
        request = LLMRequest(
            model=PEER_MODEL, role=data.role, max_tokens=PEER_MAX_TOKENS, messages=data.messages
        )
        parts: list[str] = []
        async with self._llm.stream(request) as stream:
            async for delta in stream:
                parts.append(delta)
        return PeerReply(content="".join(parts))


@workflow.defn
class ConversationWorkflow:
    """A sequential task whose context travels through activity inputs and outputs."""

    @workflow.run
    async def run(self, data: ConversationInput) -> ConversationResult:
        """Plan, then a worker and a verifier call per milestone, the conversation growing."""
        messages = [
            ChatMessage(role="system", content="You plan, do and check milestones."),
            ChatMessage(role="user", content=f"Goal: {data.goal}"),
        ]
        calls = 0

        async def call(role: AgentRole, ask: str) -> None:
            nonlocal calls
            messages.append(ChatMessage(role="user", content=ask))
            reply = await workflow.execute_activity_method(
                PeerActivities.call,
                PeerCall(role=role, messages=messages),
                start_to_close_timeout=PEER_CALL_TIMEOUT,
                retry_policy=PEER_RETRY_POLICY,
            )
            messages.append(ChatMessage(role="assistant", content=reply.content))
            calls += 1

        await call(AgentRole.PLANNER, f"Plan {data.milestones} milestones.")
        points: list[HistoryPoint] = []
        info = workflow.info()
        for milestone in range(1, data.milestones + 1):
            await call(AgentRole.WORKER, f"Do milestone m{milestone}.")
            await call(AgentRole.VERIFIER, f"Check milestone m{milestone}.")
            point = HistoryPoint(
                milestones=milestone,
                calls=calls,
                events=info.get_current_history_length(),
                bytes=info.get_current_history_size(),
            )
            points.append(point)
            if (
                point.bytes >= data.stop_fraction * HISTORY_SIZE_LIMIT_BYTES
                or point.events >= data.stop_fraction * HISTORY_COUNT_LIMIT
            ):
                return ConversationResult(points=points, stopped_near_limit=True)
        return ConversationResult(points=points, stopped_near_limit=False)
