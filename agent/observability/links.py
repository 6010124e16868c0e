"""Links between traces: a later request about a task points at the trace of its creation.

A task's trace starts with `POST /v1/tasks`. A resume or a cancel arrives hours later in an
HTTP request of its own, hence a trace of its own; OpenTelemetry's answer is a span *link*.
The creating request's W3C `traceparent` is stored with the task (`tasks.traceparent`), and
the later request's server span gets a link to it, so a trace viewer leads from the resume
to the task (and the task's spans stay in one trace, whoever resumes it).
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from agent.observability.tracing import tracing_enabled

TRACEPARENT = "traceparent"
LINK_KIND_ATTRIBUTE = "agent.link"
"""Attribute of a link saying why it was made (`task`: the task's creating request)."""
TASK_LINK = "task"


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span, or None when nothing is traced.

    Returns:
        `00-<trace id>-<span id>-<flags>`, or None when tracing is off or no span is current.
    """
    if not tracing_enabled():
        return None
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get(TRACEPARENT)


def span_context_of(traceparent: str | None) -> SpanContext | None:
    """The span a stored `traceparent` names, or None when absent or malformed.

    Args:
        traceparent: A W3C `traceparent` header value.

    Returns:
        The remote span context.
    """
    if not traceparent:
        return None
    context = TraceContextTextMapPropagator().extract({TRACEPARENT: traceparent})
    span_context = trace.get_current_span(context).get_span_context()
    return span_context if span_context.is_valid else None


def link_current_span_to_task(traceparent: str | None) -> bool:
    """Give the current span a link to the task's trace (the span that created the task).

    A no-op when tracing is off, no span records, or the task was created untraced.

    Args:
        traceparent: The task's stored `traceparent`.

    Returns:
        Whether a link was added.
    """
    if not tracing_enabled():
        return False
    span = trace.get_current_span()
    target = span_context_of(traceparent)
    if target is None or not span.is_recording():
        return False
    if target.trace_id == span.get_span_context().trace_id:
        return False  # the same trace already: a link would point at itself
    span.add_link(target, {LINK_KIND_ATTRIBUTE: TASK_LINK})
    return True
