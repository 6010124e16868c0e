"""`run_worker` with `AGENT_WORKER_METRICS_PORT` alone: one port, project and SDK metrics."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from agent.config import Settings
from agent.stack.ports import free_port
from agent.worker import run_worker
from tests.polling import wait_until


async def test_the_worker_serves_project_and_temporal_metrics_on_one_port(
    database_url: str, temporal_dev_env: WorkflowEnvironment
) -> None:
    port = free_port()
    settings = Settings(
        _env_file=None,
        database_url=SecretStr(database_url),
        temporal_address=temporal_dev_env.client.service_client.config.target_host,
        task_queue=f"metrics-port-{uuid.uuid4().hex[:12]}",
        llm_base_url="http://127.0.0.1:9/v1",
        worker_metrics_port=port,
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop=stop))
    pages: list[str] = []
    try:
        async with httpx.AsyncClient(timeout=5.0) as http:

            async def served() -> bool:
                assert not worker.done(), worker.exception()
                try:
                    response = await http.get(f"http://127.0.0.1:{port}/metrics")
                except httpx.TransportError:
                    return False
                pages.append(response.text)
                # The SDK core reports its pollers once they started.
                return "temporal_num_pollers" in response.text

            await wait_until(served, "the worker's metrics page with the SDK's metrics")
    finally:
        stop.set()
        await worker
    page = pages[-1]
    assert "# TYPE agent_llm_calls_total counter" in page
    assert "# TYPE agent_event_append_seconds histogram" in page
