"""Tasks: create, list, get, resume, cancel, and the REST view of their event log."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any
from uuid import UUID

import structlog
from fastapi import APIRouter, Header, Query, Request, Response

from agent.contract.tools import ToolCallList
from agent.db.models import Task
from agent.events.types import TaskStatus
from agent.repositories.events import EventRepository
from agent.repositories.tasks import TaskRepository
from agent.repositories.tool_calls import ToolCallRepository
from api.dependencies import (
    AppSettings,
    CurrentUserId,
    DBSession,
    SessionManager,
    TemporalClient,
    Tools,
)
from api.errors import ErrorResponse, not_found
from api.schemas import (
    DEFAULT_EVENTS_LIMIT,
    DEFAULT_LIST_LIMIT,
    MAX_EVENTS_LIMIT,
    MAX_LIST_LIMIT,
    CancelOut,
    EventPage,
    ResumeBody,
    ResumeOut,
    TaskCreate,
    TaskDetail,
    TaskOut,
    TaskPage,
)
from api.services.admission import queue_positions
from api.services.task_control import cancel_workflow, resume_workflow
from api.services.task_creation import check_budget_is_enforceable, create_and_start_task
from api.services.task_detail import load_task_detail
from api.services.task_tools import check_edited_arguments, check_requested_tools
from api.task_views import json_response, to_task_detail, to_task_out, to_tool_call_view

logger = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9._:-]{1,255}$"
IDEMPOTENT_REPLAY_HEADER = "Idempotent-Replayed"
_ERRORS: dict[int | str, dict[str, Any]] = {
    HTTPStatus.UNAUTHORIZED: {"model": ErrorResponse},
    HTTPStatus.NOT_FOUND: {"model": ErrorResponse},
    HTTPStatus.UNPROCESSABLE_ENTITY: {"model": ErrorResponse},
    HTTPStatus.SERVICE_UNAVAILABLE: {"model": ErrorResponse},
}
_CONFLICT: dict[int | str, dict[str, Any]] = {HTTPStatus.CONFLICT: {"model": ErrorResponse}}


@router.post(
    "",
    status_code=HTTPStatus.CREATED,
    response_model=TaskOut,
    operation_id="create_task",
    summary="Start a task",
    responses={**_ERRORS, **_CONFLICT},
)
async def create_task(
    body: TaskCreate,
    request: Request,
    db: DBSession,
    user_id: CurrentUserId,
    client: TemporalClient,
    settings: AppSettings,
    toolbox: Tools,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Retries with the same key return the same task.",
        ),
    ] = None,
) -> Response:
    """Create a task and start its workflow (`task-{id}`).

    A retried request with the same `Idempotency-Key` returns the task the first one
    created (header `Idempotent-Replayed: true`) and starts its workflow if the first
    attempt did not get that far.
    """
    check_budget_is_enforceable(body, settings)
    tools_enabled = await check_requested_tools(body, toolbox)
    task, created = await create_and_start_task(
        db,
        client,
        settings.task_queue,
        user_id,
        body,
        idempotency_key,
        settings=settings,
        tools_enabled=tools_enabled,
    )
    log = logger.bind(task_id=str(task.id), user_id=str(user_id))
    log.info("task_created" if created else "task_create_replayed")
    # The flush loaded the server defaults (INSERT ... RETURNING) and commit does not
    # expire them: no read back.
    positions = await queue_positions(db, user_id, [task])
    answer = json_response(to_task_out(task, request, positions.get(task.id)), HTTPStatus.CREATED)
    if not created:
        answer.headers[IDEMPOTENT_REPLAY_HEADER] = "true"
    return answer


@router.get("", operation_id="list_tasks", summary="List tasks", responses=_ERRORS)
async def list_tasks(
    request: Request,
    db: DBSession,
    user_id: CurrentUserId,
    status: TaskStatus | None = None,
    session_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = DEFAULT_LIST_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> TaskPage:
    """List the caller's tasks, newest first; pass `next_cursor` back as `cursor`."""
    page = await TaskRepository(db).list_for_user(
        user_id, status=status, session_id=session_id, limit=limit, cursor=cursor
    )
    positions = await queue_positions(db, user_id, page.items)
    return TaskPage(
        items=[to_task_out(task, request, positions.get(task.id)) for task in page.items],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/{task_id}",
    response_model=TaskDetail,
    operation_id="get_task",
    summary="Get a task",
    responses=_ERRORS,
)
async def get_task(
    task_id: UUID, request: Request, manager: SessionManager, user_id: CurrentUserId
) -> Response:
    """A task with its milestones, totals and pause state (one SQL statement).

    While the task is queued, a second statement reads its queue position.
    """
    row = await load_task_detail(manager, task_id, user_id)
    if row is None:
        raise not_found()
    position = None
    if row.status == TaskStatus.QUEUED:
        async with manager.session() as session:
            position = (await queue_positions(session, user_id, [row])).get(row.id)
    return json_response(to_task_detail(row, request, position))


async def _owned_task(db: DBSession, task_id: UUID, user_id: UUID) -> Task:
    task = await TaskRepository(db).get_for_user(task_id, user_id)
    if task is None:
        raise not_found()
    return task


@router.post(
    "/{task_id}/resume",
    operation_id="resume_task",
    summary="Resume a paused task",
    responses={**_ERRORS, **_CONFLICT},
)
async def resume_task(
    task_id: UUID,
    body: ResumeBody,
    db: DBSession,
    user_id: CurrentUserId,
    client: TemporalClient,
) -> ResumeOut:
    """Answer the breakpoint the task waits at (the workflow's validated `resume` update).

    409 when the task is not paused there or the decision does not fit (the reason is in
    the message): the workflow's validator rejects it without touching its history.
    """
    task = await _owned_task(db, task_id, user_id)
    # End the read transaction (keeping the loaded row) before the Temporal round trip.
    await db.commit()
    check_edited_arguments(task, body)
    result = await resume_workflow(client, task, body, user_id)
    logger.info(
        "task_resumed",
        task_id=str(task_id),
        breakpoint_id=result.breakpoint_id,
        action=result.action.value,
    )
    return ResumeOut(task_id=task_id, breakpoint_id=result.breakpoint_id, action=result.action)


@router.post(
    "/{task_id}/cancel",
    status_code=HTTPStatus.ACCEPTED,
    operation_id="cancel_task",
    summary="Cancel a task",
    responses={**_ERRORS, **_CONFLICT},
)
async def cancel_task(
    task_id: UUID,
    db: DBSession,
    user_id: CurrentUserId,
    client: TemporalClient,
    settings: AppSettings,
) -> CancelOut:
    """Request cancellation; the workflow stops its activities and marks the task cancelled.

    A queued task leaves the queue (freeing its place) and ends cancelled without starting.
    """
    task = await _owned_task(db, task_id, user_id)
    await db.commit()
    await cancel_workflow(client, task, settings.task_queue)
    logger.info("task_cancel_requested", task_id=str(task_id))
    return CancelOut(task_id=task_id, status=task.status, cancel_requested=True)


@router.get(
    "/{task_id}/events",
    operation_id="list_task_events",
    summary="Stored events of a task",
    responses=_ERRORS,
)
async def list_task_events(
    task_id: UUID,
    db: DBSession,
    user_id: CurrentUserId,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_LIMIT)] = DEFAULT_EVENTS_LIMIT,
) -> EventPage:
    """The task's stored events with `sequence_number > after_seq`, in order."""
    task = await _owned_task(db, task_id, user_id)
    events = await EventRepository(db).list_after(task_id, after_seq, limit)
    last = events[-1].sequence_number if events else None
    next_after = last if last is not None else after_seq
    return EventPage(
        items=events, next_after_seq=next_after, has_more=next_after < task.last_event_seq
    )


@router.get(
    "/{task_id}/tool-calls",
    operation_id="list_task_tool_calls",
    summary="Tool calls of a task",
    responses=_ERRORS,
)
async def list_task_tool_calls(
    task_id: UUID, db: DBSession, user_id: CurrentUserId
) -> ToolCallList:
    """Every tool call the task's agents asked for, oldest first.

    Each with its server, tool, arguments (as run: a person's edit replaces the model's),
    status, how many times it was executed, a preview of its result with the whole
    result's length, and its timings. 404 for a task that is not the caller's.
    """
    await _owned_task(db, task_id, user_id)
    rows = await ToolCallRepository(db).for_task(task_id)
    return ToolCallList(items=[to_tool_call_view(row) for row in rows])
