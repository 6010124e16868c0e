"""The project's Prometheus metrics: one registry per process, bounded label sets.

Labels are enums or model names only (never a task, session or user id), so a long-running
process exports a fixed number of series. The API adds the task gauges it reads from the
database at scrape time (`refresh_task_gauges`); the worker serves its registry on
`AGENT_WORKER_METRICS_PORT` (`agent.observability.exposition`).
"""

from __future__ import annotations

from functools import lru_cache

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds: event appends, relay lag, time to first token."""
CALL_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds: whole LLM calls (a long completion streams for minutes)."""


class ProjectMetrics:
    """Every metric of the project, registered on one registry.

    Attributes are the metric objects; their docstrings are the `# HELP` lines.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """Create the metrics on `registry` (a new one by default)."""
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # Tasks (API, read from the database at scrape time).
        self.tasks = Gauge("agent_tasks", "Tasks by status.", ["status"], registry=r)
        self.tasks_awaiting_person = Gauge(
            "agent_tasks_awaiting_person",
            "Tasks paused at a breakpoint, waiting for a person's decision.",
            registry=r,
        )
        self.breakpoint_wait_seconds = Gauge(
            "agent_breakpoint_wait_seconds",
            "How long the longest-waiting paused task has waited for a person.",
            registry=r,
        )
        # LLM calls (worker, one update per call in the LLM client).
        self.llm_calls = Counter(
            "agent_llm_calls",
            "LLM calls by model, agent role and outcome (ok, error, cancelled).",
            ["model", "role", "outcome"],
            registry=r,
        )
        self.llm_tokens = Counter(
            "agent_llm_tokens",
            "LLM tokens by model and direction (input, output), failed attempts included.",
            ["model", "direction"],
            registry=r,
        )
        self.llm_cost_usd = Counter(
            "agent_llm_cost_usd",
            "LLM cost in USD by model (priced models only).",
            ["model"],
            registry=r,
        )
        self.llm_ttft_seconds = Histogram(
            "agent_llm_ttft_seconds",
            "Time from sending an LLM request to its first streamed text.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.llm_call_seconds = Histogram(
            "agent_llm_call_duration_seconds",
            "Duration of LLM calls by model and outcome.",
            ["model", "outcome"],
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self.budget_exhaustions = Counter(
            "agent_budget_exhaustions",
            "Tasks that ran out of their token or cost budget.",
            registry=r,
        )
        # Events (worker appends, API relays and sockets).
        self.events_appended = Counter(
            "agent_events_appended", "Stored events by type.", ["type"], registry=r
        )
        self.event_append_seconds = Histogram(
            "agent_event_append_seconds",
            "Duration of one event append (insert and NOTIFY, before commit).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.event_relay_lag_seconds = Histogram(
            "agent_event_relay_lag_seconds",
            "Time from an event's timestamp to its relay by the API's listener.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.listener_reconnects = Counter(
            "agent_listener_reconnects",
            "Times the API's PostgreSQL listener reconnected after losing its connection.",
            registry=r,
        )
        self.websocket_connections = Gauge(
            "agent_websocket_connections", "Open event sockets.", registry=r
        )
        self.websocket_slow_consumer_closes = Counter(
            "agent_websocket_slow_consumer_closes",
            "Event sockets closed because the client did not keep up (close code 4008).",
            registry=r,
        )


@lru_cache(maxsize=1)
def project_metrics() -> ProjectMetrics:
    """Return this process's metrics, created on first use (not at import)."""
    return ProjectMetrics()
