"""How tasks look in the terminal: the plan table and tree, the live view, the summary."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from agent.client import TaskDetail
from agent.client.models import MilestoneOut
from agent.client.view import MilestoneState, TaskView
from agent.contract.task import Totals
from agent.events.types import TaskStatus

STREAM_LINES = 4
MAX_STREAM_PANELS = 4
TITLE_MAX_WIDTH = 36

STATUS_STYLE: dict[str, str] = {
    "pending": "dim",
    "in_progress": "bold yellow",
    "passed": "green",
    "failed": "bold red",
    "skipped": "magenta",
    "running": "bold yellow",
    "paused": "bold cyan",
    "completed": "bold green",
    "cancelled": "magenta",
}
STATUS_ICON: dict[str, str] = {
    "pending": "·",
    "in_progress": "▶",
    "passed": "✔",
    "failed": "✘",
    "skipped": "↷",
}


def money_text(totals: Totals) -> str:
    """A cost in USD, marked when some calls had no known price."""
    cost = f"${totals.cost_usd:.4f}"
    return f"{cost} (+unpriced)" if totals.cost_unknown else cost


def status_text(status: str) -> Text:
    """A status word in its colour."""
    return Text(status, style=STATUS_STYLE.get(status, ""))


def plan_table(milestones: Sequence[MilestoneOut] | TaskView, title: str = "Plan") -> Table:
    """The plan as a table: key, title, dependencies, status, attempts, tokens, cost."""
    table = Table(title=title, title_justify="left", expand=False, show_lines=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("milestone", style="bold")
    table.add_column("title", no_wrap=True, overflow="ellipsis", max_width=TITLE_MAX_WIDTH)
    table.add_column("after", style="dim")
    table.add_column("status")
    table.add_column("att.", justify="right")
    table.add_column("tokens", justify="right")
    table.add_column("cost", justify="right")
    rows: list[MilestoneOut | MilestoneState] = (
        list(milestones.milestones.values())
        if isinstance(milestones, TaskView)
        else sorted(milestones, key=lambda m: m.position)
    )
    for index, m in enumerate(rows, start=1):
        status = m.status.value
        table.add_row(
            str(index),
            m.key,
            m.title,
            ", ".join(m.depends_on) or "—",
            Text(f"{STATUS_ICON.get(status, '')} {status}", style=STATUS_STYLE.get(status, "")),
            str(m.attempts),
            str(m.input_tokens + m.output_tokens),
            f"${m.cost_usd:.4f}",
        )
    return table


def plan_tree(milestones: list[MilestoneOut]) -> Tree:
    """The plan as a dependency tree: each milestone under the milestones it waits for."""
    by_key = {m.key: m for m in milestones}
    tree = Tree(f"[bold]Plan[/] ({len(milestones)} milestones)")
    children: dict[str, list[MilestoneOut]] = {m.key: [] for m in milestones}
    roots: list[MilestoneOut] = []
    for m in sorted(milestones, key=lambda m: m.position):
        # Attach under the last dependency so every milestone appears exactly once.
        parents = [d for d in m.depends_on if d in by_key]
        if parents:
            children[parents[-1]].append(m)
        else:
            roots.append(m)

    def label(m: MilestoneOut) -> str:
        extra = [d for d in m.depends_on[:-1] if d in by_key]
        also = f" [dim](also after {', '.join(extra)})[/]" if extra else ""
        return f"[bold]{escape(m.key)}[/] {escape(m.title)}{also}"

    def add(node: Tree, m: MilestoneOut) -> None:
        branch = node.add(label(m))
        for child in children[m.key]:
            add(branch, child)

    for root in roots:
        add(tree, root)
    return tree


def render_view(view: TaskView, temporal_link: str | None) -> RenderableType:
    """The live view: header, plan table, progress bar, streaming text, recent events."""
    header = Table.grid(padding=(0, 1))
    header.add_column(style="dim")
    header.add_column()
    header.add_row("task", f"{view.task_id}  {status_text(view.status.value).markup}")
    header.add_row("goal", escape(view.goal[:200]))
    totals = view.totals
    header.add_row(
        "totals",
        f"{totals.input_tokens} in / {totals.output_tokens} out tokens · {money_text(totals)}",
    )
    if temporal_link:
        header.add_row("temporal", Text(temporal_link, overflow="fold"))
    parts: list[RenderableType] = [header]
    if view.milestones:
        parts.append(plan_table(view))
        total = len(view.milestones)
        bar = Table.grid(padding=(0, 1))
        bar.add_row(
            ProgressBar(total=total, completed=view.done_count, width=40),
            f"{view.done_count}/{total} milestones done",
        )
        parts.append(bar)
    for stream in view.active_streams()[-MAX_STREAM_PANELS:]:
        lines = stream.text.strip().splitlines()[-STREAM_LINES:]
        parts.append(
            Panel(
                Text("\n".join(lines), overflow="ellipsis"),
                title=escape(stream.label),
                title_align="left",
                border_style="yellow",
                height=STREAM_LINES + 2,
            )
        )
    if view.recent:
        events = Table.grid(padding=(0, 1))
        events.add_column(style="dim", justify="right")
        events.add_column(style="cyan")
        events.add_column()
        for event in view.recent:
            events.add_row(
                str(event.sequence_number or ""), event.type.value, escape(event.message[:100])
            )
        parts.append(events)
    return Panel(Group(*parts), title="agent task", title_align="left")


def render_summary(detail: TaskDetail, temporal_link: str | None) -> RenderableType:
    """The final summary: status, result (or error), totals, counts, Temporal link."""
    counts: dict[str, int] = {}
    for m in detail.milestones:
        counts[m.status.value] = counts.get(m.status.value, 0) + 1
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim")
    grid.add_column()
    grid.add_row("status", status_text(detail.status.value))
    if detail.failure_reason:
        grid.add_row("reason", escape(detail.failure_reason))
    grid.add_row("milestones", ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "—")
    totals = detail.totals
    grid.add_row(
        "totals",
        f"{totals.input_tokens} in / {totals.output_tokens} out tokens · {money_text(totals)}",
    )
    if temporal_link:
        grid.add_row("temporal", Text(temporal_link, overflow="fold"))
    body: list[RenderableType] = [grid]
    if detail.result:
        body.append(Panel(escape(detail.result), title="Summary", title_align="left"))
    if detail.error:
        body.append(Panel(escape(detail.error), title="Error", border_style="red"))
    style = "green" if detail.status is TaskStatus.COMPLETED else "red"
    return Panel(Group(*body), title=f"Task {detail.id}", border_style=style, title_align="left")
