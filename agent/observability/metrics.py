"""The project's Prometheus metrics: one registry per process, bounded label sets.

Labels are enums or model names only (never a task, session or user id), so a long-running
process exports a fixed number of series. These are the metrics updated as things happen
(LLM calls in the worker, event appends, relays in the API); the API's state at scrape
time (task counts, sockets) is rendered by `agent.observability.exposition`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agent.events.types import AgentActivityEvent, EventType

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds: event appends, relay lag, time to first token."""
CALL_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds: whole LLM calls (a long completion streams for minutes)."""
TOOL_CALL_BUCKETS = (*LATENCY_BUCKETS, 60.0, 300.0)
"""Seconds: one MCP tool call (a local lookup takes milliseconds, a slow tool minutes)."""


class ProjectMetrics:
    """The metrics updated as things happen, on one registry (help texts say what each is)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """Create the metrics on `registry` (a new one by default)."""
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
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
        # Provider guard (worker, `agent.llm.guard`): breakers, fallbacks, model limits.
        self.llm_breaker_state = Gauge(
            "agent_llm_breaker_state",
            "Circuit breaker of an endpoint and model: 0 closed, 1 half-open (probing), 2 open.",
            ["endpoint", "model"],
            registry=r,
        )
        self.llm_breaker_transitions = Counter(
            "agent_llm_breaker_transitions",
            "Circuit breaker transitions by the state entered (closed, half_open, open).",
            ["endpoint", "model", "state"],
            registry=r,
        )
        self.llm_breaker_refusals = Counter(
            "agent_llm_breaker_refusals",
            "LLM calls not sent because the model's breaker was open (retried later).",
            ["endpoint", "model"],
            registry=r,
        )
        self.llm_fallback_calls = Counter(
            "agent_llm_fallback_calls",
            "LLM calls sent to the fallback model while the model's breaker was open.",
            ["model", "fallback"],
            registry=r,
        )
        self.llm_limit_wait_seconds = Histogram(
            "agent_llm_limit_wait_seconds",
            "Time LLM calls waited in line for their model's client-side limits.",
            ["model"],
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self.budget_exhaustions = Counter(
            "agent_budget_exhaustions",
            "Tasks that ran out of their token or cost budget.",
            registry=r,
        )
        # Tool calls (worker, `activities.tools` and `activities.tool_turns`). Server and
        # tool names come from the configuration (a name the model made up is `unknown`).
        self.tool_calls = Counter(
            "agent_tool_calls",
            "Tool calls by server, tool and outcome (completed, failed, rejected, denied, lost).",
            ["server", "tool", "outcome"],
            registry=r,
        )
        self.tool_call_seconds = Histogram(
            "agent_tool_call_duration_seconds",
            "Duration of calls to MCP servers by server and tool (each execution, retries too).",
            ["server", "tool"],
            buckets=TOOL_CALL_BUCKETS,
            registry=r,
        )
        # Events (worker appends, API relays).
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


@lru_cache(maxsize=1)
def project_metrics() -> ProjectMetrics:
    """Return this process's metrics, created on first use (not at import)."""
    return ProjectMetrics()


BUDGET_EXHAUSTED_KIND = "budget_exhausted"
"""`BreakpointKind.BUDGET_EXHAUSTED`: the task paused at its budget breakpoint."""
BUDGET_EXCEEDED_REASON = "budget_exceeded"
"""The failure reason of a task that ran out of budget without that breakpoint."""


def observe_events_appended(events: Iterable[AgentActivityEvent], seconds: float) -> None:
    """Count newly stored events (by type, budget exhaustions apart) and the append time.

    Args:
        events: The events one append stored.
        seconds: How long the append took.
    """
    metrics = project_metrics()
    metrics.event_append_seconds.observe(seconds)
    for event in events:
        metrics.events_appended.labels(event.type.value).inc()
        if (
            event.type is EventType.BREAKPOINT_HIT
            and event.details.get("kind") == BUDGET_EXHAUSTED_KIND
        ) or (
            event.type is EventType.TASK_FAILED
            and event.details.get("reason") == BUDGET_EXCEEDED_REASON
        ):
            metrics.budget_exhaustions.inc()


async def observe_relayed(event: AgentActivityEvent) -> None:
    """Event-bus handler: how long after its timestamp an event reached the API's bus."""
    lag = (datetime.now(UTC) - event.timestamp).total_seconds()
    project_metrics().event_relay_lag_seconds.observe(max(0.0, lag))
