"""Scenario 6: breakpoint resume, `POST /resume` -> the next activity started.

Tasks pause at `after_plan`; each is resumed alone (so samples do not queue behind each
other). t0 = just before the POST; t1 = `ActivityTaskStarted` of the first activity
after the update was accepted, from the workflow's history (the dev server shares the
host clock). Target: p95 <= 200 ms.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from temporalio.api.enums.v1 import EventType as HistoryEventType

from bench.client import INSTANT
from bench.harness import Bench
from bench.model import Figure, ScenarioResult, at_most, percentile

TARGET = at_most(200.0)
PAUSED = "paused"
GAP_SECONDS = 0.05


def _seconds(ts: Any) -> float:
    value: datetime = ts.ToDatetime()
    return value.timestamp()


async def _next_activity_started(bench: Bench, workflow_id: str) -> float | None:
    history = await bench.clients.temporal.get_workflow_handle(workflow_id).fetch_history()
    accepted = False
    for event in history.events:
        if event.event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            accepted = True
        elif accepted and event.event_type == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            return _seconds(event.event_time)
    return None


async def run(bench: Bench) -> ScenarioResult:
    """Pause tasks at `after_plan`, resume them one by one, time the next activity."""
    n = bench.params.resume_samples
    result = ScenarioResult("resume", f"6. Breakpoint resume ({n} samples)")
    text = f"bench resume {bench.run_tag}: write a short report {INSTANT} [milestones=1]"
    created = await asyncio.gather(
        *(bench.clients.create_task(text, breakpoints=["after_plan"]) for _ in range(n))
    )
    paused = await asyncio.gather(*(bench.clients.wait_status(t["id"], [PAUSED]) for t in created))
    sent: dict[str, float] = {}
    post_ms: list[float] = []
    for task in paused:
        breakpoint_id = task["paused"]["breakpoint_id"]
        sent[task["workflow_id"]] = time.time()
        started = time.perf_counter()
        response = await bench.clients.http.post(
            f"/v1/tasks/{task['id']}/resume",
            json={"breakpoint_id": breakpoint_id, "action": "continue"},
        )
        post_ms.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        await bench.clients.wait_result(task["workflow_id"])
        await asyncio.sleep(GAP_SECONDS)
    samples: list[float] = []
    for workflow_id, t0 in sent.items():
        t1 = await _next_activity_started(bench, workflow_id)
        if t1 is not None:
            samples.append((t1 - t0) * 1000)
    p95 = round(percentile(samples, 95), 2) if samples else None
    result.figures.append(
        Figure(
            "POST /resume -> next activity started: p95",
            p95,
            "ms",
            TARGET,
            note=f"p50 {percentile(samples, 50):.1f} ms; POST answered p95 "
            f"{percentile(post_ms, 95):.1f} ms",
        )
    )
    result.distributions["resume -> next activity"] = samples
    result.raw.update(
        {
            "samples": len(samples),
            "p50": round(percentile(samples, 50), 2),
            "p95": p95,
            "max": round(max(samples), 2) if samples else None,
            "post_p50_ms": round(percentile(post_ms, 50), 2),
            "post_p95_ms": round(percentile(post_ms, 95), 2),
        }
    )
    return result
