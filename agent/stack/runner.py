"""`agent up`: every service on one machine, supervised, with no Docker and no configuration.

Start order: PostgreSQL, Redis, the Temporal dev server and the LLM simulator in parallel
(each only when not configured), then migrations and the dev API key, then the worker and
the API. The stack is ready when the API's `/readyz` answers 200 and the worker polls its
task queue; then `DIR/stack.json` is written. Children log to `DIR/logs/<name>.log`.

A stop (SIGINT/SIGTERM) first stops the API and the worker (SIGTERM to their process
groups, SIGKILL after `APP_STOP_SECONDS`: an activity cut short is retried by Temporal on
the next start), then every service in parallel, all within `SHUTDOWN_BUDGET_SECONDS`. The
children's pids are kept in `DIR/children.json`, so if `agent up` itself is killed
(SIGKILL), the next start on the same directory stops what it left behind.

Failure policy (`agent.stack.watch`): a dead server takes the stack down with a non-zero
exit; the worker and the API may be restarted a few times once the stack was ready.

Over 400 lines because `Stack` is one lifecycle whose steps share what the earlier ones
resolved (addresses, processes); what stands alone is elsewhere: the children's command
lines and environments (`children`), the readiness probes and the ready report
(`readiness`), the failure policy (`watch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client
from temporalio.service import RPCError

from agent.config import Settings, to_libpq_url
from agent.db.migrate import upgrade_database
from agent.stack.children import (
    agent_command,
    base_environment,
    child_environment,
    tool_environment,
)
from agent.stack.dev_key import ensure_dev_api_key
from agent.stack.info import STACK_FILE_NAME, StackInfo
from agent.stack.lock import DataDirLock
from agent.stack.ports import PortClaim, ensure_ports_free, free_port, wait_for_port
from agent.stack.postgres import EmbeddedPostgres
from agent.stack.readiness import READY_POLL_SECONDS, ready_report, wait_until_serving
from agent.stack.redis import EmbeddedRedis
from agent.stack.supervisor import (
    ManagedProcess,
    clear_children,
    reap_leftovers,
    record_children,
)
from agent.stack.temporal_server import TemporalDevServer
from agent.stack.watch import EmbeddedServer, Reporter, first_failure
from agent.temporal import TemporalStartupError, data_converter, ensure_search_attributes
from agent.tools.config import load_tools_config
from agent.tools.errors import ToolsConfigError

logger = structlog.get_logger(__name__)

DATABASE_NAME = "agent"
POSTGRES_DIR_NAME = "postgres"
REDIS_DIR_NAME = "redis"
LOGS_DIR_NAME = "logs"
LOCAL_HOST = "127.0.0.1"

TEMPORAL_READY_TIMEOUT_SECONDS = 60.0
SIMULATOR_READY_TIMEOUT_SECONDS = 60.0
STACK_READY_TIMEOUT_SECONDS = 120.0

# Stop budgets: first the apps (they use every service), then all services in parallel
# (they do not depend on each other); the sum stays under the 10 s promised for a stop.
APP_STOP_SECONDS = 3.5
SERVICE_STOP_SECONDS = 2.5
SHUTDOWN_BUDGET_SECONDS = APP_STOP_SECONDS + SERVICE_STOP_SECONDS


class StackError(RuntimeError):
    """The stack could not start or stopped failing; the message is meant for a person."""


@dataclass(frozen=True)
class StackOptions:
    """What `agent up` was asked for on the command line."""

    data_dir: Path
    api_port: int = 8000
    temporal_port: int = 7233
    ui_port: int = 8233
    ui: bool = True
    workers: int = 1
    """Worker processes polling the task queue (each with its own metrics port)."""


def _public_host(host: str) -> str:
    return LOCAL_HOST if host in {"0.0.0.0", "::", ""} else host


class Stack:
    """One run of `agent up`."""

    def __init__(
        self,
        options: StackOptions,
        settings: Settings,
        *,
        report: Reporter,
        started_at: float | None = None,
    ) -> None:
        """Describe the run; nothing starts until `run()`.

        Args:
            options: Flags.
            settings: Validated settings (configured services are used, not started).
            report: Where lines for a person go (the CLI's stdout).
            started_at: `time.monotonic()` when the command started, for time-to-ready.
        """
        self.options = options
        self.settings = settings
        self.report = report
        self.started_at = time.monotonic() if started_at is None else started_at
        self.data_dir = options.data_dir.expanduser().resolve()
        self.logs_dir = self.data_dir / LOGS_DIR_NAME
        self.lock = DataDirLock(self.data_dir)
        self.ready = False
        self.ready_after: float | None = None

        self._postgres: EmbeddedPostgres | None = None
        self._redis: EmbeddedRedis | None = None
        self._temporal_server: TemporalDevServer | None = None
        self._temporal: ManagedProcess | None = None
        self._simulator: ManagedProcess | None = None
        self._workers: list[ManagedProcess] = []
        self._api: ManagedProcess | None = None
        self._infra_starts: list[asyncio.Task[None]] = []
        self._simulator_port: int | None = None
        self.tool_servers: list[str] = []
        """The MCP servers of AGENT_MCP_SERVERS / AGENT_MCP_CONFIG (checked by `run`)."""

        self.database_url: str | None = None
        self.redis_url: str | None = settings.redis_url
        self.temporal_address: str | None = settings.temporal_address
        self.temporal_ui_url: str | None = settings.temporal_ui_url
        self.llm_base_url: str | None = settings.llm_base_url
        self.api_key: str | None = None
        self.worker_metrics_ports: list[int] = (
            [settings.worker_metrics_port] if settings.worker_metrics_port else []
        )

    # -- public -------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """Base URL of the API."""
        return f"http://{_public_host(self.settings.api_host)}:{self.options.api_port}"

    @property
    def api_metrics_url(self) -> str:
        """The API's Prometheus page."""
        return f"{self.api_url}/metrics"

    @property
    def worker_metrics_urls(self) -> list[str]:
        """Each worker's Prometheus page (the first on `AGENT_WORKER_METRICS_PORT`, else free)."""
        host = _public_host(self.settings.worker_metrics_host)
        return [f"http://{host}:{port}/metrics" for port in self.worker_metrics_ports]

    async def run(self, stop: asyncio.Event) -> int:
        """Start everything, stay up until `stop` is set or a child fails, then stop all.

        Args:
            stop: Set by the caller's signal handlers.

        Returns:
            The process exit status: 0 after a requested stop, 1 after a failure.

        Raises:
            StackError: When the data dir is locked or a port is busy (nothing started).
        """
        try:
            # Refused before anything starts: the worker and the API would refuse it later.
            self.tool_servers = list(load_tools_config(self.settings).servers)
        except ToolsConfigError as exc:
            raise StackError(str(exc)) from exc
        self.lock.acquire()
        try:
            # A run that was killed leaves its file behind; it must not look ready.
            (self.data_dir / STACK_FILE_NAME).unlink(missing_ok=True)
            reaped = await asyncio.to_thread(reap_leftovers, self.data_dir)
            if reaped:
                self.report(f"stopped processes left by a previous run: {', '.join(reaped)}")
            ensure_ports_free(self._port_claims(), _public_host(self.settings.api_host))
            return await self._supervise(stop)
        finally:
            (self.data_dir / STACK_FILE_NAME).unlink(missing_ok=True)
            self.lock.release()

    # -- lifecycle -----------------------------------------------------------------------

    def _port_claims(self) -> list[PortClaim]:
        claims = [PortClaim(self.options.api_port, "--api-port", "API")]
        for port in self.worker_metrics_ports:
            claims.append(PortClaim(port, "AGENT_WORKER_METRICS_PORT", "worker metrics"))
        if self.settings.temporal_address is None:
            claims.append(PortClaim(self.options.temporal_port, "--temporal-port", "Temporal"))
            if self.options.ui:
                claims.append(PortClaim(self.options.ui_port, "--ui-port", "Temporal UI"))
        return claims

    async def _supervise(self, stop: asyncio.Event) -> int:
        stop_wait = asyncio.create_task(stop.wait())
        watch = asyncio.create_task(first_failure(self, self.report))
        start = asyncio.create_task(self._start())
        try:
            await asyncio.wait({start, watch, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if not start.done():
                start.cancel()
                with contextlib.suppress(asyncio.CancelledError, StackError):
                    await start
                if stop.is_set():
                    self.report("stopping before the stack was ready")
                    return 0
                raise StackError(watch.result())
            self._raise_start_failure(start)
            self._on_ready()
            await asyncio.wait({watch, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if watch.done():
                raise StackError(watch.result())
            self.report("stopping ...")
            return 0
        finally:
            for task in (stop_wait, watch, start):
                task.cancel()
            await self._shutdown()

    def _raise_start_failure(self, start: asyncio.Task[None]) -> None:
        error = start.exception()
        if error is None:
            return
        if isinstance(error, StackError):
            raise error
        if isinstance(error, TimeoutError):
            raise StackError(
                f"the stack was not ready within {STACK_READY_TIMEOUT_SECONDS:.0f}s "
                f"(API /readyz and a worker polling {self.settings.task_queue!r}); "
                f"see the logs in {self.logs_dir}"
            ) from error
        raise StackError(f"start-up failed: {type(error).__name__}: {error}") from error

    async def _start(self) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._infra_starts = [
            asyncio.create_task(self._start_postgres()),
            asyncio.create_task(self._start_redis()),
            asyncio.create_task(self._start_temporal()),
            asyncio.create_task(self._start_simulator()),
        ]
        # Shielded: a thread starting PostgreSQL cannot be interrupted, so a stop during
        # start-up waits for it in `_shutdown` and then stops what it started.
        results = await asyncio.shield(asyncio.gather(*self._infra_starts, return_exceptions=True))
        names = ("PostgreSQL", "Redis", "Temporal", "LLM simulator")
        for name, result in zip(names, results, strict=True):
            if isinstance(result, StackError):
                raise result
            if isinstance(result, TimeoutError):
                where = f" at {self.temporal_address}" if name == "Temporal" else ""
                raise StackError(f"{name}{where} did not become ready in time") from result
            if isinstance(result, BaseException):
                raise StackError(f"{name} did not start: {result}") from result
        assert self.database_url is not None
        assert self.temporal_address is not None
        logger.info("migrating_database")
        try:
            await asyncio.to_thread(upgrade_database, self.database_url)
        except (OSError, SQLAlchemyError) as exc:
            shown = make_url(self.database_url).render_as_string(hide_password=True)
            raise StackError(f"could not migrate the database {shown}: {exc}") from exc
        self.api_key = await ensure_dev_api_key(self.database_url, self.data_dir, self.settings)
        # Always served: `agent up` prints where, like every other address.
        while len(self.worker_metrics_ports) < self.options.workers:
            self.worker_metrics_ports.append(free_port(self.settings.worker_metrics_host))
        env = self._child_env()
        for number, port in enumerate(self.worker_metrics_ports, start=1):
            name = "worker" if number == 1 else f"worker{number}"
            self._workers.append(
                ManagedProcess(
                    name,
                    agent_command("worker"),
                    log_path=self.logs_dir / f"{name}.log",
                    env={**env, "AGENT_WORKER_METRICS_PORT": str(port)},
                )
            )
        self._api = ManagedProcess(
            "api", agent_command("api"), log_path=self.logs_dir / "api.log", env=env
        )
        for worker in self._workers:
            await worker.start()
        await self._api.start()
        await asyncio.wait_for(self._wait_app_ready(), STACK_READY_TIMEOUT_SECONDS)

    async def _start_postgres(self) -> None:
        if self.settings.database_url is not None:
            self.database_url = to_libpq_url(self.settings.database_url.get_secret_value())
            return
        self._postgres = EmbeddedPostgres(self.data_dir / POSTGRES_DIR_NAME, durable=True)
        await asyncio.to_thread(self._postgres.start)
        self.database_url = await asyncio.to_thread(self._postgres.create_database, DATABASE_NAME)

    async def _start_redis(self) -> None:
        if self.settings.redis_url is not None:
            return
        try:
            self._redis = EmbeddedRedis(self.data_dir / REDIS_DIR_NAME)
            await asyncio.to_thread(self._redis.start)
        except (ImportError, OSError, RuntimeError) as exc:
            # Redis is only a cache: without it the service still works, just slower.
            logger.warning("redis_unavailable", error=str(exc))
            self._redis = None
            return
        self.redis_url = self._redis.url

    async def _start_temporal(self) -> None:
        if self.settings.temporal_address is None:
            server = TemporalDevServer(
                data_dir=self.data_dir,
                port=self.options.temporal_port,
                ui_port=self.options.ui_port if self.options.ui else None,
                namespace=self.settings.temporal_namespace,
            )
            server.db_file.parent.mkdir(parents=True, exist_ok=True)
            self._temporal_server = server
            self._temporal = ManagedProcess(
                "temporal", server.command(), log_path=self.logs_dir / "temporal.log"
            )
            await self._temporal.start()
            self.temporal_address = server.address
            self.temporal_ui_url = server.ui_url
        assert self.temporal_address is not None
        client = await asyncio.wait_for(self._connect_temporal(), TEMPORAL_READY_TIMEOUT_SECONDS)
        if self._temporal is None:
            # The dev server registers them from its command line. On a configured cluster
            # `agent up` registers the missing ones (the worker and the API only check),
            # and stops naming any it could not add (Temporal Cloud: its console does).
            try:
                await ensure_search_attributes(client, self.settings.temporal_namespace)
            except (TemporalStartupError, RPCError) as exc:
                raise StackError(str(exc)) from exc

    async def _connect_temporal(self) -> Client:
        assert self.temporal_address is not None
        while True:
            try:
                return await Client.connect(
                    self.temporal_address,
                    namespace=self.settings.temporal_namespace,
                    data_converter=data_converter,
                )
            except RuntimeError:
                if self._temporal is not None and self._temporal.returncode is not None:
                    raise StackError(
                        "the Temporal dev server exited during start-up:\n"
                        + self._temporal.log_tail()
                    ) from None
                await asyncio.sleep(READY_POLL_SECONDS)

    async def _start_simulator(self) -> None:
        # Only spawned here: nothing calls the LLM before a task runs, so the worker and
        # the API start meanwhile and readiness waits for it (`_wait_simulator`).
        if self.settings.uses_real_llm:
            return
        port = free_port()
        self._simulator = ManagedProcess(
            "simulator",
            agent_command("sim", "--port", str(port)),
            log_path=self.logs_dir / "simulator.log",
            env=base_environment(self.data_dir),
        )
        await self._simulator.start()
        self._simulator_port = port
        self.llm_base_url = f"http://{LOCAL_HOST}:{port}/v1"

    async def _wait_simulator(self) -> None:
        if self._simulator is None or self._simulator_port is None:
            return
        deadline = time.monotonic() + SIMULATOR_READY_TIMEOUT_SECONDS
        while not await asyncio.to_thread(
            wait_for_port, self._simulator_port, LOCAL_HOST, READY_POLL_SECONDS
        ):
            if self._simulator.returncode is not None or time.monotonic() > deadline:
                raise StackError("the LLM simulator did not start:\n" + self._simulator.log_tail())

    async def _wait_app_ready(self) -> None:
        await self._wait_simulator()
        client = await self._connect_temporal()
        await wait_until_serving(
            self.api_url,
            client,
            self.settings.temporal_namespace,
            self.settings.task_queue,
            workers=len(self._workers),
        )

    def _child_env(self) -> dict[str, str]:
        assert self.database_url is not None
        assert self.temporal_address is not None
        return child_environment(
            self.data_dir,
            {
                "AGENT_DATABASE_URL": self.database_url,
                "AGENT_REDIS_URL": self.redis_url,
                "AGENT_TEMPORAL_ADDRESS": self.temporal_address,
                "AGENT_TEMPORAL_NAMESPACE": self.settings.temporal_namespace,
                "AGENT_TASK_QUEUE": self.settings.task_queue,
                "AGENT_TEMPORAL_UI_URL": self.temporal_ui_url,
                "AGENT_LLM_BASE_URL": self.llm_base_url,
                "AGENT_API_HOST": self.settings.api_host,
                "AGENT_API_PORT": str(self.options.api_port),
                "AGENT_WORKER_METRICS_HOST": self.settings.worker_metrics_host,
                **tool_environment(self.settings),
            },
        )

    # -- watched (`agent.stack.watch`) --------------------------------------------------

    def managed_processes(self) -> list[ManagedProcess]:
        """The children run as processes, apps first."""
        return [
            process
            for process in (self._api, *self._workers, self._simulator, self._temporal)
            if process is not None
        ]

    def embedded_servers(self) -> dict[str, EmbeddedServer]:
        """The embedded servers this run started, by name."""
        servers: dict[str, EmbeddedServer] = {}
        if self._postgres is not None:
            servers["postgres"] = self._postgres
        if self._redis is not None:
            servers["redis"] = self._redis
        return servers

    def children_changed(self) -> None:
        """Record the children's pids again (a restarted child has a new one)."""
        record_children(self.data_dir, self._pids())
        self._stack_info().write(self.data_dir)

    def _pids(self) -> dict[str, int]:
        pids = {p.name: p.pid for p in self.managed_processes() if p.pid is not None}
        pids.update({n: s.pid for n, s in self.embedded_servers().items() if s.pid is not None})
        return pids

    def _stack_info(self) -> StackInfo:
        assert self.database_url is not None
        assert self.temporal_address is not None
        assert self.api_key is not None
        return StackInfo(
            api_url=self.api_url,
            temporal_address=self.temporal_address,
            temporal_namespace=self.settings.temporal_namespace,
            temporal_ui_url=self.temporal_ui_url,
            task_queue=self.settings.task_queue,
            database_url=self.database_url,
            redis_url=self.redis_url,
            llm_base_url=self.llm_base_url,
            api_metrics_url=self.api_metrics_url,
            worker_metrics_urls=self.worker_metrics_urls,
            api_key=self.api_key,
            pid=os.getpid(),
            started_at=datetime.now(UTC),
            processes=self._pids(),
        )

    def _on_ready(self) -> None:
        self.ready = True
        self.ready_after = time.monotonic() - self.started_at
        record_children(self.data_dir, self._pids())
        info = self._stack_info()
        info.write(self.data_dir)
        logger.info("stack_ready", ready_after_s=round(self.ready_after, 2))
        lines = ready_report(
            info,
            data_dir=self.data_dir,
            logs_dir=self.logs_dir,
            simulated_llm=self._simulator is not None,
            ready_after=self.ready_after,
            tool_servers=self.tool_servers,
        )
        for line in lines:
            self.report(line)

    async def _shutdown(self) -> None:
        logger.info("stack_stopping")
        # Infra starts run in threads that cannot be interrupted; let them finish so that
        # whatever they started is stopped below.
        if self._infra_starts:
            await asyncio.gather(*self._infra_starts, return_exceptions=True)
        apps = [p for p in (self._api, *self._workers) if p is not None]
        await asyncio.gather(*(p.stop(APP_STOP_SECONDS) for p in apps))
        stops = [p.stop(SERVICE_STOP_SECONDS) for p in (self._simulator, self._temporal) if p]
        for server in (self._redis, self._postgres):
            if server is not None:
                stops.append(asyncio.to_thread(server.stop, SERVICE_STOP_SECONDS))
        await asyncio.gather(*stops)
        clear_children(self.data_dir)
        logger.info("stack_stopped")
