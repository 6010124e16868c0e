"""Tasks: create, list, get, resume, cancel, and the REST view of their event log."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from http import HTTPStatus
from typing import Annotated, Any
from uuid import UUID

import structlog
from fastapi import APIRouter, Header, Query, Request, Response
from sqlalchemy import Select, bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.common import WorkflowIDConflictPolicy as ConflictPolicy
from temporalio.common import WorkflowIDReusePolicy as ReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from agent.db.models import Milestone, Task
from agent.events.types import BreakpointKind, TaskComplexity, TaskStatus
from agent.repositories.events import EventRepository
from agent.repositories.tasks import TaskRepository
from agent.temporal import TASK_STATUS, USER_ID
from api.dependencies import (
    AppSettings,
    CurrentUserId,
    DBSession,
    SessionManager,
    TemporalClient,
)
from api.errors import ApiError, ErrorCode, ErrorResponse, not_found
from api.schemas import (
    DEFAULT_EVENTS_LIMIT,
    DEFAULT_LIST_LIMIT,
    MAX_EVENTS_LIMIT,
    MAX_LIST_LIMIT,
    CancelOut,
    EventPage,
    MilestoneOut,
    ResumeBody,
    ResumeOut,
    TaskCreate,
    TaskDetail,
    TaskLinks,
    TaskOut,
    TaskPage,
)
from workflows.models import Budget, PauseState, ResumeRequest, TaskInput, Totals
from workflows.task_workflow import TaskWorkflow

logger = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9._:-]{1,255}$"
IDEMPOTENT_REPLAY_HEADER = "Idempotent-Replayed"
UPDATE_RPC_TIMEOUT = timedelta(seconds=30)
"""A paused workflow answers at once; longer means no worker is polling."""
_ERRORS: dict[int | str, dict[str, Any]] = {
    HTTPStatus.UNAUTHORIZED: {"model": ErrorResponse},
    HTTPStatus.NOT_FOUND: {"model": ErrorResponse},
    HTTPStatus.UNPROCESSABLE_ENTITY: {"model": ErrorResponse},
    HTTPStatus.SERVICE_UNAVAILABLE: {"model": ErrorResponse},
}
_CONFLICT: dict[int | str, dict[str, Any]] = {HTTPStatus.CONFLICT: {"model": ErrorResponse}}
JSON_MEDIA_TYPE = "application/json"


def _json(model: TaskOut, status_code: int = HTTPStatus.OK) -> Response:
    """Answer with an already validated model, skipping FastAPI's second validation pass.

    The route still declares `response_model`, so the OpenAPI schema is unchanged.
    """
    return Response(model.model_dump_json(), status_code=status_code, media_type=JSON_MEDIA_TYPE)


def _links(request: Request, task_id: UUID) -> TaskLinks:
    base = f"/v1/tasks/{task_id}"
    ws_scheme = "wss" if request.url.scheme == "https" else "ws"
    return TaskLinks(
        self=base,
        events=f"{base}/events",
        events_ws=f"{ws_scheme}://{request.url.netloc}{base}/events/ws",
        resume=f"{base}/resume",
        cancel=f"{base}/cancel",
    )


def _task_fields(task: Any, request: Request) -> dict[str, Any]:
    # `task` is a `Task` or a Core row with the same column names.
    return {
        "id": task.id,
        "session_id": task.session_id,
        "goal": task.goal,
        "status": task.status,
        "complexity": TaskComplexity(task.complexity) if task.complexity else None,
        "workflow_id": task.workflow_id,
        "breakpoints": [BreakpointKind(b) for b in task.breakpoints or []],
        "budget": Budget(max_cost_usd=task.max_cost_usd, max_tokens=task.max_tokens),
        "max_parallel": task.max_parallel,
        "max_attempts": task.max_attempts,
        "totals": Totals(
            input_tokens=task.input_tokens,
            output_tokens=task.output_tokens,
            cost_usd=task.cost_usd,
            cost_unknown=task.cost_unknown,
        ),
        "failure_reason": task.failure_reason,
        "last_event_seq": task.last_event_seq,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "started_at": task.started_at,
        "finished_at": task.finished_at,
        "links": _links(request, task.id),
    }


def to_task_out(task: Task, request: Request) -> TaskOut:
    """Render a task for listings."""
    return TaskOut(**_task_fields(task, request))


def _task_input(task: Task, body: TaskCreate) -> TaskInput:
    return TaskInput(
        task_id=task.id,
        user_id=task.user_id,
        session_id=task.session_id,
        complexity=body.complexity,
        breakpoints=body.breakpoints,
        budget=body.budget,
        max_parallel=body.max_parallel,
        max_attempts=body.max_attempts,
        breakpoint_timeout_seconds=body.breakpoint_timeout_seconds,
        breakpoint_default_action=body.breakpoint_default_action,
    )


async def _start_workflow(client: Client, task_queue: str, task: Task, body: TaskCreate) -> None:
    """Start the task's workflow exactly once, however often this is called.

    The id is the business id `task-{id}`; while it runs, a second start joins the
    running execution (USE_EXISTING), and after it closed, REJECT_DUPLICATE refuses a
    second run: both mean "already started", which is what a retry wants.
    """
    try:
        await client.start_workflow(
            TaskWorkflow.run,
            _task_input(task, body),
            id=task.workflow_id,
            task_queue=task_queue,
            id_reuse_policy=ReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=ConflictPolicy.USE_EXISTING,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(USER_ID, str(task.user_id)),
                    SearchAttributePair(TASK_STATUS, TaskStatus.PENDING.value),
                ]
            ),
        )
    except WorkflowAlreadyStartedError:
        logger.info("workflow_already_started", workflow_id=task.workflow_id)


def _same_request(task: Task, body: TaskCreate) -> bool:
    return task.goal == body.goal and task.session_id == body.session_id


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
    repo = TaskRepository(db)
    fields: dict[str, Any] = {
        "session_id": body.session_id,
        "goal": body.goal,
        "complexity": body.complexity.value if body.complexity else None,
        "status": TaskStatus.PENDING,
        "breakpoints": [b.value for b in body.breakpoints],
        "max_parallel": body.max_parallel,
        "max_attempts": body.max_attempts,
        "max_cost_usd": body.budget.max_cost_usd,
        "max_tokens": body.budget.max_tokens,
    }
    if idempotency_key is not None:
        task, created = await repo.create_idempotent(
            user_id=user_id, idempotency_key=idempotency_key, **fields
        )
        if not created and not _same_request(task, body):
            await db.rollback()
            raise ApiError(
                HTTPStatus.CONFLICT,
                ErrorCode.IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was already used for a different request",
            )
    else:
        task, created = await repo.create(user_id=user_id, **fields), True
    await db.commit()
    # Commit first: the workflow's first activity reads the row. A crash between the
    # commit and the start leaves a pending task that a retry with the key starts.
    await _start_workflow(client, settings.task_queue, task, body)
    log = logger.bind(task_id=str(task.id), user_id=str(user_id))
    log.info("task_created" if created else "task_create_replayed")
    # The flush loaded the server defaults (INSERT ... RETURNING) and commit does not
    # expire them: no read back.
    answer = _json(to_task_out(task, request), HTTPStatus.CREATED)
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
    return TaskPage(
        items=[to_task_out(task, request) for task in page.items], next_cursor=page.next_cursor
    )


@cache
def _task_detail_statement() -> Select[Any]:
    """The task's columns and its milestones as one JSON array, in one statement.

    One statement is one consistent snapshot and one round trip whatever the milestone
    count; it runs in autocommit, so there is no BEGIN/ROLLBACK around it either. Built
    once: only `task_id` and `user_id` vary (bound parameters).
    """
    m = Milestone.__table__.alias("m")
    milestone_json = func.json_build_object(
        # Field names are identifiers of our own schema: literal SQL, not parameters.
        *(
            part
            for name in MilestoneOut.model_fields
            for part in (literal_column(f"'{name}'"), m.c[name])
        )
    )
    milestones = (
        select(
            func.coalesce(
                func.json_agg(aggregate_order_by(milestone_json, m.c.position)),
                literal_column("'[]'::json"),
            )
        )
        .where(m.c.task_id == Task.id)
        .scalar_subquery()
        .label("milestones")
    )
    return select(*Task.__table__.c, milestones).where(
        Task.id == bindparam("task_id"), Task.user_id == bindparam("user_id")
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
    """A task with its milestones, totals and pause state (one SQL statement)."""
    async with manager.engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        statement = _task_detail_statement()
        row = (await auto.execute(statement, {"task_id": task_id, "user_id": user_id})).first()
    if row is None:
        raise not_found()
    paused = None
    if row.status == TaskStatus.PAUSED and row.pause_state:
        paused = PauseState.model_validate(row.pause_state)
    detail = TaskDetail(
        **_task_fields(row, request),
        milestones=[MilestoneOut.model_validate(m) for m in row.milestones],
        paused=paused,
        result=row.result,
        error=row.error,
    )
    return _json(detail)


async def _owned_task(db: DBSession, task_id: UUID, user_id: UUID) -> Task:
    task = await TaskRepository(db).get_for_user(task_id, user_id)
    if task is None:
        raise not_found()
    return task


def _finished(task: Task) -> ApiError:
    return ApiError(
        HTTPStatus.CONFLICT,
        ErrorCode.TASK_FINISHED,
        f"the task is {task.status}; it can no longer change",
        {"status": task.status},
    )


def _handle(client: Client, task: Task) -> WorkflowHandle[TaskWorkflow, Any]:
    return client.get_workflow_handle_for(TaskWorkflow.run, task.workflow_id)


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
    if TaskStatus(task.status).is_terminal:
        raise _finished(task)
    if task.status != TaskStatus.PAUSED:
        # The row is written with the pause event; the validator still guards the race.
        raise ApiError(
            HTTPStatus.CONFLICT,
            ErrorCode.TASK_NOT_PAUSED,
            f"the task is not paused (status: {task.status})",
            {"status": task.status},
        )
    request = ResumeRequest(**body.model_dump(), user_id=user_id)
    try:
        result = await _handle(client, task).execute_update(
            TaskWorkflow.resume, request, rpc_timeout=UPDATE_RPC_TIMEOUT
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        reason = getattr(cause, "message", None) or str(cause or exc)
        error_type = getattr(cause, "type", None)
        code = (
            ErrorCode.TASK_NOT_PAUSED
            if error_type == "TaskNotPaused"
            else ErrorCode.RESUME_REJECTED
        )
        raise ApiError(HTTPStatus.CONFLICT, code, reason, {"type": error_type}) from exc
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise ApiError(
                HTTPStatus.CONFLICT, ErrorCode.TASK_NOT_PAUSED, "the task is not running"
            ) from exc
        raise
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
    task_id: UUID, db: DBSession, user_id: CurrentUserId, client: TemporalClient
) -> CancelOut:
    """Request cancellation; the workflow stops its activities and marks the task cancelled."""
    task = await _owned_task(db, task_id, user_id)
    await db.commit()
    if TaskStatus(task.status).is_terminal:
        raise _finished(task)
    try:
        await _handle(client, task).cancel()
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise ApiError(
                HTTPStatus.CONFLICT, ErrorCode.TASK_FINISHED, "the task is no longer running"
            ) from exc
        raise
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
