"""`agent up` end to end: real processes, real ports, a stop and a second start."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from agent.db.session import DatabaseSessionManager
from agent.repositories.users import UserRepository
from agent.stack.dev_key import DEV_KEY_FILE_NAME
from agent.stack.info import STACK_FILE_NAME, StackInfo
from agent.stack.lock import DataDirLock
from agent.stack.ports import free_port
from agent.stack.temporal_server import temporal_binary
from agent.temporal.converter import data_converter

ROOT = Path(__file__).resolve().parents[3]
READY_TIMEOUT_SECONDS = 240.0
STOP_TIMEOUT_SECONDS = 30.0
MARKER_USER = "e2e-marker"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (ROOT / "api" / "main.py").exists(), reason="api/main.py (the API app) is not built yet"
    ),
    pytest.mark.skipif(
        not (ROOT / "agent" / "cli" / "worker.py").exists(),
        reason="agent/cli/worker.py (`agent worker`) is not built yet",
    ),
]


class Up:
    """One `agent up` subprocess."""

    def __init__(
        self,
        data_dir: Path,
        api_port: int,
        temporal_port: int,
        ui_port: int,
        services: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        self.output = data_dir.parent / f"up-{time.monotonic_ns()}.log"
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("AGENT_") or key.startswith("AGENT_TEST_")
        }
        env.update(services or {})
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from agent.cli.main import main; main()",
                    "up",
                    "--data-dir",
                    str(data_dir),
                    "--api-port",
                    str(api_port),
                    "--temporal-port",
                    str(temporal_port),
                    "--ui-port",
                    str(ui_port),
                    *extra_args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=data_dir.parent,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_ready(self) -> StackInfo:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"agent up exited with {self.process.returncode}:\n{self.text()}")
            info = StackInfo.read(self.data_dir)
            if info is not None and info.pid == self.process.pid:
                return info
            time.sleep(0.2)
        pytest.fail(f"no stack.json within {READY_TIMEOUT_SECONDS}s:\n{self.text()}")

    def descendants(self) -> list[psutil.Process]:
        children: list[psutil.Process] = psutil.Process(self.process.pid).children(recursive=True)
        return children

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def kill_group(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def ports() -> tuple[int, int, int]:
    return free_port(), free_port(), free_port()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _metric_names(page: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(page)}


def _alive(processes: list[psutil.Process]) -> list[str]:
    alive = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            continue
    return alive


async def _write_marker(database_url: str) -> None:
    async with DatabaseSessionManager(database_url) as manager, manager.session() as session:
        await UserRepository(session).get_or_create(MARKER_USER)
        await session.commit()


async def _marker_exists(database_url: str) -> bool:
    async with DatabaseSessionManager(database_url) as manager, manager.session() as session:
        return await UserRepository(session).get_by_name(MARKER_USER) is not None


def test_up_serves_stops_cleanly_and_keeps_data_across_restarts(
    data_dir: Path, ports: tuple[int, int, int]
) -> None:
    api_port, temporal_port, ui_port = ports
    first = Up(data_dir, api_port, temporal_port, ui_port)
    try:
        info = first.wait_ready()
        health = httpx.get(f"{info.api_url}/healthz", timeout=10)
        ready = httpx.get(f"{info.api_url}/readyz", timeout=10)
        ui = httpx.get(f"http://127.0.0.1:{ui_port}/", timeout=10)
        assert info.api_metrics_url is not None
        api_metrics = httpx.get(info.api_metrics_url, timeout=10)
        worker_metrics = [httpx.get(url, timeout=10) for url in info.worker_metrics_urls]
        asyncio.run(_write_marker(info.database_url))
        key_file = (data_dir / DEV_KEY_FILE_NAME).read_text()
        children = first.descendants()

        status = first.terminate()
    finally:
        first.kill_group()

    assert health.status_code == 200
    assert ready.status_code == 200, ready.text
    assert ui.status_code == 200
    assert info.api_url == f"http://127.0.0.1:{api_port}"
    assert info.temporal_address == f"127.0.0.1:{temporal_port}"
    assert info.temporal_ui_url == f"http://127.0.0.1:{ui_port}"
    assert key_file.strip() == info.api_key
    assert {"worker", "api", "temporal", "postgres"} <= set(info.processes)
    assert {child.pid for child in children} >= set(info.processes.values())
    assert "ready in " in first.text()
    # Where the metrics are: printed, in stack.json, and really served there.
    assert info.api_metrics_url == f"http://127.0.0.1:{api_port}/metrics"
    assert f"API metrics    {info.api_metrics_url}" in first.text()
    assert len(info.worker_metrics_urls) == 1
    assert f"Worker metrics {info.worker_metrics_urls[0]}" in first.text()
    assert api_metrics.status_code == 200
    assert _metric_names(api_metrics.text) >= {"agent_tasks", "agent_websocket_connections"}
    assert [r.status_code for r in worker_metrics] == [200]
    assert "agent_llm_calls" in _metric_names(worker_metrics[0].text)
    assert status == 0, first.text()
    assert _alive(children) == []
    assert not (data_dir / STACK_FILE_NAME).exists()
    with DataDirLock(data_dir) as lock:
        assert lock.held

    second = Up(data_dir, api_port, temporal_port, ui_port)
    try:
        again = second.wait_ready()
        marker_kept = asyncio.run(_marker_exists(again.database_url))
        ready_again = httpx.get(f"{again.api_url}/readyz", timeout=10)
        second_children = second.descendants()
        second_status = second.terminate()
    finally:
        second.kill_group()

    assert marker_kept
    assert ready_again.status_code == 200
    assert again.api_key == info.api_key
    assert (data_dir / DEV_KEY_FILE_NAME).read_text() == key_file
    assert second_status == 0, second.text()
    assert _alive(second_children) == []


async def _create_database(server_url: str) -> str:
    name = f"agent_up_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{server_url.rpartition('/')[0]}/{name}"


def test_up_uses_configured_services_instead_of_starting_its_own(
    tmp_path: Path, postgres_server_url: str, redis_server_url: str
) -> None:
    database_url = asyncio.run(_create_database(postgres_server_url))
    temporal_port = free_port()
    temporal = subprocess.Popen(
        [
            str(temporal_binary()),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(temporal_port),
            "--log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    services = {
        "AGENT_DATABASE_URL": database_url,
        "AGENT_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "AGENT_REDIS_URL": redis_server_url,
    }
    up = Up(tmp_path / "data", free_port(), free_port(), free_port(), services)
    try:
        info = up.wait_ready()
        ready = httpx.get(f"{info.api_url}/readyz", timeout=10)
        status = up.terminate()
        temporal_survived = temporal.poll() is None
    finally:
        up.kill_group()
        temporal.terminate()
        temporal.wait()

    assert ready.status_code == 200, ready.text
    assert info.database_url == database_url
    assert info.temporal_address == f"127.0.0.1:{temporal_port}"
    assert info.temporal_ui_url is None
    assert info.redis_url == redis_server_url
    assert set(info.processes) == {"worker", "api", "simulator"}
    assert not (tmp_path / "data" / "postgres").exists()
    assert status == 0, up.text()
    assert temporal_survived


TOOL_GOAL = 'What time is it? [milestones=1] [tool=time.get_current_time {"timezone": "UTC"}]'


def test_up_gives_its_worker_and_api_the_tool_servers(tmp_path: Path) -> None:
    # Arrange: a config file named relative to where `agent up` runs.
    time_server = str(Path(sys.executable).parent / "mcp-server-time")
    (tmp_path / "tools.json").write_text(
        json.dumps({"mcpServers": {"time": {"command": time_server}}})
    )
    up = Up(
        tmp_path / "data",
        free_port(),
        free_port(),
        free_port(),
        {"AGENT_MCP_CONFIG": "tools.json"},
    )
    try:
        info = up.wait_ready()
        headers = {"Authorization": f"Bearer {info.api_key}"}
        with httpx.Client(base_url=info.api_url, headers=headers, timeout=30) as http:
            # Act: the API checks names against the servers; the worker calls them.
            unknown = http.post("/v1/tasks", json={"goal": TOOL_GOAL, "tools": ["time.nope"]})
            created = http.post("/v1/tasks", json={"goal": TOOL_GOAL, "tools": ["time"]})
            task_id = created.json()["id"]
            # No deadline of its own: a task that never ends is caught by pytest's timeout.
            task = http.get(f"/v1/tasks/{task_id}").json()
            while task["status"] not in {"completed", "failed", "cancelled"}:
                time.sleep(0.2)
                task = http.get(f"/v1/tasks/{task_id}").json()
            calls = http.get(f"/v1/tasks/{task_id}/tool-calls").json()["items"]
        status = up.terminate()
    finally:
        up.kill_group()

    # Assert
    assert "  Tool servers   time" in up.text()
    assert unknown.status_code == 422, unknown.text
    assert "tools[0]" in unknown.text
    assert created.status_code == 201, created.text
    assert task["status"] == "completed", task
    assert task["totals"]["tool_calls"] >= 1
    assert {(c["server"], c["tool"], c["status"]) for c in calls} == {
        ("time", "get_current_time", "completed")
    }
    assert status == 0, up.text()


WORKER_SPREAD_TASKS = 6


async def _activity_workers(temporal_address: str, workflow_ids: list[str]) -> set[str]:
    """The identities of the workers that ran the workflows' activities (from history)."""
    client = await Client.connect(temporal_address, data_converter=data_converter)
    identities: set[str] = set()
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        identities.update(
            event.activity_task_started_event_attributes.identity
            for event in history.events
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        )
    return identities


def test_up_with_two_workers_spreads_tasks_over_both(tmp_path: Path) -> None:
    # Arrange
    up = Up(tmp_path / "data", free_port(), free_port(), free_port(), extra_args=("--workers", "2"))
    try:
        info = up.wait_ready()
        worker_metrics = [httpx.get(url, timeout=10) for url in info.worker_metrics_urls]
        headers = {"Authorization": f"Bearer {info.api_key}"}
        with httpx.Client(base_url=info.api_url, headers=headers, timeout=30) as http:
            # Act: tasks at once, each of several activities.
            created = [
                http.post("/v1/tasks", json={"goal": f"Spread {i} [milestones=2]"})
                for i in range(WORKER_SPREAD_TASKS)
            ]
            tasks = []
            for response in created:
                # No deadline of its own: a task that never ends is caught by pytest's timeout.
                task = http.get(f"/v1/tasks/{response.json()['id']}").json()
                while task["status"] not in {"completed", "failed", "cancelled"}:
                    time.sleep(0.2)
                    task = http.get(f"/v1/tasks/{task['id']}").json()
                tasks.append(task)
        workers = asyncio.run(
            _activity_workers(info.temporal_address, [f"task-{t['id']}" for t in tasks])
        )
        status = up.terminate()
    finally:
        up.kill_group()

    # Assert
    assert {"worker", "worker2", "api"} <= set(info.processes)
    assert len(set(info.worker_metrics_urls)) == 2
    assert [r.status_code for r in worker_metrics] == [200, 200]
    assert [t["status"] for t in tasks] == ["completed"] * WORKER_SPREAD_TASKS
    assert len(workers) == 2, workers
    assert status == 0, up.text()
