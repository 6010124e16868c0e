"""Scenario 10: workflow history per run against the task's length.

For each milestone count a sequential task (instant simulator, one milestone at a time)
runs through the API; every run of its workflow is read back and the largest run's
history (events, and bytes: the size of the serialized events) is recorded with the
task's model calls. The project's runs continue as new near `AGENT_HISTORY_MAX_EVENTS`,
so the largest run should stay flat as tasks grow.

The baseline is `bench.bare_history.ConversationWorkflow` on the same server and
simulator: the same calls, but the conversation travels through activity inputs and
outputs, as the peers do. It runs one task of the longest count and stops itself once
its history passes `PEER_STOP_FRACTION` of Temporal's size or event limit; where it would
have been terminated is extrapolated from its measured growth, and labelled so.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHistory

from agent.contract.task import DEFAULT_HISTORY_MAX_EVENTS
from agent.events.types import TaskStatus
from bench.bare_history import (
    HISTORY_COUNT_LIMIT,
    HISTORY_SIZE_LIMIT_BYTES,
    ConversationInput,
    ConversationResult,
    ConversationWorkflow,
)
from bench.client import INSTANT
from bench.harness import Bench
from bench.history_chart import write_history_chart
from bench.model import Figure, ScenarioResult, ratio
from bench.scenarios.common import llm_calls_of

FULL_MILESTONES = (10, 100, 1_000, 2_000)
QUICK_MILESTONES = (10, 50)
PEER_STOP_FRACTION = 0.8
"""The baseline stops past 80% of a limit: close enough to extrapolate, short of its end."""
TASK_WAIT_SECONDS = 3_600.0
CHART_NAME = "history.svg"
EXTRAPOLATION_MILESTONES = 1_000_000
KIB = 1024


class ImpossibleHistoryResultError(RuntimeError):
    """The scenario's own numbers cannot be right, so it reports no figure at all."""


def history_bytes(history: WorkflowHistory) -> int:
    """Size of the run's history as Temporal serializes it."""
    return History(events=history.events).ByteSize()


async def every_run(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of a closed workflow, first to last (walking back from the latest)."""
    runs: list[WorkflowHistory] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        runs.append(history)
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
        if run_id is None:
            return runs[::-1]


async def project_point(bench: Bench, milestones: int) -> dict[str, Any]:
    """Run one sequential task of `milestones` and measure its largest run."""
    # A short goal: the simulator's milestone titles repeat its first words, and the
    # planner's answer must fit its `max_tokens` (`PLAN_TOKENS_PER_MILESTONE` each).
    text = f"Long job {INSTANT} [milestones={milestones}] [plan=sequential]"
    task = await bench.clients.create_task(text, max_parallel=1)
    handle = bench.clients.temporal.get_workflow_handle(task["workflow_id"])
    await asyncio.wait_for(handle.result(), TASK_WAIT_SECONDS)
    done = await bench.clients.get_task(task["id"])
    if done["status"] != TaskStatus.COMPLETED:
        raise ImpossibleHistoryResultError(f"the {milestones}-milestone task {done['status']}")
    runs = await every_run(bench.clients.temporal, task["workflow_id"])
    calls = len(await llm_calls_of(bench.clients, task["id"]))
    point = {
        "milestones": milestones,
        "calls": calls,
        "runs": len(runs),
        "max_run_events": max(len(r.events) for r in runs),
        "max_run_bytes": max(history_bytes(r) for r in runs),
        "total_events": sum(len(r.events) for r in runs),
    }
    if point["max_run_events"] >= DEFAULT_HISTORY_MAX_EVENTS or calls < 2 * milestones:
        raise ImpossibleHistoryResultError(f"impossible project figures: {point}")
    return point


async def peer_run(bench: Bench, milestones: int) -> tuple[ConversationResult, int]:
    """Run the baseline to `milestones` or near a limit; its result and final history bytes."""
    workflow_id = f"bench-history-peer-{uuid.uuid4().hex}"
    result = await bench.clients.temporal.execute_workflow(
        ConversationWorkflow.run,
        ConversationInput(
            goal=f"bench history peer {bench.run_tag}: {INSTANT}",
            milestones=milestones,
            stop_fraction=PEER_STOP_FRACTION,
        ),
        id=workflow_id,
        task_queue=bench.bare_queue,
    )
    history = await bench.clients.temporal.get_workflow_handle(workflow_id).fetch_history()
    if history.events[-1].event_type != HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        raise ImpossibleHistoryResultError("the baseline did not complete")
    return result, history_bytes(history)


def extrapolated_end(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Where the baseline's run would reach a limit, from its measured growth.

    Bytes grow quadratically (every call carries all earlier answers): a parabola through
    three measured points (first, middle, last); events grow linearly. The first limit
    reached ends the run. None with fewer than three points.
    """
    if len(points) < 3:
        return None
    (x0, y0), (x1, y1), (x2, y2) = (
        (float(p["milestones"]), float(p["bytes"]))
        for p in (points[0], points[len(points) // 2], points[-1])
    )
    a = ((y2 - y0) / (x2 - x0) - (y1 - y0) / (x1 - x0)) / (x2 - x1)
    b = (y1 - y0) / (x1 - x0) - a * (x1 + x0)
    c = y0 - a * x0 * x0 - b * x0
    last = points[-1]
    per_milestone_events = (last["events"] - points[0]["events"]) / (x2 - x0)
    calls_per_milestone = (last["calls"] - points[0]["calls"]) / (x2 - x0)

    def bytes_at(m: float) -> float:
        return a * m * m + b * m + c

    m = float(x2)
    while bytes_at(m) < HISTORY_SIZE_LIMIT_BYTES and (
        last["events"] + per_milestone_events * (m - x2) < HISTORY_COUNT_LIMIT
    ):
        m += 1
        if m > EXTRAPOLATION_MILESTONES:
            return None  # no growth to speak of: it would not die of its history
    return {
        "milestones": int(m),
        "calls": round(last["calls"] + calls_per_milestone * (m - x2)),
        "bytes": round(bytes_at(m)),
        "events": round(last["events"] + per_milestone_events * (m - x2)),
        "limit": "size" if bytes_at(m) >= HISTORY_SIZE_LIMIT_BYTES else "event count",
    }


async def run(bench: Bench) -> ScenarioResult:
    """Measure the largest run per milestone count, the baseline, and draw the chart."""
    counts = QUICK_MILESTONES if bench.params.quick else FULL_MILESTONES
    result = ScenarioResult(
        "history", f"10. History per run against task length ({', '.join(map(str, counts))})"
    )
    # Histories are counts, not timings: the tasks and the baseline run side by side.
    project_runs = asyncio.gather(*(project_point(bench, m) for m in counts))
    project, (peer, peer_final_bytes) = await asyncio.gather(
        project_runs, peer_run(bench, max(counts))
    )
    points = [p.model_dump() for p in peer.points]
    if not points or any(b["bytes"] < a["bytes"] for a, b in itertools.pairwise(points)):
        raise ImpossibleHistoryResultError("the baseline's history did not grow")
    end = extrapolated_end(points)
    by_milestones = {p["milestones"]: p for p in points}
    for point in project:
        m = point["milestones"]
        twin = by_milestones.get(m)
        peer_note = (
            f"bare peer at {m}: {twin['events']} events, {twin['bytes'] / KIB:.0f} KiB"
            if twin is not None
            else f"bare peer: stopped at {points[-1]['milestones']} milestones, near its limit"
        )
        result.figures.append(
            Figure(
                f"{m} milestones: largest run's history",
                point["max_run_events"],
                "events",
                note=f"{point['max_run_bytes'] / KIB:.0f} KiB; {point['runs']} runs; "
                f"{point['calls']} model calls; {peer_note}",
            )
        )
    # Flatness between the two longest tasks (both past their first hand-over in a full
    # run); a short task's single run is small whatever the code.
    before, last = project[-2] if len(project) > 1 else project[0], project[-1]
    result.figures.append(
        Figure(
            f"largest run's bytes, {last['milestones']} vs {before['milestones']} milestones",
            ratio(last["max_run_bytes"], before["max_run_bytes"]),
            "x",
            note=f"events {last['max_run_events']} vs {before['max_run_events']}: runs end "
            "near the event bound; bytes grow with the carried plan state",
        )
    )
    shared = max(
        (p for p in project if p["milestones"] in by_milestones),
        default=None,
        key=lambda p: p["milestones"],
    )
    if shared is not None:
        twin = by_milestones[shared["milestones"]]
        result.figures.append(
            Figure(
                f"bare peer / project, largest run's bytes at {shared['milestones']} milestones",
                ratio(twin["bytes"], shared["max_run_bytes"]),
                "x",
                note="the same calls, the context carried through history",
            )
        )
    result.figures.append(
        Figure(
            "bare peer: milestones done when it stopped",
            points[-1]["milestones"],
            "count",
            note=(
                f"stopped past {PEER_STOP_FRACTION:.0%} of a limit: "
                if peer.stopped_near_limit
                else "reached the longest count: "
            )
            + f"{points[-1]['events']} events, {peer_final_bytes / 2**20:.1f} MiB",
        )
    )
    if end is not None:
        result.figures.append(
            Figure(
                "bare peer: terminated at (EXTRAPOLATED)",
                end["milestones"],
                "count",
                note=f"its {end['limit']} limit at ~{end['calls']} model calls "
                "(a parabola through its measured bytes; not run)",
            )
        )
    result.raw.update(
        {
            "project": project,
            "peer_points": points,
            "peer_final_history_bytes": peer_final_bytes,
            "peer_stopped_near_limit": peer.stopped_near_limit,
            "peer_extrapolated_end": end,
            "limits": {"bytes": HISTORY_SIZE_LIMIT_BYTES, "events": HISTORY_COUNT_LIMIT},
        }
    )
    if bench.results_dir is not None:
        chart = write_history_chart(
            bench.results_dir / CHART_NAME,
            project,
            points,
            end,
            (HISTORY_SIZE_LIMIT_BYTES, HISTORY_COUNT_LIMIT),
        )
        result.raw["chart"] = str(Path(chart))
    return result
