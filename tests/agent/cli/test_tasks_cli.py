"""`agent run`, `follow`, `tasks`, `show`, `cancel` as subprocesses against the real stack."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from agent.cli.exit_codes import ExitCode, FollowExit
from agent.llm.simulator.config import SimulatorConfig
from tests.agent.client.stack import RunningStack, running_stack

AGENT = str(Path(sys.executable).parent / "agent")
GOAL = "Write a short report on durable execution [milestones=2]"
PROCESS_TIMEOUT_SECONDS = 120.0


@dataclass
class Result:
    """A finished CLI process."""

    code: int
    out: str
    err: str

    def json_lines(self) -> list[dict[str, Any]]:
        """The `--json` output, one object per line."""
        return [json.loads(line) for line in self.out.splitlines() if line.startswith("{")]


@pytest.fixture
async def stack(
    temporal_dev_env: WorkflowEnvironment, database_url: str, redis_server_url: str
) -> AsyncIterator[RunningStack]:
    """Simulator (slow enough to interrupt mid-run), worker and API of this test."""
    sim = SimulatorConfig(port=0, ttft_ms=0, tps=150, output_tokens=40)
    async with running_stack(
        temporal_dev_env.client, database_url, redis_server_url, simulator=sim
    ) as running:
        yield running


def _env(
    stack: RunningStack | None, data_dir: Path, extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_")}
    env.update({"AGENT_DATA_DIR": str(data_dir), "AGENT_LOG_LEVEL": "WARNING", "COLUMNS": "120"})
    if stack is not None:
        env.update({"AGENT_API_URL": stack.api_url, "AGENT_API_KEY": stack.api_key})
    env.update(extra or {})
    return env


async def _spawn(env: dict[str, str], cwd: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        AGENT,
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _finish(process: asyncio.subprocess.Process) -> Result:
    async with asyncio.timeout(PROCESS_TIMEOUT_SECONDS):
        out, err = await process.communicate()
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


async def agent(
    stack: RunningStack | None, data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> Result:
    """Run `agent ARGS` to its end (the servers keep running in this event loop)."""
    return await _finish(await _spawn(_env(stack, data_dir, env), data_dir, *args))


async def test_run_follow_redirected_prints_plain_lines_one_per_event(
    stack: RunningStack, tmp_path: Path
) -> None:
    # Act: stdout is a pipe, not a terminal.
    result = await agent(
        stack, tmp_path, "run", GOAL, "--breakpoint", "after_plan", "--follow", "--auto-resume"
    )

    # Assert: no panels or escape codes; one line per stored event, in order.
    assert result.code == FollowExit.COMPLETED, result.err
    assert result.out.endswith("\n")
    assert "\x1b[" not in result.out
    assert not any(ch in result.out for ch in "╭│┃━")
    lines = result.out.splitlines()
    seqs = [int(line.split()[0][1:]) for line in lines if line.startswith("#")]
    assert seqs == list(range(1, len(seqs) + 1))
    assert any(line.startswith("breakpoint after_plan (bp-1-after_plan)") for line in lines)
    assert any(line.startswith("  plan m1 ") for line in lines)
    assert "auto-resume: continue" in lines
    assert any(" BREAKPOINT_RESUMED Resumed from bp-1-after_plan: continue" in x for x in lines)
    assert any(" TASK_COMPLETED Task completed" in line for line in lines)
    assert any(line.startswith("task ") and " completed: " in line for line in lines)
    assert any("namespaces/default/workflows/task-" in line for line in lines)
    assert "summary:" in lines


async def test_run_follow_redirected_ends_with_the_resume_hint_at_a_breakpoint(
    stack: RunningStack, tmp_path: Path
) -> None:
    # Act
    result = await agent(stack, tmp_path, "run", GOAL, "-b", "after_plan", "--follow")

    # Assert: the breakpoint line stands alone and the hint is the last line.
    assert result.code == FollowExit.PAUSED, result.err
    assert result.out.endswith("\n")
    lines = result.out.splitlines()
    assert lines[-1].startswith("paused at bp-1-after_plan; answer with `agent resume ")
    assert any(line.startswith("breakpoint after_plan (bp-1-after_plan)") for line in lines)


async def test_paused_without_auto_resume_exits_5_and_follow_continues_without_repeats(
    stack: RunningStack, tmp_path: Path
) -> None:
    # Arrange: a non-interactive run stops at the breakpoint (exit 5) and saves its cursor.
    first = await agent(
        stack, tmp_path, "run", GOAL, "--breakpoint", "after_plan", "--follow", "--json"
    )
    assert first.code == FollowExit.PAUSED, first.err
    task_id = first.json_lines()[0]["task_id"]
    first_seqs = [m["cursor"] for m in first.json_lines() if m["kind"] == "event"]
    saved = int((tmp_path / "follow" / f"{task_id}.seq").read_text())

    # Act
    second = await agent(stack, tmp_path, "follow", task_id, "--json", "--auto-resume")

    # Assert
    assert second.code == FollowExit.COMPLETED, second.err
    second_seqs = [m["cursor"] for m in second.json_lines() if m["kind"] == "event"]
    assert saved == first_seqs[-1]
    assert first_seqs == list(range(1, len(first_seqs) + 1))
    assert second_seqs == list(range(saved + 1, saved + 1 + len(second_seqs)))
    summary = second.json_lines()[-1]
    assert summary["kind"] == "summary"
    assert summary["status"] == "completed"
    assert summary["result"]
    # The terminal event itself carries the result's start and where to read all of it.
    completed = [
        m["event"]
        for m in second.json_lines()
        if m["kind"] == "event" and m["event"]["type"] == "TASK_COMPLETED"
    ]
    assert completed[0]["details"]["task_url"] == f"/v1/tasks/{task_id}"
    assert summary["result"].startswith(completed[0]["details"]["result_preview"].rstrip("…"))


async def test_ctrl_c_detaches_with_4_and_follow_reattaches_from_the_last_seq(
    stack: RunningStack, tmp_path: Path
) -> None:
    # Arrange: a slower task, followed in JSON mode.
    goal = "Write a short report on durable execution [milestones=2] [output_tokens=120]"
    process = await _spawn(_env(stack, tmp_path), tmp_path, "run", goal, "--follow", "--json")
    assert process.stdout is not None
    lines: list[dict[str, Any]] = []
    async with asyncio.timeout(PROCESS_TIMEOUT_SECONDS):
        while not any(m.get("kind") == "event" for m in lines):
            lines.append(json.loads(await process.stdout.readline()))

    # Act
    process.send_signal(signal.SIGINT)
    detached = await _finish(process)
    task_id = lines[0]["task_id"]
    seen = [m["cursor"] for m in lines + detached.json_lines() if m.get("kind") == "event"]
    reattached = await agent(stack, tmp_path, "follow", task_id, "--json")

    # Assert
    assert detached.code == FollowExit.DETACHED, detached.err
    assert any(m.get("kind") == "detached" for m in detached.json_lines())
    assert f"agent follow {task_id}" in detached.out
    assert reattached.code == FollowExit.COMPLETED, reattached.err
    later = [m["cursor"] for m in reattached.json_lines() if m["kind"] == "event"]
    assert later
    assert later[0] == seen[-1] + 1
    assert not set(seen) & set(later)


async def test_tasks_show_and_cancel(stack: RunningStack, tmp_path: Path) -> None:
    # Arrange: a task waiting at its breakpoint.
    started = await agent(stack, tmp_path, "run", GOAL, "--breakpoint", "after_plan", "--json")
    assert started.code == 0, started.err
    task_id = json.loads(started.out)["id"]
    paused = await agent(stack, tmp_path, "follow", task_id, "--json")
    assert paused.code == FollowExit.PAUSED

    # Act
    listed = await agent(stack, tmp_path, "tasks")
    shown = await agent(stack, tmp_path, "show", task_id)
    cancelled = await agent(stack, tmp_path, "cancel", task_id)
    ended = await agent(stack, tmp_path, "follow", task_id, "--json")
    again = await agent(stack, tmp_path, "cancel", task_id)

    # Assert
    assert listed.code == 0
    assert task_id.replace("-", "")[:8] in listed.out
    assert task_id not in listed.out
    assert shown.code == 0
    assert "paused at after_plan" in shown.out
    assert "m1" in shown.out
    assert cancelled.code == 0
    assert "Cancellation requested" in cancelled.out
    assert ended.code == FollowExit.CANCELLED, ended.out
    assert again.code == ExitCode.UNAVAILABLE
    assert "409" in again.err


async def test_without_an_api_configured_commands_exit_2(tmp_path: Path) -> None:
    result = await agent(None, tmp_path, "tasks")
    assert result.code == FollowExit.USAGE
    assert "AGENT_API_URL" in result.err
