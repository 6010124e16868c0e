"""Every payload the Temporal UI shows of a task is JSON it can parse.

The UI parses each payload's data as JSON (`parseRawPayloadToJSON`) and logs
`Could not parse payload: Unexpected end of JSON input` for an empty one: the `binary/null`
payloads of `None` values (activities and local activities that return nothing, a removed
search attribute). These tests run tasks on the dev server through the paths that carry
`None` (breakpoints resumed by update, activities without results, an LLM call that fails
once and is retried, a cancel at a breakpoint) and read every payload of the history and
of the workflow's description the way the UI does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from uuid import UUID

import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowFailureError, WorkflowHandle

from agent.contract.task import TaskResult
from agent.events.types import BreakpointKind, EventType, TaskComplexity, TaskStatus
from tests.workflows.conftest import Engine
from tests.workflows.helpers import paused_at, resume
from workflows.task_workflow import TaskWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

Handle = WorkflowHandle[TaskWorkflow, TaskResult]
UNREADABLE_ENCODINGS = {"binary/null", "binary/plain", "binary/protobuf"}


def payloads_in(message: Message, path: str = "") -> Iterator[tuple[str, Payload]]:
    """Every `Payload` anywhere inside a protobuf message, with the field path to it."""
    for field, value in message.ListFields():
        here = f"{path}.{field.name}" if path else field.name
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if value_field.message_type is None:
                continue
            for key, item in value.items():
                yield from _payloads_of(item, f"{here}[{key}]")
        elif field.is_repeated:
            for index, item in enumerate(value):
                yield from _payloads_of(item, f"{here}[{index}]")
        else:
            yield from _payloads_of(value, here)


def _payloads_of(value: Message, path: str) -> Iterator[tuple[str, Payload]]:
    if isinstance(value, Payload):
        yield path, value
    else:
        yield from payloads_in(value, path)


def unreadable(payload: Payload) -> str | None:
    """Why the UI could not parse this payload as JSON, or None when it can."""
    encoding = payload.metadata.get("encoding", b"").decode()
    if encoding in UNREADABLE_ENCODINGS:
        return f"encoding {encoding} (data {payload.data!r})"
    try:
        json.loads(payload.data)
    except ValueError as exc:
        return f"encoding {encoding}: data {payload.data[:80]!r} is not JSON ({exc})"
    return None


async def shown_payloads(handle: Handle) -> list[tuple[str, Payload]]:
    """Every payload of the workflow's history and description, with where it is."""
    found: list[tuple[str, Payload]] = []
    async for event in handle.fetch_history_events():
        found += [(f"event {event.event_id} {path}", p) for path, p in payloads_in(event)]
    description = await handle.describe()
    found += [(f"describe {path}", p) for path, p in payloads_in(description.raw_description)]
    return found


def unreadable_payloads(payloads: list[tuple[str, Payload]]) -> list[str]:
    """Where and why each payload the UI could not parse is."""
    return [
        f"{where}: {reason}"
        for where, payload in payloads
        if (reason := unreadable(payload)) is not None
    ]


def carries(payloads: list[tuple[str, Payload]], field: str) -> bool:
    """Whether any payload sits under `field` (a field name of the history's protos)."""
    return any(f".{field}" in where or f" {field}" in where for where, _ in payloads)


async def test_a_task_resumed_at_breakpoints_has_only_json_payloads(dev_engine: Engine) -> None:
    engine = dev_engine
    # Arrange: a pause before each milestone (resumed by update), and the first LLM call of
    # each role answered with a 500 once (a retried attempt: `last_failure` in history).
    handle = await engine.start(
        "Write a two part note [milestones=2] [plan=sequential] [fault=500] [fault_count=1]",
        complexity=TaskComplexity.SIMPLE,
        breakpoints=[BreakpointKind.BEFORE_MILESTONE],
    )
    task_id = UUID(handle.id.removeprefix("task-"))

    # Act
    first = await paused_at(handle, "m1")
    at_pause = await shown_payloads(handle)
    await resume(handle, first)
    await resume(handle, await paused_at(handle, "m2"))
    result = await handle.result()
    at_end = await shown_payloads(handle)

    # Assert: the paths that carry None (or failures) were taken ...
    assert result.status == TaskStatus.COMPLETED
    events = await engine.events(task_id)
    assert [e.type for e in events].count(EventType.BREAKPOINT_RESUMED) == 2
    for field in (
        "activity_task_completed_event_attributes.result",  # activities, some returning None
        "marker_recorded_event_attributes.details[result]",  # local activities
        "accepted_request.input.args",  # the resume update's argument
        "workflow_execution_update_completed_event_attributes.outcome.success",
        "last_failure.application_failure_info.details",  # the attempt that met the 500
        "user_metadata.summary",  # activity summaries
        "workflow_execution_completed_event_attributes.result",
        "upsert_workflow_search_attributes_event_attributes",
    ):
        assert carries(at_end, field), field
    # ... and the UI can parse every payload, at the breakpoint and at the end.
    assert unreadable_payloads(at_pause) == []
    assert unreadable_payloads(at_end) == []


async def test_a_task_cancelled_at_a_breakpoint_has_only_json_payloads(
    dev_engine: Engine,
) -> None:
    engine = dev_engine
    # Arrange
    handle = await engine.start(
        "Write a two part note [milestones=2] [plan=sequential]",
        complexity=TaskComplexity.SIMPLE,
        breakpoints=[BreakpointKind.BEFORE_MILESTONE],
    )
    task_id = UUID(handle.id.removeprefix("task-"))
    await paused_at(handle, "m1")

    # Act
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    payloads = await shown_payloads(handle)

    # Assert
    events = await engine.events(task_id)
    assert events[-1].type == EventType.TASK_CANCELLED
    assert carries(payloads, "marker_recorded_event_attributes.details[result]")
    assert unreadable_payloads(payloads) == []
