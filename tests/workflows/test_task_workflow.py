"""TaskWorkflow end to end on the time-skipping server: real activities, PostgreSQL, simulator."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import select
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import CancelledError
from temporalio.service import RPCError

from agent.contract.breakpoints import ResumeAction
from agent.contract.task import (
    Budget,
    MilestoneChange,
    MilestoneSpec,
    PlanEdit,
    ResumeRequest,
)
from agent.db.models import BreakpointDecision
from agent.events.types import BreakpointKind, EventType, MilestoneStatus, TaskStatus
from tests.workflows.conftest import Engine, EngineFactory
from tests.workflows.helpers import (
    POLL_SECONDS,
    Recorder,
    assert_gapless,
    milestones,
    task_row,
    wait_paused,
    wait_until,
)
from workflows.task_workflow import MAX_PLAN_ATTEMPTS, TaskWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


# --------------------------------------------------------------------------- happy paths


async def test_sequential_plan_completes(engine: Engine, record_history: Recorder) -> None:
    # Arrange
    handle = await engine.start("Write a short report on tea [milestones=3] [plan=sequential]")

    # Act
    result = await handle.result()

    # Assert
    assert result.status == TaskStatus.COMPLETED
    assert result.milestones_passed == 3
    assert result.summary_preview
    assert result.totals.tokens > 0
    events = await assert_gapless(engine, result.task_id)
    types = [EventType(e.type) for e in events]
    assert types[0] == EventType.TASK_STARTED
    assert types[-1] == EventType.TASK_COMPLETED
    assert types.count(EventType.MILESTONE_COMPLETED) == 3
    assert types.count(EventType.TASK_PROGRESS) == 3
    for expected in (EventType.AGENT_STARTED, EventType.AGENT_COMPLETED, EventType.LLM_COMPLETE):
        assert expected in types
    task = await task_row(engine, result.task_id)
    assert task.status == TaskStatus.COMPLETED
    assert task.result
    assert task.input_tokens == result.totals.input_tokens
    assert task.output_tokens == result.totals.output_tokens
    assert set(task.prompt_versions) >= {"planner", "worker", "verifier", "summariser"}
    await record_history(handle)


async def test_classifies_when_no_complexity_given(
    engine: Engine, record_history: Recorder
) -> None:
    # Arrange
    handle = await engine.start(
        "Tiny job [complexity=trivial] [milestones=1] [plan=sequential]", complexity=None
    )

    # Act
    result = await handle.result()

    # Assert
    assert result.status == TaskStatus.COMPLETED
    progress = await handle.query(TaskWorkflow.progress)
    assert progress.complexity == "trivial"
    assert (await task_row(engine, result.task_id)).complexity == "trivial"
    await record_history(handle)


async def test_diamond_runs_middle_milestones_in_parallel(
    engine: Engine, record_history: Recorder
) -> None:
    # Arrange: slow first tokens so the two middle milestones surely overlap.
    handle = await engine.start("Build a garden shed [plan=diamond] [ttft_ms=300]")

    # Act
    result = await handle.result()

    # Assert
    assert result.status == TaskStatus.COMPLETED
    rows = await milestones(engine, result.task_id)
    assert rows["m4"].depends_on == ["m2", "m3"]
    m2, m3 = rows["m2"], rows["m3"]
    assert m2.started_at is not None
    assert m2.finished_at is not None
    assert m3.started_at is not None
    assert m3.finished_at is not None
    assert m2.started_at < m3.finished_at
    assert m3.started_at < m2.finished_at
    assert rows["m4"].started_at is not None
    assert rows["m4"].started_at >= max(m2.finished_at, m3.finished_at)
    await record_history(handle)


async def test_verifier_failure_retries_with_feedback_then_passes(
    engine: Engine, record_history: Recorder
) -> None:
    # Arrange
    handle = await engine.start("Plan a trip [milestones=2] [plan=sequential] [fail_first=1]")

    # Act
    result = await handle.result()

    # Assert
    assert result.status == TaskStatus.COMPLETED
    rows = await milestones(engine, result.task_id)
    assert {k: m.attempts for k, m in rows.items()} == {"m1": 2, "m2": 2}
    events = await assert_gapless(engine, result.task_id)
    retries = [e for e in events if e.type == EventType.MILESTONE_RETRY]
    assert len(retries) == 2
    assert all("incomplete" in e.details["feedback"] for e in retries)
    second_attempts = [
        e
        for e in events
        if e.type == EventType.LLM_COMPLETE and e.agent == "worker" and e.details["attempt"] == 2
    ]
    assert len(second_attempts) == 2
    await record_history(handle)


async def test_invalid_plan_is_asked_again_with_its_error_then_runs(
    engine: Engine, record_history: Recorder
) -> None:
    # Arrange: the planner's first two answers repeat a key (the goal keeps the simulator's
    # fault counter of this conversation fresh).
    handle = await engine.start(
        f"Plan a party {uuid4().hex} [milestones=2] [plan=sequential] "
        "[fault=invalid_plan] [invalid=duplicate] [fault_count=2]"
    )

    # Act
    result = await handle.result()

    # Assert
    assert result.status == TaskStatus.COMPLETED
    events = await assert_gapless(engine, result.task_id)
    plans = [e for e in events if e.type == EventType.LLM_COMPLETE and e.agent == "planner"]
    assert [p.details["result"]["valid"] for p in plans] == [False, False, True]
    await record_history(handle)


async def test_plan_still_invalid_after_the_last_attempt_fails_the_task(
    engine: Engine, record_history: Recorder
) -> None:
    # Arrange: every planner answer has a cycle.
    handle = await engine.start(
        f"Plan a party {uuid4().hex} [milestones=2] [fault=invalid_plan] [invalid=cycle]"
    )

    # Act
    result = await handle.result()

    # Assert
    assert (result.status, result.failure_reason) == (TaskStatus.FAILED, "invalid_plan")
    events = await assert_gapless(engine, result.task_id)
    plans = [e for e in events if e.type == EventType.LLM_COMPLETE and e.agent == "planner"]
    assert len(plans) == MAX_PLAN_ATTEMPTS
    assert "cycle" in events[-1].details["error"]
    await record_history(handle)


# --------------------------------------------------------------------------- failures


async def test_max_attempts_exhausted_pauses_on_failure_then_skip_completes(
    engine: Engine, record_history: Recorder
) -> None:
    # Arrange
    handle = await engine.start(
        "Write docs [milestones=3] [plan=sequential] [fail_always=m2]",
        breakpoints=[BreakpointKind.ON_FAILURE],
        max_attempts=2,
    )

    # Act
    pause = await wait_paused(handle)
    await handle.execute_update(
        TaskWorkflow.resume,
        ResumeRequest(breakpoint_id=pause.breakpoint_id, action=ResumeAction.SKIP),
    )
    result = await handle.result()

    # Assert
    assert pause.kind == BreakpointKind.ON_FAILURE
    assert pause.milestone_key == "m2"
    assert result.status == TaskStatus.COMPLETED
    assert (result.milestones_passed, result.milestones_skipped) == (2, 1)
    rows = await milestones(engine, result.task_id)
    assert rows["m2"].status == MilestoneStatus.SKIPPED
    assert rows["m2"].attempts == 2
    assert rows["m3"].status == MilestoneStatus.PASSED
    await assert_gapless(engine, result.task_id)
    await record_history(handle)


async def test_failed_milestone_without_breakpoint_fails_the_task(engine: Engine) -> None:
    # Arrange
    handle = await engine.start(
        "Write docs [milestones=2] [plan=sequential] [fail_always=m1]", max_attempts=1
    )

    # Act
    result = await handle.result()

    # Assert
    assert result.status == TaskStatus.FAILED
    assert result.failure_reason == "milestones_failed"
    rows = await milestones(engine, result.task_id)
    assert rows["m1"].status == MilestoneStatus.FAILED
    assert rows["m2"].status == MilestoneStatus.PENDING
    events = await assert_gapless(engine, result.task_id)
    assert events[-1].type == EventType.TASK_FAILED


async def test_budget_exhausted_pauses_then_raised_limit_completes(
    engine: Engine, record_history: Recorder
) -> None:
    # Arrange: the worker estimate is prompt + 4096 output tokens; 5000 allows a few calls.
    handle = await engine.start(
        "Write a poem [milestones=3] [plan=sequential]",
        breakpoints=[BreakpointKind.BUDGET_EXHAUSTED],
        budget=Budget(max_tokens=5000),
    )

    # Act
    pause = await wait_paused(handle)
    before = await handle.query(TaskWorkflow.progress)
    await handle.execute_update(
        TaskWorkflow.resume,
        ResumeRequest(
            breakpoint_id=pause.breakpoint_id,
            action=ResumeAction.CONTINUE,
            budget=Budget(max_tokens=1_000_000),
        ),
    )
    result = await handle.result()

    # Assert
    assert pause.kind == BreakpointKind.BUDGET_EXHAUSTED
    assert before.totals.tokens <= 5000
    assert result.status == TaskStatus.COMPLETED
    task = await task_row(engine, result.task_id)
    assert task.max_tokens == 1_000_000
    async with engine.session_manager.session() as session:
        decisions = list(
            (
                await session.execute(
                    select(BreakpointDecision).where(BreakpointDecision.task_id == result.task_id)
                )
            ).scalars()
        )
    assert [(d.kind, d.action) for d in decisions] == [("budget_exhausted", "continue")]
    assert decisions[0].new_budget == {
        "max_cost_usd": None,
        "max_tokens": 1_000_000,
        "max_tool_calls": None,
    }
    await record_history(handle)


async def test_budget_exhausted_without_breakpoint_stops_cleanly(
    engine: Engine, record_history: Recorder
) -> None:
    # Arrange
    handle = await engine.start(
        "Write a poem [milestones=3] [plan=sequential]", budget=Budget(max_tokens=5000)
    )

    # Act
    result = await handle.result()

    # Assert
    assert result.status == TaskStatus.FAILED
    assert result.failure_reason == "budget_exceeded"
    assert result.totals.tokens <= 5000
    task = await task_row(engine, result.task_id)
    assert (task.status, task.failure_reason) == (TaskStatus.FAILED, "budget_exceeded")
    events = await assert_gapless(engine, result.task_id)
    assert events[-1].type == EventType.TASK_FAILED
    assert events[-1].details["reason"] == "budget_exceeded"
    await record_history(handle)


async def test_large_context_is_compressed(
    engine_factory: EngineFactory, record_history: Recorder
) -> None:
    # Arrange: a tiny worker context budget and long dependency outputs.
    async with engine_factory(context_budgets={"*.worker": 600}) as engine:
        handle = await engine.start(
            "Research a topic [milestones=2] [plan=sequential] [output_tokens=500]"
        )

        # Act
        result = await handle.result()

        # Assert
        assert result.status == TaskStatus.COMPLETED
        events = await assert_gapless(engine, result.task_id)
        compressed = [e for e in events if e.type == EventType.CONTEXT_COMPRESSED]
        assert len(compressed) == 1
        assert compressed[0].details["tokens_before"] > compressed[0].details["tokens_after"]
        assert compressed[0].details["key"] == "m2"
        compressor_calls = [
            e for e in events if e.type == EventType.LLM_COMPLETE and e.agent == "compressor"
        ]
        assert len(compressor_calls) == 1
        await record_history(handle)


# --------------------------------------------------------------------------- breakpoints

BREAKPOINT_CASES: list[tuple[BreakpointKind, ResumeAction]] = [
    (BreakpointKind.AFTER_PLAN, ResumeAction.CONTINUE),
    (BreakpointKind.AFTER_PLAN, ResumeAction.RETRY),
    (BreakpointKind.AFTER_PLAN, ResumeAction.ABORT),
    (BreakpointKind.BEFORE_MILESTONE, ResumeAction.CONTINUE),
    (BreakpointKind.BEFORE_MILESTONE, ResumeAction.SKIP),
    (BreakpointKind.BEFORE_MILESTONE, ResumeAction.ABORT),
    (BreakpointKind.AFTER_MILESTONE, ResumeAction.CONTINUE),
    (BreakpointKind.AFTER_MILESTONE, ResumeAction.RETRY),
    (BreakpointKind.AFTER_MILESTONE, ResumeAction.ABORT),
    (BreakpointKind.ON_FAILURE, ResumeAction.CONTINUE),
    (BreakpointKind.ON_FAILURE, ResumeAction.RETRY),
    (BreakpointKind.ON_FAILURE, ResumeAction.SKIP),
    (BreakpointKind.ON_FAILURE, ResumeAction.ABORT),
    (BreakpointKind.BUDGET_EXHAUSTED, ResumeAction.CONTINUE),
    (BreakpointKind.BUDGET_EXHAUSTED, ResumeAction.ABORT),
]


def _goal_for(kind: BreakpointKind) -> str:
    if kind == BreakpointKind.ON_FAILURE:
        # Every milestone fails its first two attempts: on_failure after max_attempts=2,
        # and a retry (attempt 3) passes.
        return "Write docs [milestones=2] [plan=sequential] [fail_first=2]"
    if kind == BreakpointKind.BUDGET_EXHAUSTED:
        return "Write docs [milestones=3] [plan=sequential]"
    return "Write docs [milestones=2] [plan=sequential]"


@pytest.mark.parametrize(("kind", "action"), BREAKPOINT_CASES, ids=lambda v: str(v))
async def test_every_breakpoint_kind_resumes_with_each_action(
    engine: Engine, record_history: Recorder, kind: BreakpointKind, action: ResumeAction
) -> None:
    # Arrange
    budget = Budget(max_tokens=5000) if kind == BreakpointKind.BUDGET_EXHAUSTED else Budget()
    handle = await engine.start(_goal_for(kind), breakpoints=[kind], max_attempts=2, budget=budget)
    first = await wait_paused(handle)
    # Each first decision also edits the plan (adds `extra` after m2), except an abort and
    # a re-plan (`retry` after the plan), which replaces the plan anyway.
    replan = kind == BreakpointKind.AFTER_PLAN and action == ResumeAction.RETRY
    edits = (
        PlanEdit(add=[MilestoneSpec(key="extra", title="Extra step", depends_on=["m2"])])
        if action != ResumeAction.ABORT and not replan
        else None
    )
    new_budget = Budget(max_tokens=1_000_000) if kind == BreakpointKind.BUDGET_EXHAUSTED else None

    # Act
    accepted = await handle.execute_update(
        TaskWorkflow.resume,
        ResumeRequest(
            breakpoint_id=first.breakpoint_id,
            action=action,
            edits=edits,
            budget=new_budget,
            feedback="Please be concise.",
            user_id=engine.user_id,
        ),
    )
    pauses = 1
    while True:
        progress = await handle.query(TaskWorkflow.progress)
        if progress.status.is_terminal:
            break
        if progress.paused is None:
            await asyncio.sleep(POLL_SECONDS)
            continue
        pauses += 1
        later = progress.paused
        follow_up = (
            ResumeAction.RETRY if later.kind == BreakpointKind.ON_FAILURE else ResumeAction.CONTINUE
        )
        await handle.execute_update(
            TaskWorkflow.resume,
            ResumeRequest(breakpoint_id=later.breakpoint_id, action=follow_up),
        )
    result = await handle.result()

    # Assert
    assert accepted.action == action
    assert first.kind == kind
    rows = await milestones(engine, result.task_id)
    if action == ResumeAction.ABORT:
        assert result.status == TaskStatus.CANCELLED
        assert result.failure_reason == "aborted"
    elif kind == BreakpointKind.ON_FAILURE and action == ResumeAction.CONTINUE:
        assert result.status == TaskStatus.FAILED
        assert rows["m1"].status == MilestoneStatus.FAILED
    elif replan:
        assert result.status == TaskStatus.COMPLETED
        assert "extra" not in rows
    else:
        assert result.status == TaskStatus.COMPLETED
        assert "extra" in rows
        assert rows["extra"].status == MilestoneStatus.PASSED
    if kind == BreakpointKind.BEFORE_MILESTONE and action == ResumeAction.SKIP:
        assert rows[first.milestone_key or ""].status == MilestoneStatus.SKIPPED
    if kind == BreakpointKind.AFTER_MILESTONE and action == ResumeAction.RETRY:
        assert rows[first.milestone_key or ""].attempts == 2
    if kind == BreakpointKind.ON_FAILURE and action == ResumeAction.RETRY:
        assert rows["m1"].status == MilestoneStatus.PASSED
        assert rows["m1"].attempts == 3
    events = await assert_gapless(engine, result.task_id)
    hits = [e for e in events if e.type == EventType.BREAKPOINT_HIT]
    resumed = [e for e in events if e.type == EventType.BREAKPOINT_RESUMED]
    assert len(hits) == len(resumed) == pauses
    assert resumed[0].details["action"] == action.value
    assert resumed[0].details["user_id"] == str(engine.user_id)
    async with engine.session_manager.session() as session:
        decisions = list(
            (
                await session.execute(
                    select(BreakpointDecision).where(BreakpointDecision.task_id == result.task_id)
                )
            ).scalars()
        )
    assert len(decisions) == pauses
    first_decision = next(d for d in decisions if d.breakpoint_id == first.breakpoint_id)
    assert first_decision.action == action.value
    assert first_decision.feedback == "Please be concise."
    assert first_decision.user_id == engine.user_id
    assert (first_decision.edits is not None) == (edits is not None)
    await record_history(handle)


async def test_breakpoint_timeout_applies_the_default_action(engine: Engine) -> None:
    # Arrange: nobody answers; after 10 min (skipped time) the default action applies.
    handle = await engine.start(
        "Write docs [milestones=2] [plan=sequential]",
        breakpoints=[BreakpointKind.BEFORE_MILESTONE],
        timeout_seconds=600,
        default_action=ResumeAction.SKIP,
    )

    # Act
    result = await handle.result()

    # Assert
    assert result.status == TaskStatus.COMPLETED
    assert result.milestones_skipped == 2
    events = await engine.events(result.task_id)
    resumed = [e for e in events if e.type == EventType.BREAKPOINT_RESUMED]
    assert [e.details["timed_out"] for e in resumed] == [True, True]


async def test_invalid_resume_is_rejected_and_leaves_no_trace(engine: Engine) -> None:
    # Arrange
    handle = await engine.start(
        "Write docs [milestones=3] [plan=sequential]", breakpoints=[BreakpointKind.AFTER_PLAN]
    )
    pause = await wait_paused(handle)
    invalid = [
        ResumeRequest(breakpoint_id="bp-999-after_plan", action=ResumeAction.CONTINUE),
        ResumeRequest(breakpoint_id=pause.breakpoint_id, action=ResumeAction.SKIP),
        ResumeRequest(
            breakpoint_id=pause.breakpoint_id,
            action=ResumeAction.CONTINUE,
            edits=PlanEdit(change=[MilestoneChange(key="m1", depends_on=["m3"])]),  # cycle
        ),
        ResumeRequest(
            breakpoint_id=pause.breakpoint_id,
            action=ResumeAction.CONTINUE,
            edits=PlanEdit(remove=["nope"]),
        ),
        ResumeRequest(
            breakpoint_id=pause.breakpoint_id,
            action=ResumeAction.CONTINUE,
            edits=PlanEdit(add=[MilestoneSpec(key="m2", title="duplicate")]),
        ),
    ]

    # Act
    messages = []
    for request in invalid:
        with pytest.raises(WorkflowUpdateFailedError) as caught:
            await handle.execute_update(TaskWorkflow.resume, request)
        messages.append(str(caught.value.cause))
    history_before = await handle.fetch_history()
    await handle.execute_update(
        TaskWorkflow.resume,
        ResumeRequest(breakpoint_id=pause.breakpoint_id, action=ResumeAction.CONTINUE),
    )
    result = await handle.result()
    with pytest.raises(RPCError):  # a finished workflow takes no update
        await handle.execute_update(
            TaskWorkflow.resume,
            ResumeRequest(breakpoint_id=pause.breakpoint_id, action=ResumeAction.CONTINUE),
        )

    # Assert
    assert "bp-999" in messages[0]
    assert "does not fit" in messages[1]
    assert "cycle" in messages[2]
    assert "unknown" in messages[3]
    assert "exists" in messages[4]
    update_events = [
        e
        for e in history_before.events
        if e.event_type
        in (
            HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
            HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED,
        )
    ]
    assert update_events == []
    assert result.status == TaskStatus.COMPLETED


async def test_resume_of_a_running_task_is_rejected(engine: Engine) -> None:
    # Arrange: a slow first token keeps the task running (not paused) for a while.
    handle = await engine.start("Write docs [milestones=1] [plan=sequential] [ttft_ms=1500]")

    # Act
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(
            TaskWorkflow.resume,
            ResumeRequest(breakpoint_id="bp-1-after_plan", action=ResumeAction.CONTINUE),
        )
    result = await handle.result()

    # Assert
    assert "not paused" in str(caught.value.cause)
    assert result.status == TaskStatus.COMPLETED
    history = await handle.fetch_history()
    assert not any(
        e.event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        for e in history.events
    )


# --------------------------------------------------------------------------- cancellation


async def test_cancel_while_a_milestone_streams_stops_work(
    engine: Engine, record_history: Recorder
) -> None:
    # Arrange: a slow worker stream (20 tokens/s for 2000 tokens).
    handle = await engine.start(
        "Write a novel [milestones=1] [plan=sequential] [output_tokens=2000] [tps=20]"
    )
    task_id = UUID(handle.id.removeprefix("task-"))

    async def worker_streaming() -> bool:
        events = await engine.events(task_id)
        return any(e.type == EventType.AGENT_STARTED and e.agent == "worker" for e in events)

    await wait_until(worker_streaming)
    await asyncio.sleep(0.5)  # let some tokens flow

    # Act
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()

    # Assert
    assert isinstance(caught.value.cause, CancelledError)
    task = await task_row(engine, task_id)
    assert task.status == TaskStatus.CANCELLED
    events = await assert_gapless(engine, task_id)
    assert events[-1].type == EventType.TASK_CANCELLED
    cancelled = [e for e in events if e.type == EventType.AGENT_FAILED and e.details["cancelled"]]
    assert len(cancelled) == 1
    partial = cancelled[0].details["partial_usage"]
    assert partial["output_tokens"] > 0
    assert partial["output_tokens"] < 2000
    assert task.output_tokens >= partial["output_tokens"]
    assert not any(e.type == EventType.LLM_COMPLETE and e.agent == "worker" for e in events)
    await record_history(handle)


# --------------------------------------------------------------------------- durability


async def test_worker_restart_mid_task_loses_and_duplicates_nothing(
    engine_factory: EngineFactory,
) -> None:
    async with engine_factory(start_worker=False) as engine:
        # Arrange: a first worker runs until the first milestone passed. No sticky cache:
        # the next workflow task must go to whichever worker polls (the time-skipping
        # server does not release a dead worker's sticky queue early).
        first = engine.build_worker(
            max_cached_workflows=0, graceful_shutdown_timeout=timedelta(seconds=1)
        )
        async with first:
            handle = await engine.start(
                "Write a guide [milestones=4] [plan=sequential] [ttft_ms=100]"
            )
            task_id = UUID(handle.id.removeprefix("task-"))

            async def one_passed() -> bool:
                rows = await milestones(engine, task_id)
                return any(m.status == MilestoneStatus.PASSED for m in rows.values())

            await wait_until(one_passed)
        # Act: the first worker is gone; a new one on the same queue takes over.
        second = engine.build_worker()
        async with second:
            result = await handle.result()

        # Assert
        assert result.status == TaskStatus.COMPLETED
        assert result.milestones_passed == 4
        events = await assert_gapless(engine, task_id)
        counts = Counter(EventType(e.type) for e in events)
        assert counts[EventType.TASK_STARTED] == 1
        assert counts[EventType.MILESTONE_COMPLETED] == 4
        assert counts[EventType.TASK_COMPLETED] == 1
        assert counts[EventType.TASK_PROGRESS] == 4


async def test_fifty_milestone_history_stays_small(engine: Engine) -> None:
    # Arrange: long outputs stay in PostgreSQL; the history carries ids and previews.
    handle = await engine.start(
        "Big job [milestones=50] [plan=parallel] [output_tokens=2000]", max_parallel=16
    )

    # Act
    result = await handle.result()
    history = await handle.fetch_history()

    # Assert
    assert result.status == TaskStatus.COMPLETED
    assert result.milestones_passed == 50
    largest = max(
        (len(payload.data) for event in history.events for payload in _payloads(event)),
        default=0,
    )
    assert len(history.events) < 2_000
    assert largest < 64 * 1024


def _payloads(event: Any) -> list[Any]:
    found = []
    for attr in (
        "activity_task_scheduled_event_attributes",
        "activity_task_completed_event_attributes",
        "workflow_execution_started_event_attributes",
        "workflow_execution_completed_event_attributes",
        "workflow_execution_update_accepted_event_attributes",
        "workflow_execution_update_completed_event_attributes",
    ):
        if event.HasField(attr):
            attrs = getattr(event, attr)
            for field_name in ("input", "result"):
                container = getattr(attrs, field_name, None)
                if container is not None and hasattr(container, "payloads"):
                    found.extend(container.payloads)
    return found
