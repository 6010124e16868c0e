"""What LLM calls cost: usage totals, failed attempts' partial usage, lost attempts.

Usage is added in the transaction of the event that reports it, and only when that
event's append stored it (idempotency keys), so a retry never bills twice.
"""

from __future__ import annotations

import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities.calls import Call, call_draft
from activities.models import StreamUsage
from agent.db.session import DatabaseSessionManager
from agent.events.types import AgentStatus, EventType
from agent.llm.types import LLMResponse, Usage
from agent.repositories.events import EventRepository
from agent.repositories.milestones import MilestoneRepository
from agent.repositories.tasks import TaskRepository

logger = structlog.get_logger(__name__)


async def add_usage(session: AsyncSession, call: Call, usage: Usage, cost: float | None) -> None:
    """Add a call's usage to its task's totals, and to its milestone's when it has one.

    Not idempotent by itself: call it in the transaction of the idempotent append that
    reported the usage as new.
    """
    await TaskRepository(session).add_usage(
        call.task_id, usage.input_tokens, usage.output_tokens, cost, estimated=usage.estimated
    )
    if call.milestone_key is not None:
        await MilestoneRepository(session).add_usage(
            call.task_id,
            call.milestone_key,
            usage.input_tokens,
            usage.output_tokens,
            cost,
            estimated=usage.estimated,
        )


async def record_failure(
    db: DatabaseSessionManager,
    call: Call,
    partial: LLMResponse | None,
    error: str,
    *,
    cancelled: bool = False,
) -> None:
    """Write `AGENT_FAILED` with the usage spent so far (once per activity attempt)."""
    info = activity.info()
    usage = partial.usage if partial is not None else Usage()
    cost = partial.cost_usd if partial is not None else 0.0
    try:
        async with db.session() as session, session.begin():
            stored = await EventRepository(session).append(
                [
                    call_draft(
                        call,
                        f"failed-{info.attempt}",
                        EventType.AGENT_FAILED,
                        agent=call.role,
                        status=AgentStatus.FAILED,
                        message=("Cancelled" if cancelled else f"Failed: {error}")[:1000],
                        details={
                            "error": error[:2000],
                            "cancelled": cancelled,
                            "attempt": call.milestone_attempt,
                            "activity_attempt": info.attempt,
                            "partial_usage": usage.as_details(cost),
                            "partial_chars": len(partial.content) if partial else 0,
                        },
                    )
                ]
            )
            if stored and usage.total_tokens > 0:
                await add_usage(session, call, usage, cost)
    except Exception as exc:  # the original failure matters more than its record
        logger.warning("agent_failure_not_recorded", error=str(exc), task_id=str(call.task_id))


async def bill_lost_attempt(session: AsyncSession, call: Call) -> None:
    """Record the usage a former attempt streamed but never recorded, once.

    Its last heartbeat carried its running usage (`StreamUsage`). The record is the
    `AGENT_FAILED` that attempt would have written itself, under the same idempotency
    key: when it did write it (it failed rather than died), or an earlier retry
    already billed it, nothing is added twice. Called only when no attempt committed
    a result, so a completed call's usage is never billed again.
    """
    info = activity.info()
    if not info.heartbeat_details:
        return
    try:
        lost = StreamUsage.model_validate(info.heartbeat_details[0])
    except ValidationError:
        logger.warning("heartbeat_details_unreadable", task_id=str(call.task_id))
        return
    if lost.activity_attempt >= info.attempt or lost.tokens == 0:
        return
    stored = await EventRepository(session).append(
        [
            call_draft(
                call,
                f"failed-{lost.activity_attempt}",
                EventType.AGENT_FAILED,
                agent=call.role,
                status=AgentStatus.FAILED,
                message=f"Attempt {lost.activity_attempt} was lost mid-stream",
                details={
                    "error": "the attempt's worker stopped before recording its usage",
                    "cancelled": False,
                    "lost": True,
                    "attempt": call.milestone_attempt,
                    "activity_attempt": lost.activity_attempt,
                    "partial_usage": lost.usage().as_details(lost.cost_usd),
                },
            )
        ]
    )
    if stored:
        await add_usage(session, call, lost.usage(), lost.cost_usd)
        logger.info(
            "lost_attempt_billed",
            task_id=str(call.task_id),
            role=call.role.value,
            activity_attempt=lost.activity_attempt,
            tokens=lost.tokens,
        )
