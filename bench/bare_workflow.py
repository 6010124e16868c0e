"""The baseline: bare Temporal workflows with no database and no events.

`BareTaskWorkflow` makes the same sequence of LLM calls as a project task (same roles,
same goal text, same simulator, same `LLMClient` streaming path), one activity per call,
in `waves` (calls of one wave run concurrently, like milestones of a parallel plan).
`StreamBenchWorkflow` hosts a `temporalio.contrib.workflow_streams.WorkflowStream`, the
offset-addressed stream the event relay is compared with.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from temporalio.contrib.workflow_streams import WorkflowStream

    from agent.events.types import AgentRole
    from agent.llm.client import LLMClient
    from agent.llm.types import ChatMessage, LLMRequest

BARE_CALL_TIMEOUT = timedelta(minutes=5)
BARE_RETRY_POLICY = RetryPolicy(maximum_attempts=3)
BARE_MODEL = "gpt-4o-mini"
BARE_MAX_TOKENS = 4096


class BareCall(BaseModel):
    """One LLM call of the baseline."""

    role: AgentRole
    goal: str
    index: int


class BareCallResult(BaseModel):
    """What one baseline call returns: sizes only, like the project's claim-check."""

    chars: int
    output_tokens: int


class BareTaskInput(BaseModel):
    """The calls of one baseline task, wave by wave."""

    goal: str
    waves: list[list[AgentRole]] = Field(min_length=1)


class BareTaskResult(BaseModel):
    """Calls made and characters received."""

    calls: int
    chars: int


class StreamBenchInput(BaseModel):
    """Nothing but a label; the stream lives in the workflow's state."""

    label: str = "bench"


class BareActivities:
    """The baseline's only activity: one streamed LLM call, nothing stored.

    Args:
        llm: The same client the project's worker uses.
    """

    def __init__(self, llm: LLMClient) -> None:
        self._llm = llm

    @activity.defn(name="bare_llm_call")
    async def llm_call(self, call: BareCall) -> BareCallResult:
        """Stream one completion to its end and return its size."""
        request = LLMRequest(
            model=BARE_MODEL,
            role=call.role,
            max_tokens=BARE_MAX_TOKENS,
            messages=[
                ChatMessage(role="system", content=f"You are the {call.role.value}."),
                ChatMessage(role="user", content=f"Goal: {call.goal}\nCall: {call.index}"),
            ],
        )
        chars = 0
        async with self._llm.stream(request) as stream:
            async for delta in stream:
                chars += len(delta)
        return BareCallResult(chars=chars, output_tokens=stream.response.usage.output_tokens)


@workflow.defn
class BareTaskWorkflow:
    """Run the given LLM calls as activities, wave after wave."""

    @workflow.run
    async def run(self, data: BareTaskInput) -> BareTaskResult:
        """Run every wave; calls within a wave run concurrently."""
        calls = chars = 0
        for wave in data.waves:
            results = await asyncio.gather(
                *(
                    workflow.execute_activity_method(
                        BareActivities.llm_call,
                        BareCall(role=role, goal=data.goal, index=calls + i),
                        start_to_close_timeout=BARE_CALL_TIMEOUT,
                        retry_policy=BARE_RETRY_POLICY,
                    )
                    for i, role in enumerate(wave)
                )
            )
            calls += len(wave)
            chars += sum(r.chars for r in results)
        return BareTaskResult(calls=calls, chars=chars)


@workflow.defn
class StreamBenchWorkflow:
    """Hosts a Workflow Stream until it is told to finish."""

    @workflow.init
    def __init__(self, data: StreamBenchInput) -> None:
        self.stream = WorkflowStream()
        self._done = False

    @workflow.run
    async def run(self, data: StreamBenchInput) -> int:
        """Wait for `finish`; return how many items the stream holds."""
        await workflow.wait_condition(lambda: self._done)
        return await asyncio.sleep(0, result=0)

    @workflow.signal
    def finish(self) -> None:
        """End the workflow (subscribers drain what is left through the query)."""
        self._done = True
