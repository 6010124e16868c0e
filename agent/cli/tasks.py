"""Task commands: `agent run`, `follow`, `tasks`, `show`, `resume`, `cancel`.

The typer commands only: the API context is in `context.py`, the live follow in
`follow.py`, the views in `render.py`, breakpoint prompting in `prompt.py`, the exit
codes (`agent run --follow`, `agent follow`) in `exit_codes.py`.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from rich.markup import escape
from rich.table import Table

from agent.cli.context import DataDirOption, JsonOption, open_context, run_api, temporal_link
from agent.cli.exit_codes import EXIT_CODES_HELP
from agent.cli.follow import FollowOptions, follow_and_exit, follow_until_detached
from agent.cli.render import money_text, plan_table, plan_tree, render_summary, status_text
from agent.client import AgentApiClient, ApiRequestError, TaskDetail
from agent.client.plan import PlanDocumentError, parse_plan_document, plan_edit_between
from agent.contract.breakpoints import ResumeAction
from agent.contract.task import Budget
from agent.events.types import BreakpointKind, TaskComplexity, TaskStatus

GOAL_PREVIEW_CHARS = 60

AutoResumeOption = Annotated[
    bool,
    typer.Option(
        "--auto-resume",
        help="Answer every breakpoint with `continue` (non-interactive runs).",
    ),
]


@dataclass
class StartRequest:
    """The task `agent run` creates."""

    goal: str
    breakpoints: list[BreakpointKind]
    budget: Budget | None
    complexity: TaskComplexity | None
    max_parallel: int | None
    max_attempts: int | None

    async def create(self, api: AgentApiClient) -> TaskDetail:
        """Create the task (idempotently) and return its snapshot."""
        task = await api.create_task(
            self.goal,
            breakpoints=self.breakpoints,
            budget=self.budget,
            complexity=self.complexity,
            max_parallel=self.max_parallel,
            max_attempts=self.max_attempts,
            idempotency_key=f"cli-{uuid.uuid4()}",
        )
        return await api.get_task(task.id)


def run(
    goal: Annotated[str, typer.Argument(help="What the task should achieve.")],
    breakpoint: Annotated[
        list[BreakpointKind] | None,
        typer.Option(
            "--breakpoint",
            "-b",
            help="Pause there for a person (repeatable): after_plan, before_milestone, "
            "after_milestone, on_failure, budget_exhausted.",
        ),
    ] = None,
    budget: Annotated[
        float | None, typer.Option("--budget", min=0.0, help="Cost limit in USD.")
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", min=1, help="Token limit.")
    ] = None,
    complexity: Annotated[
        TaskComplexity | None,
        typer.Option("--complexity", help="Skip classification and use this complexity."),
    ] = None,
    max_parallel: Annotated[int | None, typer.Option("--max-parallel", min=1, max=32)] = None,
    max_attempts: Annotated[int | None, typer.Option("--max-attempts", min=1, max=10)] = None,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", "-f", help="Watch the task live.")
    ] = False,
    auto_resume: AutoResumeOption = False,
    json_lines: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Start a task; with --follow, watch it live and answer its breakpoints.

    Exit codes: 0 completed, 1 failed, 2 usage or configuration error, 3 cancelled,
    4 detached with Ctrl-C (the task goes on; re-attach with `agent follow ID`), 5 paused
    at a breakpoint that cannot be answered non-interactively. Without --follow: 0 once
    the task is started.
    """
    ctx = open_context(data_dir)
    request = StartRequest(
        goal=goal,
        breakpoints=list(dict.fromkeys(breakpoint or [])),
        budget=(
            Budget(max_cost_usd=budget, max_tokens=max_tokens)
            if budget is not None or max_tokens is not None
            else None
        ),
        complexity=complexity,
        max_parallel=max_parallel,
        max_attempts=max_attempts,
    )
    if not follow:
        detail = run_api(ctx, request.create)
        if json_lines:
            typer.echo(detail.model_dump_json())
        else:
            ctx.console.print(f"Started task [bold]{detail.id}[/]")
            ctx.console.print(f"Follow it with: agent follow {detail.id}")
        return
    options = FollowOptions(
        after_seq=0,
        auto_resume=auto_resume,
        json_lines=json_lines,
        interactive=sys.stdin.isatty(),
    )
    follow_and_exit(ctx, follow_until_detached(ctx, None, options, request.create))


def follow(
    task_id: Annotated[UUID, typer.Argument(help="The task.")],
    after_seq: Annotated[
        int | None,
        typer.Option(
            "--after-seq",
            min=0,
            help="Start after this event (default: the last one this machine saw).",
        ),
    ] = None,
    auto_resume: AutoResumeOption = False,
    json_lines: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Re-attach to a task's live view from the last event seen (or --after-seq).

    Exit codes: 0 completed, 1 failed, 2 usage or configuration error, 3 cancelled,
    4 detached with Ctrl-C, 5 paused at a breakpoint that cannot be answered
    non-interactively.
    """
    ctx = open_context(data_dir)
    options = FollowOptions(
        after_seq=after_seq if after_seq is not None else ctx.cursors.load(task_id),
        auto_resume=auto_resume,
        json_lines=json_lines,
        interactive=sys.stdin.isatty(),
    )
    follow_and_exit(ctx, follow_until_detached(ctx, task_id, options, None))


def tasks(
    status: Annotated[TaskStatus | None, typer.Option("--status", help="Only these.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 20,
    json_lines: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """List your tasks, newest first."""
    ctx = open_context(data_dir)
    page = run_api(ctx, lambda api: api.list_tasks(status=status, limit=limit))
    if json_lines:
        for item in page.items:
            typer.echo(item.model_dump_json())
        return
    table = Table(title=f"Tasks ({len(page.items)})", title_justify="left")
    table.add_column("id", no_wrap=True, min_width=len(str(uuid.UUID(int=0))))
    for column in ("status", "goal", "tokens", "cost", "created"):
        table.add_column(column)
    for item in page.items:
        goal = item.goal if len(item.goal) <= GOAL_PREVIEW_CHARS else item.goal[:57] + "..."
        table.add_row(
            str(item.id),
            status_text(item.status.value),
            escape(goal),
            str(item.totals.tokens),
            money_text(item.totals),
            item.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    ctx.console.print(table)


def show(
    task_id: Annotated[UUID, typer.Argument(help="The task.")],
    json_lines: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Show a task: plan, statuses, totals, pause state, result and Temporal UI link."""
    ctx = open_context(data_dir)

    async def load(api: AgentApiClient) -> tuple[TaskDetail, str | None]:
        detail = await api.get_task(task_id)
        link = await temporal_link(api, ctx.target, detail.workflow_id)
        return detail, link

    detail, link = run_api(ctx, load)
    if json_lines:
        typer.echo(detail.model_dump_json())
        return
    console = ctx.console
    console.print(f"[bold]{detail.id}[/]  {status_text(detail.status.value).markup}")
    console.print(f"[dim]goal[/]  {escape(detail.goal)}")
    if detail.milestones:
        console.print(plan_tree(detail.milestones))
        console.print(plan_table(detail.milestones))
    if detail.paused is not None:
        p = detail.paused
        console.print(
            f"[cyan]paused at {p.kind.value}[/] ({p.breakpoint_id}) {escape(p.reason)}; "
            f"answer with: agent resume {detail.id}"
        )
    if detail.status.is_terminal:
        console.print(render_summary(detail, link))
    else:
        console.print(
            f"[dim]totals[/]  {detail.totals.tokens} tokens · {money_text(detail.totals)}"
        )
        if link:
            console.print(f"[dim]temporal[/]  {link}")


def resume(
    task_id: Annotated[UUID, typer.Argument(help="The paused task.")],
    action: Annotated[
        ResumeAction, typer.Option("--action", "-a", help="What to do at the breakpoint.")
    ] = ResumeAction.CONTINUE,
    feedback: Annotated[
        str | None, typer.Option("--feedback", help="Notes for the agents.")
    ] = None,
    plan: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            exists=True,
            dir_okay=False,
            help='An edited plan document ({"milestones": [...]}, as `agent show --json` '
            "milestones) to apply.",
        ),
    ] = None,
    budget: Annotated[
        float | None, typer.Option("--budget", min=0.0, help="New cost limit in USD.")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=1)] = None,
    breakpoint_id: Annotated[
        str | None, typer.Option("--breakpoint-id", help="Default: where the task waits now.")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Answer the breakpoint a paused task waits at."""
    ctx = open_context(data_dir)

    async def work(api: AgentApiClient) -> str:
        detail = await api.get_task(task_id)
        bp = breakpoint_id or (detail.paused.breakpoint_id if detail.paused else None)
        if bp is None:
            raise ApiRequestError(
                409, "task_not_paused", f"the task is not paused (status: {detail.status})"
            )
        edits = None
        if plan is not None:
            try:
                edits = plan_edit_between(detail.milestones, parse_plan_document(plan.read_text()))
            except PlanDocumentError as exc:
                raise ApiRequestError(422, "invalid_plan", str(exc)) from exc
        new_budget = (
            Budget(max_cost_usd=budget, max_tokens=max_tokens)
            if budget is not None or max_tokens is not None
            else None
        )
        out = await api.resume(
            task_id, bp, action, edits=edits, budget=new_budget, feedback=feedback
        )
        return f"Resumed task {out.task_id} at {out.breakpoint_id}: {out.action.value}"

    ctx.console.print(run_api(ctx, work))


def cancel(
    task_id: Annotated[UUID, typer.Argument(help="The task.")],
    data_dir: DataDirOption = None,
) -> None:
    """Cancel a task (its running activities stop; it ends `cancelled`)."""
    ctx = open_context(data_dir)
    out = run_api(ctx, lambda api: api.cancel(task_id))
    ctx.console.print(f"Cancellation requested for task {out.task_id} (was {out.status.value})")


def register(app: typer.Typer) -> None:
    """Add the task commands to the `agent` CLI."""
    app.command(epilog=EXIT_CODES_HELP)(run)
    app.command(epilog=EXIT_CODES_HELP)(follow)
    app.command(name="tasks")(tasks)
    app.command()(show)
    app.command()(resume)
    app.command()(cancel)
