"""One LLM call seen from outside: a GenAI span and the LLM metrics.

`LLMCallObservation` is what the LLM client's streaming path calls (three one-line hooks:
open, each delta, close). The span follows the OpenTelemetry GenAI semantic conventions
(`chat {model}`, kind CLIENT, `gen_ai.*` attributes for model, tokens and finish reason,
`server.address`/`server.port` of the provider, plus the project's cost). When tracing is
off the span is OpenTelemetry's non-recording one, which costs next to nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from agent.observability.metrics import project_metrics
from agent.observability.tracing import TRACER_NAME

if TYPE_CHECKING:
    from agent.llm.types import LLMRequest, LLMResponse

PROVIDER = "openai"
"""`gen_ai.provider.name`: the client speaks the OpenAI API to every provider."""
UNKNOWN_ROLE = "none"


def call_outcome(error: BaseException | None) -> str:
    """The bounded `outcome` label of a call that ended with `error` (None = success)."""
    if error is None:
        return "ok"
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return "cancelled"
    return "error"


class LLMCallObservation:
    """The span and the metrics of one streaming chat completion."""

    def __init__(self, request: LLMRequest, base_url: str) -> None:
        """Prepare the observation of `request` to `base_url` (nothing recorded yet)."""
        url = urlsplit(base_url)
        self._server = (url.hostname or "", url.port or (443 if url.scheme == "https" else 80))
        self._model = request.model
        self._role = request.role.value if request.role is not None else UNKNOWN_ROLE
        self._span: trace.Span = trace.INVALID_SPAN
        self._started = 0.0
        self._first_delta: float | None = None
        self._closed = False

    @contextmanager
    def opening(self) -> Iterator[None]:
        """Start the call: the span begins and is current while the HTTP request is sent.

        A failure to open (connection refused, an HTTP error status) closes the
        observation at once, since the stream's `__aexit__` will not run.
        """
        self._started = time.perf_counter()
        self._span = trace.get_tracer(TRACER_NAME).start_span(
            f"chat {self._model}",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": PROVIDER,
                "gen_ai.request.model": self._model,
                "agent.role": self._role,
                "server.address": self._server[0],
                "server.port": self._server[1],
            },
        )
        token = otel_context.attach(trace.set_span_in_context(self._span))
        try:
            yield
        except BaseException as exc:
            self.close(None, exc)
            raise
        finally:
            otel_context.detach(token)

    def delta(self) -> None:
        """Note a streamed text delta (the first one gives the time to first token)."""
        if self._first_delta is None:
            self._first_delta = time.perf_counter()

    def close(self, response: LLMResponse | None, error: BaseException | None) -> None:
        """End the call once: record the metrics and end the span (idempotent).

        Args:
            response: The final response, or the partial one of a failed call (its usage is
                billed, so it is counted too); None when nothing was received.
            error: Why the call failed; None when it succeeded.
        """
        if self._closed or not self._started:
            return
        self._closed = True
        seconds = time.perf_counter() - self._started
        outcome = call_outcome(error)
        metrics = project_metrics()
        metrics.llm_calls.labels(self._model, self._role, outcome).inc()
        metrics.llm_call_seconds.labels(self._model, outcome).observe(seconds)
        if self._first_delta is not None:
            ttft = self._first_delta - self._started
            metrics.llm_ttft_seconds.labels(self._model).observe(ttft)
        span = self._span
        if response is not None:
            usage = response.usage
            metrics.llm_tokens.labels(self._model, "input").inc(usage.input_tokens)
            metrics.llm_tokens.labels(self._model, "output").inc(usage.output_tokens)
            if response.cost_usd is not None:
                metrics.llm_cost_usd.labels(self._model).inc(response.cost_usd)
            if span.is_recording():
                span.set_attribute("gen_ai.response.model", response.model)
                span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
                if response.finish_reason is not None:
                    span.set_attribute("gen_ai.response.finish_reasons", [response.finish_reason])
                if response.cost_usd is not None:
                    span.set_attribute("agent.llm.cost_usd", response.cost_usd)
        if error is not None and span.is_recording():
            span.set_attribute("error.type", type(error).__qualname__)
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)[:200]))
        span.end()
