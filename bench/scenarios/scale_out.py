"""Scenario 11: scale out, two worker processes and two API processes on one stack.

The same closed loop (C tasks in flight, T tasks, instant simulator, sequential plan) runs
against a group of 1 worker + 2 APIs, then against 2 workers + 2 APIs, each on a queue of
its own; tasks are created on the two APIs in turn. Figures: tasks/s with 2 workers / with
1 (no target: on a 2-core machine both workers share the cores with Temporal and
PostgreSQL), how the 2-worker run's activities spread over the workers (worker identity of
every `ActivityTaskStarted` in the histories), and relay across processes: F tasks of the
2-worker run are followed on both APIs at once, and every socket must receive every stored
event, gapless. The scenario fails when a worker ran no activity or a socket missed an event.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from itertools import cycle
from typing import Any

from temporalio.api.enums.v1 import EventType as HistoryEventType

from bench.app_pair import AppGroup, app_group
from bench.client import INSTANT
from bench.harness import Bench
from bench.model import Figure, ScenarioResult, ratio
from bench.scenarios.common import closed_loop, goal

APIS = 2
FOLLOW_DIRECTIVES = "[ttft_ms=300]"
"""Followed tasks start slowly enough for their sockets to connect first."""


class ScaleOutError(RuntimeError):
    """The run's own checks failed: a worker idle, a socket missing events."""


async def _run_task(group: AppGroup, bench: Bench, api: int, text: str) -> str:
    response = await group.https[api].post("/v1/tasks", json={"goal": text})
    response.raise_for_status()
    task: dict[str, Any] = response.json()
    await bench.clients.wait_result(task["workflow_id"])
    return str(task["id"])


async def _timed_run(
    group: AppGroup, bench: Bench, text: str, concurrency: int, total: int
) -> tuple[float, list[str]]:
    """Run `total` tasks with `concurrency` in flight, alternating APIs; (seconds, ids)."""
    apis = cycle(range(APIS))
    ids: list[str] = []

    async def one() -> None:
        ids.append(await _run_task(group, bench, next(apis), text))

    return await closed_loop(concurrency, total, one), ids


async def _activity_workers(bench: Bench, task_ids: list[str]) -> Counter[str]:
    """Activities run per worker identity, from the tasks' histories."""
    spread: Counter[str] = Counter()
    for task_id in task_ids:
        history = await bench.clients.temporal.get_workflow_handle(
            f"task-{task_id}"
        ).fetch_history()
        spread.update(
            event.activity_task_started_event_attributes.identity
            for event in history.events
            if event.event_type == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        )
    return spread


async def _followed_on_both_apis(
    group: AppGroup, bench: Bench, text: str, count: int
) -> tuple[int, list[str]]:
    """Follow `count` new tasks on every API; (events stored, what each socket lacked)."""
    created = []
    for n in range(count):
        response = await group.https[n % APIS].post("/v1/tasks", json={"goal": text})
        response.raise_for_status()
        created.append(response.json())
    ids = [str(t["id"]) for t in created]
    helpers = [
        bench.helper(
            "bench.ws_clients",
            {
                "api_url": url,
                "api_key": bench.stack.info.api_key,
                "task_ids": ids,
                "clients_per_task": 1,
                "until_terminal": True,
            },
            wait_ready=True,
        )
        for url in group.api_urls
    ]
    async with helpers[0] as first, helpers[1] as second:
        await asyncio.gather(*(bench.clients.wait_result(t["workflow_id"]) for t in created))
    stored = {task_id: await bench.clients.count_events([task_id]) for task_id in ids}
    problems: list[str] = []
    for api_url, handle in zip(group.api_urls, (first, second), strict=True):
        for socket in handle.result["sockets"]:
            seqs = [row[1] for row in socket["rows"] if row[0] == "e"]
            expected = list(range(1, stored[socket["task_id"]] + 1))
            if seqs != expected:
                problems.append(
                    f"{api_url} task {socket['task_id']}: got {len(seqs)} events "
                    f"of {len(expected)} (gapless 1..N expected)"
                )
    return sum(stored.values()), problems


async def run(bench: Bench) -> ScenarioResult:
    """Measure 2 workers against 1 on one stack, the spread and the cross-process relay."""
    params = bench.params
    c, t, m = params.scale_out_concurrency, params.scale_out_tasks, params.scale_out_milestones
    result = ScenarioResult(
        "scale_out", f"11. Scale out (2 APIs; 1 vs 2 workers; {c} in flight, {t} tasks)"
    )
    text = goal(f"scale {bench.run_tag}", f"{INSTANT} [milestones={m}] [plan=sequential]")
    follow_text = goal(f"scale-follow {bench.run_tag}", f"{FOLLOW_DIRECTIVES} [milestones={m}]")
    logs = bench.work_dir
    seconds: dict[int, float] = {}
    async with app_group(
        bench.stack, bench.clients.temporal, "scale1", {}, logs, workers=1, apis=APIS
    ) as one:
        await _run_task(one, bench, 0, text)  # warm-up
        seconds[1], _ = await _timed_run(one, bench, text, c, t)
    async with app_group(
        bench.stack, bench.clients.temporal, "scale2", {}, logs, workers=2, apis=APIS
    ) as two:
        await _run_task(two, bench, 0, text)  # warm-up
        seconds[2], two_ids = await _timed_run(two, bench, text, c, t)
        spread = await _activity_workers(bench, two_ids)
        stored, problems = await _followed_on_both_apis(
            two, bench, follow_text, params.scale_out_followed
        )

    if len(spread) < 2:
        problems.append(f"activities ran on {len(spread)} worker(s) only: {dict(spread)}")
    if problems:
        raise ScaleOutError("; ".join(problems[:10]))
    rates = {workers: t / secs for workers, secs in seconds.items()}
    shares = sorted(spread.values(), reverse=True)
    result.figures.append(
        Figure(
            "tasks/s: 2 workers / 1 worker",
            ratio(rates[2], rates[1]),
            "x",
            note=f"{rates[2]:.2f}/s vs {rates[1]:.2f}/s",
        )
    )
    result.figures.append(
        Figure(
            "activities on the busier worker",
            round(100 * shares[0] / sum(shares), 1),
            "%",
            note=f"{shares[0]} of {sum(shares)} activities",
        )
    )
    result.figures.append(
        Figure(
            "events received on each API / stored",
            1.0,
            "x",
            note=f"{params.scale_out_followed} tasks followed on both APIs, {stored} events each",
        )
    )
    result.raw.update(
        {
            "concurrency": c,
            "tasks": t,
            "seconds": {str(k): round(v, 3) for k, v in seconds.items()},
            "activities_per_worker": dict(spread),
            "followed_tasks": params.scale_out_followed,
            "events_stored_followed": stored,
        }
    )
    return result
