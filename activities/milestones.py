"""Milestone work: execute an attempt with the worker agent, compress a large context."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.calls import (
    MAX_OUTPUT_TOKENS,
    Call,
    EventIndex,
    call_draft,
    call_usage,
    system_message,
    user_message,
)
from activities.common import find_event, milestone_not_found
from activities.llm_calls import LLMActivityBase
from activities.models import (
    CompressInput,
    CompressOutput,
    ExecuteInput,
    ExecuteOutcome,
    ExecuteOutput,
    MilestoneCallInput,
    preview,
)
from agent.contract.errors import WorkflowErrorType
from agent.db.models import Milestone
from agent.events.types import AgentRole, AgentStatus, EventType
from agent.llm.tokens import count_message_tokens, count_tokens
from agent.llm.types import LLMResponse
from agent.repositories.events import EventRepository
from agent.repositories.milestones import MilestoneRepository


def milestone_call(data: MilestoneCallInput, role: AgentRole) -> Call:
    """The `Call` of a per-milestone activity."""
    return Call(
        task_id=data.task_id,
        session_id=data.session_id,
        role=role,
        model=data.model,
        milestone_id=data.milestone_id,
        milestone_key=data.milestone_key,
        milestone_attempt=data.attempt,
    )


def milestone_by_key(milestones: dict[str, Milestone], task_id: UUID, key: str) -> Milestone:
    """The milestone `key` of the task.

    Raises:
        ApplicationError: Non-retryable `MilestoneNotFound` when there is no such row.
    """
    milestone = milestones.get(key)
    if milestone is None:
        raise milestone_not_found(task_id, key)
    return milestone


def dependency_context(milestone: Milestone, milestones: dict[str, Milestone]) -> str:
    """The results of the milestones `milestone` depends on, as prompt sections."""
    sections = []
    for key in milestone.depends_on:
        dep = milestones.get(key)
        if dep is None:
            continue
        body = dep.output if dep.output else f"(no result: {dep.status})"
        sections.append(f"### Result of {dep.key}: {dep.title}\n{body}")
    return "\n\n".join(sections)


def attempt_done(response: LLMResponse, context_tokens: int) -> ExecuteOutput:
    """What an attempt that answered hands back to the workflow."""
    return ExecuteOutput(
        outcome=ExecuteOutcome.DONE,
        context_tokens=context_tokens,
        output_preview=preview(response.content),
        usage=call_usage(response),
    )


async def record_attempt_output(
    session: AsyncSession, data: ExecuteInput, response: LLMResponse
) -> None:
    """Store an attempt's answer and usage on its milestone (the caller's transaction)."""
    await MilestoneRepository(session).record_output(
        data.task_id,
        data.milestone_key,
        data.attempt,
        response.content,
        input_tokens=response.usage.input_tokens,
        output_tokens=response.usage.output_tokens,
        cost_usd=response.cost_usd,
    )


async def attempt_context(
    session: AsyncSession,
    data: ExecuteInput,
    milestone: Milestone,
    milestones: dict[str, Milestone],
) -> str:
    """What the attempt builds on: the compressed context, else its dependencies' results."""
    if data.compressed_context_seq is not None:
        return await compressed_context(session, data.task_id, data.compressed_context_seq)
    return dependency_context(milestone, milestones)


def attempt_prompt(goal: str, milestone: Milestone, context: str, data: ExecuteInput) -> str:
    """The worker's user message for one attempt of `milestone`."""
    parts = [
        f"Goal: {goal}",
        f"Milestone: {milestone.key}\nTitle: {milestone.title}\n"
        f"Description: {milestone.description}\nAttempt: {data.attempt}",
    ]
    if context:
        parts.append(f"Results of the milestones it depends on:\n\n{context}")
    if data.use_verifier_feedback and milestone.feedback:
        parts.append(f"Feedback on the previous attempt:\n{milestone.feedback}")
    if data.human_feedback:
        parts.append(f"Guidance from the person supervising the task:\n{data.human_feedback}")
    return "\n\n".join(parts)


async def compressed_context(session: AsyncSession, task_id: UUID, seq: int) -> str:
    """The text of the compressor's `LLM_COMPLETE` event at `seq`.

    Raises:
        ApplicationError: When that event is not a stored LLM result.
    """
    row = await EventRepository(session).get_at(task_id, seq)
    if row is None or row.type != EventType.LLM_COMPLETE:
        raise ApplicationError(
            f"compressed context event {seq} not found", type=WorkflowErrorType.CONTEXT_NOT_FOUND
        )
    return str(row.details.get("text", ""))


class MilestoneActivities(LLMActivityBase):
    """`execute` and `compress`."""

    @activity.defn(name="execute")
    async def execute(self, data: ExecuteInput) -> ExecuteOutput:
        """Run one attempt of a milestone with the worker agent; store its output."""
        call = milestone_call(data, AgentRole.WORKER)
        async with self._db.session() as session, session.begin():
            if (done := await self._recover(session, call, ExecuteOutput)) is not None:
                return done
            task = await self._task(session, data.task_id)
            milestones = await self._attempt_milestones(session, data.task_id, data.milestone_key)
            milestone = milestone_by_key(milestones, data.task_id, data.milestone_key)
            system = await self._prompt(session, AgentRole.WORKER, data.prompt_version)
            context = await attempt_context(session, data, milestone, milestones)
            messages = [
                system_message(system),
                user_message(attempt_prompt(task.goal, milestone, context, data)),
            ]
            context_tokens = count_message_tokens(m.content for m in messages)
            if (
                context_tokens > data.context_budget_tokens
                and data.compressed_context_seq is None
                and context
            ):
                return ExecuteOutput(
                    outcome=ExecuteOutcome.CONTEXT_TOO_LARGE, context_tokens=context_tokens
                )
            if (block := await self._check_limits(session, call, messages, data)) is not None:
                return ExecuteOutput(outcome=ExecuteOutcome.BLOCKED, blocked=block)
            await self._started(
                session,
                call,
                f"{data.label} {milestone.key}: attempt {data.attempt}",
                milestone=milestone,
            )
        response = await self._stream(call, messages)
        output = attempt_done(response, context_tokens)
        async with self._db.session() as session, session.begin():
            await record_attempt_output(session, data, response)
            await self._commit_call(
                session,
                call,
                response,
                output,
                f"{milestone.key}: attempt {data.attempt} done",
                milestone_usage=False,
            )
        return output

    @activity.defn(name="compress")
    async def compress(self, data: CompressInput) -> CompressOutput:
        """Compress a milestone's dependency context; the text is kept in `LLM_COMPLETE`."""
        call = milestone_call(data, AgentRole.COMPRESSOR)
        async with self._db.session() as session, session.begin():
            if (done := await self._recover(session, call, CompressOutput)) is not None:
                return done
            task = await self._task(session, data.task_id)
            milestones = await self._attempt_milestones(session, data.task_id, data.milestone_key)
            milestone = milestone_by_key(milestones, data.task_id, data.milestone_key)
            system = await self._prompt(session, AgentRole.COMPRESSOR, data.prompt_version)
            context = dependency_context(milestone, milestones)
            tokens_before = count_tokens(context)
            user = (
                f"Goal: {task.goal}\n\nNext milestone: {milestone.title}\n"
                f"{milestone.description}\n\nCompress this context to at most "
                f"{data.target_tokens} tokens:\n\n{context}"
            )
            messages = [system_message(system), user_message(user)]
            max_tokens = min(data.target_tokens, MAX_OUTPUT_TOKENS[AgentRole.COMPRESSOR])
            if (
                block := await self._check_limits(session, call, messages, data, max_tokens)
            ) is not None:
                return CompressOutput(blocked=block)
            await self._started(session, call, f"{data.label} {milestone.key}: compressing context")
        response = await self._stream(call, messages, max_tokens=max_tokens)
        tokens_after = count_tokens(response.content)
        output = CompressOutput(
            tokens_before=tokens_before, tokens_after=tokens_after, usage=call_usage(response)
        )
        async with self._db.session() as session, session.begin():
            await self._commit_call(
                session,
                call,
                response,
                output,
                f"Context compressed {tokens_before} -> {tokens_after} tokens",
                extra=[
                    call_draft(
                        call,
                        EventIndex.STATE,
                        EventType.CONTEXT_COMPRESSED,
                        agent=AgentRole.COMPRESSOR,
                        status=AgentStatus.COMPLETED,
                        message=(
                            f"{milestone.key}: context {tokens_before} -> {tokens_after} tokens"
                        ),
                        details={
                            "key": milestone.key,
                            "tokens_before": tokens_before,
                            "tokens_after": tokens_after,
                            "target_tokens": data.target_tokens,
                        },
                    )
                ],
            )
            complete = await find_event(session, data.task_id, EventIndex.COMPLETE)
        assert complete is not None
        return output.model_copy(update={"context_seq": complete.sequence_number})
