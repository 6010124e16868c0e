"""Asking a person what to do at a breakpoint (continue / edit / retry / skip / abort).

`edit` opens the plan in `$VISUAL` / `$EDITOR` as a JSON document and sends the difference.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shlex
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.markup import escape

from agent.client.models import MilestoneOut
from agent.client.plan import (
    PlanDocumentError,
    edit_summary,
    parse_plan_document,
    plan_document,
    plan_edit_between,
)
from agent.contract.breakpoints import ResumeAction
from agent.contract.task import PauseState, PlanEdit

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

    def describe(self) -> str:
        """What was decided, e.g. `continue (edit: add m3; change m1 title)`."""
        notes = [f"edit: {edit_summary(self.edits)}"] if self.edits is not None else []
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
            self.console.print(f"[cyan]edit:[/] {escape(edit_summary(edits))}")
            return edits
