"""Scenario 2: latency-bound concurrency.

N concurrent tasks of M milestones (sequential plan), every LLM call taking ~1 s at the
simulator, then the same N tasks as `BareTaskWorkflow`s making the same calls (same roles,
same simulator, same `LLMClient` path) on the bare worker, all started at once the same
way. Figures: makespan / bare makespan (target <= 1.2), makespan / ideal (the critical
path of LLM time: calls per task x 1 s), the worker's peak RSS. A makespan shorter than
the critical path cannot be, and raises.
"""

from __future__ import annotations

import asyncio
import time

from bench.harness import Bench, CpuMeter, RssSampler
from bench.model import Figure, ScenarioResult, at_most, ratio
from bench.scenarios.common import goal, llm_calls_of, sequential_waves

TARGET = at_most(1.2)
MIB = 1024 * 1024


class ImpossibleMakespanError(RuntimeError):
    """A side finished faster than its calls can take: the figures would be wrong."""


async def run(bench: Bench) -> ScenarioResult:
    """Run N tasks at once and compare the makespan with the critical path."""
    params = bench.params
    n, m, call_ms = params.latency_tasks, params.latency_milestones, params.latency_call_ms
    result = ScenarioResult(
        "concurrency",
        f"2. Latency-bound concurrency ({n} tasks x {m} milestones, {call_ms} ms/call)",
    )
    directives = f"[ttft_ms={call_ms}] [tps=0] [milestones={m}] [plan=sequential]"
    text = goal(f"latency {bench.run_tag}", directives)
    pids = {"worker": bench.stack.worker_pid, "api": bench.stack.api_pid}
    pids.update({k: v for k, v in bench.stack.info.processes.items() if k not in pids})
    async with RssSampler(bench.stack.worker_pid) as rss:
        with CpuMeter(pids) as cpu:
            started = time.perf_counter()
            created = await asyncio.gather(*(bench.clients.create_task(text) for _ in range(n)))
            created_after = time.perf_counter() - started
            ends = await asyncio.gather(
                *(bench.clients.wait_result(t["workflow_id"]) for t in created)
            )
            makespan = time.perf_counter() - started
    del ends
    roles = await llm_calls_of(bench.clients, created[0]["id"])
    ideal = len(roles) * call_ms / 1000.0
    statuses = await asyncio.gather(*(bench.clients.get_task(t["id"]) for t in created[:20]))
    completed = sum(1 for t in statuses if t["status"] == "completed")
    waves = sequential_waves(roles)
    bare_pids = {k: v for k, v in pids.items() if k not in {"worker", "api"}}
    if bench.bare_pid is not None:
        bare_pids["bare_worker"] = bench.bare_pid
    with CpuMeter(bare_pids) as bare_cpu:
        bare_started = time.perf_counter()
        await asyncio.gather(*(bench.run_bare_task(text, waves) for _ in range(n)))
        bare_makespan = time.perf_counter() - bare_started
    short = {k: v for k, v in {"project": makespan, "bare": bare_makespan}.items() if v < ideal}
    if short:
        raise ImpossibleMakespanError(
            f"makespans {short} are shorter than the critical path ({len(roles)} calls x "
            f"{call_ms} ms = {ideal:.2f} s): the simulator did not hold the calls"
        )
    result.figures.append(
        Figure(
            "makespan / bare Temporal makespan",
            ratio(makespan, bare_makespan),
            "x",
            TARGET,
            note=f"{makespan:.2f} s vs {bare_makespan:.2f} s bare",
        )
    )
    result.figures.append(
        Figure(
            "makespan / ideal (critical path of LLM time)",
            ratio(makespan, ideal),
            "x",
            note=(
                f"bare {bare_makespan / ideal:.2f}x; ideal {ideal:.2f} s "
                f"({len(roles)} calls x {call_ms} ms)"
            ),
        )
    )
    result.figures.append(
        Figure(
            "worker peak RSS",
            round(rss.peak_bytes / MIB, 1),
            "MiB",
            note=f"{rss.start_bytes / MIB:.0f} MiB before; {n} tasks in flight",
        )
    )
    result.figures.append(Figure("tasks completed", float(n), "count"))
    result.raw.update(
        {
            "tasks": n,
            "milestones": m,
            "call_ms": call_ms,
            "llm_calls_per_task": len(roles),
            "makespan_seconds": round(makespan, 3),
            "bare_makespan_seconds": round(bare_makespan, 3),
            "bare_cpu_seconds": bare_cpu.seconds,
            "ideal_seconds": ideal,
            "create_all_seconds": round(created_after, 3),
            "worker_rss_peak_mib": round(rss.peak_bytes / MIB, 1),
            "worker_rss_start_mib": round(rss.start_bytes / MIB, 1),
            "cpu_seconds": cpu.seconds,
            "sampled_statuses_completed": f"{completed}/{len(statuses)}",
        }
    )
    return result
