"""Scenario 9: a milestone making 5 tool calls, against a bare Temporal workflow making them.

The project side is an API and worker pair configured with the reference MCP server
`mcp-server-time` over stdio (`bench_tool_servers`). Its task has one milestone whose
model (the instant simulator) asks for 5 `time.get_current_time` calls in one turn, then
answers: the task pins its tools, runs the 5 calls as 5 activities at once (each storing
its result and events), and takes a second model turn. The baseline, `BareToolTaskWorkflow`
on the baseline worker, makes the same LLM calls (same roles, same order), lists the tools
once and makes the same 5 calls as 5 activities at once through the same `Toolbox` on its
own `mcp-server-time`, storing nothing. Figure: project wall time / bare wall time
(target <= 1.25). The run is refused unless every project task made its 5 calls.
"""

from __future__ import annotations

import statistics
import time
import uuid

from sqlalchemy import func, select

from agent.contract.tools import ToolCallStatus
from agent.db.models import ToolCallRecord
from agent.events.types import AgentRole
from bench.app_pair import AppPair, app_pair
from bench.bare_tools import TIME_SERVER, BareToolCall, BareToolTaskInput, bench_tool_servers
from bench.client import INSTANT
from bench.harness import Bench
from bench.model import Figure, ScenarioResult, at_most, ratio
from bench.scenarios.common import goal, llm_calls_of, sequential_waves

TARGET = at_most(1.25)
TOOL = f"{TIME_SERVER}.get_current_time"
TIMEZONES = ("UTC", "Europe/Paris", "Asia/Tokyo", "America/New_York", "Australia/Sydney")
"""One call each: 5 calls, distinct so that no layer could merge two."""


class ToolCallsMissingError(RuntimeError):
    """A project task did not complete its 5 tool calls."""


def tool_directives() -> str:
    """The simulator directives asking for the 5 calls in one turn."""
    return " ".join(f'[tool={TOOL} {{"timezone": "{zone}"}}]' for zone in TIMEZONES)


def bare_input(text: str, roles: list[AgentRole]) -> BareToolTaskInput:
    """The baseline of a project task whose LLM calls had `roles`: tools after the 1st worker."""
    if AgentRole.WORKER not in roles:
        raise ToolCallsMissingError(f"the project task made no worker call: {roles}")
    return BareToolTaskInput(
        goal=text,
        waves=sequential_waves(roles),
        tool_calls=[BareToolCall(tool=TOOL, arguments={"timezone": zone}) for zone in TIMEZONES],
        tools_after_wave=roles.index(AgentRole.WORKER) + 1,
    )


async def _completed_calls(bench: Bench, task_id: str) -> int:
    stmt = select(func.count()).where(
        ToolCallRecord.task_id == uuid.UUID(task_id),
        ToolCallRecord.status == ToolCallStatus.COMPLETED,
    )
    async with bench.clients.db.session() as session:
        return int((await session.execute(stmt)).scalar_one())


async def _run_project(bench: Bench, pair: AppPair, text: str) -> tuple[str, float]:
    started = time.perf_counter()
    task = await pair.create_task(text)
    await bench.clients.wait_result(task["workflow_id"])
    seconds = time.perf_counter() - started
    made = await _completed_calls(bench, task["id"])
    if made != len(TIMEZONES):
        raise ToolCallsMissingError(
            f"task {task['id']} completed {made} tool calls, not {len(TIMEZONES)}"
        )
    return task["id"], seconds


async def run(bench: Bench) -> ScenarioResult:
    """Measure the project / bare wall time of a milestone with 5 tool calls."""
    n = bench.params.tool_tasks
    result = ScenarioResult("tools", "9. Tool calls (5 MCP calls in one milestone, instant LLM)")
    text = goal(
        f"tools {bench.run_tag}",
        f"{INSTANT} [milestones=1] [plan=sequential] {tool_directives()}",
    )
    logs = bench.work_dir / "tools"
    logs.mkdir(parents=True, exist_ok=True)
    project: list[float] = []
    bare: list[float] = []
    variables = {"AGENT_MCP_SERVERS": bench_tool_servers()}
    async with app_pair(bench.stack, bench.clients.temporal, "tools", variables, logs) as pair:
        # Warm-up: both sides start their `mcp-server-time` and open connections.
        task_id, _ = await _run_project(bench, pair, text)
        roles = await llm_calls_of(bench.clients, task_id)
        baseline = bare_input(text, roles)
        await bench.run_bare_tool_task(baseline)
        # Interleaved, so a slow moment of the machine hits both sides alike.
        for _ in range(n):
            project.append((await _run_project(bench, pair, text))[1])
            bare.append(await bench.run_bare_tool_task(baseline))
    value = ratio(sum(project), sum(bare))
    result.figures.append(
        Figure(
            "5 tool calls: project / bare wall time",
            value,
            "x",
            TARGET,
            note=(
                f"{n} tasks per side; {len(roles)} LLM calls + {len(TIMEZONES)} tool calls per "
                f"task; median {statistics.median(project) * 1000:.0f} ms vs "
                f"{statistics.median(bare) * 1000:.0f} ms"
            ),
        )
    )
    result.raw = {
        "tasks_per_side": n,
        "llm_calls_per_task": len(roles),
        "roles": [r.value for r in roles],
        "tool_calls_per_task": len(TIMEZONES),
        "project_seconds": [round(v, 4) for v in project],
        "bare_seconds": [round(v, 4) for v in bare],
        "per_task_overhead_ms": round((sum(project) - sum(bare)) / max(1, n) * 1000, 1),
        "measured_at": time.time(),
    }
    result.distributions["project task (5 tool calls)"] = [v * 1000 for v in project]
    result.distributions["bare task (5 tool calls)"] = [v * 1000 for v in bare]
    return result
