"""`/metrics` of the API and of a worker: they parse, and they move as a task runs.

One task runs for real (API on uvicorn, Temporal dev server, worker with a Temporal SDK
runtime serving its own Prometheus metrics, simulator, PostgreSQL); it pauses at its
`after_plan` breakpoint, where the API must count it as awaiting a person, and is
resumed. Afterwards the LLM counters moved by exactly the task's totals.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from agent.config import Settings
from agent.db.session import DatabaseSessionManager
from agent.events.types import TaskStatus
from agent.llm.simulator.server import SimulatorServer
from agent.observability.exposition import free_loopback_address, serve_worker_metrics
from agent.temporal import data_converter
from tests.api.conftest import ApiFactory, ApiUser
from tests.api.live_worker import running_worker, wait_finished, wait_paused
from tests.observability.dashboard import unexported

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by name and labels (the parser validates it)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples named `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


@contextmanager
def worker_metrics(temporal_url: str) -> Iterator[str]:
    server = serve_worker_metrics("127.0.0.1", 0, temporal_url)
    try:
        yield f"http://127.0.0.1:{server.port}/metrics"
    finally:
        server.stop()


async def test_metrics_parse_and_count_a_task(
    api_factory: ApiFactory,
    api_settings: Settings,
    alice: ApiUser,
    temporal_client: Client,
    session_manager: DatabaseSessionManager,
    simulator: SimulatorServer,
) -> None:
    core_address = free_loopback_address()
    runtime = Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=core_address))
    )
    worker_client = await Client.connect(
        temporal_client.service_client.config.target_host,
        runtime=runtime,
        data_converter=data_converter,
    )
    api = await api_factory(api_settings.model_copy(update={"trace_ui_url": "http://j/{trace_id}"}))
    with worker_metrics(f"http://{core_address}/metrics") as worker_url:
        async with (
            running_worker(worker_client, api_settings, session_manager, simulator.base_url),
            api.client(alice.key) as http,
            httpx.AsyncClient(timeout=10.0) as scraper,
        ):
            api_before = parse((await http.get("/metrics")).text)
            worker_before = parse((await scraper.get(worker_url)).text)

            created = await http.post(
                "/v1/tasks",
                json={
                    "goal": "Count me [milestones=2]",
                    "complexity": "simple",
                    "breakpoints": ["after_plan"],
                },
            )
            assert created.status_code == 201, created.text
            task_id = created.json()["id"]
            paused = await wait_paused(http, task_id)
            page = await http.get("/metrics")
            assert page.headers["content-type"].startswith("text/plain")
            at_pause = parse(page.text)
            assert total(at_pause, "agent_tasks_awaiting_person") == 1
            assert total(at_pause, "agent_tasks", status="paused") == 1
            assert total(at_pause, "agent_breakpoint_wait_seconds") > 0
            resumed = await http.post(
                f"/v1/tasks/{task_id}/resume",
                json={"breakpoint_id": paused["paused"]["breakpoint_id"], "action": "continue"},
            )
            assert resumed.status_code in (200, 202), resumed.text
            final = await wait_finished(http, task_id)
            api_text = (await http.get("/metrics")).text
            api_after = parse(api_text)
            worker_text = (await scraper.get(worker_url)).text
            worker_after = parse(worker_text)
            config = (await http.get("/console/config.json")).json()
    assert final["status"] == TaskStatus.COMPLETED, final
    assert config["trace_ui_url"] == "http://j/{trace_id}"

    def moved(name: str, **labels: str) -> float:
        return total(worker_after, name, **labels) - total(worker_before, name, **labels)

    # The LLM counters moved by exactly the task's totals (no call failed).
    totals = final["totals"]
    assert moved("agent_llm_tokens_total", direction="input") == totals["input_tokens"]
    assert moved("agent_llm_tokens_total", direction="output") == totals["output_tokens"]
    assert abs(moved("agent_llm_cost_usd_total") - totals["cost_usd"]) < 1e-9
    calls = moved("agent_llm_calls_total", outcome="ok")
    assert calls >= 4  # planner, 2 workers, 2 verifiers, summariser (some may be skipped)
    assert moved("agent_llm_calls_total", outcome="error") == 0
    assert moved("agent_llm_call_duration_seconds_count") == calls
    assert moved("agent_llm_ttft_seconds_count") == calls
    assert moved("agent_events_appended_total", type="TASK_COMPLETED") == 1
    assert moved("agent_events_appended_total", type="BREAKPOINT_HIT") == 1
    assert moved("agent_event_append_seconds_count") > 0
    # The SDK core's own metrics are merged into the worker's page.
    assert any(name.startswith("temporal_") for name, _ in worker_after), worker_text[:2000]

    # The API's page: task counts from the database, relays, sockets.
    assert total(api_after, "agent_tasks", status="completed") == 1
    assert total(api_after, "agent_tasks_awaiting_person") == 0
    assert total(api_after, "agent_breakpoint_wait_seconds") == 0
    relayed = total(api_after, "agent_event_relay_lag_seconds_count") - total(
        api_before, "agent_event_relay_lag_seconds_count"
    )
    assert relayed > 0
    # Every PromQL expression of the dashboard names only metrics these pages export.
    assert unexported([api_text, worker_text]) == {}
    for name in (
        "agent_websocket_connections",
        "agent_websocket_slow_consumer_closes_total",
        "agent_listener_reconnects_total",
    ):
        assert (name, frozenset()) in api_after, name
