"""Tasks with tools through the HTTP API: a real API and worker with `mcp-server-time`.

The API builds its toolbox from `AGENT_MCP_SERVERS` (here `Settings.mcp_servers`), as
deployed; the worker gets a toolbox from the same settings. The simulator calls the tool a
goal's `[tool=...]` directive names.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from agent.config import Settings
from agent.db.session import DatabaseSessionManager
from agent.events.types import TaskStatus
from agent.tools.toolbox import Toolbox
from tests.agent.client.stack import time_servers
from tests.api.conftest import ApiFactory, ApiUser, RunningApi
from tests.api.live_worker import running_worker, wait_finished, wait_paused
from tests.api.test_http import assert_error_shape
from tests.recording_simulator import recording_simulator

UTC_NOW = '[tool=time.get_current_time {"timezone": "UTC"}]'
GOAL = f"Say what time it is [milestones=1] [plan=sequential] {UTC_NOW}"


@asynccontextmanager
async def tool_stack(
    api_factory: ApiFactory,
    api_settings: Settings,
    temporal_dev_env: WorkflowEnvironment,
    session_manager: DatabaseSessionManager,
    **policy: object,
) -> AsyncIterator[RunningApi]:
    """An API configured with the time server and a worker calling it, on the test's queue."""
    settings = api_settings.model_copy(update={"mcp_servers": time_servers(**policy)})
    tooled = await api_factory(settings)
    async with (
        recording_simulator() as sim,
        Toolbox.from_settings(settings) as toolbox,
        running_worker(
            temporal_dev_env.client, settings, session_manager, sim.base_url, toolbox=toolbox
        ),
    ):
        yield tooled


async def create(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await http.post("/v1/tasks", json={"goal": GOAL, "complexity": "simple", **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def tool_calls(http: httpx.AsyncClient, task_id: str) -> list[dict[str, Any]]:
    response = await http.get(f"/v1/tasks/{task_id}/tool-calls")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_unknown_servers_and_tools_are_422_naming_the_entry(
    api_factory: ApiFactory,
    api_settings: Settings,
    temporal_dev_env: WorkflowEnvironment,
    session_manager: DatabaseSessionManager,
    alice: ApiUser,
) -> None:
    async with (
        tool_stack(api_factory, api_settings, temporal_dev_env, session_manager) as tooled,
        tooled.client(alice.key) as http,
    ):
        # Act
        server = await http.post("/v1/tasks", json={"goal": GOAL, "tools": ["time", "weather"]})
        tool = await http.post(
            "/v1/tasks", json={"goal": GOAL, "tools": ["time.get_current_time", "time.nope"]}
        )
        listed = await http.get("/v1/tasks")

    # Assert: each names its entry; no task was made.
    assert_error_shape(server, 422, "validation_error")
    assert "tools[1]" in server.json()["error"]["message"]
    assert server.json()["error"]["details"][0]["loc"] == ["body", "tools", 1]
    assert_error_shape(tool, 422, "validation_error")
    assert "tools[1]" in tool.json()["error"]["message"]
    assert "nope" in tool.json()["error"]["message"]
    assert listed.json()["items"] == []


async def test_a_task_calls_its_tool_completes_and_lists_the_call(
    api_factory: ApiFactory,
    api_settings: Settings,
    temporal_dev_env: WorkflowEnvironment,
    session_manager: DatabaseSessionManager,
    alice: ApiUser,
    bob: ApiUser,
) -> None:
    async with tool_stack(api_factory, api_settings, temporal_dev_env, session_manager) as tooled:
        async with tooled.client(alice.key) as http:
            # Act
            created = await create(
                http, tools=["time.get_current_time"], budget={"max_tool_calls": 5}
            )
            task_id = created["id"]
            final = await wait_finished(http, task_id)
            events = (await http.get(f"/v1/tasks/{task_id}/events", params={"limit": 500})).json()
            calls = await tool_calls(http, task_id)
        async with tooled.client(bob.key) as intruder:
            foreign = await intruder.get(f"/v1/tasks/{task_id}/tool-calls")

    # Assert: the task, its pinned tool, its budget and totals.
    assert final["status"] == TaskStatus.COMPLETED, final
    assert final["tools_requested"] == ["time.get_current_time"]
    assert [t["qualified_name"] for t in final["tools"]] == ["time.get_current_time"]
    assert "timezone" in json.dumps(final["tools"][0]["input_schema"])
    assert final["budget"]["max_tool_calls"] == 5
    assert final["totals"]["tool_calls"] == 1
    # The events.
    tool_events = [e for e in events["items"] if e["type"].startswith("TOOL_CALL_")]
    assert [e["type"] for e in tool_events] == ["TOOL_CALL_STARTED", "TOOL_CALL_COMPLETED"]
    done = tool_events[1]["details"]
    assert (done["server"], done["tool"]) == ("time", "get_current_time")
    assert done["result_chars"] > 0
    assert isinstance(done["duration_ms"], int)
    # The call as listed.
    (call,) = calls
    assert (call["server"], call["tool"], call["status"]) == (
        "time",
        "get_current_time",
        "completed",
    )
    assert json.loads(call["arguments"]) == {"timezone": "UTC"}
    assert call["executions"] == 1
    assert '"timezone": "UTC"' in call["result_preview"]
    assert call["result_chars"] == done["result_chars"]
    assert call["is_error"] is False
    assert call["duration_ms"] is not None
    assert call["started_at"] is not None
    assert call["finished_at"] is not None
    assert call["milestone_key"] == final["milestones"][0]["key"]
    # Nobody else's.
    assert_error_shape(foreign, 404)


async def test_before_tool_resume_approve_deny_edit_and_every_misuse(
    api_factory: ApiFactory,
    api_settings: Settings,
    temporal_dev_env: WorkflowEnvironment,
    session_manager: DatabaseSessionManager,
    alice: ApiUser,
) -> None:
    async with (
        tool_stack(
            api_factory,
            api_settings,
            temporal_dev_env,
            session_manager,
            approve=["get_current_time"],
        ) as tooled,
        tooled.client(alice.key) as http,
    ):
        # Arrange: three tasks paused at their call.
        approved, denied, edited = [(await create(http))["id"] for _ in range(3)]
        pauses = {t: (await wait_paused(http, t))["paused"] for t in (approved, denied, edited)}
        pause = pauses[approved]
        resume = f"/v1/tasks/{approved}/resume"
        bp = pause["breakpoint_id"]

        # Act 1: every misuse, while it waits.
        wrong_action = await http.post(resume, json={"breakpoint_id": bp, "action": "continue"})
        wrong_bp = await http.post(resume, json={"breakpoint_id": "bp-9", "action": "approve"})
        stray_arguments = await http.post(
            resume,
            json={"breakpoint_id": bp, "action": "approve", "arguments": {"timezone": "UTC"}},
        )
        edit_without_arguments = await http.post(
            resume, json={"breakpoint_id": bp, "action": "edit"}
        )
        invalid_edit = await http.post(
            resume, json={"breakpoint_id": bp, "action": "edit", "arguments": {"timezone": 42}}
        )
        still = (await http.get(f"/v1/tasks/{approved}")).json()

        # Act 2: the three decisions.
        ok = await http.post(resume, json={"breakpoint_id": bp, "action": "approve"})
        no = await http.post(
            f"/v1/tasks/{denied}/resume",
            json={
                "breakpoint_id": pauses[denied]["breakpoint_id"],
                "action": "deny",
                "feedback": "no clocks today",
            },
        )
        changed = await http.post(
            f"/v1/tasks/{edited}/resume",
            json={
                "breakpoint_id": pauses[edited]["breakpoint_id"],
                "action": "edit",
                "arguments": {"timezone": "Europe/Paris"},
            },
        )
        finals = {t: await wait_finished(http, t) for t in (approved, denied, edited)}
        after_end = await http.post(resume, json={"breakpoint_id": bp, "action": "approve"})
        calls = {t: await tool_calls(http, t) for t in (approved, denied, edited)}

    # Assert: the pause state shows the call and what may be done.
    assert pause["kind"] == "before_tool"
    assert pause["allowed_actions"] == ["approve", "deny", "edit", "abort"]
    call = pause["tool_call"]
    assert (call["server"], call["tool"]) == ("time", "get_current_time")
    assert json.loads(call["arguments"]) == {"timezone": "UTC"}
    # Misuse: 409 from the workflow's validator, 422 for arguments the schema refuses;
    # none of them moved the task.
    for refused in (wrong_action, wrong_bp, stray_arguments, edit_without_arguments):
        assert_error_shape(refused, 409, "resume_rejected")
    assert "arguments" in stray_arguments.json()["error"]["message"]
    assert_error_shape(invalid_edit, 422, "validation_error")
    assert invalid_edit.json()["error"]["details"][0]["loc"] == ["body", "arguments"]
    assert still["status"] == TaskStatus.PAUSED
    assert still["paused"]["breakpoint_id"] == bp
    # Decisions.
    assert [r.status_code for r in (ok, no, changed)] == [200, 200, 200]
    assert all(f["status"] == TaskStatus.COMPLETED for f in finals.values()), finals
    assert after_end.status_code == 409
    (ran,) = calls[approved]
    assert (ran["status"], ran["executions"]) == ("completed", 1)
    assert finals[approved]["totals"]["tool_calls"] == 1
    (refused_call,) = calls[denied]
    assert (refused_call["status"], refused_call["executions"]) == ("denied", 0)
    assert "no clocks today" in refused_call["result_preview"]
    assert finals[denied]["totals"]["tool_calls"] == 0
    (edited_call,) = calls[edited]
    assert (edited_call["status"], edited_call["executions"]) == ("completed", 1)
    assert json.loads(edited_call["arguments"]) == {"timezone": "Europe/Paris"}
    assert "Europe/Paris" in edited_call["result_preview"]
