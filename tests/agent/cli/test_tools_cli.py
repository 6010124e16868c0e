"""Tools from the command line: `agent run --tools`, the before_tool prompt, `resume --arguments`.

Subprocesses against the real stack with the reference `mcp-server-time`; the prompt in a
real 80x24 terminal (tmux).
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import pytest
from temporalio.testing import WorkflowEnvironment

from agent.cli.exit_codes import FollowExit
from agent.client import AgentApiClient
from agent.llm.simulator.config import SimulatorConfig
from tests.agent.cli.terminal import TMUX, tmux_pane
from tests.agent.cli.test_tasks_cli import AGENT, agent
from tests.agent.client.stack import RunningStack, running_stack, time_servers

UTC_NOW = '[tool=time.get_current_time {"timezone": "UTC"}]'
GOAL = f"What time is it in UTC? [milestones=1] [plan=sequential] {UTC_NOW}"


@pytest.fixture
async def stack(
    temporal_dev_env: WorkflowEnvironment, database_url: str, redis_server_url: str
) -> AsyncIterator[RunningStack]:
    """API and worker with `mcp-server-time`; the simulator calls it when a goal says so."""
    sim = SimulatorConfig(port=0, ttft_ms=0, tps=0, output_tokens=40)
    async with running_stack(
        temporal_dev_env.client,
        database_url,
        redis_server_url,
        simulator=sim,
        mcp_servers=time_servers(),
    ) as running:
        yield running


def _task_id(out: str) -> UUID:
    line = next(x for x in out.splitlines() if x.startswith("started task "))
    return UUID(line.split()[-1])


async def test_run_with_tools_prints_the_call_and_its_result(
    stack: RunningStack, tmp_path: Path
) -> None:
    # Act
    result = await agent(
        stack,
        tmp_path,
        "run",
        GOAL,
        "--tools",
        "time",
        "--max-tool-calls",
        "3",
        "--max-tool-rounds",
        "2",
        "--follow",
    )

    # Assert: the plain lines show the call and its result; the task kept the options.
    assert result.code == FollowExit.COMPLETED, result.err + result.out
    lines = result.out.splitlines()
    started = [x for x in lines if " TOOL_CALL_STARTED " in x]
    done = [x for x in lines if " TOOL_CALL_COMPLETED " in x]
    assert len(started) == len(done) == 1, result.out
    assert 'tool time.get_current_time {"timezone": "UTC"} · attempt 1' in started[0]
    assert " TOOL_CALL_COMPLETED tool time.get_current_time · " in done[0]
    assert " ms · " in done[0]
    assert " chars → " in done[0]
    assert '"timezone": "UTC"' in done[0].split(" → ")[1]  # the start of the result
    assert any(x.startswith("task ") and x.endswith(", 1 tool calls") for x in lines)
    async with AgentApiClient(stack.target) as api:
        detail = await api.get_task(_task_id(result.out))
        (call,) = (await api.list_tool_calls(detail.id)).items
    assert detail.tools_requested == ["time"]
    assert detail.budget.max_tool_calls == 3
    assert call.label == "time.get_current_time"


async def test_unknown_tool_is_a_usage_error(stack: RunningStack, tmp_path: Path) -> None:
    result = await agent(stack, tmp_path, "run", GOAL, "--tools", "time,weather.now")

    assert result.code == 2
    assert "tools[1]" in result.err


async def test_paused_at_a_call_then_resumed_with_edited_arguments(
    stack: RunningStack, tmp_path: Path
) -> None:
    # Arrange: every call needs approval; the redirected follow stops at the first.
    paused = await agent(stack, tmp_path, "run", GOAL, "-b", "before_tool", "--follow")
    task_id = _task_id(paused.out)

    # Act: refused arguments first (locally, then by the schema), then a valid edit.
    not_json = await agent(
        stack, tmp_path, "resume", str(task_id), "-a", "edit", "--arguments", "{nope"
    )
    wrong = await agent(
        stack, tmp_path, "resume", str(task_id), "-a", "edit", "--arguments", '{"timezone": 1}'
    )
    edited = await agent(
        stack,
        tmp_path,
        "resume",
        str(task_id),
        "-a",
        "edit",
        "--arguments",
        '{"timezone": "Asia/Tokyo"}',
    )
    followed = await agent(stack, tmp_path, "follow", str(task_id))

    # Assert
    assert paused.code == FollowExit.PAUSED, paused.err + paused.out
    lines = paused.out.splitlines()
    assert any(x.startswith("breakpoint before_tool (") for x in lines)
    assert "  server     time" in lines
    assert "  tool       get_current_time" in lines
    assert '      "timezone": "UTC"' in lines
    assert not_json.code == 2
    assert "not valid JSON" in not_json.err
    assert wrong.code == 2, wrong.out + wrong.err
    assert "arguments" in wrong.err
    assert edited.code == 0, edited.err
    assert "edit" in edited.out
    assert followed.code == FollowExit.COMPLETED, followed.err + followed.out
    async with AgentApiClient(stack.target) as api:
        (call,) = (await api.list_tool_calls(task_id)).items
    assert call.arguments == '{"timezone": "Asia/Tokyo"}'
    assert call.executions == 1
    assert call.result_preview is not None
    assert "Asia/Tokyo" in call.result_preview


def _editor(directory: Path) -> Path:
    """An `$EDITOR` that replaces the file it is given with other arguments."""
    script = directory / "edit-arguments.sh"
    script.write_text('#!/bin/sh\nprintf \'{"timezone": "Europe/Paris"}\' > "$1"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.mark.skipif(TMUX is None, reason="needs tmux (apt-get install tmux)")
async def test_the_prompt_shows_the_call_and_edits_its_arguments_at_80x24(
    stack: RunningStack, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL")}
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        {
            "AGENT_DATA_DIR": str(tmp_path),
            "AGENT_LOG_LEVEL": "WARNING",
            "AGENT_API_URL": stack.api_url,
            "AGENT_API_KEY": stack.api_key,
            "EDITOR": str(_editor(tmp_path)),
        }
    )
    command = [AGENT, "run", GOAL, "--breakpoint", "before_tool", "--follow"]
    async with tmux_pane(tmp_path, env, command, 80, 24) as pane:
        # Act 1: the task pauses at its call; the prompt offers the allowed actions.
        prompt = await pane.wait_for(
            lambda s: any(line.startswith("Action [") for line in s), "the before_tool prompt"
        )
        # Act 2: edit (the editor writes other arguments); watch it complete.
        await pane.type("edit", "Enter")
        done = await pane.wait_for(lambda s: any("[exit " in line for line in s), "the end")
        everything = await pane.everything()

    (tmp_path.parent / "capture-80x24-before-tool.txt").write_text("\n".join(prompt))
    (tmp_path.parent / "capture-80x24-before-tool-done.txt").write_text("\n".join(everything))
    # Assert: the call as the person saw it, then what ran.
    screen = "\n".join(prompt)
    assert "Breakpoint before_tool" in screen
    assert "server     time" in screen
    assert "tool       get_current_time" in screen
    assert '"timezone": "UTC"' in screen
    assert "Action [approve/deny/edit/abort] (default approve):" in screen
    assert all(len(line) <= 80 for line in prompt)
    text = "\n".join(everything)
    assert 'arguments: {"timezone": "Europe/Paris"}' in text
    assert "resumed: edit" in text
    assert "[exit 0]" in "\n".join(done)
