"""Provider outages end to end (time-skipping Temporal, real activities, the simulator).

A call that keeps failing transiently is retried until its outage tolerance is spent, then
the task pauses at `on_failure` or fails with `provider_unavailable`; a call that recovers
announces its wait once (`LLM_WAITING`) and its recovery once (`LLM_RECOVERED`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import UUID

import httpx
import pytest
import pytest_asyncio
from temporalio.client import WorkflowHandle

from activities.policies import llm_schedule_to_close, outage_tolerance
from agent.contract.breakpoints import ResumeAction
from agent.contract.task import ResumeRequest, TaskInput, TaskResult
from agent.db.models import Task
from agent.events.types import BreakpointKind, EventType, TaskComplexity, TaskStatus
from agent.llm.breaker import BreakerState
from agent.llm.simulator.config import SimulatorConfig
from agent.llm.simulator.server import SimulatorServer
from tests.polling import wait_until
from tests.workflows.conftest import (  # noqa: F401 - fixtures
    WORKFLOW_TIMEOUT,
    Engine,
    EngineFactory,
    engine_factory,
    engine_simulator,
    temporal_env,
)
from workflows.task_workflow import FailureReason, TaskWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOLERANCE_SECONDS = 120.0


async def start(
    engine: Engine,
    goal: str,
    *,
    tolerance: float | None = TOLERANCE_SECONDS,
    breakpoints: list[BreakpointKind] | None = None,
) -> WorkflowHandle[TaskWorkflow, TaskResult]:
    task_id: UUID = await engine.create_task(goal, complexity=TaskComplexity.SIMPLE.value)
    return await engine.client.start_workflow(
        TaskWorkflow.run,
        TaskInput(
            task_id=task_id,
            user_id=engine.user_id,
            complexity=TaskComplexity.SIMPLE,
            breakpoints=breakpoints or [],
            llm_outage_tolerance_seconds=tolerance,
        ),
        id=f"task-{task_id}",
        task_queue=engine.task_queue,
        execution_timeout=WORKFLOW_TIMEOUT,
    )


@pytest.mark.asyncio(loop_scope="session")
async def test_tolerance_travels_in_the_schedule_to_close_bound() -> None:
    bound = llm_schedule_to_close(90.0)

    assert outage_tolerance(bound, default_seconds=3600) == timedelta(seconds=90)
    assert outage_tolerance(None, default_seconds=3600) == timedelta(hours=1)
    assert llm_schedule_to_close(None) is None


async def test_outage_past_the_tolerance_fails_with_provider_unavailable(
    engine_factory: EngineFactory,  # noqa: F811
) -> None:
    async with engine_factory() as engine:
        # The planner's provider answers 500 to every request.
        handle = await start(engine, "Plan a garden [milestones=1][fault=500][fault_role=planner]")

        result = await handle.result()

        assert result.status == TaskStatus.FAILED
        async with engine.session_manager.session() as session:
            task = await session.get(Task, result.task_id)
        assert result.failure_reason == FailureReason.PROVIDER_UNAVAILABLE
        assert task is not None
        assert task.error is not None
        assert engine.llm.base_url in task.error
        assert "500" in task.error
        events = await engine.events(result.task_id)
        waiting = [e for e in events if e.type == EventType.LLM_WAITING]
        failed_attempts = [e for e in events if e.type == EventType.AGENT_FAILED]
        assert len(waiting) == 1
        assert waiting[0].details["waiting_on"] == "llm:" + waiting[0].details["model"]
        assert len(failed_attempts) > 6  # more than the former six-attempt limit
        assert not any(e.type == EventType.LLM_RECOVERED for e in events)
        assert events[-1].type == EventType.TASK_FAILED
        assert events[-1].details["reason"] == "provider_unavailable"


@pytest_asyncio.fixture(loop_scope="session")
async def outage_simulator() -> AsyncIterator[SimulatorServer]:
    """A simulator of this test alone: its outage window must not reach other tests."""
    config = SimulatorConfig(port=0, ttft_ms=0, tps=0, output_tokens=40, retry_after_seconds=1)
    async with SimulatorServer(config) as server:
        yield server


async def test_outage_past_the_tolerance_pauses_at_on_failure_then_retry_completes(
    engine_factory: EngineFactory,  # noqa: F811
    outage_simulator: SimulatorServer,
) -> None:
    # Arrange: the provider answers 503 to everything, and the worker's breaker cools down
    # for a minute after it opens: far longer than the task's 10 s tolerance.
    admin = outage_simulator.base_url.removesuffix("/v1")
    async with (
        httpx.AsyncClient(base_url=admin) as http,
        engine_factory(
            llm_base_url=outage_simulator.base_url, llm_breaker_cooldown_seconds=60.0
        ) as engine,
    ):
        await http.post("/sim/outage", json={"status": 503, "seconds": 3600})
        handle = await start(
            engine,
            "Plan a pond [milestones=1]",
            tolerance=10.0,
            breakpoints=[BreakpointKind.ON_FAILURE],
        )

        async def paused() -> bool:
            progress = await handle.query(TaskWorkflow.progress)
            return progress.paused is not None

        await wait_until(paused)
        progress = await handle.query(TaskWorkflow.progress)
        assert progress.paused is not None
        events = await engine.events(handle_task_id(handle))
        model = next(e for e in events if e.type == EventType.LLM_WAITING).details["model"]
        state_at_pause = engine.llm.guard.breaker(model).state

        # Act: the provider is back, and a person retries within the breaker's cool-down.
        await http.delete("/sim/outage")
        await http.post("/sim/stats/reset")
        await handle.execute_update(
            TaskWorkflow.resume,
            ResumeRequest(breakpoint_id=progress.paused.breakpoint_id, action=ResumeAction.RETRY),
        )
        result = await handle.result()
        served = (await http.get("/sim/stats")).json()

    # Assert: the pause named the provider's answer; the retried call was refused by the
    # open breaker until its tolerance's last attempt, which asked the provider itself.
    assert progress.paused.kind == BreakpointKind.ON_FAILURE
    assert "provider unavailable" in progress.paused.reason
    assert "503" in progress.paused.reason
    assert state_at_pause is BreakerState.OPEN
    assert result.status == TaskStatus.COMPLETED
    assert served["outage_rejected"] == 0
    assert served["requests_total"] >= 1


def handle_task_id(handle: WorkflowHandle[TaskWorkflow, TaskResult]) -> UUID:
    """The task id of a handle (`task-<uuid>`)."""
    return UUID(handle.id.removeprefix("task-"))


async def test_recovered_call_announces_waiting_and_recovery_once(
    engine_factory: EngineFactory,  # noqa: F811
) -> None:
    async with engine_factory() as engine:
        handle = await start(
            engine, "Plan a shed [milestones=1][fault=429][fault_role=worker][fault_count=3]"
        )

        result = await handle.result()

        assert result.status == TaskStatus.COMPLETED
        events = await engine.events(result.task_id)
        types = [e.type for e in events]
        assert types.count(EventType.LLM_WAITING) == 1
        assert types.count(EventType.LLM_RECOVERED) == 1
        assert types.index(EventType.LLM_WAITING) < types.index(EventType.LLM_RECOVERED)
        waiting = events[types.index(EventType.LLM_WAITING)]
        assert "next try at" in waiting.message
        assert waiting.details["error_type"] == "LLMRateLimited"


async def test_an_open_breaker_never_reaches_the_next_engine(
    engine_factory: EngineFactory,  # noqa: F811
) -> None:
    # Arrange: one engine's breaker opened by injected failures (as a faulty test leaves it).
    async with engine_factory() as first:
        breaker = first.llm.guard.breaker("gpt-4o-mini")
        for _ in range(first.settings.llm_breaker_failure_threshold):
            breaker.record_failure("injected")
        opened = breaker.state

    # Act: the next engine on the same simulator runs a task.
    async with engine_factory() as second:
        handle = await start(second, "Plan a path [milestones=1]")
        result = await handle.result()
        events = await second.events(result.task_id)

    # Assert
    assert opened is BreakerState.OPEN
    assert result.status == TaskStatus.COMPLETED
    assert not any(e.type == EventType.LLM_WAITING for e in events)
