"""One task, one trace: HTTP request -> workflow -> activities -> LLM calls -> SQL.

Everything real (API on uvicorn, Temporal dev server, worker, simulator, PostgreSQL); only
the exporter is in memory. The task's verifier fails its first LLM call (a 500), so the
trace also shows a failed attempt; the task's history is then replayed with the tracing
interceptor, which must add no span.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.worker import Replayer

from agent.config import Settings
from agent.db.session import DatabaseSessionManager
from agent.events.types import TaskStatus
from agent.llm.simulator.server import SimulatorServer
from agent.observability.tracing import current_trace_id, tracing_requested, with_trace_id
from agent.repositories.events import EventRepository
from agent.temporal import data_converter
from tests.api.conftest import ApiFactory, ApiUser
from tests.api.live_worker import running_worker, wait_finished
from workflows.task_workflow import TaskWorkflow

GOAL = "Trace me [milestones=1] [fault=500] [fault_role=verifier] [fault_count=1]"


def _by_id(spans: Sequence[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in spans if s.context is not None}


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names: list[str] = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        found = by_id[parent.span_id]
        names.append(found.name)
        parent = found.parent
    return names


def span_tree(spans: Sequence[ReadableSpan]) -> str:
    """The spans as an indented tree (printed on failure and quoted in the docs)."""
    by_id = _by_id(spans)
    children: dict[int | None, list[ReadableSpan]] = {}
    for s in sorted(spans, key=lambda s: s.start_time or 0):
        parent = s.parent.span_id if s.parent is not None and s.parent.span_id in by_id else None
        children.setdefault(parent, []).append(s)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for s in children.get(parent, []):
            error = " [ERROR]" if s.status.status_code is StatusCode.ERROR else ""
            lines.append(f"{'  ' * depth}{s.name}{error}")
            assert s.context is not None
            walk(s.context.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines)


async def test_one_task_is_one_trace_from_request_to_sql(
    spans: InMemorySpanExporter,
    api_factory: ApiFactory,
    api_settings: Settings,
    alice: ApiUser,
    temporal_client: Client,
    session_manager: DatabaseSessionManager,
    simulator: SimulatorServer,
) -> None:
    api = await api_factory(api_settings)
    async with (
        running_worker(temporal_client, api_settings, session_manager, simulator.base_url),
        api.client(alice.key) as http,
    ):
        created = await http.post("/v1/tasks", json={"goal": GOAL, "complexity": "simple"})
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        final = await wait_finished(http, task_id)
    assert final["status"] == TaskStatus.COMPLETED, final

    finished = spans.get_finished_spans()
    (request,) = [s for s in finished if s.name == "POST /v1/tasks" and s.kind is SpanKind.SERVER]
    assert request.context is not None
    trace_id = request.context.trace_id
    task_spans = [s for s in finished if s.context is not None and s.context.trace_id == trace_id]
    tree = span_tree(task_spans)
    by_id = _by_id(task_spans)

    # Every span of the trace hangs from the API's server span.
    roots = [s for s in task_spans if s.parent is None or s.parent.span_id not in by_id]
    assert roots == [request], tree

    start = next(s for s in task_spans if s.name == "StartWorkflow:TaskWorkflow")
    assert "POST /v1/tasks" in _ancestors(start, by_id), tree
    run = next(s for s in task_spans if s.name == "RunWorkflow:TaskWorkflow")
    assert "StartWorkflow:TaskWorkflow" in _ancestors(run, by_id), tree
    run_activities = [s for s in task_spans if s.name.startswith("RunActivity:")]
    activity_names = {s.name.removeprefix("RunActivity:") for s in run_activities}
    assert {"start_task", "plan", "execute", "verify", "finish_task"} <= activity_names, tree
    # The interceptor parents activities on the workflow's start (its workflow spans are
    # instantaneous markers).
    for activity_span in run_activities:
        assert activity_span.parent is not None
        scheduled = by_id[activity_span.parent.span_id]
        assert scheduled.name == activity_span.name.replace("Run", "Start", 1), tree
        assert "StartWorkflow:TaskWorkflow" in _ancestors(scheduled, by_id), tree

    llm_calls = [s for s in task_spans if s.name.startswith("chat ")]
    assert llm_calls, tree
    for call in llm_calls:
        assert call.kind is SpanKind.CLIENT
        assert call.parent is not None
        assert by_id[call.parent.span_id].name.startswith("RunActivity:"), tree
        assert call.attributes is not None
        assert call.attributes["gen_ai.operation.name"] == "chat"
        assert call.attributes["gen_ai.request.model"]
        assert call.attributes["server.address"] == "127.0.0.1"
    succeeded = [c for c in llm_calls if c.status.status_code is not StatusCode.ERROR]
    failed = [c for c in llm_calls if c.status.status_code is StatusCode.ERROR]
    assert len(failed) == 1, tree
    assert failed[0].attributes is not None
    assert failed[0].attributes["agent.role"] == "verifier"
    assert by_id[failed[0].parent.span_id].name == "RunActivity:verify"  # type: ignore[union-attr]
    for call in succeeded:
        assert call.attributes is not None
        assert int(str(call.attributes["gen_ai.usage.output_tokens"])) > 0

    # SQL statements of the activities belong to the trace too.
    sql = [s for s in task_spans if s.attributes and s.attributes.get("db.system") == "postgresql"]
    assert any(any(a.startswith("RunActivity:") for a in _ancestors(s, by_id)) for s in sql), tree
    assert any("POST /v1/tasks" in _ancestors(s, by_id) for s in sql), tree

    # Stored events written by activities carry the trace id.
    async with session_manager.session() as session:
        events = await EventRepository(session).list_after(UUID(task_id), 0, 500)
    trace_hex = trace.format_trace_id(trace_id)
    traced = [e for e in events if e.details.get("trace_id") == trace_hex]
    assert len(traced) >= len(events) - 1, [(e.type, e.details.get("trace_id")) for e in events]
    print(f"span tree of task {task_id}:\n{tree}")

    # A replay of the task's history adds no span.
    before = len(spans.get_finished_spans())
    workflow_id = str(start.attributes["temporalWorkflowID"])  # type: ignore[index]
    history = await temporal_client.get_workflow_handle(workflow_id).fetch_history()
    replayer = Replayer(
        workflows=[TaskWorkflow],
        data_converter=data_converter,
        interceptors=[TracingInterceptor()],
    )
    await replayer.replay_workflow(history)
    assert len(spans.get_finished_spans()) == before


def test_tracing_is_requested_only_by_the_standard_variables() -> None:
    assert not tracing_requested({})
    assert not tracing_requested({"AGENT_LOG_LEVEL": "DEBUG"})
    assert tracing_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert tracing_requested({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x:4318/v1/traces"})
    assert not tracing_requested(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}
    )
    assert not tracing_requested({"OTEL_TRACES_EXPORTER": "none"})


def test_without_a_trace_events_get_no_trace_id() -> None:
    assert current_trace_id() is None
    assert with_trace_id({"a": 1}) == {"a": 1}
    assert with_trace_id(None) == {}
