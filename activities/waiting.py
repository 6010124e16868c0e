"""Visible waiting: one event when an LLM call starts waiting out the provider, one on recovery.

Every failed attempt already writes its `AGENT_FAILED` (with the error); these two events
say what the task as a whole is doing. Their idempotency keys name the activity, not the
attempt, so however many attempts an outage takes there is one `LLM_WAITING` ("waiting
for the provider since …, next try at …, last error …") and one `LLM_RECOVERED`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.calls import Call, call_draft
from activities.common import find_event
from agent.contract.waiting import (
    PROVIDER_WAITING_SIGNAL,
    ProviderWait,
    call_key,
    waiting_on_provider,
)
from agent.db.session import DatabaseSessionManager
from agent.events.types import EventType
from agent.repositories.events import EventDraft, EventRepository

logger = structlog.get_logger(__name__)

WAITING_INDEX = "llm-waiting"
RECOVERED_INDEX = "llm-recovered"


async def record_waiting(
    db: DatabaseSessionManager,
    call: Call,
    endpoint: str,
    retry: ApplicationError,
    failed_at: datetime,
) -> None:
    """Write `LLM_WAITING` when the call's first transient failure is retried (best effort).

    Args:
        db: PostgreSQL sessions.
        call: The waiting call.
        endpoint: The provider's base URL.
        retry: The retryable failure, with the delay of the next attempt.
        failed_at: When the attempt failed.
    """
    delay = retry.next_retry_delay or timedelta(0)
    next_try = failed_at + delay
    message = (
        f"waiting for the provider since {failed_at:%H:%M:%S} UTC, next try at "
        f"{next_try:%H:%M:%S} UTC, last error: {retry.message}"
    )
    try:
        async with db.session() as session, session.begin():
            stored = await EventRepository(session).append(
                [
                    call_draft(
                        call,
                        WAITING_INDEX,
                        EventType.LLM_WAITING,
                        status=None,
                        agent=call.role,
                        message=message[:1000],
                        details={
                            "waiting_on": waiting_on_provider(call.model),
                            "endpoint": endpoint,
                            "model": call.model,
                            "since": failed_at.isoformat(),
                            "next_try_at": next_try.isoformat(),
                            "last_error": retry.message[:2000],
                            "error_type": retry.type,
                            "activity_attempt": activity.info().attempt,
                            "key": call.milestone_key,
                        },
                    )
                ]
            )
    except Exception as exc:  # the retry matters more than its announcement
        logger.warning("llm_waiting_not_recorded", error=str(exc), task_id=str(call.task_id))
        return
    if stored:  # the first wait of this call: the workflow shows it (`WaitingOn`)
        await _signal_waiting(
            ProviderWait(
                call=call_key(call.role, call.milestone_key),
                model=call.model,
                endpoint=endpoint,
                since=failed_at,
                next_try_at=next_try,
                last_error=retry.message[:500],
            )
        )


async def _signal_waiting(wait: ProviderWait) -> None:
    """Tell the workflow its call waits on the provider (best effort, like the event)."""
    info = activity.info()
    if info.workflow_id is None:
        return
    try:
        handle = activity.client().get_workflow_handle(
            info.workflow_id, run_id=info.workflow_run_id
        )
        await handle.signal(PROVIDER_WAITING_SIGNAL, wait)
    except Exception as exc:
        logger.warning("llm_waiting_not_signalled", error=str(exc), workflow_id=info.workflow_id)


async def recovered_draft(session: AsyncSession, call: Call, now: datetime) -> list[EventDraft]:
    """The `LLM_RECOVERED` draft of a call that announced waiting, else nothing.

    Only a retried attempt can have waited, so the first attempt reads nothing.
    """
    if activity.info().attempt == 1:
        return []
    waiting = await find_event(session, call.task_id, WAITING_INDEX)
    if waiting is None:
        return []
    since = datetime.fromisoformat(str(waiting.details.get("since")))
    waited = max((now - since).total_seconds(), 0.0)
    return [
        call_draft(
            call,
            RECOVERED_INDEX,
            EventType.LLM_RECOVERED,
            status=None,
            agent=call.role,
            message=f"the provider answered again after {waited:.0f}s of waiting",
            details={
                "waiting_on": waiting_on_provider(call.model),
                "model": call.model,
                "since": since.isoformat(),
                "waited_seconds": round(waited, 3),
                "activity_attempt": activity.info().attempt,
                "key": call.milestone_key,
            },
        )
    ]
