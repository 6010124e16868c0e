"""Where a follow writes: the live view (a terminal), plain lines (redirected), JSON lines.

`Follower` (`follow.py`) decides what happens; these classes decide how it looks.
"""

from __future__ import annotations

import json
import sys
from typing import Protocol
from uuid import UUID

from rich.console import Console
from rich.live import Live
from rich.markup import escape

from agent.cli.live import LiveTaskView
from agent.cli.render import plan_table, plan_tree, render_summary, tokens_text
from agent.cli.tool_text import call_lines, tool_event_text
from agent.client import TaskDetail
from agent.client.models import StreamMessage
from agent.client.view import TaskView
from agent.contract.task import PauseState
from agent.events.types import AgentActivityEvent, EventType

LIVE_REFRESH_PER_SECOND = 8


class FollowOutput(Protocol):
    """How a follow shows what happens."""

    def following(self, detail: TaskDetail, after_seq: int) -> None:
        """The follow starts (before the first event)."""

    def message(self, message: StreamMessage, view: TaskView) -> None:
        """A socket message was folded into the view."""

    def breakpoint(self, detail: TaskDetail, pause: PauseState) -> None:
        """The task waits at a breakpoint: show where, and the plan."""

    def note(self, text: str, *, error: bool = False) -> None:
        """A line of the follow itself (auto-resume, resumed, hints)."""

    def finish(self, detail: TaskDetail, temporal_link: str | None) -> None:
        """The task ended."""

    def suspend(self) -> None:
        """Stop drawing (a prompt or the end follows); what was drawn stays."""

    def resume(self) -> None:
        """Draw again, below whatever was printed meanwhile."""


class LiveOutput:
    """A terminal: the live view fitted to the screen, the transcript above it.

    Args:
        console: Standard output.
        view: The task's state.
        temporal_link: Link to the workflow in the Temporal UI.
    """

    def __init__(self, console: Console, view: TaskView, temporal_link: str | None) -> None:
        self.console = console
        self.renderable = LiveTaskView(view, temporal_link)
        self.live: Live | None = None

    def following(self, detail: TaskDetail, after_seq: int) -> None:
        """Say what is followed, then start the live view."""
        self.console.print(
            f"Following task [bold]{detail.id}[/] from event {after_seq} "
            "(Ctrl-C detaches; the task goes on)"
        )
        self.resume()

    def message(self, message: StreamMessage, view: TaskView) -> None:
        """Nothing to do: the live view redraws the state by itself."""

    def breakpoint(self, detail: TaskDetail, pause: PauseState) -> None:
        """Print the breakpoint, the plan tree and table below the last frame."""
        self.suspend()
        self.console.rule(f"[bold cyan]Breakpoint {pause.kind.value}[/] ({pause.breakpoint_id})")
        if pause.reason:
            self.console.print(escape(pause.reason))
        if pause.tool_call is not None:
            return  # the prompt shows the call; the plan is not what is decided here
        if detail.milestones:
            self.console.print(plan_tree(detail.milestones))
            self.console.print(plan_table(detail.milestones, width=self.console.width))

    def note(self, text: str, *, error: bool = False) -> None:
        """Print a line above the live view."""
        style = "red" if error else "cyan"
        self.console.print(f"[{style}]{escape(text)}[/]")

    def finish(self, detail: TaskDetail, temporal_link: str | None) -> None:
        """Leave the last frame and print the summary under it."""
        self.suspend()
        self.console.print(render_summary(detail, temporal_link))

    def suspend(self) -> None:
        """Stop the live view; its last frame stays on screen."""
        if self.live is not None:
            self.live.stop()
            self.live = None

    def resume(self) -> None:
        """Start a new live view under what is on screen.

        A new `Live` every time: a stopped one remembers the height of its last frame
        and would move up over (and erase) the prompt and plan printed since.
        """
        if self.live is not None:
            return
        self.live = Live(
            self.renderable,
            console=self.console,
            refresh_per_second=LIVE_REFRESH_PER_SECOND,
            transient=False,
            screen=False,
            vertical_overflow="crop",
        )
        self.live.start()


def _write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def event_line(event: AgentActivityEvent) -> str:
    """One stored event as one plain line: `#seq TYPE message` (tool calls: `tool_event_text`)."""
    message = tool_event_text(event) or " ".join(event.message.split())
    return f"#{event.sequence_number} {event.type.value} {message}".rstrip()


class PlainOutput:
    """Output redirected to a file or pipe: plain lines, one per stored event, no colour."""

    def following(self, detail: TaskDetail, after_seq: int) -> None:
        """One line: what is followed from where."""
        _write(f"following task {detail.id} from event {after_seq}")

    def message(self, message: StreamMessage, view: TaskView) -> None:
        """One line per stored event (streamed chunks are left out)."""
        event = message.event
        stored = event is not None and event.sequence_number is not None
        if event is not None and stored and event.type is not EventType.LLM_CHUNK:
            _write(event_line(event))

    def breakpoint(self, detail: TaskDetail, pause: PauseState) -> None:
        """Where the task waits and the plan, one milestone a line."""
        _write(f"breakpoint {pause.kind.value} ({pause.breakpoint_id}): {pause.reason}".rstrip())
        if pause.tool_call is not None:
            for line in call_lines(pause.tool_call):
                _write(f"  {line}")
            return
        for m in sorted(detail.milestones, key=lambda m: m.position):
            after = ", ".join(m.depends_on) or "-"
            _write(f"  plan {m.key} [{m.status.value}] {m.title} (after {after})")

    def note(self, text: str, *, error: bool = False) -> None:
        """The line as it is."""
        _write(("error: " if error else "") + text)

    def finish(self, detail: TaskDetail, temporal_link: str | None) -> None:
        """The ending, totals, link and the result, then a final newline."""
        totals = detail.totals
        calls = f", {totals.tool_calls} tool calls" if totals.tool_calls else ""
        _write(
            f"task {detail.id} {detail.status.value}: {tokens_text(totals)}, "
            f"${totals.cost_usd:.4f}{calls}"
        )
        if detail.failure_reason:
            _write(f"reason: {detail.failure_reason}")
        if temporal_link:
            _write(f"temporal: {temporal_link}")
        if detail.result:
            _write("summary:")
            _write(detail.result.rstrip("\n"))
        if detail.error:
            _write(f"error: {detail.error}")

    def suspend(self) -> None:
        """Nothing is drawn live."""

    def resume(self) -> None:
        """Nothing is drawn live."""


class JsonOutput:
    """`--json`: one JSON object per line (socket messages, notes, the summary)."""

    def following(self, detail: TaskDetail, after_seq: int) -> None:
        """Nothing: the first line is the first message."""

    def message(self, message: StreamMessage, view: TaskView) -> None:
        """The socket message as it came."""
        _write(json.dumps(message.as_json(), default=str))

    def breakpoint(self, detail: TaskDetail, pause: PauseState) -> None:
        """Nothing: the BREAKPOINT_HIT event says it."""

    def note(self, text: str, *, error: bool = False) -> None:
        """`{"kind": "note", "message": ...}`."""
        _write(json.dumps({"kind": "note", "message": text}))

    def finish(self, detail: TaskDetail, temporal_link: str | None) -> None:
        """`{"kind": "summary", ...}`."""
        _write(
            json.dumps(
                {
                    "kind": "summary",
                    "task_id": str(detail.id),
                    "status": detail.status.value,
                    "result": detail.result,
                    "failure_reason": detail.failure_reason,
                    "totals": detail.totals.model_dump(mode="json"),
                },
                default=str,
            )
        )

    def suspend(self) -> None:
        """Nothing is drawn live."""

    def resume(self) -> None:
        """Nothing is drawn live."""


def started_line(task_id: UUID, *, json_lines: bool, console: Console) -> None:
    """Announce a task `agent run --follow` created."""
    if json_lines:
        _write(json.dumps({"kind": "started", "task_id": str(task_id)}))
    elif console.is_terminal:
        console.print(f"Started task [bold]{task_id}[/]")
    else:
        _write(f"started task {task_id}")
