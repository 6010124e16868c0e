"""How tool calls read in the terminal: event lines, the call at a pause, local checks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from agent.cli.follow import auto_action
from agent.cli.follow_output import event_line
from agent.cli.prompt import _parse_arguments
from agent.cli.tool_text import call_lines, tool_event_text
from agent.contract.breakpoints import ResumeAction
from agent.contract.task import PauseState, ToolCallPause
from agent.events.types import AgentActivityEvent, BreakpointKind, EventType

TASK = uuid.uuid4()
BASE = {"server": "time", "tool": "get_current_time", "call_id": "call_1", "attempt": 1}


def event(type_: EventType, message: str = "raw message", **details: object) -> AgentActivityEvent:
    return AgentActivityEvent(
        type=type_, task_id=TASK, sequence_number=7, message=message, details={**BASE, **details}
    )


def test_a_completed_call_reads_tool_duration_and_size() -> None:
    # Arrange
    done = event(EventType.TOOL_CALL_COMPLETED, duration_ms=8, result_chars=115)
    with_result = event(
        EventType.TOOL_CALL_COMPLETED,
        duration_ms=8,
        result_chars=115,
        result_preview='{\n  "timezone": "UTC"\n}',
    )

    # Act
    text = tool_event_text(done)
    line = event_line(with_result)

    # Assert
    assert text == "tool time.get_current_time · 8 ms · 115 chars"
    assert line == (
        "#7 TOOL_CALL_COMPLETED tool time.get_current_time · 8 ms · 115 chars"
        ' → { "timezone": "UTC" }'
    )


def test_a_started_call_shows_its_arguments_and_attempt() -> None:
    started = event(EventType.TOOL_CALL_STARTED, arguments='{"timezone": "UTC"}')

    assert tool_event_text(started) == 'tool time.get_current_time {"timezone": "UTC"} · attempt 1'


def test_a_failed_call_shows_its_error() -> None:
    # Arrange: a denial has no duration; a failure after running has one.
    denied = event(EventType.TOOL_CALL_FAILED, error="DENIED: not today")
    failed = event(EventType.TOOL_CALL_FAILED, error="ERROR: boom\nline two", duration_ms=3)

    # Act / Assert
    assert tool_event_text(denied) == "tool time.get_current_time failed: DENIED: not today"
    assert (
        tool_event_text(failed) == "tool time.get_current_time failed · 3 ms: ERROR: boom line two"
    )


def test_other_events_keep_their_message() -> None:
    other = event(EventType.TASK_PROGRESS, message="Task  progress\nnow")

    assert tool_event_text(other) is None
    assert event_line(other) == "#7 TASK_PROGRESS Task progress now"


def test_the_call_at_a_pause_shows_server_tool_and_pretty_arguments() -> None:
    call = ToolCallPause(
        id=uuid.uuid4(), server="time", tool="get_current_time", arguments='{"timezone":"UTC"}'
    )

    assert call_lines(call) == [
        "server     time",
        "tool       get_current_time",
        "arguments",
        "  {",
        '    "timezone": "UTC"',
        "  }",
    ]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (BreakpointKind.AFTER_PLAN, ResumeAction.CONTINUE),
        (BreakpointKind.ON_FAILURE, ResumeAction.CONTINUE),
        (BreakpointKind.BEFORE_TOOL, ResumeAction.APPROVE),
    ],
)
def test_auto_resume_continues_or_approves_a_tool_call(
    kind: BreakpointKind, expected: ResumeAction
) -> None:
    pause = PauseState(breakpoint_id="bp-1", kind=kind, hit_at=datetime.now(UTC))

    assert auto_action(pause) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [("{nope", "not valid JSON"), ("[1, 2]", "must be a JSON object"), ('"UTC"', "JSON object")],
)
def test_edited_arguments_must_be_a_json_object(text: str, problem: str) -> None:
    message, arguments = _parse_arguments(text)

    assert arguments is None
    assert problem in message


def test_edited_arguments_that_are_an_object_are_sent() -> None:
    assert _parse_arguments('{"timezone": "Asia/Tokyo"}\n') == ("", {"timezone": "Asia/Tokyo"})
