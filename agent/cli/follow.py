"""Following a task live: its events to the end, its breakpoints answered on the way.

Ctrl-C detaches (the task goes on); the follow ends with a `FollowExit` code.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from uuid import UUID

import httpx
import typer
from rich.live import Live
from rich.markup import escape

from agent.cli.context import CliContext, temporal_link
from agent.cli.exit_codes import STATUS_EXIT, FollowExit
from agent.cli.prompt import Decision, Prompter
from agent.cli.render import plan_table, plan_tree, render_summary, render_view
from agent.client import AgentApiClient, ApiRequestError, TaskDetail
from agent.client.client import EventStreamClosedError
from agent.client.view import TERMINAL_EVENTS, TaskView
from agent.contract.breakpoints import ResumeAction
from agent.contract.protocol import CloseCode, MessageKind
from agent.events.types import AgentActivityEvent, TaskStatus

TaskStarter = Callable[[AgentApiClient], Awaitable[TaskDetail]]
"""Creates the task to follow and returns its snapshot."""
LIVE_REFRESH_PER_SECOND = 8


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


async def follow_until_detached(
    ctx: CliContext, task_id: UUID | None, options: FollowOptions, start: TaskStarter | None
) -> FollowExit:
    """Follow a task in this event loop; Ctrl-C (SIGINT) detaches with exit code 4.

    Args:
        ctx: The command's context.
        task_id: The task to follow (None when `start` creates it).
        options: Cursor, breakpoint handling and output mode.
        start: Creates the task first, inside the loop, so Ctrl-C detaches from it too.

    Returns:
        The exit code.
    """
    loop = asyncio.get_running_loop()
    detached = asyncio.Event()
    with suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, detached.set)
    try:
        async with AgentApiClient(ctx.target) as api:
            if start is not None:
                task = await start(api)
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


def follow_and_exit(ctx: CliContext, coro: Awaitable[FollowExit]) -> None:
    """Run a follow to its end and exit the process with its code.

    API errors exit with `FollowExit.USAGE` when the request itself was wrong (unknown
    task, bad key), `FollowExit.FAILED` otherwise.

    Args:
        ctx: The command's context.
        coro: The follow (`follow_until_detached(...)`).
    """

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
