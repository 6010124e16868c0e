"""Budgets under parallel milestones, on the time-skipping server with the simulator.

Parallel milestones' LLM calls run at the same time: each must reserve what it may spend
before it starts, or every one of them sees the whole remainder and together they spend
far past the limit.
"""

from __future__ import annotations

from uuid import UUID

import pytest

from agent.contract.task import Budget
from agent.db.models import Event
from agent.events.types import EventType, TaskStatus
from tests.workflows.conftest import Engine, EngineFactory
from tests.workflows.helpers import Recorder, task_row

pytestmark = pytest.mark.asyncio(loop_scope="session")

WIDE_GOAL = "Survey the field [milestones=8] [plan=parallel] [output_tokens=3000]"
"""Eight independent milestones; each worker answer is 3000 tokens (its cap is 4096)."""

TOKEN_LIMIT = 15_000
COST_LIMIT_USD = 0.01


def overlapping_worker_calls(events: list[Event]) -> int:
    """The most worker calls that were running at once (by their stored events)."""
    running = peak = 0
    for event in events:
        if event.agent != "worker":
            continue
        if event.type == EventType.AGENT_STARTED:
            running += 1
            peak = max(peak, running)
        elif event.type in (EventType.AGENT_COMPLETED, EventType.AGENT_FAILED):
            running -= 1
    return peak


async def test_parallel_milestones_stay_within_a_tight_token_budget(
    engine: Engine, record_history: Recorder
) -> None:
    # Arrange
    handle = await engine.start(WIDE_GOAL, max_parallel=8, budget=Budget(max_tokens=TOKEN_LIMIT))
    task_id = UUID(handle.id.removeprefix("task-"))

    # Act
    result = await handle.result()

    # Assert
    task = await task_row(engine, task_id)
    spent = task.input_tokens + task.output_tokens
    print(f"token limit {TOKEN_LIMIT}, spent {spent} (workflow totals {result.totals.tokens})")
    assert (result.status, result.failure_reason) == (TaskStatus.FAILED, "budget_exceeded")
    assert result.totals.tokens == spent
    # The simulator counts prompt tokens like the estimate and honours max_tokens, so the
    # estimation error is zero: not one token over.
    assert spent <= TOKEN_LIMIT
    events = await engine.events(task_id)
    print(f"at most {overlapping_worker_calls(events)} worker calls at once")
    assert overlapping_worker_calls(events) >= 2, "reservations must not serialise the calls"
    await record_history(handle)


async def test_parallel_milestones_stay_within_a_tight_cost_budget(
    engine: Engine, record_history: Recorder
) -> None:
    # Arrange
    handle = await engine.start(
        WIDE_GOAL, max_parallel=8, budget=Budget(max_cost_usd=COST_LIMIT_USD)
    )
    task_id = UUID(handle.id.removeprefix("task-"))

    # Act
    result = await handle.result()

    # Assert
    task = await task_row(engine, task_id)
    print(f"cost limit ${COST_LIMIT_USD}, spent ${task.cost_usd:.6f}")
    assert (result.status, result.failure_reason) == (TaskStatus.FAILED, "budget_exceeded")
    assert task.cost_usd <= COST_LIMIT_USD
    events = await engine.events(task_id)
    assert overlapping_worker_calls(events) >= 2, "reservations must not serialise the calls"
    await record_history(handle)


async def test_usd_budget_stops_when_a_call_has_no_price(
    engine_factory: EngineFactory, record_history: Recorder
) -> None:
    # Arrange: the worker's model has no price, so its calls' cost is unknown.
    async with engine_factory(model_routes={"*.worker": "sim-unpriced"}) as engine:
        handle = await engine.start(
            "Write docs [milestones=2] [plan=sequential]", budget=Budget(max_cost_usd=5.0)
        )

        # Act
        result = await handle.result()

        # Assert
        assert (result.status, result.failure_reason) == (TaskStatus.FAILED, "cost_unknown")
        assert result.totals.cost_unknown
        task = await task_row(engine, result.task_id)
        assert "no price" in (task.error or "")
        await record_history(handle)
