"""Scenario 3: saturation throughput.

A closed loop keeps C tasks in flight (instant simulator, sequential plan) until T tasks
ran, then the same loop with `BareTaskWorkflow` making the same calls. Figures: LLM
activities completed per second by the project / the bare rate (target >= 0.8), events
persisted per second. With profiling on, py-spy samples the worker during the project's
run (see `bench.profiling`).
"""

from __future__ import annotations

from agent.events.types import AgentRole
from bench.client import INSTANT
from bench.harness import Bench, CpuMeter
from bench.model import Figure, ScenarioResult, at_least, ratio
from bench.profiling import PySpy
from bench.scenarios.common import closed_loop, goal, llm_calls_of, sequential_waves

TARGET = at_least(0.8)


async def run(bench: Bench) -> ScenarioResult:
    """Measure both sides' LLM activity rates at saturation."""
    params = bench.params
    c, t, m = params.saturation_concurrency, params.saturation_tasks, params.saturation_milestones
    result = ScenarioResult(
        "saturation", f"3. Saturation throughput ({c} tasks in flight, {t} tasks, instant LLM)"
    )
    text = goal(f"saturation {bench.run_tag}", f"{INSTANT} [milestones={m}] [plan=sequential]")
    first_id, _ = await bench.run_project_task(text)
    roles: list[AgentRole] = await llm_calls_of(bench.clients, first_id)
    waves = sequential_waves(roles)
    await bench.run_bare_task(text, waves)

    task_ids: list[str] = []

    async def project_one() -> None:
        task_ids.append((await bench.run_project_task(text))[0])

    async def bare_one() -> None:
        await bench.run_bare_task(text, waves)

    project_pids = {"worker": bench.stack.worker_pid, "api": bench.stack.api_pid}
    for name in ("temporal", "postgres", "simulator"):
        if name in bench.stack.info.processes:
            project_pids[name] = bench.stack.info.processes[name]
    profiler = PySpy(bench.stack.worker_pid, bench.profile_dir) if bench.profile_dir else None
    with CpuMeter(project_pids) as project_cpu:
        if profiler is not None:
            await profiler.start()
        try:
            project_seconds = await closed_loop(c, t, project_one)
        finally:
            if profiler is not None:
                await profiler.stop()
    bare_pids = {k: v for k, v in project_pids.items() if k not in {"worker", "api"}}
    if bench.bare_pid is not None:
        bare_pids["bare_worker"] = bench.bare_pid
    with CpuMeter(bare_pids) as bare_cpu:
        bare_seconds = await closed_loop(c, t, bare_one)

    calls = len(roles) * t
    project_rate = calls / project_seconds
    bare_rate = calls / bare_seconds
    events = await bench.clients.count_events(task_ids)
    result.figures.append(
        Figure(
            "LLM activities/s: project / bare",
            ratio(project_rate, bare_rate),
            "x",
            TARGET,
            note=f"{project_rate:.1f}/s vs {bare_rate:.1f}/s",
        )
    )
    result.figures.append(Figure("events persisted/s", round(events / project_seconds, 1), "/s"))
    result.figures.append(
        Figure(
            "worker CPU ms per LLM activity",
            round(project_cpu.seconds.get("worker", 0.0) / calls * 1000, 2),
            "ms",
            note=f"bare worker {bare_cpu.seconds.get('bare_worker', 0.0) / calls * 1000:.2f} ms",
        )
    )
    result.raw.update(
        {
            "concurrency": c,
            "tasks": t,
            "llm_calls_per_task": len(roles),
            "project_seconds": round(project_seconds, 3),
            "bare_seconds": round(bare_seconds, 3),
            "project_llm_activities_per_second": round(project_rate, 2),
            "bare_llm_activities_per_second": round(bare_rate, 2),
            "events_persisted": events,
            "events_per_task": round(events / t, 1),
            "project_cpu_seconds": project_cpu.seconds,
            "bare_cpu_seconds": bare_cpu.seconds,
        }
    )
    if profiler is not None:
        result.raw["profile"] = profiler.summary()
    return result
