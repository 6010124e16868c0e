"""A resume or cancel is a trace of its own, linked to the trace of the task it acts on.

Everything real (API on uvicorn, Temporal dev server, worker, simulator, PostgreSQL); only
the exporter is in memory.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.client import Client

from agent.config import Settings
from agent.db.session import DatabaseSessionManager
from agent.events.types import TaskStatus
from agent.llm.simulator.server import SimulatorServer
from agent.observability.links import (
    LINK_KIND_ATTRIBUTE,
    TASK_LINK,
    current_traceparent,
    link_current_span_to_task,
    span_context_of,
)
from tests.api.conftest import ApiFactory, ApiUser
from tests.api.live_worker import running_worker, wait_finished, wait_paused

GOAL = "Link me [milestones=1]"


def _server_span(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    (span,) = [s for s in spans if s.name == name and s.kind is SpanKind.SERVER]
    return span


def _task_links(span: ReadableSpan) -> list[tuple[int, int]]:
    return [
        (link.context.trace_id, link.context.span_id)
        for link in span.links
        if (link.attributes or {}).get(LINK_KIND_ATTRIBUTE) == TASK_LINK
    ]


async def test_a_resume_is_its_own_trace_linked_to_the_tasks_trace(
    spans: InMemorySpanExporter,
    api_factory: ApiFactory,
    api_settings: Settings,
    alice: ApiUser,
    temporal_client: Client,
    session_manager: DatabaseSessionManager,
    simulator: SimulatorServer,
) -> None:
    # Arrange: a task paused after its plan.
    api = await api_factory(api_settings)
    async with (
        running_worker(temporal_client, api_settings, session_manager, simulator.base_url),
        api.client(alice.key) as http,
    ):
        created = await http.post(
            "/v1/tasks",
            json={"goal": GOAL, "complexity": "simple", "breakpoints": ["after_plan"]},
        )
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        paused = await wait_paused(http, task_id)

        # Act
        resumed = await http.post(
            f"/v1/tasks/{task_id}/resume",
            json={"breakpoint_id": paused["paused"]["breakpoint_id"], "action": "continue"},
        )
        final = await wait_finished(http, task_id)

    # Assert
    assert resumed.status_code == 200, resumed.text
    assert final["status"] == TaskStatus.COMPLETED, final
    finished = spans.get_finished_spans()
    create = _server_span(finished, "POST /v1/tasks")
    resume = _server_span(finished, "POST /v1/tasks/{task_id}/resume")
    assert create.context is not None
    assert resume.context is not None
    assert resume.context.trace_id != create.context.trace_id  # a trace of its own
    assert _task_links(resume) == [(create.context.trace_id, create.context.span_id)]
    # The update the request sends belongs to the resume's trace, not the task's.
    update = next(s for s in finished if s.name == "StartWorkflowUpdate:resume")
    assert update.context is not None
    assert update.context.trace_id == resume.context.trace_id


async def test_a_cancel_links_to_the_tasks_trace(
    spans: InMemorySpanExporter,
    api_factory: ApiFactory,
    api_settings: Settings,
    alice: ApiUser,
    temporal_client: Client,
    session_manager: DatabaseSessionManager,
    simulator: SimulatorServer,
) -> None:
    # Arrange
    api = await api_factory(api_settings)
    async with (
        running_worker(temporal_client, api_settings, session_manager, simulator.base_url),
        api.client(alice.key) as http,
    ):
        created = await http.post(
            "/v1/tasks",
            json={"goal": GOAL, "complexity": "simple", "breakpoints": ["after_plan"]},
        )
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        await wait_paused(http, task_id)

        # Act
        cancelled = await http.post(f"/v1/tasks/{task_id}/cancel")
        final = await wait_finished(http, task_id)

    # Assert
    assert cancelled.status_code < 300, cancelled.text
    assert final["status"] == TaskStatus.CANCELLED, final
    finished = spans.get_finished_spans()
    create = _server_span(finished, "POST /v1/tasks")
    cancel = _server_span(finished, "POST /v1/tasks/{task_id}/cancel")
    assert create.context is not None
    assert cancel.context is not None
    assert cancel.context.trace_id != create.context.trace_id
    assert _task_links(cancel) == [(create.context.trace_id, create.context.span_id)]


def test_a_stored_traceparent_names_the_span_it_was_taken_in(
    spans: InMemorySpanExporter,
) -> None:
    # Arrange
    tracer = trace.get_tracer(__name__)
    with tracer.start_as_current_span("create") as create:
        stored = current_traceparent()

    # Act
    with tracer.start_as_current_span("resume"):
        linked = link_current_span_to_task(stored)

    # Assert
    assert linked
    assert stored is not None
    target = span_context_of(stored)
    assert target is not None
    assert (target.trace_id, target.span_id) == (
        create.get_span_context().trace_id,
        create.get_span_context().span_id,
    )
    (resume,) = [s for s in spans.get_finished_spans() if s.name == "resume"]
    assert _task_links(resume) == [(target.trace_id, target.span_id)]


def test_without_tracing_nothing_is_stored_or_linked() -> None:
    # Arrange: no provider installed by this project; any span is a non-recording one.
    tracer = TracerProvider().get_tracer(__name__)
    with tracer.start_as_current_span("elsewhere"):
        stored = current_traceparent()
        linked = link_current_span_to_task("00-" + "1" * 32 + "-" + "2" * 16 + "-01")

    # Assert
    assert stored is None
    assert not linked


def test_a_missing_or_malformed_traceparent_links_nothing(spans: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer(__name__)
    with tracer.start_as_current_span("resume"):
        assert not link_current_span_to_task(None)
        assert not link_current_span_to_task("not-a-traceparent")
    assert span_context_of("00-" + "0" * 32 + "-" + "0" * 16 + "-01") is None
    (resume,) = [s for s in spans.get_finished_spans() if s.name == "resume"]
    assert not resume.links
