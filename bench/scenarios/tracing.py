"""Scenario 8: the cost of tracing, on and off in one run.

Two API + worker pairs on the same stack, identical but for the `OTEL_*` variables: one
untraced (no variable: nothing is instrumented), one tracing every task at 100 % sampling
with the OTLP/HTTP exporter to a local receiver (`bench/otlp_sink.py`, its own process).
The same K-milestone task (instant LLM, sequential plan) runs one at a time, alternating
sides, and the figure is traced wall time / untraced wall time (target <= 1.05). The
instant LLM is the worst case: with a real model's seconds per call the same span work
is a far smaller fraction.

The scenario fails unless the receiver really got the traced side's spans: one
`POST /v1/tasks` server span per traced task and the worker's activity spans.
"""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

from bench.app_pair import AppPair, app_pair
from bench.client import INSTANT
from bench.harness import Bench, CpuMeter
from bench.model import Figure, ScenarioResult, at_most, ratio
from bench.scenarios.common import goal

TARGET = at_most(1.05)
SINK_MODULE = "bench.otlp_sink"
CREATE_SPAN = "POST /v1/tasks"
API_SERVICE = "durable-agent-api"
WORKER_SERVICE = "durable-agent-worker"


class SpansMissingError(RuntimeError):
    """The traced side's spans did not all reach the receiver."""


def traced_variables(endpoint: str) -> dict[str, str]:
    """The traced side's variables: every span sampled, OTLP over HTTP to `endpoint`."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_SAMPLER": "always_on",
    }


def check_spans(counts: dict[str, Any], traced_tasks: int) -> None:
    """Refuse a run whose spans went missing.

    Args:
        counts: The receiver's counts (`SpanCounts.as_json`).
        traced_tasks: Tasks created on the traced side.

    Raises:
        SpansMissingError: Fewer create spans than tasks, or no span from the worker.
    """
    created = counts["by_name"].get(CREATE_SPAN, 0)
    worker_spans = counts["by_service"].get(WORKER_SERVICE, 0)
    if created < traced_tasks or worker_spans == 0:
        raise SpansMissingError(
            f"the OTLP receiver got {created} `{CREATE_SPAN}` spans for {traced_tasks} traced "
            f"tasks and {worker_spans} worker spans ({counts['spans']} spans in "
            f"{counts['requests']} requests): the traced side did not export"
        )


async def _run_task(bench: Bench, pair: AppPair, text: str) -> float:
    started = time.perf_counter()
    task = await pair.create_task(text)
    await bench.clients.wait_result(task["workflow_id"])
    return time.perf_counter() - started


async def run(bench: Bench) -> ScenarioResult:
    """Measure traced / untraced wall time of the same tasks, alternating sides."""
    params = bench.params
    k, n = params.tracing_milestones, params.tracing_tasks
    result = ScenarioResult("tracing", f"8. Tracing overhead (OTLP, 100 % sampled, K={k})")
    text = goal(f"tracing {bench.run_tag}", f"{INSTANT} [milestones={k}] [plan=sequential]")
    logs = bench.work_dir / "tracing"
    logs.mkdir(parents=True, exist_ok=True)
    ready_file = bench.work_dir / f"otlp-sink-{uuid.uuid4().hex[:8]}.ready"
    off: list[float] = []
    on: list[float] = []
    cpu: dict[str, dict[str, float]] = {}
    async with bench.helper(SINK_MODULE, {"ready_file": str(ready_file)}, wait_ready=True) as sink:
        endpoint = f"http://127.0.0.1:{int(ready_file.read_text())}"
        async with (
            app_pair(bench.stack, bench.clients.temporal, "untraced", {}, logs) as untraced,
            app_pair(
                bench.stack, bench.clients.temporal, "traced", traced_variables(endpoint), logs
            ) as traced,
        ):
            # Warm-up: connections, prompt caches, first-call imports on both sides.
            await _run_task(bench, untraced, text)
            await _run_task(bench, traced, text)
            with CpuMeter(untraced.pids) as cpu_off, CpuMeter(traced.pids) as cpu_on:
                for i in range(n):
                    # Alternating which side goes first cancels a drift of the machine.
                    first, second = (untraced, traced) if i % 2 == 0 else (traced, untraced)
                    for pair in (first, second):
                        (on if pair is traced else off).append(await _run_task(bench, pair, text))
            cpu = {"untraced": cpu_off.seconds, "traced": cpu_on.seconds}
        # Leaving the pairs stopped them gracefully: the tracer flushed its last batch.
    counts = sink.result
    check_spans(counts, traced_tasks=n + 1)

    value = ratio(sum(on), sum(off))
    result.figures.append(
        Figure(
            f"K={k}: traced / untraced wall time",
            value,
            "x",
            TARGET,
            note=(
                f"{n} tasks per side, alternating; median {statistics.median(on) * 1000:.0f} ms "
                f"vs {statistics.median(off) * 1000:.0f} ms; {counts['spans']} spans received "
                f"in {counts['requests']} OTLP requests"
            ),
        )
    )
    cpu_off_total = sum(cpu["untraced"].values())
    cpu_on_total = sum(cpu["traced"].values())
    result.figures.append(
        Figure(
            "API + worker CPU: traced / untraced",
            ratio(cpu_on_total, cpu_off_total),
            "x",
            note=f"{cpu_on_total:.2f} s vs {cpu_off_total:.2f} s over {n} tasks per side",
        )
    )
    result.raw = {
        "milestones": k,
        "tasks_per_side": n,
        "traced_seconds": [round(v, 4) for v in on],
        "untraced_seconds": [round(v, 4) for v in off],
        "cpu_seconds": cpu,
        "spans": counts,
        "spans_per_traced_task": round(counts["spans"] / (n + 1), 1),
        "measured_at": time.time(),
    }
    result.distributions[f"K={k} traced task"] = [v * 1000 for v in on]
    result.distributions[f"K={k} untraced task"] = [v * 1000 for v in off]
    return result
