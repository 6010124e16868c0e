"""A real Prometheus (Debian's `prometheus`) scrapes the API and a worker during a task.

Afterwards a PromQL query over the worker's series returns the task's token count. The
counters are per process (this test shares it with others), so the query is compared
with the worker page's value from before the task plus the task's totals.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from temporalio.client import Client

from agent.config import Settings
from agent.db.session import DatabaseSessionManager
from agent.events.types import TaskStatus
from agent.llm.simulator.server import SimulatorServer
from agent.observability.exposition import free_loopback_address, serve_worker_metrics
from tests.api.conftest import ApiFactory, ApiUser
from tests.api.live_worker import running_worker, wait_finished
from tests.observability.test_metrics import parse, total
from tests.polling import wait_until

PROMETHEUS = shutil.which("prometheus")
TOKENS_QUERY = 'sum(agent_llm_tokens_total{job="worker"})'

pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="Debian's prometheus not installed")


@asynccontextmanager
async def prometheus(targets: dict[str, str]) -> AsyncIterator[str]:
    """Run Prometheus scraping `targets` (job -> host:port) every second; yield its URL."""
    assert PROMETHEUS is not None
    address = free_loopback_address()
    with tempfile.TemporaryDirectory(prefix="agent-test-prometheus-") as directory:
        config = Path(directory) / "prometheus.yml"
        jobs = "".join(
            f"  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
            for job, target in targets.items()
        )
        config.write_text(
            f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{jobs}"
        )
        process = await asyncio.create_subprocess_exec(
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory}/data",
            f"--web.listen-address={address}",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            yield f"http://{address}"
        finally:
            process.terminate()
            await process.wait()


async def query(http: httpx.AsyncClient, url: str, promql: str) -> float | None:
    """An instant query's single value, or None while there is none."""
    try:
        response = await http.get(f"{url}/api/v1/query", params={"query": promql})
    except httpx.TransportError:
        return None  # not listening yet
    if response.status_code != 200:
        return None
    result = response.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


async def test_prometheus_scrapes_the_task_token_count(
    api_factory: ApiFactory,
    api_settings: Settings,
    alice: ApiUser,
    temporal_client: Client,
    session_manager: DatabaseSessionManager,
    simulator: SimulatorServer,
) -> None:
    api = await api_factory(api_settings)
    worker_metrics = serve_worker_metrics("127.0.0.1", 0)
    worker_target = f"127.0.0.1:{worker_metrics.port}"
    try:
        async with (
            prometheus({"api": urlsplit(api.base_url).netloc, "worker": worker_target}) as prom,
            running_worker(temporal_client, api_settings, session_manager, simulator.base_url),
            api.client(alice.key) as http,
            httpx.AsyncClient(timeout=5.0) as scraper,
        ):
            page = (await scraper.get(f"http://{worker_target}/metrics")).text
            before = total(parse(page), "agent_llm_tokens_total")
            created = await http.post(
                "/v1/tasks", json={"goal": "Scrape me [milestones=2]", "complexity": "simple"}
            )
            assert created.status_code == 201, created.text
            final = await wait_finished(http, created.json()["id"])
            assert final["status"] == TaskStatus.COMPLETED, final
            expected = before + final["totals"]["input_tokens"] + final["totals"]["output_tokens"]
            seen: list[float | None] = []

            async def scraped() -> bool:
                seen.append(await query(scraper, prom, TOKENS_QUERY))
                return bool(seen[-1] == expected)

            await wait_until(scraped, f"{TOKENS_QUERY} == {expected} (last: {seen[-1:]})")

            # Both targets answer (a scrape can miss its 1 s timeout on a busy machine, so
            # this waits for a good one rather than judging a single scrape).
            async def both_up() -> bool:
                return await query(scraper, prom, 'sum(up{job=~"api|worker"})') == 2

            targets = (await scraper.get(f"{prom}/api/v1/targets")).json()
            await wait_until(both_up, f"both targets up: {targets}")
    finally:
        worker_metrics.stop()
