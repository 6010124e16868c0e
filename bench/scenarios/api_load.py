"""Scenario 7: API throughput at 64 concurrent connections, against a lean baseline app.

The baseline (`bench/lean_api.py`) is the leanest FastAPI + asyncpg app doing the same
per-request work: the same key lookup (cached for the same TTL), the same task-detail
statement, the same insert + `start_workflow`, and a bare `/healthz`. It runs as its own
process on the same stack, on uvicorn with the API's settings. One keep-alive HTTP/1.1
load generator (`bench/http_load.py`, its own process, same connection count and
duration) drives, endpoint by endpoint, the baseline and then the project's API. While
tasks are created the worker is paused (SIGSTOP), so the figure is the create path
(insert + workflow start), not the worker competing for the 2 cores.
Targets: project / baseline requests/s: GET task >= 0.8, `/healthz` >= 0.9, POST >= 0.8.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from typing import Any
from urllib.parse import urlsplit

from agent.config import Settings
from agent.stack.ports import free_port
from bench.client import INSTANT
from bench.harness import Bench
from bench.model import Figure, ScenarioResult, at_least, percentile, ratio
from bench.stack import bench_settings

TARGETS = {"healthz": at_least(0.9), "get_task": at_least(0.8), "create_task": at_least(0.8)}
LABELS = {"healthz": "/healthz", "get_task": "GET /v1/tasks/{id}", "create_task": "POST /v1/tasks"}
OK_STATUSES = {"200", "201"}
MIN_OK_SHARE = 0.99
"""A run where more than 1 % of the answers were not 2xx did not measure the endpoint."""
MIN_CREATE_SECONDS = 10.0
"""A create takes seconds under 64 connections (the dev server's workflow starts): a
shorter window counts a handful of requests, a ratio of noise."""


class ImpossibleApiResultError(RuntimeError):
    """A side answered with errors or not at all: no ratio of it means anything."""


async def _load(
    bench: Bench,
    base_url: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    seconds: float | None = None,
) -> dict[str, Any]:
    url = urlsplit(base_url)
    headers = {"Authorization": f"Bearer {bench.stack.info.api_key}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    spec = {
        "host": url.hostname,
        "port": url.port,
        "method": method,
        "path": path,
        "headers": headers,
        "body": json.dumps(body) if body is not None else None,
        "connections": bench.params.api_connections,
        "seconds": seconds or bench.params.api_seconds,
        "warmup_seconds": 0.5,
    }
    out = await bench.run_helper("bench.http_load", spec)
    latencies = out.pop("latencies_ms")
    ok = sum(n for status, n in out["statuses"].items() if status in OK_STATUSES)
    out["ok_per_second"] = round(ok / out["seconds"], 1)
    out["p50_ms"] = round(percentile(latencies, 50), 2) if latencies else None
    out["p99_ms"] = round(percentile(latencies, 99), 2) if latencies else None
    out["latencies"] = latencies
    out["ok_share"] = ok / len(latencies) if latencies else 0.0
    return out


def check_possible(runs: dict[str, dict[str, Any]], connections: int) -> list[str]:
    """What makes the runs' numbers impossible to compare (empty when they hold)."""
    problems = []
    for name, run_ in runs.items():
        if run_["errors"]:
            problems.append(f"{name}: {run_['errors']} connections failed {run_['error_samples']}")
        if run_["requests"] < connections:
            problems.append(
                f"{name}: {run_['requests']} requests completed on {connections} connections "
                "in the window: that is latency, not a rate"
            )
        elif run_["ok_share"] < MIN_OK_SHARE:
            problems.append(f"{name}: only {run_['ok_share']:.1%} 2xx, statuses {run_['statuses']}")
    return problems


@contextlib.contextmanager
def _paused(pid: int) -> Any:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def lean_spec(bench: Bench, port: int) -> dict[str, Any]:
    """The baseline app's settings: the stack's services, the API's pepper and pool size."""
    info = bench.stack.info
    settings: Settings = bench_settings()
    return {
        "port": port,
        "database_url": info.database_url,
        "pepper": settings.api_key_pepper.get_secret_value(),
        # The API's pool opens up to twice `api_db_pool_size` and keeps them.
        "pool_size": 2 * settings.api_db_pool_size,
        "temporal_address": info.temporal_address,
        "namespace": info.temporal_namespace,
        "task_queue": info.task_queue,
    }


async def run(bench: Bench) -> ScenarioResult:
    """Measure each endpoint on the baseline app and on the project's API."""
    conns = bench.params.api_connections
    result = ScenarioResult("api", f"7. API throughput ({conns} connections) / lean app")
    text = f"bench api {bench.run_tag}: write a short report {INSTANT} [milestones=5]"
    task_id, _ = await bench.run_project_task(text)
    create = {"goal": f"bench api create {INSTANT} [milestones=1]"}
    endpoints: dict[str, tuple[str, str, dict[str, Any] | None]] = {
        "healthz": ("GET", "/healthz", None),
        "get_task": ("GET", f"/v1/tasks/{task_id}", None),
        "create_task": ("POST", "/v1/tasks", create),
    }
    port = free_port()
    lean_url = f"http://127.0.0.1:{port}"
    project_url = bench.stack.info.api_url
    runs: dict[str, dict[str, Any]] = {}
    async with bench.helper("bench.lean_api", lean_spec(bench, port), wait_ready=True):
        for key, (method, path, body) in endpoints.items():
            # Baseline first, then the project, endpoint by endpoint: a slow minute of the
            # machine hits one pair, not one side.
            if key == "create_task":
                seconds = max(bench.params.api_seconds, MIN_CREATE_SECONDS)
                with _paused(bench.stack.worker_pid):
                    runs[f"lean_{key}"] = await _load(bench, lean_url, method, path, body, seconds)
                    runs[key] = await _load(bench, project_url, method, path, body, seconds)
            else:
                runs[f"lean_{key}"] = await _load(bench, lean_url, method, path, body)
                runs[key] = await _load(bench, project_url, method, path, body)
    problems = check_possible(runs, conns)
    if problems:
        raise ImpossibleApiResultError("; ".join(problems))
    for key, label in LABELS.items():
        project, lean = runs[key], runs[f"lean_{key}"]
        result.figures.append(
            Figure(
                f"{label}: project / lean requests/s",
                ratio(project["ok_per_second"], lean["ok_per_second"]),
                "x",
                TARGETS[key],
                note=(
                    f"{project['ok_per_second']}/s (p99 {project['p99_ms']} ms) vs "
                    f"{lean['ok_per_second']}/s (p99 {lean['p99_ms']} ms)"
                ),
            )
        )
    for key, run_ in runs.items():
        result.distributions[f"{key} latency"] = run_.pop("latencies")
        result.raw[key] = run_
    return result
