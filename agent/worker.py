"""The Temporal worker: `TaskWorkflow` and its activities on the task queue.

`build_worker` wires the activity classes to their dependencies; `run_worker` owns the
process: connects, builds the dependencies, runs until SIGINT/SIGTERM, then shuts down
gracefully (running activities get `WORKER_GRACEFUL_SHUTDOWN` to finish or be cancelled
through their heartbeats; the next worker retries them idempotently).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import timedelta

import structlog
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.admission import AdmissionActivities
from activities.agent_activities import AgentActivities
from activities.retention import RetentionActivities
from activities.task_activities import TaskActivities
from activities.tools import ToolActivities
from agent.config import Settings
from agent.db.session import DatabaseSessionManager
from agent.llm.client import LLMClient
from agent.logging import configure_logging
from agent.observability.exposition import (
    MetricsServer,
    free_loopback_address,
    serve_worker_metrics,
)
from agent.observability.tracing import (
    configure_tracing,
    shutdown_tracing,
    temporal_interceptors,
    trace_engine,
)
from agent.prompts.cache import PromptCache
from agent.schedules import ensure_retention_schedule
from agent.temporal import check_search_attributes, connect_temporal
from agent.tools.config import ToolsConfig
from agent.tools.toolbox import Toolbox
from workflows.admission_workflow import AdmissionWorkflow
from workflows.retention_workflow import RetentionWorkflow
from workflows.task_workflow import TaskWorkflow

logger = structlog.get_logger(__name__)

WORKER_GRACEFUL_SHUTDOWN = timedelta(seconds=20)
"""How long running activities get to finish when the worker stops."""

MAX_HEARTBEAT_THROTTLE = timedelta(seconds=1)
"""Heartbeats reach the server at least this often, so a cancel arrives within ~1 s."""

MAX_CONCURRENT_LOCAL_ACTIVITIES = 50
MAX_CACHED_WORKFLOWS = 1000
WORKER_SERVICE_NAME = "durable-agent-worker"
"""The trace service name unless `OTEL_SERVICE_NAME` says otherwise."""
WORKFLOW_TASK_POLLERS = 4
ACTIVITY_TASK_POLLERS = 8


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox workflows run in: restricted calls checked, no module imported twice.

    The default sandbox re-imports every module that is not passed through for each new
    workflow run (and each one evicted from the cache): our workflow modules, their
    dataclasses and decorators, built again per task. Measured on the recorded histories,
    that was about a third of the CPU of a replay. Every module is passed through instead
    (imported once, shared); the sandbox still refuses non-deterministic calls such as
    `datetime.now()` or file I/O in workflow code. Sharing is safe because the workflow
    modules hold no mutable module state, and the replay tests run with this runner.
    """
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
    )


def build_worker(
    client: Client,
    settings: Settings,
    session_manager: DatabaseSessionManager,
    llm_client: LLMClient,
    *,
    task_queue: str | None = None,
    prompt_cache: PromptCache | None = None,
    graceful_shutdown_timeout: timedelta = WORKER_GRACEFUL_SHUTDOWN,
    max_cached_workflows: int = MAX_CACHED_WORKFLOWS,
    toolbox: Toolbox | None = None,
) -> Worker:
    """Build a worker running the task, admission and retention workflows and activities.

    Args:
        client: Connected client (with the project's `data_converter`).
        settings: Slot sizes and the default task queue.
        session_manager: PostgreSQL sessions for the activities.
        llm_client: LLM client for the agent activities.
        task_queue: Queue to poll; `settings.task_queue` by default.
        prompt_cache: Optional Redis cache of prompt versions.
        graceful_shutdown_timeout: Time running activities get on shutdown.
        max_cached_workflows: Workflows kept in memory (sticky); 0 replays every task.
        toolbox: The MCP servers tool calls go to (None: no tool servers).

    Returns:
        The worker (not started): `async with worker:` or `await worker.run()`.
    """
    # Both no-ops unless tracing is on: then workflow and activity spans continue the
    # trace the client started, and the activities' SQL statements join it.
    trace_engine(session_manager.engine)
    tasks = TaskActivities(session_manager, settings, prompt_cache)
    agents = AgentActivities(session_manager, llm_client, settings, prompt_cache)
    tool_calls = ToolActivities(session_manager, toolbox or Toolbox(ToolsConfig()))
    admission = AdmissionActivities(session_manager, client)
    retention = RetentionActivities(session_manager)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[TaskWorkflow, AdmissionWorkflow, RetentionWorkflow],
        activities=[
            tasks.start_task,
            tasks.pause_task,
            tasks.record_decision,
            tasks.mark_milestone,
            tasks.finish_task,
            agents.classify,
            agents.plan,
            agents.execute,
            agents.execute_turn,
            agents.verify,
            agents.compress,
            agents.summarise,
            tool_calls.pin_task_tools,
            tool_calls.call_tool,
            admission.admit_task,
            admission.withdraw_task,
            admission.await_task_closed,
            retention.prune_finished_tasks,
        ],
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_concurrent_local_activities=MAX_CONCURRENT_LOCAL_ACTIVITIES,
        max_concurrent_workflow_task_polls=WORKFLOW_TASK_POLLERS,
        max_concurrent_activity_task_polls=ACTIVITY_TASK_POLLERS,
        max_heartbeat_throttle_interval=MAX_HEARTBEAT_THROTTLE,
        default_heartbeat_throttle_interval=MAX_HEARTBEAT_THROTTLE,
        graceful_shutdown_timeout=graceful_shutdown_timeout,
        max_cached_workflows=max_cached_workflows,
        interceptors=temporal_interceptors(),
        workflow_runner=workflow_runner(),
    )


def _runtime(settings: Settings) -> tuple[Runtime | None, str | None]:
    """A core runtime serving the Temporal SDK's Prometheus metrics, and their URL.

    `AGENT_WORKER_METRICS_ADDRESS` serves them on their own; with only
    `AGENT_WORKER_METRICS_PORT` the core serves them on a free loopback port, read and
    merged into the worker's `/metrics` at each scrape. Neither set: the default runtime.
    """
    address = settings.worker_metrics_address
    if address is None and settings.worker_metrics_port is not None:
        address = free_loopback_address()
    if address is None:
        return None, None
    metrics = PrometheusConfig(bind_address=address)
    host, _, port = address.rpartition(":")
    if host in ("0.0.0.0", "", "[::]"):  # a wildcard bind is reachable on loopback
        host = "127.0.0.1"
    return Runtime(telemetry=TelemetryConfig(metrics=metrics)), f"http://{host}:{port}/metrics"


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run a worker until SIGINT/SIGTERM (or `stop`), then shut down gracefully.

    Args:
        settings: Database, Temporal, LLM and Redis configuration.
        stop: Optional event that stops the worker when set (tests, embedding).
    """
    configure_logging(settings.log_level, json=settings.log_json)
    configure_tracing(WORKER_SERVICE_NAME)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    # Retried while Temporal starts; a missing search attribute stops the worker here
    # (naming it) instead of failing every task's first workflow task later.
    runtime, temporal_metrics_url = _runtime(settings)
    client = await connect_temporal(
        settings, retry_seconds=settings.temporal_connect_timeout_seconds, runtime=runtime
    )
    await check_search_attributes(client)
    schedule = await ensure_retention_schedule(
        client, settings.event_retention_days, settings.task_queue
    )
    logger.info(
        "retention_schedule",
        outcome=schedule.value,
        retention_days=settings.event_retention_days,
    )
    redis: Redis | None = (
        Redis.from_url(settings.redis_url, decode_responses=True) if settings.redis_url else None
    )
    cache = PromptCache(redis, settings.prompt_cache_ttl_seconds) if redis is not None else None
    metrics_server: MetricsServer | None = None
    if settings.worker_metrics_port is not None:
        metrics_server = serve_worker_metrics(
            settings.worker_metrics_host, settings.worker_metrics_port, temporal_metrics_url
        )
        logger.info("worker_metrics_serving", port=metrics_server.port)
    try:
        async with (
            DatabaseSessionManager(
                # A dead pooled connection fails one activity attempt, which Temporal
                # retries; pinging on every checkout would cost a round trip per session.
                settings.database_url_value(),
                pool_size=settings.worker_db_pool_size,
                pre_ping=False,
            ) as session_manager,
            LLMClient(settings) as llm_client,
            Toolbox.from_settings(settings) as toolbox,
        ):
            worker = build_worker(
                client,
                settings,
                session_manager,
                llm_client,
                prompt_cache=cache,
                toolbox=toolbox,
            )
            logger.info(
                "worker_started",
                task_queue=settings.task_queue,
                max_concurrent_activities=settings.max_concurrent_activities,
            )
            async with worker:
                await stop.wait()
                logger.info("worker_stopping")
            logger.info("worker_stopped")
    finally:
        if redis is not None:
            await redis.aclose()
        if metrics_server is not None:
            metrics_server.stop()
        shutdown_tracing()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
