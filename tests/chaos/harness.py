"""Every piece of the service as its own OS process, so each can be killed and restarted.

`Cluster` starts, in a scratch directory: the embedded PostgreSQL (with a password, so the
secrets checks have one to look for), the Temporal dev server on a state file
(`--db-filename`, the project's search attributes), the LLM simulator wrapped in a request
recorder (`tests.chaos.recording_sim`), and `agent worker` / `agent api` with `AGENT_*`
environments. Every child runs in its own session and logs to `DIR/logs/<name>.log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from pydantic import SecretStr
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from agent.config import Settings, to_asyncpg_url
from agent.db.migrate import upgrade_database
from agent.db.session import DatabaseSessionManager
from agent.repositories.api_keys import ApiKeyRepository
from agent.repositories.users import UserRepository
from agent.stack.ports import free_port, wait_for_port
from agent.stack.postgres import EmbeddedPostgres
from agent.stack.temporal_server import TemporalDevServer
from agent.temporal import connect_temporal

REPO_ROOT = Path(__file__).resolve().parents[2]
AGENT_SCRIPT = Path(sys.executable).parent / "agent"

DB_NAME = "agent"
DB_PASSWORD = "pg-secret-" + "7f3a9c21d4e8"
LLM_API_KEY = "sk-chaos-" + "b61e0f5a93c7d2"
API_KEY_PEPPER = "pepper-chaos-" + "e5d1c0"

READY_TIMEOUT_SECONDS = 90.0
POLL_SECONDS = 0.2
STOP_TIMEOUT_SECONDS = 10.0
LLM_TIMEOUT_SECONDS = 4.0
"""Read timeout of the worker's LLM client: a simulated hang fails (and is retried) fast."""


@dataclass
class SimOptions:
    """Pacing of the simulator: fast by default so that many tasks fit in a run."""

    ttft_ms: int = 50
    tps: float = 1500.0
    output_tokens: int = 120
    hang_seconds: float = 60.0


@dataclass
class Proc:
    """One child process that can be started, killed and started again."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        """Start (or start again) the process."""
        assert not self.alive, f"{self.name} already runs"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts + 1} of {self.name} =====\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.starts += 1

    @property
    def alive(self) -> bool:
        """Whether the process runs."""
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the running process."""
        return self.popen.pid if self.alive and self.popen is not None else None

    def kill(self) -> None:
        """SIGKILL the process (and its process group) and reap it."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM, then SIGKILL when it does not exit in time."""
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_text(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class UserKey:
    """A user and one of their API keys."""

    user_id: uuid.UUID
    key: str


@dataclass
class Cluster:
    """PostgreSQL, Temporal, simulator, worker(s) and API, each a separate process."""

    root: Path
    sim_options: SimOptions = field(default_factory=SimOptions)
    log_level: str = "INFO"
    task_queue: str = field(default_factory=lambda: f"chaos-{uuid.uuid4().hex[:8]}")
    api_port: int = field(default_factory=free_port)
    sim_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.logs = self.root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.sim_log = self.root / "sim-requests.jsonl"
        # Durable: the PostgreSQL scenario crashes the server (immediate shutdown), and
        # `synchronous_commit=off` would lose commits Temporal already saw complete.
        self.postgres = EmbeddedPostgres(self.root / "pg", durable=True)
        self.temporal_server = TemporalDevServer(data_dir=self.root, port=free_port(), ui_port=None)
        self.temporal_server.db_file.parent.mkdir(parents=True, exist_ok=True)
        self.temporal_proc = Proc(
            "temporal", self.temporal_server.command(), dict(os.environ), self.logs / "temporal.log"
        )
        self.sim = Proc(
            "sim",
            [
                sys.executable,
                "-m",
                "tests.chaos.recording_sim",
                "--port",
                str(self.sim_port),
                "--log",
                str(self.sim_log),
            ],
            self._env(
                AGENT_SIM_TTFT_MS=str(self.sim_options.ttft_ms),
                AGENT_SIM_TPS=str(self.sim_options.tps),
                AGENT_SIM_OUTPUT_TOKENS=str(self.sim_options.output_tokens),
                AGENT_SIM_HANG_SECONDS=str(self.sim_options.hang_seconds),
            ),
            self.logs / "sim.log",
        )
        self.workers: list[Proc] = []
        self.api: Proc | None = None
        self.database_url = ""
        self.users: list[UserKey] = []
        self._temporal: Client | None = None
        self._db: DatabaseSessionManager | None = None

    # -- environment ------------------------------------------------------------------

    def _env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_")}
        env.update(
            {
                "AGENT_DATA_DIR": str(self.root / "data"),
                "AGENT_LOG_LEVEL": self.log_level,
                "AGENT_LOG_JSON": "true",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra)
        return env

    def app_env(self) -> dict[str, str]:
        """Environment of `agent worker` and `agent api`."""
        return self._env(
            AGENT_DATABASE_URL=self.database_url,
            AGENT_TEMPORAL_ADDRESS=self.temporal_server.address,
            AGENT_TASK_QUEUE=self.task_queue,
            AGENT_LLM_BASE_URL=f"http://127.0.0.1:{self.sim_port}/v1",
            AGENT_LLM_API_KEY=LLM_API_KEY,
            AGENT_LLM_TIMEOUT_SECONDS=str(LLM_TIMEOUT_SECONDS),
            AGENT_API_HOST="127.0.0.1",
            AGENT_API_PORT=str(self.api_port),
            AGENT_API_KEY_PEPPER=API_KEY_PEPPER,
            **self.extra_env,
        )

    @property
    def settings(self) -> Settings:
        """Settings equal to the children's, for clients in the test process."""
        return Settings(
            database_url=SecretStr(self.database_url),
            temporal_address=self.temporal_server.address,
            task_queue=self.task_queue,
            api_key_pepper=SecretStr(API_KEY_PEPPER),
        )

    @property
    def api_url(self) -> str:
        """Base URL of the API process."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def ws_url(self) -> str:
        """Base WebSocket URL of the API process."""
        return f"ws://127.0.0.1:{self.api_port}"

    @property
    def sim_url(self) -> str:
        """Base URL of the simulator."""
        return f"http://127.0.0.1:{self.sim_port}"

    # -- lifecycle --------------------------------------------------------------------

    async def start(self, *, workers: int = 1, users: int = 2) -> None:
        """Start every piece and wait until the API is ready and a worker polls."""
        await asyncio.to_thread(self._start_postgres)
        self.temporal_proc.start()
        self.sim.start()
        await asyncio.to_thread(upgrade_database, self.database_url)
        await self.temporal()
        for _ in range(users):
            self.users.append(await self.create_user())
        for _ in range(workers):
            self.start_worker()
        self.start_api()
        await asyncio.to_thread(wait_for_port, self.sim_port, "127.0.0.1", READY_TIMEOUT_SECONDS)
        await self.wait_api_ready()
        await self.wait_worker_polling()

    def _start_postgres(self) -> None:
        self.postgres.start()
        url = self.postgres.create_database(DB_NAME)
        subprocess.run(
            [
                str(Path(self.postgres_bin) / "psql"),
                url,
                "-c",
                f"ALTER USER postgres PASSWORD '{DB_PASSWORD}'",
            ],
            check=True,
            capture_output=True,
        )
        self.database_url = url.replace("postgres@", f"postgres:{DB_PASSWORD}@", 1)

    @property
    def postgres_bin(self) -> str:
        """Directory of the embedded PostgreSQL binaries."""
        from agent.stack.postgres import _bin_dir

        return str(_bin_dir())

    async def stop(self) -> None:
        """Stop everything (apps first), close the test's own clients."""
        if self._db is not None:
            await self._db.close()
            self._db = None
        procs = [p for p in (self.api, *self.workers) if p is not None]
        await asyncio.gather(*(asyncio.to_thread(p.stop, 5.0) for p in procs))
        await asyncio.gather(
            asyncio.to_thread(self.sim.stop, 3.0), asyncio.to_thread(self.temporal_proc.stop, 5.0)
        )
        await asyncio.to_thread(self.postgres.stop)

    def start_worker(self) -> Proc:
        """Start one more `agent worker` process."""
        proc = Proc(
            f"worker{len(self.workers) + 1}",
            [str(AGENT_SCRIPT), "worker"],
            self.app_env(),
            self.logs / f"worker{len(self.workers) + 1}.log",
        )
        proc.start()
        self.workers.append(proc)
        return proc

    def kill_workers(self) -> None:
        """SIGKILL every running worker."""
        for proc in self.workers:
            if proc.alive:
                proc.kill()

    def start_api(self) -> Proc:
        """Start (or start again) the `agent api` process."""
        if self.api is None:
            self.api = Proc(
                "api", [str(AGENT_SCRIPT), "api"], self.app_env(), self.logs / "api.log"
            )
        self.api.start()
        return self.api

    async def wait_api_ready(self, limit_s: float = READY_TIMEOUT_SECONDS) -> None:
        """Wait for `/readyz` to answer 200."""
        deadline = time.monotonic() + limit_s
        async with httpx.AsyncClient(timeout=2.0) as http:
            while True:
                try:
                    response = await http.get(f"{self.api_url}/readyz")
                    if response.status_code == httpx.codes.OK:
                        return
                except httpx.HTTPError:
                    pass
                if self.api is not None and not self.api.alive:
                    raise RuntimeError("the API exited:\n" + self.api.log_text()[-3000:])
                if time.monotonic() > deadline:
                    raise TimeoutError("the API did not become ready")
                await asyncio.sleep(POLL_SECONDS)

    async def wait_worker_polling(self, limit_s: float = READY_TIMEOUT_SECONDS) -> None:
        """Wait until a worker polls the task queue."""
        client = await self.temporal()
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            for queue_type in (
                TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            ):
                try:
                    response = await client.workflow_service.describe_task_queue(
                        DescribeTaskQueueRequest(
                            namespace="default",
                            task_queue=TaskQueue(name=self.task_queue),
                            task_queue_type=queue_type,
                        )
                    )
                except RPCError:
                    continue
                if response.pollers:
                    return
            await asyncio.sleep(POLL_SECONDS)
        raise TimeoutError("no worker polls the task queue")

    async def temporal(self) -> Client:
        """A client of the dev server (reconnects lazily after a server restart)."""
        if self._temporal is None:
            deadline = time.monotonic() + READY_TIMEOUT_SECONDS
            while True:
                try:
                    self._temporal = await connect_temporal(self.settings)
                    break
                except RuntimeError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(POLL_SECONDS)
        return self._temporal

    def db(self) -> DatabaseSessionManager:
        """Session manager of the test process (for invariant checks)."""
        if self._db is None:
            self._db = DatabaseSessionManager(to_asyncpg_url(self.database_url), pool_size=4)
        return self._db

    async def create_user(self) -> UserKey:
        """Create a user with one API key."""
        manager = DatabaseSessionManager(to_asyncpg_url(self.database_url), pool_size=1)
        async with manager, manager.session() as session:
            user = await UserRepository(session).get_or_create(f"chaos-{uuid.uuid4().hex[:8]}")
            keys = ApiKeyRepository(session, SecretStr(API_KEY_PEPPER))
            plaintext, _ = await keys.create_key(user.id, "chaos")
            await session.commit()
        return UserKey(user.id, plaintext)

    # -- faults -----------------------------------------------------------------------

    async def restart_postgres(self) -> None:
        """Stop PostgreSQL in immediate mode (like a crash) and start it on the same port."""
        if self._db is not None:
            await self._db.close()
            self._db = None
        process = self.postgres._process
        assert process is not None
        process.send_signal(signal.SIGQUIT)
        await asyncio.to_thread(process.wait)
        await asyncio.to_thread(self.postgres.start)

    def listener_pid(self) -> int | None:
        """Backend pid of the API's LISTEN connection, from its latest `listening` log line."""
        if self.api is None:
            return None
        pid = None
        for line in self.api.log_text().splitlines():
            if '"event_listener_listening"' in line:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    pid = int(json.loads(line)["pid"])
        return pid

    async def terminate_listeners(self) -> int:
        """Terminate the API's LISTEN connection (pg_terminate_backend); count terminated."""
        pid = self.listener_pid()
        if pid is None:
            return 0
        admin = await asyncpg.connect(self.database_url)
        try:
            done = await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        return int(bool(done))

    async def restart_temporal(self, *, hard: bool = False) -> None:
        """Stop the dev server (SIGKILL when `hard`) and start it on the same state file."""
        if hard:
            self.temporal_proc.kill()
        else:
            self.temporal_proc.stop()
        self.temporal_proc.start()
        self._temporal = None
        await self.temporal()

    def sim_requests(self) -> list[dict[str, Any]]:
        """Every completion request the simulator received, in arrival order."""
        if not self.sim_log.exists():
            return []
        lines = self.sim_log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def all_logs(self) -> str:
        """Concatenated logs of every child process."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))
