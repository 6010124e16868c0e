"""Tasks whose agents call tools: the reference MCP server `mcp-server-time` over stdio.

The simulator calls the tools a goal's `[tool=server.tool {...}]` directives name, then
answers with one `tool result <function>: <content>` line per result it received, so a
milestone's output proves what reached the model.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select

from agent.contract.breakpoints import ResumeAction
from agent.contract.task import Budget, ResumeRequest
from agent.contract.tools import ToolCallStatus
from agent.db.models import Milestone, ToolCallRecord
from agent.events.types import AgentRole, BreakpointKind, EventType, TaskStatus
from tests.recording_simulator import recording_simulator
from tests.workflows.conftest import Engine, EngineFactory, time_toolbox
from tests.workflows.helpers import Recorder, assert_gapless, milestones, wait_paused
from workflows.task_workflow import TaskWorkflow

UTC_NOW = '[tool=time.get_current_time {"timezone": "UTC"}]'
ONE_MILESTONE = "[milestones=1] [plan=sequential]"


async def tool_calls(engine: Engine, task_id: UUID) -> list[ToolCallRecord]:
    async with engine.session_manager.session() as session:
        rows = await session.execute(
            select(ToolCallRecord)
            .where(ToolCallRecord.task_id == task_id)
            .order_by(ToolCallRecord.turn, ToolCallRecord.position)
        )
        return list(rows.scalars())


def only_output(rows: dict[str, Milestone]) -> str:
    (milestone,) = rows.values()
    assert milestone.output is not None
    return milestone.output


async def test_a_tool_result_reaches_the_model_and_the_task_completes(
    tool_engine: Engine, record_history: Recorder
) -> None:
    # Arrange
    goal = f"Say what time it is {ONE_MILESTONE} {UTC_NOW}"

    # Act
    handle = await tool_engine.start(goal)
    result = await handle.result()

    # Assert
    assert result.status == TaskStatus.COMPLETED
    assert result.totals.tool_calls == 1
    (call,) = await tool_calls(tool_engine, result.task_id)
    assert (call.server, call.tool, call.status) == ("time", "get_current_time", "completed")
    assert call.executions == 1
    assert call.result is not None
    assert '"timezone": "UTC"' in call.result
    output = only_output(await milestones(tool_engine, result.task_id))
    assert "tool result time__get_current_time:" in output
    assert '"timezone": "UTC"' in output  # the server's answer, as the model received it
    events = await assert_gapless(tool_engine, result.task_id)
    types = [e.type for e in events]
    assert types.count(EventType.TOOL_CALL_STARTED) == 1
    assert types.count(EventType.TOOL_CALL_COMPLETED) == 1
    completed = next(e for e in events if e.type == EventType.TOOL_CALL_COMPLETED)
    assert completed.details["server"] == "time"
    assert completed.details["result_chars"] == len(call.result)
    await record_history(handle)


async def test_calls_the_task_cannot_make_go_back_to_the_model_as_errors(
    tool_engine: Engine,
) -> None:
    # Arrange: a tool no server offers, and arguments that are not JSON.
    goal = (
        f"Try the impossible {ONE_MILESTONE} [tool=nope.nothing {{}}] "
        "[tool_bad_json=time.get_current_time]"
    )

    # Act
    handle = await tool_engine.start(goal)
    result = await handle.result()

    # Assert: neither ran; the model read why, and the attempt went on.
    assert result.status == TaskStatus.COMPLETED
    assert result.totals.tool_calls == 0
    calls = await tool_calls(tool_engine, result.task_id)
    assert [c.status for c in calls] == [ToolCallStatus.REJECTED] * 2
    assert all(c.executions == 0 for c in calls)
    assert calls[0].result is not None
    assert "no such tool" in calls[0].result
    assert calls[1].result is not None
    assert "not valid JSON" in calls[1].result
    output = only_output(await milestones(tool_engine, result.task_id))
    assert "no such tool" in output
    assert "not valid JSON" in output
    events = await tool_engine.events(result.task_id)
    failed = [e for e in events if e.type == EventType.TOOL_CALL_FAILED]
    assert len(failed) == 2
    assert not [e for e in events if e.type == EventType.TOOL_CALL_STARTED]


async def test_approved_call_runs_once(approval_engine: Engine, record_history: Recorder) -> None:
    # Arrange
    handle = await approval_engine.start(f"Time please {ONE_MILESTONE} {UTC_NOW}")
    pause = await wait_paused(handle)

    # Act
    assert pause.kind == BreakpointKind.BEFORE_TOOL
    assert pause.tool_call is not None
    assert (pause.tool_call.server, pause.tool_call.tool) == ("time", "get_current_time")
    assert '"UTC"' in pause.tool_call.arguments
    assert pause.allowed_actions == [
        ResumeAction.APPROVE,
        ResumeAction.DENY,
        ResumeAction.EDIT,
        ResumeAction.ABORT,
    ]
    await handle.execute_update(
        TaskWorkflow.resume,
        ResumeRequest(breakpoint_id=pause.breakpoint_id, action=ResumeAction.APPROVE),
    )
    result = await handle.result()

    # Assert
    assert result.status == TaskStatus.COMPLETED
    (call,) = await tool_calls(approval_engine, result.task_id)
    assert (call.status, call.executions) == ("completed", 1)
    await record_history(handle)


async def test_denied_call_never_runs_and_the_model_reads_the_denial(
    approval_engine: Engine,
) -> None:
    # Arrange
    handle = await approval_engine.start(f"Time please {ONE_MILESTONE} {UTC_NOW}")
    pause = await wait_paused(handle)

    # Act
    await handle.execute_update(
        TaskWorkflow.resume,
        ResumeRequest(
            breakpoint_id=pause.breakpoint_id,
            action=ResumeAction.DENY,
            feedback="no clocks today",
        ),
    )
    result = await handle.result()

    # Assert
    assert result.status == TaskStatus.COMPLETED
    assert result.totals.tool_calls == 0
    (call,) = await tool_calls(approval_engine, result.task_id)
    assert (call.status, call.executions) == ("denied", 0)
    output = only_output(await milestones(approval_engine, result.task_id))
    assert "DENIED" in output
    assert "no clocks today" in output


async def test_edited_arguments_run_and_schema_invalid_edits_do_not(
    approval_engine: Engine,
) -> None:
    # Arrange: two tasks, one edited to another timezone, one to arguments the schema refuses.
    good = await approval_engine.start(f"Time please {ONE_MILESTONE} {UTC_NOW}")
    bad = await approval_engine.start(f"Time again {ONE_MILESTONE} {UTC_NOW}")
    good_pause = await wait_paused(good)
    bad_pause = await wait_paused(bad)

    # Act
    await good.execute_update(
        TaskWorkflow.resume,
        ResumeRequest(
            breakpoint_id=good_pause.breakpoint_id,
            action=ResumeAction.EDIT,
            arguments={"timezone": "Europe/Paris"},
        ),
    )
    await bad.execute_update(
        TaskWorkflow.resume,
        ResumeRequest(
            breakpoint_id=bad_pause.breakpoint_id,
            action=ResumeAction.EDIT,
            arguments={"timezone": 42},
        ),
    )
    good_result, bad_result = await good.result(), await bad.result()

    # Assert
    (good_call,) = await tool_calls(approval_engine, good_result.task_id)
    assert (good_call.status, good_call.executions) == ("completed", 1)
    assert "Europe/Paris" in good_call.arguments
    assert good_call.result is not None
    assert "Europe/Paris" in good_call.result
    (bad_call,) = await tool_calls(approval_engine, bad_result.task_id)
    assert (bad_call.status, bad_call.executions) == ("rejected", 0)
    assert bad_call.result is not None
    assert "edited arguments were refused" in bad_call.result
    failed = [
        e
        for e in await approval_engine.events(bad_result.task_id)
        if e.type == EventType.TOOL_CALL_FAILED
    ]
    assert len(failed) == 1
    assert failed[0].details["tool_call"] == str(bad_call.id)


async def test_abort_at_a_tool_call_ends_the_task(approval_engine: Engine) -> None:
    # Arrange
    handle = await approval_engine.start(f"Time please {ONE_MILESTONE} {UTC_NOW}")
    pause = await wait_paused(handle)

    # Act
    await handle.execute_update(
        TaskWorkflow.resume,
        ResumeRequest(breakpoint_id=pause.breakpoint_id, action=ResumeAction.ABORT),
    )
    result = await handle.result()

    # Assert
    assert result.status == TaskStatus.CANCELLED
    assert result.failure_reason == "aborted"
    (call,) = await tool_calls(approval_engine, result.task_id)
    assert call.executions == 0


async def test_tool_call_budget_stops_calls_past_the_limit(tool_engine: Engine) -> None:
    # Arrange: two calls in one turn, a budget of one.
    tokyo = '[tool=time.get_current_time {"timezone": "Asia/Tokyo"}]'
    goal = f"Two clocks {ONE_MILESTONE} {UTC_NOW} {tokyo}"

    # Act
    handle = await tool_engine.start(goal, budget=Budget(max_tool_calls=1))
    result = await handle.result()

    # Assert
    assert result.status == TaskStatus.FAILED
    assert result.failure_reason == "budget_exceeded"
    calls = await tool_calls(tool_engine, result.task_id)
    assert len(calls) == 2
    assert all(c.executions == 0 for c in calls)


async def test_the_planner_is_told_the_task_tools(engine_factory: EngineFactory) -> None:
    async with (
        recording_simulator() as sim,
        time_toolbox(deny=["convert_time"]) as toolbox,
        engine_factory(llm_base_url=sim.base_url, toolbox=toolbox) as engine,
    ):
        # Arrange
        handle = await engine.start(f"Time please {ONE_MILESTONE}")

        # Act
        result = await handle.result()

        # Assert
        assert result.status == TaskStatus.COMPLETED
        (plan,) = sim.calls(AgentRole.PLANNER)
        assert "Tools the workers can call" in plan.prompt
        assert "- time.get_current_time:" in plan.prompt
        assert "convert_time" not in plan.prompt  # denied by the policy
        worker = sim.calls(AgentRole.WORKER)
        offered = [t["function"]["name"] for t in worker[0].body["tools"]]
        assert offered == ["time__get_current_time"]
