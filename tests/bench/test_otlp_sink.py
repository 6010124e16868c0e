"""The tracing scenario's OTLP receiver counts what a real OTLP exporter sends it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from bench.otlp_sink import TRACES_PATH, OtlpSink
from bench.scenarios.tracing import SpansMissingError, check_spans


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    receiver = OtlpSink().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_spans_a_real_exporter_sends_are_counted(sink: OtlpSink, compression: Compression) -> None:
    # Arrange: the SDK's own OTLP/HTTP exporter, as the API and the worker use it.
    exporter = OTLPSpanExporter(endpoint=sink.endpoint + TRACES_PATH, compression=compression)
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "durable-agent-api"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer(__name__)

    # Act
    with tracer.start_as_current_span("POST /v1/tasks"):
        for _ in range(3):
            with tracer.start_as_current_span("INSERT agent"):
                pass
    provider.shutdown()  # flushes the batch

    # Assert
    counts = sink.counts()
    assert counts["spans"] == 4
    assert counts["by_service"] == {"durable-agent-api": 4}
    assert counts["by_name"] == {"POST /v1/tasks": 1, "INSERT agent": 3}
    assert counts["requests"] >= 1
    assert counts["rejected"] == 0


def test_a_body_that_is_no_export_is_refused_and_counts_nothing(sink: OtlpSink) -> None:
    response = httpx.post(
        sink.endpoint + TRACES_PATH,
        content=b"\xff\xff not protobuf",
        headers={"Content-Type": "application/x-protobuf"},
    )

    assert response.status_code == 400
    assert sink.counts()["spans"] == 0
    assert sink.counts()["rejected"] == 1


def test_a_run_without_the_traced_sides_spans_fails() -> None:
    received = {
        "spans": 40,
        "requests": 2,
        "by_service": {"durable-agent-api": 40},
        "by_name": {"POST /v1/tasks": 5},
    }

    with pytest.raises(SpansMissingError, match="0 worker spans"):
        check_spans(received, traced_tasks=5)
    with pytest.raises(SpansMissingError, match="5 `POST /v1/tasks` spans for 6 traced tasks"):
        check_spans({**received, "by_service": {"durable-agent-worker": 9}}, traced_tasks=6)
    check_spans({**received, "by_service": {"durable-agent-worker": 9}}, traced_tasks=5)
