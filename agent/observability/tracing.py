"""OpenTelemetry tracing: configured only by the standard `OTEL_*` variables, off by default.

One process installs at most one SDK tracer provider (`configure_tracing` from the
environment, or `install_tracing` with a given provider in tests). Everything else asks
`tracing_enabled()` first and does nothing when it is off, so a process without `OTEL_*`
variables pays no instrumentation cost at all: no FastAPI middleware, no SQLAlchemy
event listeners, no Temporal interceptor.

What is traced when on: the API's HTTP requests (FastAPI), the Temporal client and
worker (`TracingInterceptor`: start workflow -> run workflow -> start/run activity),
every SQL statement of the API's and the worker's engines, and every LLM HTTP call (a
GenAI client span from `agent.observability.llm`: the openai SDK sends each call as one
HTTP request, retries being Temporal's, so the span is that request).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.contrib.opentelemetry import TracingInterceptor

TRACER_NAME = "durable-agent"
EXPORTER_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
)
"""Any of these set (and `OTEL_SDK_DISABLED` not true) turns tracing on."""
EXCLUDED_URLS = "/healthz,/readyz,/metrics,/console"
"""Paths whose requests are not traced unless `OTEL_PYTHON_FASTAPI_EXCLUDED_URLS` says."""


def traced_url_exclusions() -> str:
    """Request paths not to trace: `OTEL_PYTHON_FASTAPI_EXCLUDED_URLS`, else health and metrics."""
    return os.environ.get("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS") or EXCLUDED_URLS


@dataclass
class _TracingState:
    """What this process installed, so tests can take it out again."""

    provider: TracerProvider | None = None
    owned: bool = False
    traced_engines: set[int] = field(default_factory=set)


_state = _TracingState()
# The OTel API's own globals are process-wide by design (one provider per process); this
# record of what we installed follows them rather than adding a client of its own.


def tracing_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the standard variables ask for traces to be exported.

    Args:
        environ: Variables to read; `os.environ` by default.

    Returns:
        True when an OTLP endpoint or a traces exporter other than `none` is set and
        `OTEL_SDK_DISABLED` is not `true`.
    """
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return any(env.get(name, "").strip() for name in EXPORTER_VARIABLES)


def install_tracing(provider: TracerProvider) -> None:
    """Make `provider` the process's tracer provider.

    Args:
        provider: An SDK tracer provider with its span processors attached.
    """
    if _state.provider is not None:
        return
    trace.set_tracer_provider(provider)
    _state.provider = provider


def configure_tracing(service_name: str) -> bool:
    """Install an OTLP-exporting tracer provider when the `OTEL_*` variables ask for one.

    The exporter, sampler (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`) and resource
    (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`) come from the standard variables;
    `service_name` is only the default service name. Calling it again is a no-op.

    Args:
        service_name: Service name when `OTEL_SERVICE_NAME` is not set.

    Returns:
        Whether tracing is on in this process.
    """
    if _state.provider is not None:
        return True
    if not tracing_requested():
        return False
    # Imported here: the exporter pulls in protobuf and requests, which a process that
    # traces nothing should not load.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    resource = Resource.create({SERVICE_NAME: service_name})
    if os.environ.get("OTEL_SERVICE_NAME"):
        resource = Resource.create()  # reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    install_tracing(provider)
    _state.owned = True
    return True


def tracing_enabled() -> bool:
    """Whether a tracer provider was installed in this process."""
    return _state.provider is not None


def shutdown_tracing() -> None:
    """Flush and stop the provider `configure_tracing` installed (not one a caller gave)."""
    if _state.provider is not None and _state.owned:
        _state.provider.shutdown()


def uninstall_tracing() -> None:
    """Undo `install_tracing` (tests): forget the provider.

    The OTel API refuses to replace a global provider, so its once-guard is reset the
    way OpenTelemetry's own test utilities do.
    """
    if _state.provider is None:
        return
    _state.provider = None
    _state.owned = False
    _state.traced_engines.clear()
    from opentelemetry.util._once import Once

    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


def temporal_interceptors() -> list[TracingInterceptor]:
    """Interceptors for a Temporal client or worker: the tracing one when tracing is on.

    The interceptor propagates the trace through workflow and activity headers and, on a
    worker, creates workflow spans only outside replay, so a replay adds no span.
    """
    return [TracingInterceptor()] if tracing_enabled() else []


def trace_engine(engine: AsyncEngine) -> None:
    """Trace every SQL statement of `engine` when tracing is on (once per engine).

    Args:
        engine: The async engine of a `DatabaseSessionManager`.
    """
    if _state.provider is None or id(engine) in _state.traced_engines:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import get_meter

    # EngineTracer is the instrumentor's per-engine half: the instrumentor itself is a
    # process singleton that would patch `create_engine` globally instead.
    tracer = _state.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
    connections = get_meter(TRACER_NAME).create_up_down_counter("db.client.connections.usage")
    EngineTracer(tracer, engine.sync_engine, connections)  # type: ignore[no-untyped-call]
    _state.traced_engines.add(id(engine))


def current_trace_id() -> str | None:
    """The current trace's id as 32 hex digits, or None outside a (sampled) trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return trace.format_trace_id(context.trace_id)


def with_trace_id(details: dict[str, Any] | None) -> dict[str, Any]:
    """`details` plus `trace_id` when the caller runs inside a trace (a copy; never mutated).

    Args:
        details: An event's details.

    Returns:
        The details, with the current trace's id under `trace_id` when there is one.
    """
    trace_id = current_trace_id()
    if trace_id is None:
        return dict(details or {})
    return {**(details or {}), "trace_id": trace_id}
