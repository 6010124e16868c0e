"""The benchmark's own stack: `agent up`'s `Stack`, run in this process on free ports.

The worker and the API are child processes exactly as under `agent up`; PostgreSQL, the
Temporal dev server and the simulator too. The data directory is a fresh temporary one,
so every run starts from an empty database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from agent.config import Settings
from agent.stack.info import StackInfo
from agent.stack.ports import free_port
from agent.stack.runner import Stack, StackError, StackOptions

logger = structlog.get_logger(__name__)

STACK_START_TIMEOUT_SECONDS = 180.0
READY_POLL_SECONDS = 0.1
BENCH_MAX_CONCURRENT_ACTIVITIES = 500
"""Worker slots: scenario 2 keeps 200 LLM calls in flight at once (the default is 200)."""


@dataclass(frozen=True)
class RunningStack:
    """Where the benchmark's stack can be reached."""

    info: StackInfo
    data_dir: Path

    @property
    def worker_pid(self) -> int:
        """Pid of the worker process."""
        return self.info.processes["worker"]

    @property
    def api_pid(self) -> int:
        """Pid of the API process."""
        return self.info.processes["api"]


BENCH_MAX_PLAN_MILESTONES = 2_000
"""The plan ceiling of the bench's stack (the history scenario's longest task)."""


def bench_settings() -> Settings:
    """Settings for the benchmark's stack: embedded everything, the simulator as LLM.

    Configured services in the environment would make the figures incomparable between
    runs, so every URL is cleared and `agent up` starts its embedded defaults.
    """
    return Settings(
        database_url=None,
        redis_url=None,
        temporal_address=None,
        temporal_ui_url=None,
        llm_base_url=None,
        llm_api_key=None,
        max_concurrent_activities=BENCH_MAX_CONCURRENT_ACTIVITIES,
        log_level="WARNING",
        log_json=True,
    )


@contextlib.asynccontextmanager
async def bench_stack(*, keep_data: bool = False) -> AsyncIterator[RunningStack]:
    """Start a whole stack on free ports in a temporary data dir; stop it on exit.

    Args:
        keep_data: Keep the data dir (logs) after the run instead of deleting it.

    Yields:
        The running stack's addresses and process ids.

    Raises:
        StackError: When the stack did not become ready.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="agent-bench-"))
    settings = bench_settings()
    options = StackOptions(
        data_dir=data_dir,
        api_port=free_port(),
        temporal_port=free_port(),
        ui_port=free_port(),
        ui=False,
    )
    lines: list[str] = []
    # The children read the worker's slot count from the environment. The load generators
    # drive the API with one key far past a tenant's request rate: the per-key limit is off.
    env_overrides = {
        "AGENT_MAX_CONCURRENT_ACTIVITIES": str(BENCH_MAX_CONCURRENT_ACTIVITIES),
        "AGENT_LOG_LEVEL": "WARNING",
        "AGENT_RATE_LIMIT_PER_SECOND": "0",
        # The history scenario's longest task plans this many milestones.
        "AGENT_MAX_PLAN_MILESTONES": str(BENCH_MAX_PLAN_MILESTONES),
    }
    saved = {name: os.environ.get(name) for name in env_overrides}
    os.environ.update(env_overrides)
    stack = Stack(options, settings, report=lines.append)
    stop = asyncio.Event()
    run = asyncio.create_task(stack.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + STACK_START_TIMEOUT_SECONDS
        while not stack.ready:
            if run.done():
                run.result()
                raise StackError("the stack stopped during start-up:\n" + "\n".join(lines))
            if asyncio.get_running_loop().time() > deadline:
                raise StackError(f"the stack was not ready in {STACK_START_TIMEOUT_SECONDS}s")
            await asyncio.sleep(READY_POLL_SECONDS)
        info = StackInfo.read(data_dir)
        if info is None:
            raise StackError("the stack is ready but wrote no stack.json")
        logger.info("bench_stack_ready", data_dir=str(data_dir), ready_after=stack.ready_after)
        yield RunningStack(info=info, data_dir=data_dir)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await run
        _restore_env(saved)
        if not keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)


def _restore_env(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
