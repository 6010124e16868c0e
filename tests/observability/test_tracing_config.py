"""Tracing from the standard variables alone: OTLP/HTTP to a local sink; nothing when unset."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry import trace
from sqlalchemy.ext.asyncio import create_async_engine

from agent.observability.tracing import (
    configure_tracing,
    shutdown_tracing,
    temporal_interceptors,
    trace_engine,
    tracing_enabled,
    uninstall_tracing,
)

received: list[tuple[str, str, bytes]] = []


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def otlp_sink() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_without_otel_variables_nothing_is_instrumented(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    assert configure_tracing("durable-agent-test") is False
    assert not tracing_enabled()
    assert temporal_interceptors() == []
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    trace_engine(engine)  # no listener added: the engine has no tracing events
    assert not trace.get_current_span().is_recording()


def test_the_otlp_endpoint_variable_turns_export_on(
    otlp_sink: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_sink)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "sink-test-service")
    try:
        assert configure_tracing("durable-agent-test") is True
        assert tracing_enabled()
        assert len(temporal_interceptors()) == 1
        with trace.get_tracer("test").start_as_current_span("hello"):
            pass
        shutdown_tracing()  # flushes the batch
    finally:
        uninstall_tracing()
    assert received, "no OTLP request reached the sink"
    path, content_type, body = received[0]
    assert path == "/v1/traces"
    assert content_type == "application/x-protobuf"
    assert b"hello" in body
    assert b"sink-test-service" in body
    assert not tracing_enabled()
