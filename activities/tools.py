"""Tool activities: pin a task's tools at its start, run one tool call durably.

A call runs at most once per decision unless its tool is `safe`:

1. lock the call's row; a final status means a former attempt finished it (return that).
   A row already `running` means a former attempt started the call and was lost: a
   `never` tool is not run again (the model hears so, status `lost`), a `safe` one is.
   Count the execution, write `TOOL_CALL_STARTED`, commit — before the server is called.
2. call the MCP server, heartbeating.
3. store the whole result and `TOOL_CALL_COMPLETED` / `TOOL_CALL_FAILED`.

A tool's own error result is a result like any other (the model reads it). When the
outcome is unknown (timeout, server crashed mid-call) a `safe` tool is retried by
Temporal and a `never` tool's call fails with an error result; a server that could not
be reached at all (the tool did not run) is retried for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.common import draft, task_not_found
from activities.models import DecisionInput, preview
from activities.policies import TOOL_CALL_MAX_ATTEMPTS, TOOL_HEARTBEAT_INTERVAL_SECONDS
from agent.contract.breakpoints import ResumeAction
from agent.contract.errors import WorkflowErrorType
from agent.contract.tools import ToolCallRef, ToolCallStatus, ToolRetry, ToolSpec
from agent.db.models import ToolCallRecord
from agent.db.session import DatabaseSessionManager
from agent.events.types import EventType
from agent.observability.tools import count_tool_call, observe_tool_call
from agent.repositories.events import EventRepository
from agent.repositories.tasks import TaskRepository
from agent.repositories.tool_calls import ToolCallRepository
from agent.tools.arguments import validate_arguments
from agent.tools.errors import (
    ToolCallError,
    ToolServerUnavailable,
    UnknownToolError,
)
from agent.tools.toolbox import Toolbox

logger = structlog.get_logger(__name__)

LOST_CALL_RESULT = (
    "ERROR: the worker running this call was lost mid-call, so it may or may not have "
    "run; its tool is not safe to repeat, so it was not run again."
)


class PinToolsInput(BaseModel):
    """Input of `ToolActivities.pin_task_tools`."""

    task_id: UUID


class PinToolsOutput(BaseModel):
    """The task's pinned tools, by name (their schemas stay in PostgreSQL)."""

    tools: list[str] = Field(default_factory=list)
    """`server.tool` of each pinned tool."""


class CallToolInput(BaseModel):
    """Input of `ToolActivities.call_tool`."""

    task_id: UUID
    session_id: UUID | None = None
    milestone_id: UUID | None = None
    milestone_key: str
    call: ToolCallRef


class CallToolOutput(BaseModel):
    """How a call ended (its result stays in PostgreSQL)."""

    status: ToolCallStatus
    is_error: bool = False
    result_chars: int = 0
    executed: bool = False
    """Whether the tool ran in this decision (counts against `max_tool_calls`)."""


def pinned_specs(stored: list[dict[str, Any]] | None) -> list[ToolSpec]:
    """The task's pinned tool specs from its row (none before pinning)."""
    return [ToolSpec.model_validate(spec) for spec in stored or []]


def tool_error_text(label: str, reason: str) -> str:
    """The result the model reads when a call of `label` could not give one."""
    return f"ERROR: {label}: {reason}"


class ToolActivities:
    """`pin_task_tools` and `call_tool`, with their dependencies injected."""

    def __init__(self, session_manager: DatabaseSessionManager, toolbox: Toolbox) -> None:
        """Inject dependencies.

        Args:
            session_manager: PostgreSQL sessions.
            toolbox: The worker's MCP servers.
        """
        self._db = session_manager
        self._toolbox = toolbox

    @activity.defn(name="pin_task_tools")
    async def pin_task_tools(self, data: PinToolsInput) -> PinToolsOutput:
        """Read the task's tools from their servers and pin them on the task (once).

        Raises:
            ApplicationError: Non-retryable `ToolUnavailable` when a requested tool no longer
                exists or is denied; retryable when a server cannot be reached (Temporal's
                retries wait for it, then the task fails naming the server).
        """
        async with self._db.session() as session, session.begin():
            task = await TaskRepository(session).get_by_id(data.task_id)
            if task is None:
                raise task_not_found(data.task_id)
            if task.tools is not None:
                return PinToolsOutput(tools=[s.qualified_name for s in pinned_specs(task.tools)])
            requested = task.tools_requested
        if not self._toolbox.servers and not requested:
            specs: list[ToolSpec] = []
        else:
            try:
                specs = await self._toolbox.resolve(requested)
            except UnknownToolError as exc:
                raise ApplicationError(
                    str(exc), type=WorkflowErrorType.TOOL_UNAVAILABLE, non_retryable=True
                ) from exc
            except ToolServerUnavailable as exc:
                raise ApplicationError(str(exc), type=WorkflowErrorType.TOOL_UNAVAILABLE) from exc
        async with self._db.session() as session, session.begin():
            await TaskRepository(session).pin_tools(
                data.task_id, [spec.model_dump(mode="json") for spec in specs]
            )
        logger.info("task_tools_pinned", task_id=str(data.task_id), tools=len(specs))
        return PinToolsOutput(tools=[spec.qualified_name for spec in specs])

    @activity.defn(name="call_tool")
    async def call_tool(self, data: CallToolInput) -> CallToolOutput:
        """Run one tool call at most once per decision (`safe` tools: until it completes)."""
        output, finished_now = await self._call(data)
        if finished_now:  # counted once, after the commit that stored its outcome
            count_tool_call(data.call.server, data.call.tool, output.status)
        return output

    async def _call(self, data: CallToolInput) -> tuple[CallToolOutput, bool]:
        """The call's outcome, and whether this attempt decided it (else a former one did)."""
        ref = data.call
        attempt = activity.info().attempt
        async with self._db.session() as session, session.begin():
            row = await ToolCallRepository(session).lock(ref.id)
            status = ToolCallStatus(row.status)
            if status.is_final:
                return _output_of(row), False
            spec = await self._spec(session, data.task_id, row)
            if spec is None:
                return (
                    await self._finish(
                        session,
                        data,
                        row,
                        ToolCallStatus.REJECTED,
                        tool_error_text(ref.label, "the task has no such tool"),
                        executed=False,
                    )
                ), True
            if status == ToolCallStatus.RUNNING and spec.retry == ToolRetry.NEVER:
                return (
                    await self._finish(
                        session, data, row, ToolCallStatus.LOST, LOST_CALL_RESULT, executed=True
                    )
                ), True
            arguments = validate_arguments(spec, row.arguments)
            if isinstance(arguments, str):
                return (
                    await self._finish(
                        session,
                        data,
                        row,
                        ToolCallStatus.REJECTED,
                        tool_error_text(ref.label, arguments),
                        executed=False,
                    )
                ), True
            await ToolCallRepository(session).start_execution(ref.id)
            await self._append(
                session,
                data,
                "started",
                EventType.TOOL_CALL_STARTED,
                f"{ref.label}: call {ref.call_id} (attempt {attempt})",
                {"arguments": row.arguments, "executions": row.executions + 1},
            )
        started = time.monotonic()
        try:
            with observe_tool_call(spec.server, spec.name) as observed:
                async with _heartbeating():
                    output = await self._toolbox.call(spec, arguments)
                observed.is_error = output.is_error
        except UnknownToolError as exc:
            return (
                await self._finish_in_new_session(
                    data, ToolCallStatus.REJECTED, tool_error_text(ref.label, str(exc)), False
                )
            ), True
        except ToolServerUnavailable as exc:
            # The tool did not run: any tool may be tried again.
            if attempt >= TOOL_CALL_MAX_ATTEMPTS:
                return (
                    await self._finish_in_new_session(
                        data, ToolCallStatus.FAILED, tool_error_text(ref.label, str(exc)), False
                    )
                ), True
            await self._not_run(ref.id)
            raise ApplicationError(str(exc), type=WorkflowErrorType.TOOL_UNAVAILABLE) from exc
        except ToolCallError as exc:
            # The tool may have run: only a `safe` one runs again.
            if spec.retry == ToolRetry.SAFE and attempt < TOOL_CALL_MAX_ATTEMPTS:
                raise ApplicationError(str(exc), type=WorkflowErrorType.TOOL_CALL_FAILED) from exc
            return (
                await self._finish_in_new_session(
                    data, ToolCallStatus.FAILED, tool_error_text(ref.label, exc.reason), True
                )
            ), True
        duration_ms = round((time.monotonic() - started) * 1000)
        status = ToolCallStatus.FAILED if output.is_error else ToolCallStatus.COMPLETED
        return (
            await self._finish_in_new_session(
                data,
                status,
                output.content,
                True,
                is_error=output.is_error,
                duration_ms=duration_ms,
            )
        ), True

    # ------------------------------------------------------------------ helpers

    async def _spec(
        self, session: AsyncSession, task_id: UUID, row: ToolCallRecord
    ) -> ToolSpec | None:
        task = await TaskRepository(session).get_by_id(task_id)
        if task is None:
            raise task_not_found(task_id)
        for spec in pinned_specs(task.tools):
            if spec.server == row.server and spec.name == row.tool:
                return spec
        return None

    async def _not_run(self, call_id: UUID) -> None:
        async with self._db.session() as session, session.begin():
            await ToolCallRepository(session).undo_execution(call_id)

    async def _finish_in_new_session(
        self,
        data: CallToolInput,
        status: ToolCallStatus,
        result: str,
        executed: bool,
        *,
        is_error: bool = True,
        duration_ms: int | None = None,
    ) -> CallToolOutput:
        async with self._db.session() as session, session.begin():
            row = await ToolCallRepository(session).lock(data.call.id)
            return await self._finish(
                session,
                data,
                row,
                status,
                result,
                executed=executed,
                is_error=is_error,
                duration_ms=duration_ms,
            )

    async def _finish(
        self,
        session: AsyncSession,
        data: CallToolInput,
        row: ToolCallRecord,
        status: ToolCallStatus,
        result: str,
        *,
        executed: bool,
        is_error: bool = True,
        duration_ms: int | None = None,
    ) -> CallToolOutput:
        """Store the call's result and its final event, in the caller's transaction."""
        ref = data.call
        await ToolCallRepository(session).finish(ref.id, status, result, is_error=is_error)
        completed = status == ToolCallStatus.COMPLETED
        await self._append(
            session,
            data,
            "done",
            EventType.TOOL_CALL_COMPLETED if completed else EventType.TOOL_CALL_FAILED,
            f"{ref.label}: {status.value}"
            + (f" in {duration_ms} ms" if duration_ms is not None else ""),
            {
                "result_preview": preview(result),
                "result_chars": len(result),
                "is_error": is_error,
                "duration_ms": duration_ms,
                "executions": row.executions,
                "error": None if completed else preview(result),
            },
        )
        logger.info(
            "tool_call_finished",
            task_id=str(data.task_id),
            tool=ref.label,
            status=status.value,
            chars=len(result),
        )
        return CallToolOutput(
            status=status, is_error=is_error, result_chars=len(result), executed=executed
        )

    async def _append(
        self,
        session: AsyncSession,
        data: CallToolInput,
        index: str,
        type_: EventType,
        message: str,
        details: dict[str, Any],
    ) -> None:
        ref = data.call
        await EventRepository(session).append(
            [
                draft(
                    f"tool-{index}",
                    type_,
                    task_id=data.task_id,
                    session_id=data.session_id,
                    milestone_id=data.milestone_id,
                    message=message[:1000],
                    details={
                        "key": data.milestone_key,
                        "tool_call": str(ref.id),
                        "call_id": ref.call_id,
                        "server": ref.server,
                        "tool": ref.tool,
                        "attempt": activity.info().attempt,
                        **details,
                    },
                )
            ]
        )


def _output_of(row: ToolCallRecord) -> CallToolOutput:
    status = ToolCallStatus(row.status)
    return CallToolOutput(
        status=status,
        is_error=row.is_error,
        result_chars=len(row.result or ""),
        executed=row.executions > 0,
    )


@contextlib.asynccontextmanager
async def _heartbeating() -> AsyncIterator[None]:
    """Heartbeat while a call runs: a lost worker is noticed within the heartbeat timeout."""

    async def beat_forever() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(TOOL_HEARTBEAT_INTERVAL_SECONDS)

    task = asyncio.create_task(beat_forever())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass(frozen=True)
class DecidedToolCall:
    """A call a person's decision finished without running it."""

    server: str | None
    tool: str | None
    status: ToolCallStatus


DENIED_RESULT = "DENIED: the person supervising this task did not allow this call"
ABORTED_RESULT = "NOT RUN: the task was aborted at this call's approval"


async def apply_tool_decision(session: AsyncSession, data: DecisionInput) -> DecidedToolCall | None:
    """Apply a person's decision at `before_tool` to the call, in the caller's transaction.

    `approve` lets it run; `edit` runs it with the person's arguments once they fit the
    tool's schema (else the call is rejected with the reason as its result); `deny` makes
    the person's feedback its result; `abort` leaves it not run.

    Returns:
        The call when the decision gave it its final status (denied, or rejected edit), for
        the caller to count once its transaction committed; None when it is still to run.
    """
    pause, request = data.pause, data.request
    assert pause.tool_call is not None
    call_id = pause.tool_call.id
    calls = ToolCallRepository(session)
    row = await calls.lock(call_id)
    if ToolCallStatus(row.status).is_final:
        return None
    label = f"{pause.tool_call.server}.{pause.tool_call.tool}"
    if request.action == ResumeAction.APPROVE:
        await calls.decide(call_id, ToolCallStatus.APPROVED)
        return None
    if request.action == ResumeAction.EDIT and request.arguments is not None:
        task = await TaskRepository(session).get_by_id(data.task_id)
        if task is None:
            raise task_not_found(data.task_id)
        specs = {(s.server, s.name): s for s in pinned_specs(task.tools)}
        spec = specs.get((row.server or "", row.tool or ""))
        arguments = json.dumps(request.arguments)
        problem = (
            "the task has no such tool" if spec is None else validate_arguments(spec, arguments)
        )
        if isinstance(problem, str):
            result = tool_error_text(label, f"the edited arguments were refused: {problem}")
            await calls.finish(call_id, ToolCallStatus.REJECTED, result, is_error=True)
            await _decision_failed(session, data, row, result, f"{label}: edit refused")
            return DecidedToolCall(row.server, row.tool, ToolCallStatus.REJECTED)
        await calls.decide(call_id, ToolCallStatus.APPROVED, arguments=arguments)
        return None
    result = ABORTED_RESULT if request.action == ResumeAction.ABORT else DENIED_RESULT
    if request.feedback:
        result += f": {request.feedback}"
    await calls.finish(call_id, ToolCallStatus.DENIED, result, is_error=True)
    message = f"{label}: {request.action.value} at {pause.breakpoint_id}"
    await _decision_failed(session, data, row, result, message)
    return DecidedToolCall(row.server, row.tool, ToolCallStatus.DENIED)


async def _decision_failed(
    session: AsyncSession, data: DecisionInput, row: ToolCallRecord, result: str, message: str
) -> None:
    """`TOOL_CALL_FAILED` of a call a person's decision ended without running it."""
    await EventRepository(session).append(
        [
            draft(
                "tool-decided",
                EventType.TOOL_CALL_FAILED,
                task_id=data.task_id,
                session_id=data.session_id,
                milestone_id=data.milestone_id,
                message=message[:1000],
                details={
                    "key": data.pause.milestone_key,
                    "tool_call": str(row.id),
                    "call_id": row.call_id,
                    "server": row.server,
                    "tool": row.tool,
                    "arguments": row.arguments,
                    "error": preview(result),
                    "result_chars": len(result),
                    "is_error": True,
                },
            )
        ]
    )
