"""How tasks look in the terminal: the plan table and tree, the live view, the summary."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from agent.client import TaskDetail
from agent.client.models import MilestoneOut
from agent.client.view import MilestoneState, ProviderWaiting, TaskView
from agent.contract.task import Totals
from agent.events.types import TaskStatus

# The columns of the plan table other than the title take about this many characters;
# the title gets the rest of the terminal (but never less than TITLE_MIN_WIDTH).
PLAN_COLUMNS_WIDTH = 62
TITLE_MIN_WIDTH = 16

STATUS_STYLE: dict[str, str] = {
    "pending": "dim",
    "in_progress": "bold yellow",
    "passed": "green",
    "failed": "bold red",
    "skipped": "magenta",
    "running": "bold yellow",
    "paused": "bold cyan",
    "queued": "blue",
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


def queued_status_text(status: str, queue_position: int | None) -> Text:
    """A task's status, with its place in the queue while it is queued (`queued #3`)."""
    text = status_text(status)
    if queue_position is not None:
        text.append(f" #{queue_position}", style="blue")
    return text


def money_text(totals: Totals) -> str:
    """A cost in USD, marked when some calls had no known price."""
    cost = f"${totals.cost_usd:.4f}"
    return f"{cost} (+unpriced)" if totals.cost_unknown else cost


def tokens_text(totals: Totals) -> str:
    """Tokens in and out, marked when some of them are estimates (no provider usage)."""
    text = f"{totals.input_tokens} in / {totals.output_tokens} out tokens"
    return f"{text} (some estimated)" if totals.estimated else text


def clock_text(instant: str) -> str:
    """`HH:MM:SS UTC` of an ISO timestamp (the text as it is when it is not one)."""
    try:
        return f"{datetime.fromisoformat(instant).astimezone(UTC):%H:%M:%S} UTC"
    except ValueError:
        return instant


def waiting_text(waiting: ProviderWaiting) -> str:
    """`waiting on provider <model> since …, next try at …, last error …`."""
    return (
        f"waiting on provider {waiting.model} since {clock_text(waiting.since)}, "
        f"next try at {clock_text(waiting.next_try_at)}, last error: {waiting.last_error}"
    )


def status_text(status: str) -> Text:
    """A status word in its colour."""
    return Text(status, style=STATUS_STYLE.get(status, ""))


def plan_rows(milestones: Sequence[MilestoneOut] | TaskView) -> list[MilestoneOut | MilestoneState]:
    """The milestones of a plan in plan order."""
    if isinstance(milestones, TaskView):
        return list(milestones.milestones.values())
    return sorted(milestones, key=lambda m: m.position)


def plan_table(
    milestones: Sequence[MilestoneOut] | TaskView,
    title: str = "Plan",
    *,
    width: int | None = None,
    window: range | None = None,
) -> Table:
    """The plan as a table: key, title, dependencies, status, attempts, tokens, cost.

    Args:
        milestones: The plan.
        title: The table's title.
        width: The terminal width; titles are cut to what is left of it (no cut when None).
        window: Only these rows (0-based positions in plan order); all when None.
    """
    table = Table(title=title, title_justify="left", expand=False, show_lines=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("milestone", style="bold", no_wrap=True, overflow="ellipsis")
    title_width = None if width is None else max(TITLE_MIN_WIDTH, width - PLAN_COLUMNS_WIDTH)
    table.add_column("title", no_wrap=True, overflow="ellipsis", max_width=title_width)
    table.add_column("after", style="dim", no_wrap=True, overflow="ellipsis")
    table.add_column("status", no_wrap=True)
    table.add_column("att.", justify="right")
    table.add_column("tokens", justify="right")
    table.add_column("cost", justify="right")
    rows = plan_rows(milestones)
    shown = window if window is not None else range(len(rows))
    for index in shown:
        m = rows[index]
        status = m.status.value
        table.add_row(
            str(index + 1),
            escape(m.key),
            escape(m.title),
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
        f"{tokens_text(totals)} · {money_text(totals)}"
        + (f" · {totals.tool_calls} tool calls" if totals.tool_calls else ""),
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
