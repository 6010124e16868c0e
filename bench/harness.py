"""What every scenario shares: the stack, clients, the baseline worker, helper processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from agent.events.types import AgentRole
from bench.bare_tools import BareToolTaskInput, BareToolTaskWorkflow, bench_tool_servers
from bench.bare_workflow import BareTaskInput, BareTaskWorkflow
from bench.client import BenchClients
from bench.stack import RunningStack

HELPER_READY_TIMEOUT_SECONDS = 90.0
HELPER_EXIT_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.05
BARE_WORKER_STOP_SECONDS = 10.0


@dataclass(frozen=True)
class Params:
    """Sizes of every scenario; `quick` fits in 3 minutes on 2 cores, `full` in 20."""

    quick: bool
    overhead_milestones: tuple[int, ...]
    overhead_tasks: int
    tracing_milestones: int
    tracing_tasks: int
    """Tasks per side (traced, untraced) of the tracing scenario, after one warm-up each."""
    tool_tasks: int
    """Tasks per side (project, bare) of the tools scenario, after one warm-up each."""
    latency_tasks: int
    latency_milestones: int
    latency_call_ms: int
    saturation_concurrency: int
    saturation_tasks: int
    saturation_milestones: int
    relay_seconds: float
    relay_rates: tuple[tuple[int, int], ...]
    """(events per second, clients) pairs."""
    streams_batch_ms: tuple[int, ...]
    token_streams: int
    token_ttft_ms: int
    resume_samples: int
    api_seconds: float
    api_connections: int
    scale_out_concurrency: int
    scale_out_tasks: int
    scale_out_milestones: int
    scale_out_followed: int
    """Tasks of the scale-out run followed on both API processes."""
    scale_requests: int
    """Timed requests per read and per size of the data-at-scale scenario."""
    scale_events: int
    """Stored events the data-at-scale scenario bulk-loads to (1,000,000)."""

    @classmethod
    def for_mode(cls, quick: bool) -> Params:
        """The quick or the full sizes."""
        if quick:
            return cls(
                quick=True,
                overhead_milestones=(5,),
                overhead_tasks=3,
                tracing_milestones=3,
                tracing_tasks=4,
                tool_tasks=5,
                latency_tasks=30,
                latency_milestones=2,
                latency_call_ms=1000,
                saturation_concurrency=8,
                saturation_tasks=16,
                saturation_milestones=3,
                relay_seconds=2.0,
                relay_rates=((200, 50), (1000, 10)),
                streams_batch_ms=(10, 100),
                token_streams=20,
                token_ttft_ms=300,
                resume_samples=6,
                api_seconds=3.0,
                api_connections=64,
                scale_out_concurrency=8,
                scale_out_tasks=16,
                scale_out_milestones=2,
                scale_out_followed=3,
                scale_requests=40,
                scale_events=1_000_000,
            )
        return cls(
            quick=False,
            overhead_milestones=(3, 10),
            overhead_tasks=10,
            tracing_milestones=5,
            tracing_tasks=10,
            tool_tasks=15,
            latency_tasks=200,
            latency_milestones=5,
            latency_call_ms=1000,
            saturation_concurrency=32,
            saturation_tasks=96,
            saturation_milestones=3,
            relay_seconds=10.0,
            relay_rates=((200, 50), (1000, 10)),
            streams_batch_ms=(10, 100),
            token_streams=100,
            token_ttft_ms=300,
            resume_samples=30,
            api_seconds=10.0,
            api_connections=64,
            scale_out_concurrency=32,
            scale_out_tasks=96,
            scale_out_milestones=3,
            scale_out_followed=10,
            scale_requests=200,
            scale_events=1_000_000,
        )


class Bench:
    """The running stack plus everything scenarios need around it.

    Args:
        stack: The running stack.
        clients: HTTP/Temporal/DB clients.
        params: Scenario sizes.
        work_dir: Scratch files of helper processes.
        profile_dir: Where a worker profile goes (None: no profiling).
        results_dir: Where scenarios write files of their own (charts); None: nowhere.
    """

    def __init__(
        self,
        stack: RunningStack,
        clients: BenchClients,
        params: Params,
        work_dir: Path,
        profile_dir: Path | None = None,
        results_dir: Path | None = None,
    ) -> None:
        self.stack = stack
        self.clients = clients
        self.params = params
        self.work_dir = work_dir
        self.profile_dir = profile_dir
        self.results_dir = results_dir
        self.bare_queue = f"bench-bare-{uuid.uuid4().hex[:8]}"
        self._bare: asyncio.subprocess.Process | None = None
        self.run_tag = uuid.uuid4().hex[:6]

    # ------------------------------------------------------------------ baseline

    async def start_bare_worker(self) -> None:
        """Start the baseline worker process and wait until it polls its queue."""
        info = self.stack.info
        assert info.llm_base_url is not None
        log = (self.work_dir / "bare-worker.log").open("ab")
        self._bare = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.bare_worker",
            "--temporal-address",
            info.temporal_address,
            "--namespace",
            info.temporal_namespace,
            "--task-queue",
            self.bare_queue,
            "--llm-base-url",
            info.llm_base_url,
            "--mcp-servers",
            bench_tool_servers(),
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + HELPER_READY_TIMEOUT_SECONDS
        while not await self._bare_polls():
            if self._bare.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "the baseline worker did not start; see "
                    + str(self.work_dir / "bare-worker.log")
                )
            await asyncio.sleep(POLL_SECONDS * 4)

    async def _bare_polls(self) -> bool:
        response = await self.clients.temporal.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=self.stack.info.temporal_namespace,
                task_queue=TaskQueue(name=self.bare_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            )
        )
        return bool(response.pollers)

    async def stop_bare_worker(self) -> None:
        """Stop the baseline worker (SIGTERM, then SIGKILL)."""
        if self._bare is None or self._bare.returncode is not None:
            return
        self._bare.terminate()
        try:
            await asyncio.wait_for(self._bare.wait(), BARE_WORKER_STOP_SECONDS)
        except TimeoutError:
            self._bare.kill()
            await self._bare.wait()

    @property
    def bare_pid(self) -> int | None:
        """Pid of the baseline worker."""
        return self._bare.pid if self._bare is not None else None

    async def run_bare_task(self, goal: str, waves: Sequence[Sequence[AgentRole]]) -> float:
        """Run one baseline task to its end; returns its wall time in seconds."""
        started = time.perf_counter()
        await self.clients.temporal.execute_workflow(
            BareTaskWorkflow.run,
            BareTaskInput(goal=goal, waves=[list(w) for w in waves]),
            id=f"bare-{uuid.uuid4().hex}",
            task_queue=self.bare_queue,
        )
        return time.perf_counter() - started

    async def run_bare_tool_task(self, data: BareToolTaskInput) -> float:
        """Run one tool baseline task to its end; returns its wall time in seconds."""
        started = time.perf_counter()
        result = await self.clients.temporal.execute_workflow(
            BareToolTaskWorkflow.run,
            data,
            id=f"bare-tools-{uuid.uuid4().hex}",
            task_queue=self.bare_queue,
        )
        if result.tool_errors:
            raise RuntimeError(f"{result.tool_errors} baseline tool calls answered with errors")
        return time.perf_counter() - started

    async def run_project_task(self, goal: str, **fields: Any) -> tuple[str, float]:
        """Create one task through the API and wait for its workflow; (id, wall seconds)."""
        started = time.perf_counter()
        task = await self.clients.create_task(goal, **fields)
        await self.clients.wait_result(task["workflow_id"])
        return task["id"], time.perf_counter() - started

    # ------------------------------------------------------------------ helpers

    async def run_helper(self, module: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Run `python -m <module> SPEC OUT` to its end and return OUT."""
        async with self.helper(module, spec) as handle:
            pass
        return handle.result

    @contextlib.asynccontextmanager
    async def helper(
        self, module: str, spec: dict[str, Any], *, wait_ready: bool = False
    ) -> AsyncIterator[HelperHandle]:
        """Run a helper process; inside the block it runs, after it its result is read.

        With `wait_ready`, the block starts once the helper created `spec["ready_file"]`;
        leaving the block creates `spec["stop_file"]` and waits for the helper to exit.
        """
        name = uuid.uuid4().hex[:8]
        spec_path = self.work_dir / f"{module}-{name}.spec.json"
        out_path = self.work_dir / f"{module}-{name}.out.json"
        spec = dict(spec)
        spec.setdefault("ready_file", str(self.work_dir / f"{name}.ready"))
        spec.setdefault("stop_file", str(self.work_dir / f"{name}.stop"))
        spec_path.write_text(json.dumps(spec))
        log = (self.work_dir / f"{module}.log").open("ab")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, str(spec_path), str(out_path), stdout=log, stderr=log
        )
        handle = HelperHandle(process.pid)
        try:
            if wait_ready:
                ready = Path(spec["ready_file"])
                deadline = time.monotonic() + HELPER_READY_TIMEOUT_SECONDS
                while not _exists(ready):
                    if process.returncode is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"{module} did not get ready; see {self.work_dir / (module + '.log')}"
                        )
                    await asyncio.sleep(POLL_SECONDS)
            yield handle
        finally:
            _touch(Path(spec["stop_file"]))
            try:
                await asyncio.wait_for(process.wait(), HELPER_EXIT_TIMEOUT_SECONDS)
            except TimeoutError:
                process.kill()
                await process.wait()
        if process.returncode != 0 or not _exists(out_path):
            raise RuntimeError(f"{module} failed; see {self.work_dir / (module + '.log')}")
        handle.result = json.loads(out_path.read_text())


class HelperHandle:
    """A helper process; `result` holds its OUT once it has exited."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.result: dict[str, Any] = {}


class RssSampler:
    """Samples a process's resident memory in the background; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self.peak_bytes = 0
        self.start_bytes = self._process.memory_info().rss
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RssSampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(psutil.Error):
                self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)
            await asyncio.sleep(self._interval)


class CpuMeter:
    """CPU seconds a set of processes used between enter and exit."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._processes = {}
        for name, pid in pids.items():
            with contextlib.suppress(psutil.Error):
                self._processes[name] = psutil.Process(pid)
        self._start: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def _cpu(self, process: psutil.Process) -> float:
        times = process.cpu_times()
        total = float(times.user + times.system)
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child_times = child.cpu_times()
                total += float(child_times.user + child_times.system)
        return total

    def __enter__(self) -> CpuMeter:
        for name, process in self._processes.items():
            with contextlib.suppress(psutil.Error):
                self._start[name] = self._cpu(process)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, process in self._processes.items():
            with contextlib.suppress(psutil.Error):
                self.seconds[name] = round(self._cpu(process) - self._start.get(name, 0.0), 2)


def _exists(path: Path) -> bool:
    # A stat of a local scratch file: too quick to be worth a thread.
    return path.exists()


def _touch(path: Path) -> None:
    path.touch()


def scratch_dir(output_dir: Path) -> Path:
    """Create the results directory and a fresh scratch directory for helper files."""
    output_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="agent-bench-work-"))
