"""Extra APIs and workers on the benchmark's stack, with an environment of their own.

The tracing scenario compares a traced pair with an untraced one. Tracing is configured per
process at start-up by the `OTEL_*` variables, so each side is its own pair of processes,
started exactly as `agent up` starts its API and worker (same command, same environment
but for the variables given), on its own task queue and API port, sharing the stack's
PostgreSQL, Temporal and simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from agent.stack.children import agent_command, child_environment
from agent.stack.ports import free_port
from agent.stack.readiness import wait_until_serving
from agent.stack.supervisor import ManagedProcess
from bench.stack import RunningStack

LOCAL_HOST = "127.0.0.1"
PAIR_READY_TIMEOUT_SECONDS = 120.0
PAIR_STOP_SECONDS = 10.0
"""Long enough for the processes' own shutdown: the tracer flushes its last spans then."""
HTTP_TIMEOUT_SECONDS = 60.0
OTEL_PREFIX = "OTEL_"


@dataclass
class AppPair:
    """A running API and worker, and an HTTP client of that API."""

    name: str
    task_queue: str
    api_url: str
    http: httpx.AsyncClient
    api: ManagedProcess
    worker: ManagedProcess

    @property
    def pids(self) -> dict[str, int]:
        """Pids by process name."""
        return {p.name: p.pid for p in (self.api, self.worker) if p.pid is not None}

    async def create_task(self, goal: str, **fields: Any) -> dict[str, Any]:
        """`POST /v1/tasks` on this pair's API; returns the created task."""
        response = await self.http.post("/v1/tasks", json={"goal": goal, **fields})
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


def pair_environment(
    stack: RunningStack, task_queue: str, api_port: int, variables: Mapping[str, str]
) -> dict[str, str]:
    """The environment `agent up` gives its children, with this pair's queue, port and vars.

    Every `OTEL_*` variable of this process is dropped first, so only `variables` decide
    whether the pair traces.
    """
    info = stack.info
    resolved: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith(OTEL_PREFIX)
    }
    resolved.update(
        {
            "AGENT_DATABASE_URL": info.database_url,
            "AGENT_REDIS_URL": info.redis_url,
            "AGENT_TEMPORAL_ADDRESS": info.temporal_address,
            "AGENT_TEMPORAL_NAMESPACE": info.temporal_namespace,
            "AGENT_TASK_QUEUE": task_queue,
            "AGENT_TEMPORAL_UI_URL": info.temporal_ui_url,
            "AGENT_LLM_BASE_URL": info.llm_base_url,
            "AGENT_API_HOST": LOCAL_HOST,
            "AGENT_API_PORT": str(api_port),
            **variables,
        }
    )
    return child_environment(stack.data_dir, resolved)


@dataclass
class AppGroup:
    """Running APIs and workers sharing one task queue, and an HTTP client of each API."""

    name: str
    task_queue: str
    api_urls: list[str]
    https: list[httpx.AsyncClient]
    apis: list[ManagedProcess]
    workers: list[ManagedProcess]


@contextlib.asynccontextmanager
async def app_group(
    stack: RunningStack,
    temporal: Client,
    name: str,
    variables: Mapping[str, str],
    logs_dir: Path,
    *,
    workers: int = 1,
    apis: int = 1,
) -> AsyncIterator[AppGroup]:
    """Start APIs and workers on a queue of their own, wait until all serve; stop them on exit.

    Args:
        stack: The benchmark's stack.
        temporal: A Temporal client (readiness: every worker polls the queue).
        name: Short name, used in process names, the task queue and log files.
        variables: Extra environment of every process (e.g. `OTEL_*`).
        logs_dir: Where the processes log.
        workers: Worker processes on the queue.
        apis: API processes, each on a port of its own.

    Yields:
        The running group.
    """
    task_queue = f"bench-{name}-{uuid.uuid4().hex[:8]}"
    api_ports = [free_port() for _ in range(apis)]
    worker_procs = [
        ManagedProcess(
            f"worker-{name}-{n}",
            agent_command("worker"),
            log_path=logs_dir / f"worker-{name}-{n}.log",
            env=pair_environment(stack, task_queue, api_ports[0], variables),
        )
        for n in range(1, workers + 1)
    ]
    api_procs = [
        ManagedProcess(
            f"api-{name}-{n}",
            agent_command("api"),
            log_path=logs_dir / f"api-{name}-{n}.log",
            env=pair_environment(stack, task_queue, port, variables),
        )
        for n, port in enumerate(api_ports, start=1)
    ]
    api_urls = [f"http://{LOCAL_HOST}:{port}" for port in api_ports]
    https = [
        httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {stack.info.api_key}"},
            timeout=HTTP_TIMEOUT_SECONDS,
        )
        for url in api_urls
    ]
    processes = [*worker_procs, *api_procs]
    try:
        for process in processes:
            await process.start()
        try:
            await asyncio.wait_for(
                asyncio.gather(
                    *(
                        wait_until_serving(
                            url,
                            temporal,
                            stack.info.temporal_namespace,
                            task_queue,
                            workers=workers,
                        )
                        for url in api_urls
                    )
                ),
                PAIR_READY_TIMEOUT_SECONDS,
            )
        except TimeoutError:
            raise RuntimeError(
                f"the {name} APIs and workers did not get ready; see {logs_dir}:\n"
                + "".join(p.log_tail() for p in processes)
            ) from None
        yield AppGroup(name, task_queue, api_urls, https, api_procs, worker_procs)
    finally:
        for http in https:
            await http.aclose()
        await asyncio.gather(*(p.stop(PAIR_STOP_SECONDS) for p in processes))


@contextlib.asynccontextmanager
async def app_pair(
    stack: RunningStack,
    temporal: Client,
    name: str,
    variables: Mapping[str, str],
    logs_dir: Path,
) -> AsyncIterator[AppPair]:
    """Start an API and a worker, wait until both serve; stop both (gracefully) on exit.

    Args:
        stack: The benchmark's stack.
        temporal: A Temporal client (readiness: the worker polls its queue).
        name: Short name, used in process names, the task queue and log files.
        variables: Extra environment of both processes (e.g. `OTEL_*`).
        logs_dir: Where the processes log.

    Yields:
        The running pair.
    """
    async with app_group(stack, temporal, name, variables, logs_dir) as group:
        yield AppPair(
            name,
            group.task_queue,
            group.api_urls[0],
            group.https[0],
            group.apis[0],
            group.workers[0],
        )
