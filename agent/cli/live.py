"""The live view of a followed task, fitted to the terminal.

The view never grows taller than the terminal (minus one line for the cursor), so rich's
`Live` redraws it in place and nothing piles up in the scrollback. The sections share the
height by priority: the header (id, status, totals, Temporal link) and the progress bar
always; then the plan table, scrolled to the milestones at work; then the streaming text
of the agents; the event tail takes what is left.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markup import escape
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from agent.cli.render import (
    money_text,
    plan_rows,
    plan_table,
    status_text,
    tokens_text,
    waiting_text,
)
from agent.cli.tool_text import tool_event_text
from agent.client.ids import short_id
from agent.client.view import TaskView
from agent.events.types import MilestoneStatus

STREAM_LINES = 4
MIN_STREAM_PANEL_LINES = 3
MIN_PLAN_ROWS = 2
MIN_EVENT_LINES = 2
PROGRESS_BAR_WIDTH = 30
CURSOR_LINES = 1
"""Kept free below the view: a view as tall as the terminal would scroll it by a line."""


def _lines(
    console: Console, options: ConsoleOptions, renderable: RenderableType
) -> list[list[Segment]]:
    return console.render_lines(renderable, options, pad=False)


def active_window(view: TaskView, rows: int) -> range:
    """The `rows` plan rows to show: from just before the first milestone still to finish.

    Args:
        view: The task.
        rows: How many rows fit.

    Returns:
        0-based positions in plan order.
    """
    milestones = plan_rows(view)
    total = len(milestones)
    if rows >= total:
        return range(total)
    first_open = next(
        (
            i
            for i, m in enumerate(milestones)
            if m.status in (MilestoneStatus.IN_PROGRESS, MilestoneStatus.PENDING)
        ),
        total - 1,
    )
    start = max(0, min(first_open - 1, total - rows))
    return range(start, start + rows)


def header(view: TaskView, temporal_link: str | None) -> RenderableType:
    """Task id and status, goal, totals, Temporal link."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    totals = view.totals
    grid.add_row(
        "task",
        Text.assemble(
            (short_id(view.task_id), "bold"),
            "  ",
            status_text(view.status.value),
            f"  ·  {tokens_text(totals)} · ",
            money_text(totals),
        ),
    )
    grid.add_row("goal", Text(view.goal.replace("\n", " "), no_wrap=True, overflow="ellipsis"))
    for waiting in view.waiting.values():
        text = Text(waiting_text(waiting), style="yellow", no_wrap=True, overflow="ellipsis")
        grid.add_row("waiting", text)
    if temporal_link:
        grid.add_row("temporal", Text(temporal_link, overflow="fold"))
    return grid


def progress(view: TaskView) -> RenderableType:
    """Milestones done out of all, as a bar."""
    total = len(view.milestones)
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        ProgressBar(total=max(total, 1), completed=view.done_count, width=PROGRESS_BAR_WIDTH),
        f"{view.done_count}/{total} milestones done" if total else "planning…",
    )
    return bar


@dataclass
class LiveTaskView:
    """A renderable of a task's live view that fits the console it is drawn on.

    Args:
        view: The task's state.
        temporal_link: Link to its workflow in the Temporal UI.
    """

    view: TaskView
    temporal_link: str | None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Render section by section, each cut to the lines left for it."""
        width = options.max_width
        budget = max(1, console.size.height - CURSOR_LINES)
        options = options.update(width=width, height=None)
        out: list[list[Segment]] = []
        for fixed in (header(self.view, self.temporal_link), progress(self.view)):
            out.extend(_lines(console, options, fixed))
        left = budget - len(out)
        if left > 0 and self.view.milestones:
            plan = self._plan(console, options, width, left)
            out.extend(plan)
            left -= len(plan)
        if left > 0:
            streams = self._streams(console, options, left)
            out.extend(streams)
            left -= len(streams)
        if left > 0:
            out.extend(self._events(console, options, left))
        for line in out[:budget]:
            yield from line
            yield Segment.line()

    def _plan(
        self, console: Console, options: ConsoleOptions, width: int, left: int
    ) -> list[list[Segment]]:
        total = len(self.view.milestones)
        # Streams and events keep at least a few lines when the plan is long.
        room = max(MIN_PLAN_ROWS, left - (STREAM_LINES + 2) - MIN_EVENT_LINES)
        rows = total
        while True:
            window = active_window(self.view, rows)
            title = (
                "Plan"
                if rows >= total
                else f"Plan (rows {window.start + 1}-{window.stop} of {total})"
            )
            lines = _lines(
                console, options, plan_table(self.view, title, width=width, window=window)
            )
            if len(lines) <= room or rows <= MIN_PLAN_ROWS:
                return lines[: max(0, left)]
            rows -= max(1, len(lines) - room)
            rows = max(MIN_PLAN_ROWS, rows)

    def _streams(self, console: Console, options: ConsoleOptions, left: int) -> list[list[Segment]]:
        streams = self.view.active_streams()
        room = left - min(MIN_EVENT_LINES, len(self.view.recent))
        lines: list[list[Segment]] = []
        for stream in reversed(streams):  # the newest first, as many as fit
            height = min(STREAM_LINES + 2, room - len(lines))
            if height < MIN_STREAM_PANEL_LINES:
                break
            body = stream.text.strip().splitlines()[-(height - 2) :]
            panel = Panel(
                Text("\n".join(body), no_wrap=True, overflow="ellipsis"),
                title=escape(stream.label),
                title_align="left",
                border_style="yellow",
                height=height,
            )
            lines = _lines(console, options, panel) + lines
        return lines

    def _events(self, console: Console, options: ConsoleOptions, left: int) -> list[list[Segment]]:
        events = Table.grid(padding=(0, 1))
        events.add_column(style="dim", justify="right", no_wrap=True)
        events.add_column(style="cyan", no_wrap=True)
        events.add_column(no_wrap=True, overflow="ellipsis")
        for event in list(self.view.recent)[-left:]:
            message = tool_event_text(event) or event.message.replace("\n", " ")
            events.add_row(str(event.sequence_number or ""), event.type.value, Text(message))
        return _lines(console, options, Group(events))[-left:]
