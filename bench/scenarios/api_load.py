"""Scenario 7: API throughput at 64 concurrent connections, relative to `/healthz`.

A keep-alive HTTP/1.1 load generator in its own process drives, one after the other,
`GET /healthz`, `GET /v1/tasks/{id}` (a task with milestones) and `POST /v1/tasks`.
While tasks are created the worker is paused (SIGSTOP), so the figure is the API's
create path (insert + workflow start), not the worker competing for the 2 cores.
Targets: GET >= 0.4 x healthz, POST >= 0.2 x healthz.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from typing import Any
from urllib.parse import urlsplit

from bench.client import INSTANT
from bench.harness import Bench
from bench.model import Figure, ScenarioResult, at_least, percentile, ratio

TARGETS = {"get_task": at_least(0.4), "create_task": at_least(0.2)}
OK_STATUSES = {"200", "201"}


async def _load(
    bench: Bench, method: str, path: str, body: dict[str, Any] | None
) -> dict[str, Any]:
    url = urlsplit(bench.stack.info.api_url)
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
        "seconds": bench.params.api_seconds,
        "warmup_seconds": 0.5,
    }
    out = await bench.run_helper("bench.http_load", spec)
    latencies = out.pop("latencies_ms")
    ok = sum(n for status, n in out["statuses"].items() if status in OK_STATUSES)
    out["ok_per_second"] = round(ok / out["seconds"], 1)
    out["p50_ms"] = round(percentile(latencies, 50), 2) if latencies else None
    out["p99_ms"] = round(percentile(latencies, 99), 2) if latencies else None
    out["latencies"] = latencies
    return out


@contextlib.contextmanager
def _paused(pid: int) -> Any:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def run(bench: Bench) -> ScenarioResult:
    """Measure each endpoint's rate and compare it with `/healthz` on the same server."""
    conns = bench.params.api_connections
    result = ScenarioResult("api", f"7. API throughput ({conns} connections)")
    text = f"bench api {bench.run_tag}: write a short report {INSTANT} [milestones=5]"
    task_id, _ = await bench.run_project_task(text)
    runs: dict[str, dict[str, Any]] = {}
    runs["healthz"] = await _load(bench, "GET", "/healthz", None)
    runs["get_task"] = await _load(bench, "GET", f"/v1/tasks/{task_id}", None)
    with _paused(bench.stack.worker_pid):
        runs["create_task"] = await _load(
            bench, "POST", "/v1/tasks", {"goal": f"bench api create {INSTANT} [milestones=1]"}
        )
    health = runs["healthz"]["ok_per_second"]
    result.figures.append(
        Figure(
            "/healthz requests/s",
            health,
            "/s",
            note=f"p99 {runs['healthz']['p99_ms']} ms",
        )
    )
    labels = {"get_task": "GET /v1/tasks/{id}", "create_task": "POST /v1/tasks"}
    for key, label in labels.items():
        run_ = runs[key]
        result.figures.append(
            Figure(
                f"{label} / healthz requests/s",
                ratio(run_["ok_per_second"], health),
                "x",
                TARGETS[key],
                note=f"{run_['ok_per_second']}/s, p99 {run_['p99_ms']} ms"
                + (f", errors {run_['errors']}" if run_["errors"] else ""),
            )
        )
    for key, run_ in runs.items():
        result.distributions[f"{key} latency"] = run_.pop("latencies")
        result.raw[key] = run_
    return result
