"""Task commands: `agent run`, `follow`, `tasks`, `show`, `resume`, `cancel`.

They talk to the public API only (`agent.client`), found through `AGENT_API_URL` /
`AGENT_API_KEY` or the `stack.json` of a running `agent up`.

Exit codes of `agent run --follow` and `agent follow` (`FollowExit`): 0 completed,
1 failed, 2 usage or configuration error, 3 cancelled, 4 detached (Ctrl-C; the task goes
on), 5 paused at a breakpoint that cannot be answered non-interactively.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Annotated, TypeVar
from uuid import UUID

import httpx
import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from agent.cli.errors import load_settings_or_exit
from agent.client import (
    AgentApiClient,
    ApiRequestError,
    ApiTarget,
    ApiTargetError,
    TaskDetail,
    resolve_target,
)
from agent.client.client import EventStreamClosedError
from agent.client.cursors import CursorStore
from agent.client.models import MilestoneOut
from agent.client.plan import (
    PlanDocumentError,
    parse_plan_document,
    plan_document,
    plan_edit_between,
)
from agent.client.view import TERMINAL_EVENTS, MilestoneState, TaskView
from agent.contract.breakpoints import ResumeAction
from agent.contract.protocol import CloseCode, MessageKind
from agent.contract.task import Budget, PauseState, PlanEdit, Totals
from agent.events.types import (
    AgentActivityEvent,
    BreakpointKind,
    TaskComplexity,
    TaskStatus,
)

T = TypeVar("T")


class FollowExit(IntEnum):
    """How `agent run --follow` / `agent follow` end."""

    COMPLETED = 0
    FAILED = 1
    USAGE = 2
    CANCELLED = 3
    DETACHED = 4
    PAUSED = 5


EXIT_CODES_HELP = (
    "Exit codes: 0 completed, 1 failed, 2 usage or configuration error, 3 cancelled, "
    "4 detached with Ctrl-C (the task goes on; re-attach with `agent follow ID`), "
    "5 paused at a breakpoint that cannot be answered non-interactively."
)
STATUS_EXIT: dict[TaskStatus, FollowExit] = {
    TaskStatus.COMPLETED: FollowExit.COMPLETED,
    TaskStatus.FAILED: FollowExit.FAILED,
    TaskStatus.CANCELLED: FollowExit.CANCELLED,
}
COMMAND_ERROR_EXIT = 1
LIVE_REFRESH_PER_SECOND = 8
STREAM_LINES = 4
MAX_STREAM_PANELS = 4
GOAL_PREVIEW_CHARS = 60
TITLE_MAX_WIDTH = 36
EDIT_ACTION = "edit"
DEFAULT_EDITOR = "vi"

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
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory of the `agent up` to talk to (its stack.json) and where "
        "follow cursors are kept [AGENT_DATA_DIR].",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="One JSON object per line (for scripts), no live view.")
]
AutoResumeOption = Annotated[
    bool,
    typer.Option(
        "--auto-resume",
        help="Answer every breakpoint with `continue` (non-interactive runs).",
    ),
]


@dataclass
class CliContext:
    """What every task command needs: the API target and the cursor store."""

    target: ApiTarget
    cursors: CursorStore
    console: Console
    err: Console


def _context(data_dir: Path | None) -> CliContext:
    settings = load_settings_or_exit()
    directory = data_dir if data_dir is not None else settings.data_dir
    err = Console(stderr=True)
    try:
        target = resolve_target(settings, directory)
    except ApiTargetError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(FollowExit.USAGE) from exc
    return CliContext(target=target, cursors=CursorStore(directory), console=Console(), err=err)


def _run_api(ctx: CliContext, work: Callable[[AgentApiClient], Awaitable[T]]) -> T:
    """Run one API interaction; API and connection errors become one line + exit 1."""

    async def main() -> T:
        async with AgentApiClient(ctx.target) as api:
            return await work(api)

    try:
        return asyncio.run(main())
    except ApiRequestError as exc:
        ctx.err.print(f"[red]error:[/] {exc.status} {escape(exc.code)}: {escape(exc.message)}")
        raise typer.Exit(COMMAND_ERROR_EXIT) from exc
    except (OSError, httpx.HTTPError) as exc:
        ctx.err.print(f"[red]error:[/] cannot reach the API at {ctx.target.url}: {exc}")
        raise typer.Exit(COMMAND_ERROR_EXIT) from exc


# ---------------------------------------------------------------------------- rendering


def _money(totals: Totals) -> str:
    cost = f"${totals.cost_usd:.4f}"
    return f"{cost} (+unpriced)" if totals.cost_unknown else cost


def _status_text(status: str) -> Text:
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
    header.add_row("task", f"{view.task_id}  {_status_text(view.status.value).markup}")
    header.add_row("goal", escape(view.goal[:200]))
    totals = view.totals
    header.add_row(
        "totals",
        f"{totals.input_tokens} in / {totals.output_tokens} out tokens · {_money(totals)}",
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
    grid.add_row("status", _status_text(detail.status.value))
    if detail.failure_reason:
        grid.add_row("reason", escape(detail.failure_reason))
    grid.add_row("milestones", ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "—")
    totals = detail.totals
    grid.add_row(
        "totals",
        f"{totals.input_tokens} in / {totals.output_tokens} out tokens · {_money(totals)}",
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


# ---------------------------------------------------------------------------- prompting


async def _in_thread(func: Callable[[], T]) -> T:
    """Run a blocking call (terminal input, an editor) in a daemon thread.

    A daemon thread, not the loop's executor: on Ctrl-C the process must exit at once
    without waiting for a pending `input()`.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def target() -> None:
        try:
            result = func()
        except BaseException as exc:  # handed to the awaiting coroutine
            loop.call_soon_threadsafe(_set_exception, future, exc)
        else:
            loop.call_soon_threadsafe(_set_result, future, result)

    threading.Thread(target=target, daemon=True, name="agent-prompt").start()
    return await future


def _set_result(future: asyncio.Future[T], value: T) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[T], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _edit_text(text: str) -> str:
    """Open the user's editor on `text` and return what they saved."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or DEFAULT_EDITOR
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        handle.write(text)
        path = Path(handle.name)
    try:
        subprocess.run([*shlex.split(editor), str(path)], check=False)
        return path.read_text()
    finally:
        path.unlink(missing_ok=True)


@dataclass
class Decision:
    """What to send to the breakpoint."""

    action: ResumeAction
    edits: PlanEdit | None = None
    feedback: str | None = None


class Prompter:
    """Asks a person what to do at a breakpoint (continue / edit / retry / skip / abort)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    async def ask(self, pause: PauseState, milestones: list[MilestoneOut]) -> Decision:
        """Ask until a decision is made.

        Args:
            pause: Where the task waits.
            milestones: The current plan (for editing).

        Returns:
            The decision.
        """
        actions = [a.value for a in pause.allowed_actions]
        if milestones and ResumeAction.CONTINUE.value in actions:
            actions.insert(1, EDIT_ACTION)
        default = actions[0]
        while True:
            answer = await _in_thread(
                lambda: self.console.input(
                    f"[bold cyan]Action[/] {escape('[' + '/'.join(actions) + ']')} "
                    f"(default {default}): "
                )
            )
            choice = answer.strip().lower() or default
            matches = [a for a in actions if a.startswith(choice)]
            if len(matches) != 1:
                self.console.print(f"[red]choose one of:[/] {', '.join(actions)}")
                continue
            choice = matches[0]
            if choice == EDIT_ACTION:
                edits = await self._edit(milestones)
                if edits is None:
                    continue
                feedback = await self._feedback()
                return Decision(ResumeAction.CONTINUE, edits=edits, feedback=feedback)
            action = ResumeAction(choice)
            feedback = await self._feedback() if action is ResumeAction.RETRY else None
            return Decision(action, feedback=feedback)

    async def _feedback(self) -> str | None:
        text = await _in_thread(lambda: self.console.input("Feedback (optional): "))
        return text.strip() or None

    async def _edit(self, milestones: list[MilestoneOut]) -> PlanEdit | None:
        document = plan_document(milestones)
        while True:
            edited = await _in_thread(functools.partial(_edit_text, document))
            try:
                edits = plan_edit_between(milestones, parse_plan_document(edited))
            except PlanDocumentError as exc:
                self.console.print(f"[red]invalid plan:[/] {escape(str(exc))}")
                again = await _in_thread(lambda: self.console.input("Edit again? [Y/n]: "))
                if again.strip().lower().startswith("n"):
                    return None
                document = edited
                continue
            if edits is None:
                self.console.print("[yellow]plan unchanged[/]")
                return None
            self.console.print(
                f"edit: add {[m.key for m in edits.add]}, remove {edits.remove}, "
                f"change {[c.key for c in edits.change]}"
            )
            return edits


# ---------------------------------------------------------------------------- following


async def temporal_link(api: AgentApiClient, target: ApiTarget, workflow_id: str) -> str | None:
    """Link to a task's workflow in the Temporal UI (from stack.json or the server's hints)."""
    link = target.workflow_url(workflow_id)
    if link is not None:
        return link
    config = await api.console_config()
    if not config.temporal_ui_url:
        return None
    hinted = ApiTarget(
        url=target.url,
        api_key=target.api_key,
        temporal_ui_url=config.temporal_ui_url,
        temporal_namespace=config.temporal_namespace,
    )
    return hinted.workflow_url(workflow_id)


@dataclass
class FollowOptions:
    """How to follow a task."""

    after_seq: int = 0
    auto_resume: bool = False
    json_lines: bool = False
    interactive: bool = True


class Follower:
    """Follows one task's events to its end, answering breakpoints on the way.

    Args:
        api: The API client.
        ctx: Console, cursor store, target.
        task_id: The task.
        options: Cursor, breakpoint handling and output mode.
    """

    def __init__(
        self, api: AgentApiClient, ctx: CliContext, task_id: UUID, options: FollowOptions
    ) -> None:
        self.api = api
        self.ctx = ctx
        self.task_id = task_id
        self.options = options
        self.temporal_link: str | None = None
        self.view: TaskView | None = None
        self.live: Live | None = None
        self.answered: set[str] = set()

    def _emit_json(self, payload: dict[str, object]) -> None:
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
        sys.stdout.flush()

    async def run(self) -> FollowExit:
        """Follow until the task ends (or pauses unanswerably).

        Returns:
            The exit code.
        """
        detail = await self.api.get_task(self.task_id)
        self.temporal_link = await self._temporal_link(detail.workflow_id)
        view = TaskView.from_detail(detail)
        view.last_seq = self.options.after_seq
        self.view = view
        if not self.options.json_lines:
            self.ctx.console.print(
                f"Following task [bold]{detail.id}[/] from event {self.options.after_seq} "
                "(Ctrl-C detaches; the task goes on)"
            )
            self.live = Live(
                console=self.ctx.console,
                get_renderable=lambda: render_view(view, self.temporal_link),
                refresh_per_second=LIVE_REFRESH_PER_SECOND,
                transient=False,
                vertical_overflow="visible",
            )
            self.live.start()
        try:
            return await self._loop(view)
        finally:
            if self.live is not None:
                self.live.stop()

    async def _temporal_link(self, workflow_id: str) -> str | None:
        return await temporal_link(self.api, self.ctx.target, workflow_id)

    async def _loop(self, view: TaskView) -> FollowExit:
        caught_up = False
        stream = self.api.stream_events(self.task_id, self.options.after_seq)
        try:
            async for message in stream:
                if message.kind is MessageKind.CAUGHT_UP:
                    caught_up = True
                    if self.options.json_lines:
                        self._emit_json(message.as_json())
                    outcome = await self._after_event(view, None, caught_up)
                elif message.event is not None:
                    event = message.event
                    view.apply(event)
                    if event.sequence_number is not None:
                        self.ctx.cursors.save(self.task_id, event.sequence_number)
                    if self.options.json_lines:
                        self._emit_json(message.as_json())
                    outcome = await self._after_event(view, event, caught_up)
                else:
                    continue
                if outcome is not None:
                    return outcome
        finally:
            await stream.aclose()
        return FollowExit.FAILED  # pragma: no cover - the stream only ends by raising

    async def _after_event(
        self, view: TaskView, event: AgentActivityEvent | None, caught_up: bool
    ) -> FollowExit | None:
        if event is not None and event.type in TERMINAL_EVENTS:
            return await self._finish()
        if event is None and view.is_terminal:
            # Re-attached after the end: every stored event has been delivered.
            return await self._finish()
        if view.plan_stale and (event is None or event.sequence_number is not None):
            view.merge_plan(await self.api.get_task(self.task_id))
        if caught_up and view.status is TaskStatus.PAUSED:
            return await self._breakpoint(view)
        return None

    async def _finish(self) -> FollowExit:
        detail = await self.api.get_task(self.task_id)
        if self.view is not None:
            self.view.merge_plan(detail)
            self.view.status = detail.status
        if self.live is not None:
            self.live.stop()
            self.live = None
            self.ctx.console.line()
        if self.options.json_lines:
            self._emit_json(
                {
                    "kind": "summary",
                    "task_id": str(detail.id),
                    "status": detail.status.value,
                    "result": detail.result,
                    "failure_reason": detail.failure_reason,
                    "totals": detail.totals.model_dump(mode="json"),
                }
            )
        else:
            self.ctx.console.print(render_summary(detail, self.temporal_link))
        return STATUS_EXIT.get(detail.status, FollowExit.FAILED)

    async def _breakpoint(self, view: TaskView) -> FollowExit | None:
        detail = await self.api.get_task(self.task_id)
        view.merge_plan(detail)
        view.status = detail.status
        pause = detail.paused
        if detail.status is not TaskStatus.PAUSED or pause is None:
            return None
        if pause.breakpoint_id in self.answered:
            return None
        console = self.ctx.console
        if self.live is not None:
            self.live.stop()
        try:
            if not self.options.json_lines:
                console.rule(f"[bold cyan]Breakpoint {pause.kind.value}[/] ({pause.breakpoint_id})")
                if pause.reason:
                    console.print(escape(pause.reason))
                if detail.milestones:
                    console.print(plan_tree(detail.milestones))
                    console.print(plan_table(detail.milestones))
            if self.options.auto_resume:
                decision = Decision(ResumeAction.CONTINUE)
                self._note(f"auto-resume: {decision.action.value}")
            elif not self.options.interactive or self.options.json_lines:
                self._note(
                    f"paused at {pause.breakpoint_id}; answer with `agent resume {self.task_id}` "
                    f"or re-attach with `agent follow {self.task_id}`"
                )
                return FollowExit.PAUSED
            else:
                decision = await Prompter(console).ask(pause, detail.milestones)
            try:
                await self.api.resume(
                    self.task_id,
                    pause.breakpoint_id,
                    decision.action,
                    edits=decision.edits,
                    feedback=decision.feedback,
                )
            except ApiRequestError as exc:
                # Someone else answered, it timed out, or the edit was refused: say so and
                # carry on with what the task does next.
                self._note(f"resume refused: {exc.message}", error=True)
                return None
            self.answered.add(pause.breakpoint_id)
            self._note(f"resumed: {decision.action.value}")
            return None
        finally:
            if self.live is not None and not self.options.json_lines:
                self.live.start()

    def _note(self, text: str, *, error: bool = False) -> None:
        if self.options.json_lines:
            self._emit_json({"kind": "note", "message": text})
        else:
            style = "red" if error else "cyan"
            self.ctx.console.print(f"[{style}]{escape(text)}[/]")


async def _follow_until_detached(
    ctx: CliContext, task_id: UUID | None, options: FollowOptions, start: StartRequest | None
) -> FollowExit:
    """Follow a task in this event loop; Ctrl-C (SIGINT) detaches with exit code 4."""
    loop = asyncio.get_running_loop()
    detached = asyncio.Event()
    with suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, detached.set)
    try:
        async with AgentApiClient(ctx.target) as api:
            if start is not None:
                task = await start.create(api)
                task_id = task.id
                _started(ctx, task.id, options)
            assert task_id is not None
            follower = Follower(api, ctx, task_id, options)
            work = asyncio.create_task(follower.run())
            waiter = asyncio.create_task(detached.wait())
            done, _ = await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if work in done:
                waiter.cancel()
                return work.result()
            work.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await work
            if follower.live is not None:
                follower.live.stop()
            seq = ctx.cursors.load(task_id)
            message = (
                f"Detached from task {task_id} at event {seq}; it goes on running. "
                f"Re-attach with: agent follow {task_id}"
            )
            if options.json_lines:
                sys.stdout.write(json.dumps({"kind": "detached", "message": message}) + "\n")
                sys.stdout.flush()
            else:
                ctx.err.print(f"\n[yellow]{message}[/]")
            return FollowExit.DETACHED
    finally:
        with suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)


def _started(ctx: CliContext, task_id: UUID, options: FollowOptions) -> None:
    if options.json_lines:
        sys.stdout.write(json.dumps({"kind": "started", "task_id": str(task_id)}) + "\n")
        sys.stdout.flush()
    else:
        ctx.console.print(f"Started task [bold]{task_id}[/]")


def _follow_exit(ctx: CliContext, coro: Awaitable[FollowExit]) -> None:
    async def main() -> FollowExit:
        return await coro

    try:
        code = asyncio.run(main())
    except ApiRequestError as exc:
        ctx.err.print(f"[red]error:[/] {exc.status} {escape(exc.code)}: {escape(exc.message)}")
        code = (
            FollowExit.USAGE
            if exc.status in (401, 404, CloseCode.UNAUTHORIZED, CloseCode.NOT_FOUND, 422)
            else FollowExit.FAILED
        )
    except EventStreamClosedError as exc:
        ctx.err.print(f"[red]error:[/] {escape(str(exc))}")
        code = FollowExit.FAILED
    except (OSError, httpx.HTTPError) as exc:
        ctx.err.print(f"[red]error:[/] cannot reach the API at {ctx.target.url}: {exc}")
        code = FollowExit.USAGE
    raise typer.Exit(int(code))


@dataclass
class StartRequest:
    """A task to create before following it."""

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


# ---------------------------------------------------------------------------- commands


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
    ctx = _context(data_dir)
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
        detail = _run_api(ctx, request.create)
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
    _follow_exit(ctx, _follow_until_detached(ctx, None, options, request))


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
    ctx = _context(data_dir)
    options = FollowOptions(
        after_seq=after_seq if after_seq is not None else ctx.cursors.load(task_id),
        auto_resume=auto_resume,
        json_lines=json_lines,
        interactive=sys.stdin.isatty(),
    )
    _follow_exit(ctx, _follow_until_detached(ctx, task_id, options, None))


def tasks(
    status: Annotated[TaskStatus | None, typer.Option("--status", help="Only these.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 20,
    json_lines: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """List your tasks, newest first."""
    ctx = _context(data_dir)
    page = _run_api(ctx, lambda api: api.list_tasks(status=status, limit=limit))
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
            _status_text(item.status.value),
            escape(goal),
            str(item.totals.tokens),
            _money(item.totals),
            item.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    ctx.console.print(table)


def show(
    task_id: Annotated[UUID, typer.Argument(help="The task.")],
    json_lines: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Show a task: plan, statuses, totals, pause state, result and Temporal UI link."""
    ctx = _context(data_dir)

    async def load(api: AgentApiClient) -> tuple[TaskDetail, str | None]:
        detail = await api.get_task(task_id)
        link = await temporal_link(api, ctx.target, detail.workflow_id)
        return detail, link

    detail, link = _run_api(ctx, load)
    if json_lines:
        typer.echo(detail.model_dump_json())
        return
    console = ctx.console
    console.print(f"[bold]{detail.id}[/]  {_status_text(detail.status.value).markup}")
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
        console.print(f"[dim]totals[/]  {detail.totals.tokens} tokens · {_money(detail.totals)}")
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
    ctx = _context(data_dir)

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

    ctx.console.print(_run_api(ctx, work))


def cancel(
    task_id: Annotated[UUID, typer.Argument(help="The task.")],
    data_dir: DataDirOption = None,
) -> None:
    """Cancel a task (its running activities stop; it ends `cancelled`)."""
    ctx = _context(data_dir)
    out = _run_api(ctx, lambda api: api.cancel(task_id))
    ctx.console.print(f"Cancellation requested for task {out.task_id} (was {out.status.value})")


def register(app: typer.Typer) -> None:
    """Add the task commands to the `agent` CLI."""
    app.command(epilog=EXIT_CODES_HELP)(run)
    app.command(epilog=EXIT_CODES_HELP)(follow)
    app.command(name="tasks")(tasks)
    app.command()(show)
    app.command()(resume)
    app.command()(cancel)
