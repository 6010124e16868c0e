"""Scenario 1: orchestration overhead against a bare Temporal workflow.

K-milestone tasks on an instant simulator with a sequential plan, one at a time, against
`BareTaskWorkflow` making the same LLM calls (same roles, same order) with no database
and no events. Figure: project wall time / bare wall time (target <= 1.25).
"""

from __future__ import annotations

import statistics
import time

from bench.client import INSTANT
from bench.harness import Bench
from bench.model import Figure, ScenarioResult, at_most, ratio
from bench.scenarios.common import goal, llm_calls_of, sequential_waves

TARGET = at_most(1.25)
WARMUP_TASKS = 1


async def run(bench: Bench) -> ScenarioResult:
    """Measure the overhead ratio for every configured milestone count."""
    result = ScenarioResult("overhead", "1. Orchestration overhead (instant LLM, sequential plan)")
    params = bench.params
    for k in params.overhead_milestones:
        text = goal(f"overhead {bench.run_tag}", f"{INSTANT} [milestones={k}] [plan=sequential]")
        # Warm-up: first task pays connection set-up and prompt cache misses on both sides.
        task_id, _ = await bench.run_project_task(text)
        roles = await llm_calls_of(bench.clients, task_id)
        waves = sequential_waves(roles)
        await bench.run_bare_task(text, waves)
        project: list[float] = []
        bare: list[float] = []
        # Interleaved, so a slow moment of the machine hits both sides alike.
        for _ in range(params.overhead_tasks):
            project.append((await bench.run_project_task(text))[1])
            bare.append(await bench.run_bare_task(text, waves))
        value = ratio(sum(project), sum(bare))
        result.figures.append(
            Figure(
                f"K={k}: project / bare wall time",
                value,
                "x",
                TARGET,
                note=(
                    f"{len(roles)} LLM calls per task; median "
                    f"{statistics.median(project) * 1000:.0f} ms vs "
                    f"{statistics.median(bare) * 1000:.0f} ms"
                ),
            )
        )
        result.raw[f"k{k}"] = {
            "llm_calls_per_task": len(roles),
            "roles": [r.value for r in roles],
            "project_seconds": [round(v, 4) for v in project],
            "bare_seconds": [round(v, 4) for v in bare],
            "per_call_overhead_ms": round(
                (sum(project) - sum(bare)) / len(project) / max(1, len(roles)) * 1000, 2
            ),
        }
        result.distributions[f"K={k} project task"] = [v * 1000 for v in project]
        result.distributions[f"K={k} bare task"] = [v * 1000 for v in bare]
    result.raw["measured_at"] = time.time()
    return result
