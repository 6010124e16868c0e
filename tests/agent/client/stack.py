"""The whole service in this event loop, for client, CLI and browser tests.

A real Temporal dev server (passed in), the LLM simulator, a worker with the real
activities on its own task queue, the API on uvicorn on a loopback port, and a user
with an API key. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from pydantic import SecretStr
from temporalio.client import Client

from agent.client import ApiTarget
from agent.config import Settings
from agent.db.session import DatabaseSessionManager
from agent.llm.client import LLMClient
from agent.llm.simulator.config import SimulatorConfig
from agent.llm.simulator.server import SimulatorServer
from agent.repositories.api_keys import ApiKeyRepository
from agent.repositories.users import UserRepository
from agent.stack.ports import free_port
from agent.tools.toolbox import Toolbox
from agent.worker import build_worker
from api.main import create_app

PEPPER = SecretStr("console-test-pepper")
SERVER_START_TIMEOUT_SECONDS = 30.0
TEMPORAL_UI_URL = "http://127.0.0.1:8233"


@dataclass(frozen=True)
class RunningStack:
    """Where the test stack answers."""

    api_url: str
    api_key: str
    settings: Settings

    @property
    def target(self) -> ApiTarget:
        """The client target of this stack."""
        return ApiTarget(
            url=self.api_url,
            api_key=SecretStr(self.api_key),
            temporal_ui_url=self.settings.temporal_ui_url,
        )


async def _api_key(manager: DatabaseSessionManager) -> str:
    async with manager.session() as session:
        user = await UserRepository(session).get_or_create(f"user-{uuid.uuid4().hex[:8]}")
        plaintext, _ = await ApiKeyRepository(session, PEPPER).create_key(user.id, "test")
        await session.commit()
        return plaintext


@asynccontextmanager
async def running_stack(
    temporal: Client,
    database_url: str,
    redis_url: str,
    *,
    simulator: SimulatorConfig | None = None,
    mcp_servers: str | None = None,
) -> AsyncIterator[RunningStack]:
    """Run the simulator, a worker and the API until the block exits.

    Args:
        temporal: A connected client of a Temporal dev server (pydantic converter).
        database_url: A migrated database of this test.
        redis_url: Redis for the prompt cache.
        simulator: Simulator speed and length (fast and short by default).
        mcp_servers: `AGENT_MCP_SERVERS` of the API and the worker (None: no tools).

    Yields:
        The API URL and a key.
    """
    sim_config = simulator or SimulatorConfig(port=0, ttft_ms=0, tps=0, output_tokens=40)
    address = temporal.service_client.config.target_host
    async with SimulatorServer(sim_config) as sim:
        settings = Settings(
            _env_file=None,
            database_url=SecretStr(database_url),
            redis_url=redis_url,
            temporal_address=address,
            task_queue=f"console-test-{uuid.uuid4().hex[:12]}",
            temporal_ui_url=TEMPORAL_UI_URL,
            llm_base_url=sim.base_url,
            llm_timeout_seconds=20.0,
            api_key_pepper=PEPPER,
            max_concurrent_activities=20,
            ws_ping_interval_seconds=5.0,
            mcp_servers=mcp_servers,
        )
        async with (
            DatabaseSessionManager(settings.database_url_value()) as manager,
            LLMClient(settings) as llm,
            Toolbox.from_settings(settings) as toolbox,
        ):
            key = await _api_key(manager)
            worker = build_worker(temporal, settings, manager, llm, toolbox=toolbox)
            async with worker:
                app = create_app(settings)
                port = free_port()
                server = uvicorn.Server(
                    uvicorn.Config(
                        app,
                        host="127.0.0.1",
                        port=port,
                        log_config=None,
                        ws="websockets-sansio",
                        lifespan="on",
                        # A socket left open by a failed test must not hold shutdown open.
                        timeout_graceful_shutdown=5,
                    )
                )
                serving = asyncio.create_task(server.serve())
                try:
                    async with asyncio.timeout(SERVER_START_TIMEOUT_SECONDS):
                        while not server.started:
                            if serving.done():
                                serving.result()
                            await asyncio.sleep(0.02)
                    yield RunningStack(f"http://127.0.0.1:{port}", key, settings)
                finally:
                    server.should_exit = True
                    await serving


TIME_SERVER = str(Path(sys.executable).parent / "mcp-server-time")


def time_servers(**policy: object) -> str:
    """`AGENT_MCP_SERVERS` with the reference `mcp-server-time` (local zone UTC) and a policy."""
    server = {"command": TIME_SERVER, "args": ["--local-timezone", "UTC"], **policy}
    return json.dumps({"mcpServers": {"time": server}})
