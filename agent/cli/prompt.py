"""Asking a person what to do at a breakpoint (continue / edit / retry / skip / abort).

`edit` opens the plan in `$VISUAL` / `$EDITOR` as a JSON document and sends the difference.
At `before_tool` the prompt shows the call and offers approve / deny (with a reason) /
edit (the call's arguments as JSON in the editor, checked locally) / abort; the actions
offered are always the pause state's `allowed_actions`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shlex
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from agent.cli.tool_text import call_lines, pretty_arguments
from agent.client.models import MilestoneOut
from agent.client.plan import (
    PlanDocumentError,
    edit_summary,
    parse_plan_document,
    plan_document,
    plan_edit_between,
)
from agent.contract.breakpoints import ResumeAction
from agent.contract.task import PauseState, PlanEdit, ToolCallPause

T = TypeVar("T")

EDIT_ACTION = "edit"
DEFAULT_EDITOR = "vi"


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
    arguments: dict[str, Any] | None = None
    """With `edit` at `before_tool`: the call's new arguments."""

    def describe(self) -> str:
        """What was decided, e.g. `continue (edit: add m3; change m1 title)`."""
        notes = [f"edit: {edit_summary(self.edits)}"] if self.edits is not None else []
        if self.arguments is not None:
            notes.append(f"arguments: {json.dumps(self.arguments, ensure_ascii=False)}")
        if self.feedback:
            notes.append("with feedback")
        return self.action.value + (f" ({'; '.join(notes)})" if notes else "")


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
        if pause.tool_call is not None:
            return await self._ask_tool(pause, pause.tool_call)
        actions = [a.value for a in pause.allowed_actions]
        if milestones and ResumeAction.CONTINUE.value in actions:
            actions.insert(1, EDIT_ACTION)
        while True:
            choice = await self._choose(actions)
            if choice == EDIT_ACTION:
                edits = await self._edit(milestones)
                if edits is None:
                    continue
                feedback = await self._feedback()
                return Decision(ResumeAction.CONTINUE, edits=edits, feedback=feedback)
            action = ResumeAction(choice)
            feedback = await self._feedback() if action is ResumeAction.RETRY else None
            return Decision(action, feedback=feedback)

    async def _choose(self, actions: list[str]) -> str:
        """Ask for one of `actions` (any unique prefix; empty: the first) until one fits."""
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
            if len(matches) == 1:
                return matches[0]
            self.console.print(f"[red]choose one of:[/] {', '.join(actions)}")

    async def _ask_tool(self, pause: PauseState, call: ToolCallPause) -> Decision:
        """At `before_tool`: show the call, then approve / deny / edit / abort it."""
        self.console.print("[bold]The agent wants to call a tool:[/]")
        for line in call_lines(call):
            self.console.print(escape(line), highlight=False)
        actions = [a.value for a in pause.allowed_actions]
        while True:
            action = ResumeAction(await self._choose(actions))
            if action is ResumeAction.DENY:
                reason = await _in_thread(
                    lambda: self.console.input("Reason (the model reads it): ")
                )
                return Decision(action, feedback=reason.strip() or None)
            if action is ResumeAction.EDIT:
                arguments = await self._edit_arguments(call)
                if arguments is None:
                    continue
                return Decision(action, arguments=arguments)
            return Decision(action)

    async def _edit_arguments(self, call: ToolCallPause) -> dict[str, Any] | None:
        """Open the arguments in the editor until they are a JSON object (None: given up)."""
        document = pretty_arguments(call.arguments) + "\n"
        while True:
            edited = await _in_thread(functools.partial(_edit_json, document))
            text = document if edited is None else edited
            problem, arguments = _parse_arguments(text)
            if arguments is not None:
                self.console.print(
                    f"[cyan]arguments:[/] {escape(json.dumps(arguments, ensure_ascii=False))}"
                )
                return arguments
            self.console.print(f"[red]invalid arguments:[/] {escape(problem)}")
            again = await _in_thread(lambda: self.console.input("Edit again? [Y/n]: "))
            if again.strip().lower().startswith("n"):
                return None
            document = text

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
            self.console.print(f"[cyan]edit:[/] {escape(edit_summary(edits))}")
            return edits


def _edit_json(text: str) -> str | None:
    """`click.edit` on `text` as a `.json` file ($VISUAL / $EDITOR); None when not saved."""
    edited = click.edit(text, extension=".json", require_save=False)
    return edited.decode() if isinstance(edited, bytes) else edited


def _parse_arguments(text: str) -> tuple[str, dict[str, Any] | None]:
    """The edited arguments as a JSON object, or why they are not one."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        return f"not valid JSON: {exc}", None
    if not isinstance(value, dict):
        return "the arguments must be a JSON object ({...})", None
    return "", value
