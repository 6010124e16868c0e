"""Following a task live: its events to the end, its breakpoints answered on the way.

Ctrl-C detaches (the task goes on); the follow ends with an `ExitCode`.
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
from rich.markup import escape

from agent.cli.context import CliContext, report_api_error, report_unreachable, temporal_link
from agent.cli.exit_codes import STATUS_EXIT, ExitCode
from agent.cli.follow_output import (
    FollowOutput,
    JsonOutput,
    LiveOutput,
    PlainOutput,
    started_line,
)
from agent.cli.prompt import Decision, Prompter
from agent.client import AgentApiClient, ApiRequestError, TaskDetail
from agent.client.client import EventStreamClosedError
from agent.client.view import TERMINAL_EVENTS, TaskView
from agent.contract.breakpoints import ResumeAction
from agent.contract.protocol import MessageKind
from agent.contract.task import PauseState
from agent.events.types import AgentActivityEvent, TaskStatus

TaskStarter = Callable[[AgentApiClient], Awaitable[TaskDetail]]
"""Creates the task to follow and returns its snapshot."""
TaskResolver = Callable[[AgentApiClient], Awaitable[UUID]]
"""Finds the task to follow (a full id or a unique prefix)."""


@dataclass
class FollowOptions:
    """How to follow a task."""

    after_seq: int | None = 0
    """None: from the last event this machine saw."""
    auto_resume: bool = False
    json_lines: bool = False
    interactive: bool = True
    """Whether a person can answer a breakpoint here (stdin is a terminal)."""


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
        self.after_seq = (
            options.after_seq if options.after_seq is not None else ctx.cursors.load(task_id)
        )
        self.temporal_link: str | None = None
        self.view: TaskView | None = None
        self.output: FollowOutput | None = None
        self.answered: set[str] = set()

    def _make_output(self, view: TaskView) -> FollowOutput:
        if self.options.json_lines:
            return JsonOutput()
        if self.ctx.console.is_terminal:
            return LiveOutput(self.ctx.console, view, self.temporal_link)
        return PlainOutput()

    async def run(self) -> ExitCode:
        """Follow until the task ends (or pauses unanswerably).

        Returns:
            The exit code.
        """
        detail = await self.api.get_task(self.task_id)
        self.temporal_link = await temporal_link(self.api, self.ctx.target, detail.workflow_id)
        view = TaskView.from_detail(detail)
        view.last_seq = self.after_seq
        self.view = view
        self.output = self._make_output(view)
        self.output.following(detail, self.after_seq)
        try:
            return await self._loop(view, self.output)
        finally:
            self.output.suspend()

    async def _loop(self, view: TaskView, output: FollowOutput) -> ExitCode:
        caught_up = False
        stream = self.api.stream_events(self.task_id, self.after_seq)
        try:
            async for message in stream:
                if message.kind is MessageKind.CAUGHT_UP:
                    caught_up = True
                    output.message(message, view)
                    outcome = await self._after_event(view, None, caught_up)
                elif message.event is not None:
                    event = message.event
                    view.apply(event)
                    if event.sequence_number is not None:
                        self.ctx.cursors.save(self.task_id, event.sequence_number)
                    output.message(message, view)
                    outcome = await self._after_event(view, event, caught_up)
                else:
                    continue
                if outcome is not None:
                    return outcome
        finally:
            await stream.aclose()
        return ExitCode.FAILED  # pragma: no cover - the stream only ends by raising

    async def _after_event(
        self, view: TaskView, event: AgentActivityEvent | None, caught_up: bool
    ) -> ExitCode | None:
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

    async def _finish(self) -> ExitCode:
        detail = await self.api.get_task(self.task_id)
        if self.view is not None:
            self.view.merge_plan(detail)
            self.view.status = detail.status
        assert self.output is not None
        self.output.finish(detail, self.temporal_link)
        return STATUS_EXIT.get(detail.status, ExitCode.FAILED)

    async def _breakpoint(self, view: TaskView) -> ExitCode | None:
        detail = await self.api.get_task(self.task_id)
        view.merge_plan(detail)
        view.status = detail.status
        pause = detail.paused
        if detail.status is not TaskStatus.PAUSED or pause is None:
            return None
        if pause.breakpoint_id in self.answered:
            return None
        output = self.output
        assert output is not None
        # What the person saw and chose stays above the live view, which starts anew below.
        output.breakpoint(detail, pause)
        try:
            if self.options.auto_resume:
                decision = Decision(auto_action(pause))
                output.note(f"auto-resume: {decision.action.value}")
            elif not self.options.interactive or self.options.json_lines:
                output.note(
                    f"paused at {pause.breakpoint_id}; answer with `agent resume {self.task_id}` "
                    f"or re-attach with `agent follow {self.task_id}`"
                )
                return ExitCode.PAUSED
            else:
                decision = await Prompter(self.ctx.console).ask(pause, detail.milestones)
            try:
                await self.api.resume(
                    self.task_id,
                    pause.breakpoint_id,
                    decision.action,
                    edits=decision.edits,
                    feedback=decision.feedback,
                    arguments=decision.arguments,
                )
            except ApiRequestError as exc:
                # Someone else answered, it timed out, or the edit was refused: say so and
                # carry on with what the task does next.
                output.note(f"resume refused: {exc.describe()}", error=True)
                return None
            self.answered.add(pause.breakpoint_id)
            output.note(f"resumed: {decision.describe()}")
            return None
        finally:
            output.resume()


def auto_action(pause: PauseState) -> ResumeAction:
    """What `--auto-resume` answers: `continue`, else the first action offered.

    `continue` fits every breakpoint but `before_tool`, where this approves the call.
    """
    allowed = pause.allowed_actions
    return ResumeAction.CONTINUE if ResumeAction.CONTINUE in allowed else allowed[0]


async def follow_until_detached(
    ctx: CliContext, find: TaskResolver | None, options: FollowOptions, start: TaskStarter | None
) -> ExitCode:
    """Follow a task in this event loop; Ctrl-C (SIGINT) detaches with exit code 4.

    Args:
        ctx: The command's context.
        find: Finds the task to follow (None when `start` creates it).
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
                started_line(task_id, json_lines=options.json_lines, console=ctx.console)
            else:
                assert find is not None
                task_id = await find(api)
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
            if follower.output is not None:
                follower.output.suspend()
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
            return ExitCode.DETACHED
    finally:
        with suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)


def follow_and_exit(ctx: CliContext, coro: Awaitable[ExitCode]) -> None:
    """Run a follow to its end and exit the process with its code.

    API errors exit as every command's do (`exit_codes.py`): `USAGE` when the request
    itself was wrong (invalid goal, unknown task, bad key), `UNAVAILABLE` otherwise.

    Args:
        ctx: The command's context.
        coro: The follow (`follow_until_detached(...)`).
    """

    async def main() -> ExitCode:
        return await coro

    try:
        code = asyncio.run(main())
    except ApiRequestError as exc:
        code = report_api_error(ctx, exc)
    except EventStreamClosedError as exc:
        ctx.err.print(f"[red]error:[/] {escape(str(exc))}")
        code = ExitCode.UNAVAILABLE
    except (OSError, httpx.HTTPError) as exc:
        code = report_unreachable(ctx, exc)
    raise typer.Exit(int(code))
