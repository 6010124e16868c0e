"""Task commands: `agent run`, `follow`, `tasks`, `show`, `resume`, `cancel`.

The typer commands only: the API context is in `context.py`, the live follow in
`follow.py`, the views in `render.py`, breakpoint prompting in `prompt.py`, the exit
codes (`agent run --follow`, `agent follow`) in `exit_codes.py`.
"""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from agent.cli.context import (
    CliContext,
    DataDirOption,
    JsonOption,
    TaskIdArgument,
    open_context,
    run_api,
    temporal_link,
)
from agent.cli.exit_codes import EXIT_CODES_HELP, ExitCode
from agent.cli.follow import FollowOptions, follow_and_exit, follow_until_detached
from agent.cli.goal import GOAL_LIMITS_HELP, GoalError, read_goal
from agent.cli.render import (
    money_text,
    plan_table,
    plan_tree,
    queued_status_text,
    render_summary,
    status_text,
)
from agent.cli.tool_text import call_lines
from agent.client import AgentApiClient, ApiRequestError, TaskDetail
from agent.client.ids import resolve_task_id, short_id, unique_prefix_length
from agent.client.models import CancelOut
from agent.client.plan import (
    PlanDocumentError,
    edit_summary,
    parse_plan_document,
    plan_edit_between,
)
from agent.contract.breakpoints import ResumeAction
from agent.contract.task import Budget
from agent.events.types import BreakpointKind, TaskComplexity, TaskStatus

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
    tools: list[str] | None = None
    max_tool_rounds: int | None = None

    async def create(self, api: AgentApiClient) -> TaskDetail:
        """Create the task (idempotently) and return its snapshot."""
        task = await api.create_task(
            self.goal,
            breakpoints=self.breakpoints,
            budget=self.budget,
            complexity=self.complexity,
            max_parallel=self.max_parallel,
            max_attempts=self.max_attempts,
            tools=self.tools,
            max_tool_rounds=self.max_tool_rounds,
            idempotency_key=f"cli-{uuid.uuid4()}",
        )
        return await api.get_task(task.id)


def _budget(cost: float | None, tokens: int | None, tool_calls: int | None = None) -> Budget | None:
    """The budget of the options given (None when none is)."""
    if cost is None and tokens is None and tool_calls is None:
        return None
    return Budget(max_cost_usd=cost, max_tokens=tokens, max_tool_calls=tool_calls)


def _tool_names(option: str | None) -> list[str] | None:
    """`--tools a,b.c` as a list (None: the option was not given; empty: no tools)."""
    if option is None:
        return None
    return [name.strip() for name in option.split(",") if name.strip()]


def run(
    goal: Annotated[
        str | None,
        typer.Argument(
            metavar="GOAL",
            help="What the task should achieve; `-` reads it from stdin. " + GOAL_LIMITS_HELP,
            show_default=False,
        ),
    ] = None,
    goal_file: Annotated[
        Path | None,
        typer.Option(
            "--goal-file",
            dir_okay=False,
            help="Read the goal from this file (`-`: stdin), for goals too long for the "
            "command line.",
        ),
    ] = None,
    breakpoint: Annotated[
        list[BreakpointKind] | None,
        typer.Option(
            "--breakpoint",
            "-b",
            help="Pause there for a person (repeatable): after_plan, before_milestone, "
            "after_milestone, on_failure, budget_exhausted, before_tool (approve every "
            "tool call).",
        ),
    ] = None,
    budget: Annotated[
        float | None, typer.Option("--budget", min=0.0, help="Cost limit in USD.")
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", min=1, help="Token limit.")
    ] = None,
    tools: Annotated[
        str | None,
        typer.Option(
            "--tools",
            help="Comma-separated MCP servers (`time`) or tools (`time.get_current_time`) "
            "the task may call; default: every allowed tool; `--tools ''`: none.",
        ),
    ] = None,
    max_tool_calls: Annotated[
        int | None,
        typer.Option("--max-tool-calls", min=1, help="Tool calls the whole task may make."),
    ] = None,
    max_tool_rounds: Annotated[
        int | None,
        typer.Option(
            "--max-tool-rounds",
            min=1,
            max=50,
            help="Model turns with tool calls per milestone attempt (1-50; server default 8).",
        ),
    ] = None,
    complexity: Annotated[
        TaskComplexity | None,
        typer.Option("--complexity", help="Skip classification and use this complexity."),
    ] = None,
    max_parallel: Annotated[
        int | None,
        typer.Option(
            "--max-parallel",
            min=1,
            max=32,
            help="Milestones worked on at once (1-32; server default 4).",
        ),
    ] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option(
            "--max-attempts",
            min=1,
            max=10,
            help="Attempts per milestone before it fails (1-10; server default 3).",
        ),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", "-f", help="Watch the task live.")
    ] = False,
    auto_resume: AutoResumeOption = False,
    json_lines: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Start a task; with --follow, watch it live and answer its breakpoints.

    Without --follow it exits 0 once the task is started. When standard output is not a
    terminal, --follow prints one plain line per event instead of the live view.
    """
    ctx = open_context(data_dir)
    try:
        text = read_goal(goal, goal_file)
    except GoalError as exc:
        ctx.err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(ExitCode.USAGE) from exc
    request = StartRequest(
        goal=text,
        breakpoints=list(dict.fromkeys(breakpoint or [])),
        budget=_budget(budget, max_tokens, max_tool_calls),
        complexity=complexity,
        max_parallel=max_parallel,
        max_attempts=max_attempts,
        tools=_tool_names(tools),
        max_tool_rounds=max_tool_rounds,
    )
    if not follow:
        detail = run_api(ctx, request.create)
        if json_lines:
            typer.echo(detail.model_dump_json())
        else:
            ctx.console.print(f"Started task [bold]{detail.id}[/]")
            ctx.console.print(f"Follow it with: agent follow {short_id(detail.id)}")
        return
    options = FollowOptions(
        after_seq=0,
        auto_resume=auto_resume,
        json_lines=json_lines,
        interactive=sys.stdin.isatty(),
    )
    follow_and_exit(ctx, follow_until_detached(ctx, None, options, request.create))


def follow(
    task_id: TaskIdArgument,
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

    When standard output is not a terminal, it prints one plain line per event.
    """
    ctx = open_context(data_dir)
    options = FollowOptions(
        after_seq=after_seq,
        auto_resume=auto_resume,
        json_lines=json_lines,
        interactive=sys.stdin.isatty(),
    )

    async def find(api: AgentApiClient) -> uuid.UUID:
        return await resolve_task_id(api, task_id)

    follow_and_exit(ctx, follow_until_detached(ctx, find, options, None))


def tasks(
    status: Annotated[
        TaskStatus | None, typer.Option("--status", help="Only tasks with this status.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=200, help="How many tasks (1-200).")
    ] = 20,
    json_lines: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """List your tasks, newest first (ids shortened as git does; any unique prefix works)."""
    ctx = open_context(data_dir)
    page = run_api(ctx, lambda api: api.list_tasks(status=status, limit=limit))
    if json_lines:
        for item in page.items:
            typer.echo(item.model_dump_json())
        return
    table = Table(title=f"Tasks ({len(page.items)})", title_justify="left")
    table.add_column("id", no_wrap=True, style="bold")
    table.add_column("status", no_wrap=True)
    table.add_column("goal", no_wrap=True, overflow="ellipsis", ratio=1)
    table.add_column("tokens", justify="right", no_wrap=True)
    table.add_column("cost", justify="right", no_wrap=True)
    table.add_column("created", no_wrap=True)
    length = unique_prefix_length(item.id for item in page.items)
    for item in page.items:
        table.add_row(
            short_id(item.id, length),
            queued_status_text(item.status.value, item.queue_position),
            Text(" ".join(item.goal.split())),
            str(item.totals.tokens),
            money_text(item.totals),
            item.created_at.strftime("%m-%d %H:%M"),
        )
    ctx.console.print(table)


def show(
    task_id: TaskIdArgument,
    json_lines: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Show a task: plan, statuses, totals, pause state, result and Temporal UI link."""
    ctx = open_context(data_dir)

    async def load(api: AgentApiClient) -> tuple[TaskDetail, str | None]:
        detail = await api.get_task(await resolve_task_id(api, task_id))
        link = await temporal_link(api, ctx.target, detail.workflow_id)
        return detail, link

    detail, link = run_api(ctx, load)
    if json_lines:
        typer.echo(detail.model_dump_json())
        return
    console = ctx.console
    console.print(f"[bold]{short_id(detail.id)}[/]  {status_text(detail.status.value).markup}")
    console.print(f"[dim]id[/]    {detail.id}")
    console.print(f"[dim]goal[/]  {escape(detail.goal)}")
    if detail.tools:
        names = ", ".join(t.qualified_name for t in detail.tools)
        console.print(f"[dim]tools[/] {escape(names)}")
    if detail.queue_position is not None:
        console.print(
            f"[blue]queued[/]: position {detail.queue_position} among your waiting tasks; "
            "it starts when one of your running tasks ends"
        )
    if detail.milestones:
        console.print(plan_tree(detail.milestones))
        console.print(plan_table(detail.milestones, width=console.width))
    if detail.paused is not None:
        p = detail.paused
        console.print(
            f"[cyan]paused at {p.kind.value}[/] ({p.breakpoint_id}) {escape(p.reason)}; "
            f"answer with: agent resume {short_id(detail.id)}"
        )
        if p.tool_call is not None:
            for line in call_lines(p.tool_call):
                console.print(f"  {escape(line)}", highlight=False)
    if detail.status.is_terminal:
        console.print(render_summary(detail, link))
    else:
        console.print(
            f"[dim]totals[/]  {detail.totals.tokens} tokens · {money_text(detail.totals)}"
        )
        if link:
            console.print(f"[dim]temporal[/]  {link}")


def resume(
    task_id: TaskIdArgument,
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
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", min=1, help="New token limit.")
    ] = None,
    max_tool_calls: Annotated[
        int | None, typer.Option("--max-tool-calls", min=1, help="New tool call limit.")
    ] = None,
    arguments: Annotated[
        str | None,
        typer.Option(
            "--arguments",
            help="With `--action edit` at before_tool: the call's new arguments as a JSON "
            'object (e.g. \'{"timezone": "UTC"}\').',
        ),
    ] = None,
    breakpoint_id: Annotated[
        str | None, typer.Option("--breakpoint-id", help="Default: where the task waits now.")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Answer the breakpoint a paused task waits at.

    At a before_tool breakpoint: `--action approve`, `deny --feedback REASON` (the model
    reads the reason), `edit --arguments JSON` or `abort`.
    """
    ctx = open_context(data_dir)
    new_arguments = _arguments(ctx, arguments)

    async def work(api: AgentApiClient) -> str:
        found = await resolve_task_id(api, task_id)
        detail = await api.get_task(found)
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
        new_budget = _budget(budget, max_tokens, max_tool_calls)
        out = await api.resume(
            found,
            bp,
            action,
            edits=edits,
            budget=new_budget,
            feedback=feedback,
            arguments=new_arguments,
        )
        edited = f" (edit: {edit_summary(edits)})" if edits is not None else ""
        return f"Resumed task {out.task_id} at {out.breakpoint_id}: {out.action.value}{edited}"

    ctx.console.print(run_api(ctx, work))


def _arguments(ctx: CliContext, option: str | None) -> dict[str, Any] | None:
    """`--arguments` as a JSON object; a usage error (exit 2) when it is not one."""
    if option is None:
        return None
    try:
        value = json.loads(option)
    except ValueError as exc:
        ctx.err.print(f"[red]error:[/] --arguments: not valid JSON: {escape(str(exc))}")
        raise typer.Exit(ExitCode.USAGE) from exc
    if not isinstance(value, dict):
        ctx.err.print("[red]error:[/] --arguments: must be a JSON object ({...})")
        raise typer.Exit(ExitCode.USAGE)
    return value


def cancel(
    task_id: TaskIdArgument,
    data_dir: DataDirOption = None,
) -> None:
    """Cancel a task (its running activities stop; it ends `cancelled`)."""
    ctx = open_context(data_dir)

    async def work(api: AgentApiClient) -> CancelOut:
        return await api.cancel(await resolve_task_id(api, task_id))

    out = run_api(ctx, work)
    ctx.console.print(f"Cancellation requested for task {out.task_id} (was {out.status.value})")


def register(app: typer.Typer) -> None:
    """Add the task commands to the `agent` CLI."""
    for command in (run, follow, tasks, show, resume, cancel):
        app.command(epilog=EXIT_CODES_HELP)(command)
