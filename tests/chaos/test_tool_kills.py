"""Scenario: the worker is SIGKILLed while tool calls run on an MCP server.

The counting server (`tests/tool_servers/counting_server.py`) runs over streamable HTTP and
is configured twice in the workers' `AGENT_MCP_SERVERS`: as `never` (`retry: never`) and
as `safe` (`retry: safe`). Each task's milestone calls `side_effect` on both, with a key of
its own and a delay after the effect, so the kill lands after the server counted the effect
but before the call answered. The kill is checked to have landed mid-call: every call's row
is still `running` and the server's count for its key has moved.

Besides the invariants every scenario checks:
- `never`: the side effect ran at most once per approved call; the lost call is `lost`,
  executed once, and its error result is what the model read (quoted in the output).
- `safe`: the call was run again and completed; the model read the second run's result.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from activities.tools import LOST_CALL_RESULT
from agent.contract.tools import ToolCallStatus
from agent.db.models import Milestone, ToolCallRecord
from tests.chaos.clients import Api, follow_all, new_tag
from tests.chaos.harness import Cluster
from tests.chaos.invariants import outcome_of
from tests.chaos.scenario import finish, start_tasks
from tests.tool_servers.counting_server import CounterFile
from tests.tool_servers.process import start_counting_server

NEVER, SAFE = "never", "safe"
DELAY_SECONDS = 8.0
"""How long a call waits after its effect: the window in which the worker is killed."""
OPTIONS: dict[str, Any] = {"max_attempts": 2, "complexity": "simple"}
POLL_SECONDS = 0.05
IN_FLIGHT_WAIT_SECONDS = 120.0


def servers_config(url: str) -> str:
    """`AGENT_MCP_SERVERS`: the same counting server under a `never` and a `safe` policy."""
    entry = {"url": url, "allow": ["side_effect", "count"]}
    return json.dumps(
        {
            "mcpServers": {
                NEVER: {**entry, "retry": "never"},
                SAFE: {**entry, "retry": "safe"},
            }
        }
    )


def effect_goal(tag: str, delay: float) -> str:
    """A one-milestone goal calling `side_effect` on both servers with keys of its own."""
    calls = " ".join(
        f"[tool={server}.side_effect "
        + json.dumps({"key": f"{server}-{tag}", "delay_seconds": delay})
        + "]"
        for server in (NEVER, SAFE)
    )
    return f"Record two effects {tag} [milestones=1] [plan=sequential] {calls}"


async def tool_rows(cluster: Cluster, task_ids: list[uuid.UUID]) -> list[ToolCallRecord]:
    """Every tool call of the tasks."""
    async with cluster.db().session() as session:
        rows = await session.execute(
            select(ToolCallRecord).where(ToolCallRecord.task_id.in_(task_ids))
        )
        return list(rows.scalars())


def effect_key(row: ToolCallRecord) -> str:
    """The counter key a call's arguments name."""
    key: str = json.loads(row.arguments)["key"]
    return key


async def wait_all_in_flight(
    cluster: Cluster, counters: CounterFile, task_ids: list[uuid.UUID]
) -> list[ToolCallRecord]:
    """Wait until every task's two calls are `running` and the server counted both effects."""
    deadline = asyncio.get_running_loop().time() + IN_FLIGHT_WAIT_SECONDS
    while True:
        rows = await tool_rows(cluster, task_ids)
        counts = counters.read()
        running = [r for r in rows if r.status == ToolCallStatus.RUNNING]
        if len(running) == 2 * len(task_ids) and all(
            counts.get(effect_key(r), 0) >= 1 for r in running
        ):
            return running
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(
                f"calls never all in flight: {[(r.server, r.status) for r in rows]}, {counts}"
            )
        await asyncio.sleep(POLL_SECONDS)


async def outputs(cluster: Cluster, task_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Each task's (only) milestone output."""
    async with cluster.db().session() as session:
        rows = await session.execute(select(Milestone).where(Milestone.task_id.in_(task_ids)))
        return {m.task_id: m.output or "" for m in rows.scalars()}


async def _run(cluster: Cluster, counters: CounterFile, n_tasks: int) -> None:
    owner = cluster.users[0]
    api = Api(cluster.api_url, owner.key)
    try:
        # A fault-free run first: its outcome is what every killed task must end with.
        reference_id = await api.create_task(effect_goal(new_tag(), 0.0), **OPTIONS)
        await api.wait_status(reference_id)
        reference = await outcome_of(cluster, reference_id)

        task_ids = await start_tasks(
            api, [effect_goal(new_tag(), DELAY_SECONDS) for _ in range(n_tasks)], **OPTIONS
        )
        followers = follow_all(cluster.ws_url, owner.key, task_ids)
        follower_tasks = [asyncio.create_task(f.run()) for f in followers]
        await wait_all_in_flight(cluster, counters, task_ids)
        cluster.kill_workers()
        # The kill landed mid-call: the effects happened, no call got to store an outcome.
        at_kill = await tool_rows(cluster, task_ids)
        counts_at_kill = counters.read()
        cluster.start_worker()
        report = await finish(
            cluster,
            "tool-kills",
            api,
            task_ids,
            dict.fromkeys(task_ids, reference),
            followers,
            follower_tasks,
        )
        rows = await tool_rows(cluster, [reference_id, *task_ids])
        answers = await outputs(cluster, task_ids)
    finally:
        await api.aclose()
    counts = counters.read()
    print(
        f"tool-kills tools: calls {len(rows)}, "
        f"executions {sum(r.executions for r in rows)}, "
        f"side effects counted by the server {sum(counts.get(effect_key(r), 0) for r in rows)} "
        f"(never {sum(counts.get(effect_key(r), 0) for r in rows if r.server == NEVER)}, "
        f"safe {sum(counts.get(effect_key(r), 0) for r in rows if r.server == SAFE)}), "
        f"by status {sorted((r.server or '', r.status) for r in rows)}"
    )

    assert report.violations == []
    assert len(at_kill) == 2 * n_tasks
    assert all(r.status == ToolCallStatus.RUNNING for r in at_kill), at_kill
    assert all(counts_at_kill.get(effect_key(r), 0) == 1 for r in at_kill), counts_at_kill
    killed = [r for r in rows if r.task_id in task_ids]
    for row in killed:
        quoted = f"tool result {row.function_name}: {row.result}"
        if row.server == NEVER:
            # At most once per approved call; lost, and the model read why.
            assert counts[effect_key(row)] == 1, (row.arguments, counts)
            assert (row.status, row.executions) == (ToolCallStatus.LOST, 1)
            assert row.result == LOST_CALL_RESULT
        else:
            # Run again after the kill, and completed.
            assert counts[effect_key(row)] == 2, (row.arguments, counts)
            assert (row.status, row.executions) == (ToolCallStatus.COMPLETED, 2)
            assert row.result == "2"
        assert quoted in answers[row.task_id], answers[row.task_id][:500]
    for row in rows:
        if row.server == NEVER:
            assert counts.get(effect_key(row), 0) <= 1


@pytest.mark.chaos
# Its three tasks' calls must all be in flight within DELAY_SECONDS: never beside another
# CPU-heavy kill scenario.
@pytest.mark.xdist_group("kills")
@pytest.mark.timeout(900)
async def test_worker_sigkill_mid_tool_call(
    cluster_factory: Callable[..., Any], tmp_path: Path
) -> None:
    state = tmp_path / "counters.json"
    server = await start_counting_server(state)
    try:
        cluster: Cluster = await cluster_factory(
            extra_env={"AGENT_MCP_SERVERS": servers_config(server.url)}
        )
        await _run(cluster, CounterFile(state), n_tasks=3)
    finally:
        await server.kill()
