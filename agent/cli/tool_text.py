"""How tool calls read in the terminal: one line per `TOOL_CALL_*` event, the call at a pause.

`tool time.get_current_time · 8 ms · 115 chars → {"timezone": "UTC", ...}` for a completed
call (the start of its result after the arrow), the error for a failed one; the live view,
the plain follow output and the prompt use the same words.
"""

from __future__ import annotations

import json
from typing import Any

from agent.contract.task import ToolCallPause
from agent.events.types import AgentActivityEvent, EventType

TOOL_EVENTS = frozenset(
    {EventType.TOOL_CALL_STARTED, EventType.TOOL_CALL_COMPLETED, EventType.TOOL_CALL_FAILED}
)
MAX_ARGUMENTS_CHARS = 120
"""Arguments longer than this are cut on an event line (the whole text is in the event)."""
MAX_ERROR_CHARS = 200
MAX_RESULT_CHARS = 200
"""How much of a result an event line shows after `→` (the terminal cuts it further)."""


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tool_label(details: dict[str, Any]) -> str:
    """`server.tool` of an event's details (the bare name when the model named no tool)."""
    server, tool = details.get("server"), details.get("tool")
    if isinstance(server, str) and isinstance(tool, str):
        return f"{server}.{tool}"
    return str(tool or server or "?")


def tool_event_text(event: AgentActivityEvent) -> str | None:
    """One line for a `TOOL_CALL_*` event; None for every other event.

    Examples: `tool time.get_current_time {"timezone": "UTC"} · attempt 1` (started),
    `tool time.get_current_time · 8 ms · 115 chars → {"timezone": ...` (completed),
    `tool time.get_current_time failed · 3 ms: ERROR: ...` (failed, denied or rejected).
    """
    if event.type not in TOOL_EVENTS:
        return None
    details = event.details
    label = f"tool {tool_label(details)}"
    if event.type is EventType.TOOL_CALL_STARTED:
        arguments = details.get("arguments")
        parts = [label + (f" {_cut(arguments, MAX_ARGUMENTS_CHARS)}" if arguments else "")]
        attempt = details.get("attempt")
        if isinstance(attempt, int):
            parts.append(f"attempt {attempt}")
        return " · ".join(parts)
    timing = []
    duration = details.get("duration_ms")
    if isinstance(duration, int):
        timing.append(f"{duration} ms")
    if event.type is EventType.TOOL_CALL_COMPLETED:
        chars = details.get("result_chars")
        if isinstance(chars, int):
            timing.append(f"{chars} chars")
        line = " · ".join([label, *timing])
        result = details.get("result_preview")
        return line + (f" → {_cut(result, MAX_RESULT_CHARS)}" if result else "")
    error = details.get("error")
    reason = _cut(str(error), MAX_ERROR_CHARS) if error else event.message
    return " · ".join([f"{label} failed", *timing]) + f": {reason}"


def pretty_arguments(arguments: str) -> str:
    """A call's arguments as indented JSON (as written when they are not JSON)."""
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        return arguments
    return json.dumps(parsed, indent=2, ensure_ascii=False)


def call_lines(call: ToolCallPause) -> list[str]:
    """The call a `before_tool` breakpoint waits on: server, tool, then the arguments."""
    return [
        f"server     {call.server}",
        f"tool       {call.tool}",
        "arguments",
        *("  " + line for line in pretty_arguments(call.arguments).splitlines()),
    ]
