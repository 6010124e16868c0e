"""Verification: the verifier agent judges a milestone's latest output.

Its final transaction holds the verdict's whole state change: the milestone's status and
feedback, `MILESTONE_RETRY` or `MILESTONE_STATUS_CHANGED` + `MILESTONE_COMPLETED`/`FAILED`,
and, when the milestone is done, the task's `TASK_PROGRESS`.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.billing import record_failure
from activities.calls import (
    EventIndex,
    InvalidAgentAnswerError,
    call_draft,
    call_usage,
    parse_json_object,
    system_message,
    user_message,
)
from activities.common import milestone_not_found
from activities.llm_calls import LLMActivityBase
from activities.milestones import milestone_call
from activities.models import VerifyInput, VerifyOutput, preview
from activities.progress import progress_draft
from activities.structured import VERDICT_FORMAT, structured_format
from agent.events.types import AgentRole, EventType, MilestoneStatus
from agent.llm.errors import LLMErrorType
from agent.repositories.events import EventDraft
from agent.repositories.milestones import MilestoneRepository


def verdict_status(passed: bool, attempt: int, max_attempts: int) -> MilestoneStatus:
    """The milestone's status after a verdict: passed, failed for good, or retried."""
    if passed:
        return MilestoneStatus.PASSED
    if attempt >= max_attempts:
        return MilestoneStatus.FAILED
    return MilestoneStatus.IN_PROGRESS


class VerificationActivities(LLMActivityBase):
    """`verify`."""

    @activity.defn(name="verify")
    async def verify(self, data: VerifyInput) -> VerifyOutput:
        """Judge a milestone's latest output; pass it, ask for a retry, or fail it."""
        call = milestone_call(data, AgentRole.VERIFIER)
        async with self._db.session() as session, session.begin():
            if (done := await self._recover(session, call, VerifyOutput)) is not None:
                return done
            task = await self._task(session, data.task_id)
            milestone = await MilestoneRepository(session).get_by_key(
                data.task_id, data.milestone_key
            )
            if milestone is None:
                raise milestone_not_found(data.task_id, data.milestone_key)
            system = await self._prompt(session, AgentRole.VERIFIER, data.prompt_version)
            user = (
                f"Goal: {task.goal}\n\nMilestone: {milestone.key}\nAttempt: {data.attempt}\n"
                f"Title: {milestone.title}\nDescription: {milestone.description}\n\n"
                f"Result to judge:\n{milestone.output or ''}"
            )
            output_text = milestone.output or ""
            messages = [system_message(system), user_message(user)]
            if (block := await self._check_limits(session, call, messages, data)) is not None:
                return VerifyOutput(blocked=block)
            await self._started(
                session, call, f"{data.label} {milestone.key}: verifying attempt {data.attempt}"
            )
        response = await self._stream(
            call,
            messages,
            json_mode=True,
            response_format=structured_format(self._settings, data.model, VERDICT_FORMAT),
        )
        try:
            verdict = parse_json_object(response.content)
            passed = bool(verdict["passed"])
            feedback = str(verdict.get("feedback", ""))
        except (InvalidAgentAnswerError, KeyError) as exc:
            await record_failure(self._db, call, response, f"invalid verdict: {exc}")
            raise ApplicationError(
                f"the verifier's answer is not a verdict: {exc}",
                type=LLMErrorType.INVALID_RESPONSE,
            ) from exc
        key = data.milestone_key
        status = verdict_status(passed, data.attempt, data.max_attempts)
        output = VerifyOutput(
            passed=passed,
            feedback_preview=preview(feedback),
            milestone_status=status,
            usage=call_usage(response),
        )
        details = {"key": key, "attempt": data.attempt, "feedback": feedback}
        extra: list[EventDraft]
        if status == MilestoneStatus.IN_PROGRESS:
            extra = [
                call_draft(
                    call,
                    EventIndex.STATE,
                    EventType.MILESTONE_RETRY,
                    status=MilestoneStatus.IN_PROGRESS,
                    message=f"{key}: attempt {data.attempt} rejected, retrying",
                    details={**details, "next_attempt": data.attempt + 1},
                )
            ]
        else:
            final_type = EventType.MILESTONE_COMPLETED if passed else EventType.MILESTONE_FAILED
            extra = [
                call_draft(
                    call,
                    EventIndex.STATE,
                    EventType.MILESTONE_STATUS_CHANGED,
                    status=status,
                    message=f"{key}: {status.value}",
                    details=details,
                ),
                call_draft(
                    call,
                    EventIndex.STATE_2,
                    final_type,
                    status=status,
                    message=f"{key} {status.value} after {data.attempt} attempt(s)",
                    details={**details, "output_preview": preview(output_text)},
                ),
            ]
        async with self._db.session() as session, session.begin():
            await MilestoneRepository(session).set_status(
                data.task_id, key, status, attempt=data.attempt, feedback=feedback
            )
            if status != MilestoneStatus.IN_PROGRESS:
                extra.append(
                    await progress_draft(
                        session,
                        EventIndex.PROGRESS,
                        task_id=data.task_id,
                        session_id=data.session_id,
                        milestone_key=key,
                        pending_usage=response.usage,
                        pending_cost_usd=response.cost_usd,
                    )
                )
            await self._commit_call(
                session,
                call,
                response,
                output,
                f"{key}: {'passed' if passed else 'rejected'}",
                extra=extra,
            )
        return output
