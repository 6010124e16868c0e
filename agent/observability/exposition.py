"""Prometheus exposition: the API's `/metrics` body and the worker's metrics port.

The API's page is the process's project metrics plus a snapshot of the API's own state
(task counts read from the database at scrape time, open sockets, listener reconnects),
rendered per request so several apps in one process (tests) never share a series.

The worker's port serves the project metrics and, merged in, the Temporal SDK's runtime
metrics: the SDK's Rust core serves those on its own loopback address, and each scrape of
the worker's port appends that page to the project's, so Prometheus scrapes one port per
worker.
"""

from __future__ import annotations

import socket
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from agent.observability.metrics import project_metrics

logger = structlog.get_logger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
TEMPORAL_SCRAPE_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class ApiSnapshot:
    """The API process's state at one scrape."""

    tasks_by_status: dict[str, int] = field(default_factory=dict)
    awaiting_person: int = 0
    oldest_pause: datetime | None = None
    websocket_connections: int = 0
    slow_consumer_closes: int = 0
    listener_reconnects: int = 0


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: ApiSnapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self._snapshot
        tasks = GaugeMetricFamily("agent_tasks", "Tasks by status.", labels=["status"])
        for status, count in sorted(s.tasks_by_status.items()):
            tasks.add_metric([status], count)
        yield tasks
        yield GaugeMetricFamily(
            "agent_tasks_awaiting_person",
            "Tasks paused at a breakpoint, waiting for a person's decision.",
            value=s.awaiting_person,
        )
        waited = 0.0
        if s.oldest_pause is not None:
            waited = max(0.0, (datetime.now(UTC) - s.oldest_pause).total_seconds())
        yield GaugeMetricFamily(
            "agent_breakpoint_wait_seconds",
            "How long the longest-waiting paused task has waited for a person (0 = none).",
            value=waited,
        )
        yield GaugeMetricFamily(
            "agent_websocket_connections",
            "Open event-socket subscriptions of this API process.",
            value=s.websocket_connections,
        )
        yield CounterMetricFamily(
            "agent_websocket_slow_consumer_closes",
            "Event sockets closed because the client did not keep up (close code 4008).",
            value=s.slow_consumer_closes,
        )
        yield CounterMetricFamily(
            "agent_listener_reconnects",
            "Times this API's PostgreSQL listener reconnected after losing its connection.",
            value=s.listener_reconnects,
        )


def api_exposition(snapshot: ApiSnapshot) -> bytes:
    """The API's `/metrics` body: the project metrics, then `snapshot`.

    Args:
        snapshot: The API's state now.

    Returns:
        Prometheus text format (`CONTENT_TYPE`).
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot))
    return generate_latest(project_metrics().registry) + generate_latest(registry)


def worker_exposition(temporal_metrics_url: str | None) -> bytes:
    """The worker's page: the project metrics, then the Temporal SDK core's page verbatim.

    Verbatim, not re-parsed: the core names its counters without `_total`, and a parse and
    re-render would rename them, so dashboards would differ between the two ports.

    Args:
        temporal_metrics_url: The core's Prometheus endpoint; None when it serves none.

    Returns:
        Prometheus text format (`CONTENT_TYPE`).
    """
    body = generate_latest(project_metrics().registry)
    if temporal_metrics_url is None:
        return body
    try:
        with urllib.request.urlopen(
            temporal_metrics_url, timeout=TEMPORAL_SCRAPE_TIMEOUT_SECONDS
        ) as response:
            core: bytes = response.read()
    except OSError as exc:
        # The project metrics still go out; the gap shows in the SDK's series.
        logger.warning("temporal_metrics_unavailable", error=str(exc))
        return body
    return body + core


class _MetricsHandler(BaseHTTPRequestHandler):
    temporal_metrics_url: str | None = None

    def do_GET(self) -> None:
        body = worker_exposition(self.temporal_metrics_url)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Silence the per-request stderr line (a scrape every 15 s is noise)."""


@dataclass
class MetricsServer:
    """A running metrics HTTP server (`stop()` it)."""

    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.server.server_address[1])

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def serve_worker_metrics(
    host: str, port: int, temporal_metrics_url: str | None = None
) -> MetricsServer:
    """Serve the worker's metrics on `host:port` (`/metrics`, or any path) in a thread.

    Args:
        host: Interface to listen on.
        port: Port; 0 picks a free one (see `MetricsServer.port`).
        temporal_metrics_url: The Temporal SDK core's Prometheus endpoint, merged in.

    Returns:
        The running server.
    """
    # A subclass per server: the handler class is how http.server passes configuration.
    handler = type(
        "WorkerMetricsHandler", (_MetricsHandler,), {"temporal_metrics_url": temporal_metrics_url}
    )
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True)
    thread.start()
    return MetricsServer(server, thread)


def free_loopback_address() -> str:
    """A `127.0.0.1:port` free now, for the SDK core's own metrics endpoint."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"
