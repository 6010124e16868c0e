"""Create a task row (idempotently, per `Idempotency-Key`) and start its workflow once."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, NamedTuple
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.common import WorkflowIDConflictPolicy as ConflictPolicy
from temporalio.common import WorkflowIDReusePolicy as ReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from agent.config import Settings
from agent.contract.errors import ErrorCode
from agent.contract.task import TaskInput
from agent.db.models import Task
from agent.events.types import TaskStatus
from agent.llm.pricing import unpriced_models
from agent.observability.links import current_traceparent
from agent.repositories.spend import SpendRepository
from agent.repositories.tasks import TaskRepository
from agent.temporal import TASK_STATUS, USER_ID
from api.errors import ApiError
from api.rate_limits import retry_after_header
from api.schemas import TaskCreate
from api.services.admission import effective_quota, submit_to_admission
from workflows.task_workflow import TaskWorkflow

logger = structlog.get_logger(__name__)


class CreatedTask(NamedTuple):
    """The task a create request answers with.

    Attributes:
        task: The task row (server defaults loaded).
        created: False when an earlier request with the same key created it.
    """

    task: Task
    created: bool


async def create_and_start_task(
    db: AsyncSession,
    client: Client,
    task_queue: str,
    user_id: UUID,
    body: TaskCreate,
    idempotency_key: str | None,
    *,
    settings: Settings | None = None,
    tools_enabled: bool = False,
) -> CreatedTask:
    """Store the task, commit, then start its workflow (`task-{id}`).

    A retried request with the same `idempotency_key` gets the task the first one
    created, and starts its workflow if the first attempt did not get that far. A new
    task is refused while the user's daily spend limit is used up (a replay never is).
    When the user has a running-task quota, the task is stored `queued` and handed to
    the user's admission workflow, which starts it when a slot is free.

    Args:
        db: The request's session; committed here.
        client: The Temporal client.
        task_queue: The workers' task queue.
        user_id: The caller.
        body: The validated request.
        idempotency_key: The request's `Idempotency-Key`, if any.
        settings: The server's default spend limits (None: no spend check) and the
            task limits its workflow input carries (None: their defaults).
        tools_enabled: Whether the task may call tools (`check_requested_tools`).

    Returns:
        The task and whether this request created it.

    Raises:
        ApiError: 409 when the key was already used for a different request; 429
            `spend_limit_reached` when the user's daily limit is used up.
    """
    repo = TaskRepository(db)
    request_hash = request_fingerprint(body)
    max_running = await effective_quota(db, user_id, settings)
    fields: dict[str, Any] = {
        "session_id": body.session_id,
        "goal": body.goal,
        "complexity": body.complexity.value if body.complexity else None,
        "status": TaskStatus.PENDING if max_running is None else TaskStatus.QUEUED,
        "breakpoints": [b.value for b in body.breakpoints],
        "max_parallel": body.max_parallel,
        "max_attempts": body.max_attempts,
        "max_cost_usd": body.budget.max_cost_usd,
        "max_tokens": body.budget.max_tokens,
        "max_tool_calls": body.budget.max_tool_calls,
        "tools_requested": body.tools,
        "request_hash": request_hash,
        # A resume or cancel comes in a trace of its own and links back to this one.
        "traceparent": current_traceparent(),
    }
    if idempotency_key is not None:
        task, created = await repo.create_idempotent(
            user_id=user_id, idempotency_key=idempotency_key, **fields
        )
        if not created and task.request_hash != request_hash:
            existing_id = task.id  # read before the rollback expires the row
            await db.rollback()
            raise ApiError(
                HTTPStatus.CONFLICT,
                ErrorCode.IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was already used for a different request (another "
                "goal, session, budget, breakpoints or option); use a new key",
                {"task_id": str(existing_id)},
            )
    else:
        task, created = await repo.create(user_id=user_id, **fields), True
    if created and settings is not None:
        try:
            await check_daily_spend(db, user_id, settings)
        except ApiError:
            await db.rollback()
            raise
    await db.commit()
    # Commit first: the workflow's first activity reads the row. A crash between the
    # commit and the start leaves a pending (or queued) task that a retry with the key
    # starts (or queues).
    task_input = _task_input(task, body, tools_enabled, settings)
    if task.status == TaskStatus.QUEUED:
        await submit_to_admission(client, task_queue, task, task_input, max_running)
    else:
        await _start_workflow(client, task_queue, task_input, task.workflow_id)
    return CreatedTask(task, created)


def request_fingerprint(body: TaskCreate) -> str:
    """SHA-256 of the whole validated request, as an `Idempotency-Key` replay must match it.

    Computed over the canonical JSON of the parsed body (defaults filled in, keys sorted),
    so formatting and field order do not matter, but any value does.
    """
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def check_daily_spend(
    db: AsyncSession, user_id: UUID, settings: Settings, *, now: datetime | None = None
) -> None:
    """Refuse new work while the user's tokens or cost of the current UTC day are used up.

    The user's own limits (set by an admin) win over the server defaults
    (`AGENT_USER_DAILY_TOKEN_LIMIT`, `AGENT_USER_DAILY_COST_LIMIT_USD`).

    Raises:
        ApiError: 429 `spend_limit_reached`, `Retry-After` = seconds until the window
            resets, details naming the limit, the spend and the reset instant.
    """
    spend = SpendRepository(db)
    own = await spend.limits_of(user_id)
    token_limit = own.daily_token_limit or settings.user_daily_token_limit
    cost_limit = own.daily_cost_limit_usd or settings.user_daily_cost_limit_usd
    if token_limit is None and cost_limit is None:
        return
    now = now or datetime.now(UTC)
    window_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    resets_at = window_start + timedelta(days=1)
    spent = await spend.spent_since(user_id, window_start)
    over_tokens = token_limit is not None and spent.tokens >= token_limit
    over_cost = cost_limit is not None and spent.cost_usd >= cost_limit
    if not (over_tokens or over_cost):
        return
    what = "token" if over_tokens else "cost"
    raise ApiError(
        HTTPStatus.TOO_MANY_REQUESTS,
        ErrorCode.SPEND_LIMIT_REACHED,
        f"your daily {what} limit is used up; new tasks are accepted again when the window "
        f"resets at {resets_at.isoformat()}",
        {
            "window_start": window_start.isoformat(),
            "window_resets_at": resets_at.isoformat(),
            "tokens_spent": spent.tokens,
            "token_limit": token_limit,
            "cost_spent_usd": round(spent.cost_usd, 6),
            "cost_limit_usd": cost_limit,
        },
        headers={"Retry-After": retry_after_header((resets_at - now).total_seconds())},
    )


def check_budget_is_enforceable(body: TaskCreate, settings: Settings) -> None:
    """Refuse a USD budget that some model of the task could not be charged against.

    Raises:
        ApiError: 422 naming the unpriced models and `AGENT_MODEL_PRICES`.
    """
    if body.budget.max_cost_usd is None:
        return
    missing = unpriced_models(settings, body.complexity)
    if not missing:
        return
    message = (
        f"budget.max_cost_usd cannot be enforced: no price for {', '.join(missing)}; "
        "set their prices in AGENT_MODEL_PRICES or limit the task with budget.max_tokens"
    )
    raise ApiError(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        ErrorCode.VALIDATION_ERROR,
        message,
        [{"loc": ["body", "budget", "max_cost_usd"], "msg": message, "type": "unpriced_model"}],
    )


def _task_input(
    task: Task, body: TaskCreate, tools_enabled: bool, settings: Settings | None
) -> TaskInput:
    limits: dict[str, Any] = {}
    if settings is not None:
        # Fixed per task: the workflow must decide the same on every replay.
        limits = {
            "max_plan_milestones": settings.max_plan_milestones,
            "history_max_events": settings.history_max_events,
        }
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
        llm_outage_tolerance_seconds=body.llm_outage_tolerance_seconds,
        max_tool_rounds=body.max_tool_rounds,
        tools_enabled=tools_enabled,
        **limits,
    )


async def _start_workflow(
    client: Client, task_queue: str, task_input: TaskInput, workflow_id: str
) -> None:
    """Start the task's workflow exactly once, however often this is called.

    The id is the business id `task-{id}`; while it runs, a second start joins the
    running execution (USE_EXISTING), and after it closed, REJECT_DUPLICATE refuses a
    second run: both mean "already started", which is what a retry wants.
    """
    try:
        await client.start_workflow(
            TaskWorkflow.run,
            task_input,
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=ReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=ConflictPolicy.USE_EXISTING,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(USER_ID, str(task_input.user_id)),
                    SearchAttributePair(TASK_STATUS, TaskStatus.PENDING.value),
                ]
            ),
        )
    except WorkflowAlreadyStartedError:
        logger.info("workflow_already_started", workflow_id=workflow_id)
