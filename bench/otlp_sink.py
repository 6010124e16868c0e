"""A local OTLP/HTTP trace receiver that counts what it is sent: `python -m bench.otlp_sink`.

The tracing scenario points the traced API and worker at it (`OTEL_EXPORTER_OTLP_ENDPOINT`)
so the exporter does all its real work (batching, protobuf encoding, an HTTP request per
batch), and the scenario can check that the spans really arrived: a scenario whose spans
went nowhere would measure nothing.

It accepts `POST /v1/traces` (protobuf, optionally gzip), decodes every request and counts
spans by service and by name (names are bounded: routes, workflow and activity names).

As a helper process: `python -m bench.otlp_sink SPEC OUT`. SPEC (JSON): `{"ready_file",
"stop_file"}`; it listens on a free loopback port, writes that port into `ready_file`
once it serves, serves until `stop_file` exists, then writes its counts to OUT.
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

TRACES_PATH = "/v1/traces"
SERVICE_NAME_KEY = "service.name"
STOP_POLL_SECONDS = 0.1
PROTOBUF = "application/x-protobuf"


@dataclass
class SpanCounts:
    """What the sink received."""

    requests: int = 0
    rejected: int = 0
    spans: int = 0
    by_service: Counter[str] = field(default_factory=Counter)
    by_name: Counter[str] = field(default_factory=Counter)

    def add(self, request: ExportTraceServiceRequest) -> None:
        """Count the spans of one export request."""
        self.requests += 1
        for resource_spans in request.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == SERVICE_NAME_KEY
                ),
                "",
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans += 1
                    self.by_service[service] += 1
                    self.by_name[span.name] += 1

    def as_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "requests": self.requests,
            "rejected": self.rejected,
            "spans": self.spans,
            "by_service": dict(self.by_service),
            "by_name": dict(self.by_name),
        }


def decode_export(body: bytes, content_encoding: str | None) -> ExportTraceServiceRequest:
    """Parse an OTLP/HTTP protobuf trace export.

    Args:
        body: The request body.
        content_encoding: Its `Content-Encoding` (`gzip` or none).

    Returns:
        The export request.

    Raises:
        DecodeError: The body is not an export request.
        OSError: A gzip body that does not decompress.
    """
    if (content_encoding or "").strip().lower() == "gzip":
        body = gzip.decompress(body)
    return ExportTraceServiceRequest.FromString(body)


class _Handler(BaseHTTPRequestHandler):
    sink: OtlpSink

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path != TRACES_PATH:
            self._answer(404, b"")
            return
        try:
            request = decode_export(body, self.headers.get("Content-Encoding"))
        except (DecodeError, OSError):
            self.sink.reject()
            self._answer(400, b"")
            return
        self.sink.receive(request)
        self._answer(200, ExportTraceServiceResponse().SerializeToString())

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", PROTOBUF)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """No stderr line per export."""


class OtlpSink:
    """The receiver, serving in a thread on a loopback port (`start()`, `stop()`)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind; nothing is served until `start()`.

        Args:
            host: Interface.
            port: Port; 0 picks a free one.
        """
        handler = type("OtlpSinkHandler", (_Handler,), {"sink": self})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="otlp-sink", daemon=True
        )
        self._lock = threading.Lock()
        self._counts = SpanCounts()

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """The value for `OTEL_EXPORTER_OTLP_ENDPOINT`."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OtlpSink:
        """Serve in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def receive(self, request: ExportTraceServiceRequest) -> None:
        """Count one export (called by the handler threads)."""
        with self._lock:
            self._counts.add(request)

    def reject(self) -> None:
        """Count a request that was not a trace export."""
        with self._lock:
            self._counts.rejected += 1

    def counts(self) -> dict[str, Any]:
        """What was received so far, as JSON."""
        with self._lock:
            return self._counts.as_json()


def main() -> None:
    """Serve as a helper process until the stop file exists; write the counts to OUT."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    sink = OtlpSink().start()
    ready = Path(spec["ready_file"])
    partial = ready.with_suffix(".partial")
    partial.write_text(str(sink.port))
    partial.replace(ready)  # the harness waits for the file: it appears with the port in it
    stop = Path(spec["stop_file"])
    while not stop.exists():
        time.sleep(STOP_POLL_SECONDS)
    sink.stop()
    Path(sys.argv[2]).write_text(json.dumps(sink.counts()))


if __name__ == "__main__":
    main()
