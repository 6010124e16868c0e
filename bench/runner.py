"""`agent bench`: start a stack, run every scenario, print the table, write the results."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import structlog

from agent.logging import configure_logging
from bench.client import BenchClients
from bench.harness import Bench, Params, scratch_dir
from bench.model import ScenarioResult
from bench.profiling import py_spy_path
from bench.scenarios import (
    api_load,
    concurrency,
    data_scale,
    fairness,
    history,
    overhead,
    relay,
    resume,
    saturation,
    scale_out,
    tokens,
    tools,
    tracing,
)
from bench.stack import bench_stack

logger = structlog.get_logger(__name__)

RESULTS_DIR = Path(__file__).parent / "results"
JSON_NAME = "latest.json"
CHART_NAME = "latest.png"

Scenario = Callable[[Bench], Awaitable[ScenarioResult]]
SCENARIOS: dict[str, Scenario] = {
    "overhead": overhead.run,
    "concurrency": concurrency.run,
    "saturation": saturation.run,
    "relay": relay.run,
    "tokens": tokens.run,
    "resume": resume.run,
    "tracing": tracing.run,
    "tools": tools.run,
    "scale_out": scale_out.run,
    "fairness": fairness.run,
    "history": history.run,
    # Bulk-loads a million events: after the scenarios that count stored events.
    "data_scale": data_scale.run,
    # Last: it pauses the worker and leaves thousands of queued tasks behind.
    "api": api_load.run,
}
"""Every scenario, in the order they run."""

REQUIRED_MODULES = {"matplotlib": "the latency chart"}


class MissingDependencyError(RuntimeError):
    """A benchmark dependency is not installed; the message says how to install it."""


def check_dependencies(*, profile: bool) -> None:
    """Fail early, with the fix, when a benchmark dependency is missing.

    Raises:
        MissingDependencyError: matplotlib (or py-spy when profiling) is not installed.
    """
    missing = [
        f"{name} (for {why})"
        for name, why in REQUIRED_MODULES.items()
        if importlib.util.find_spec(name) is None
    ]
    if profile and py_spy_path() is None:
        missing.append("py-spy (for --profile)")
    if missing:
        raise MissingDependencyError(
            "missing benchmark dependencies: "
            + ", ".join(missing)
            + ". Install the bench group: `uv sync --group bench`."
        )


def machine() -> dict[str, Any]:
    """Describe the machine the figures were measured on."""
    cpu_model = platform.processor() or ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu_model,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "git_commit": _git_commit(),
    }


def _git_commit() -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        out = subprocess.run(
            [git, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=True,
            timeout=5,
        )
    except (subprocess.SubprocessError, OSError):
        return None
    return out.stdout.strip() or None


async def run_benchmark(
    *,
    quick: bool,
    only: Sequence[str] | None = None,
    profile: bool = False,
    output_dir: Path = RESULTS_DIR,
    report: Callable[[str], None] = lambda _line: None,
) -> dict[str, Any]:
    """Start a stack, run the scenarios, write `latest.json` and `latest.png`.

    Args:
        quick: Small sizes (under 3 minutes on 2 cores) instead of the full run.
        only: Scenario keys to run (default: all, in order).
        profile: Sample the worker with py-spy during scenario 3.
        output_dir: Where the results go.
        report: Progress lines for a person.

    Returns:
        The results document (also written as JSON).
    """
    check_dependencies(profile=profile)
    selected = list(only) if only else list(SCENARIOS)
    unknown = [key for key in selected if key not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenarios: {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    params = Params.for_mode(quick)
    work_dir = scratch_dir(output_dir)
    began = time.perf_counter()
    results: list[ScenarioResult] = []
    report(f"starting the stack ({'quick' if quick else 'full'} run) ...")
    async with bench_stack() as stack:
        report(f"stack ready in {time.perf_counter() - began:.1f}s")
        async with BenchClients(stack) as clients:
            bench = Bench(
                stack,
                clients,
                params,
                work_dir,
                profile_dir=output_dir if profile else None,
                results_dir=output_dir,
            )
            await bench.start_bare_worker()
            try:
                for key in selected:
                    report(f"running {key} ...")
                    started = time.perf_counter()
                    try:
                        result = await SCENARIOS[key](bench)
                    except Exception as exc:  # one broken scenario must not hide the rest
                        logger.exception("scenario_failed", scenario=key)
                        result = ScenarioResult(key, key, error=f"{type(exc).__name__}: {exc}")
                    result.seconds = time.perf_counter() - started
                    report(f"  {key} done in {result.seconds:.1f}s")
                    results.append(result)
            finally:
                await bench.stop_bare_worker()
    document: dict[str, Any] = {
        "mode": "quick" if quick else "full",
        "finished_at": datetime.now(UTC).isoformat(),
        "seconds": round(time.perf_counter() - began, 1),
        "machine": machine(),
        "scenarios": [r.as_json() for r in results],
    }
    json_path = output_dir / JSON_NAME
    json_path.write_text(json.dumps(document, indent=2))
    document["json_path"] = str(json_path)
    chart = write_chart(results, output_dir / CHART_NAME)
    document["chart_path"] = str(chart) if chart else None
    shutil.rmtree(work_dir, ignore_errors=True)
    return document


def write_chart(results: Sequence[ScenarioResult], path: Path) -> Path | None:
    """Box plots of every latency distribution, one panel per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [r for r in results if any(r.distributions.values())]
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.6 * len(panels)), squeeze=False)
    for ax, result in zip(axes[:, 0], panels, strict=True):
        names = [n for n, v in result.distributions.items() if v]
        data = [result.distributions[n] for n in names]
        ax.boxplot(data, orientation="horizontal", whis=(1, 99), showfliers=False)
        ax.set_yticks(range(1, len(names) + 1), names, fontsize=8)
        ax.set_title(result.title, fontsize=9)
        ax.set_xlabel("ms (whiskers p1-p99)", fontsize=8)
        if max(max(d) for d in data) / max(1e-6, min(min(d) for d in data if d)) > 100:
            ax.set_xscale("symlog", linthresh=1.0)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def quiet_logging() -> None:
    """Warnings only: the benchmark's output is its table."""
    configure_logging("WARNING")
    for name in ("httpx", "temporalio", "asyncio", "websockets"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main_sync(
    quick: bool, only: Sequence[str] | None, profile: bool, output_dir: Path
) -> dict[str, Any]:
    """Run the benchmark to its end from synchronous code (the CLI) and print the table."""
    from bench.table import print_table, say

    quiet_logging()
    document = asyncio.run(
        run_benchmark(quick=quick, only=only, profile=profile, output_dir=output_dir, report=say)
    )
    print_table(document)
    return document
