"""Tool calls seen from outside: a span per execution and the tool metrics.

`observe_tool_call` wraps one execution of a tool on its MCP server (the call activity's
`toolbox.call`): a span `execute_tool server.tool` (the GenAI conventions'
`gen_ai.operation.name` and `gen_ai.tool.name`, plus the project's `agent.tool.server`),
and one observation of the duration histogram. `count_tool_call` counts a call's final
outcome once, after the transaction that stored it committed. When tracing is off the span
is OpenTelemetry's non-recording one, which costs next to nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from agent.contract.tools import ToolCallStatus, qualified_name
from agent.observability.metrics import project_metrics
from agent.observability.tracing import TRACER_NAME

UNKNOWN = "unknown"
"""The server and tool label of a call whose function name matched no pinned tool: the name
is the model's invention, so it never becomes a label value."""
TOOL_ERROR_TYPE = "tool_error"
"""`error.type` of an execution whose tool answered with an error result."""


def count_tool_call(server: str | None, tool: str | None, outcome: ToolCallStatus) -> None:
    """Count one call that reached its final status.

    Args:
        server: The configured server's name (None: the model named no configured tool).
        tool: The tool's name on that server (None likewise).
        outcome: The call's final status (completed, failed, rejected, denied or lost).
    """
    project_metrics().tool_calls.labels(server or UNKNOWN, tool or UNKNOWN, outcome.value).inc()


@dataclass
class ToolCallObservation:
    """What the caller learns inside `observe_tool_call`: whether the result is an error."""

    is_error: bool | None = None


@contextmanager
def observe_tool_call(server: str, tool: str) -> Iterator[ToolCallObservation]:
    """Trace and time one execution of `server.tool`.

    The span is current inside the block (an MCP client's own spans nest under it). An
    exception ends it with an error status; so does `observation.is_error = True`.

    Args:
        server: The configured server's name.
        tool: The tool's name on that server.

    Yields:
        The observation, for the caller to say whether the tool answered with an error.
    """
    observation = ToolCallObservation()
    name = qualified_name(server, tool)
    started = time.perf_counter()
    with trace.get_tracer(TRACER_NAME).start_as_current_span(
        f"execute_tool {name}",
        kind=SpanKind.INTERNAL,
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "agent.tool.server": server,
            "agent.tool.name": tool,
        },
    ) as span:
        try:
            yield observation
        finally:
            seconds = time.perf_counter() - started
            project_metrics().tool_call_seconds.labels(server, tool).observe(seconds)
            if observation.is_error is not None and span.is_recording():
                span.set_attribute("agent.tool.is_error", observation.is_error)
                if observation.is_error:
                    span.set_attribute("error.type", TOOL_ERROR_TYPE)
                    span.set_status(Status(StatusCode.ERROR, "the tool answered with an error"))
