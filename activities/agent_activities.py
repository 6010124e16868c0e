"""Agent activities: classify, plan, execute, verify, compress, summarise.

Each LLM activity: returns a recorded result at once when a former attempt already
committed it (crash after commit, before Temporal recorded completion); checks the budget
before calling (no call, no write when the estimate would pass it); emits `AGENT_STARTED`;
streams through `LLMClient.stream`, publishing batched `LLM_CHUNK`s and heartbeating; then
writes `LLM_COMPLETE` (full text, usage, cost), `AGENT_COMPLETED`, the state change and the
usage increments in ONE transaction. On failure or cancellation it closes the provider
stream and records the partial usage with `AGENT_FAILED` before re-raising.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import structlog
from pydantic import BaseModel, ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.common import ChunkPublisher, draft, find_event, heartbeating, task_not_found
from activities.models import (
    BudgetBlock,
    BudgetRemaining,
    CallUsage,
    ClassifyInput,
    ClassifyOutput,
    CompressInput,
    CompressOutput,
    ExecuteInput,
    ExecuteOutcome,
    ExecuteOutput,
    LLMCallOutput,
    ModelChoice,
    PlanInput,
    PlanItem,
    PlanOutput,
    RoutesInput,
    RoutesOutput,
    SummariseInput,
    SummariseOutput,
    VerifyInput,
    VerifyOutput,
    preview,
)
from agent.config import Settings
from agent.db.models import Event, Milestone, Task
from agent.db.session import DatabaseSessionManager
from agent.events.types import (
    AgentRole,
    AgentStatus,
    EventStatus,
    EventType,
    MilestoneStatus,
    TaskComplexity,
)
from agent.llm.client import LLMClient, LLMStream
from agent.llm.errors import LLMErrorType, to_application_error
from agent.llm.pricing import PriceTable
from agent.llm.routing import ModelRouter
from agent.llm.tokens import count_message_tokens, count_tokens
from agent.llm.types import ChatMessage, LLMRequest, LLMResponse, Usage
from agent.prompts.cache import PromptCache
from agent.prompts.defaults import DEFAULT_PROMPTS, prompt_name
from agent.repositories import (
    EventDraft,
    EventRepository,
    MilestoneRepository,
    PromptRepository,
    TaskRepository,
)
from workflows.plan import PlanValidationError, parse_plan_text

logger = structlog.get_logger(__name__)

MAX_OUTPUT_TOKENS: dict[AgentRole, int] = {
    AgentRole.CLASSIFIER: 64,
    AgentRole.PLANNER: 4096,
    AgentRole.WORKER: 4096,
    AgentRole.VERIFIER: 1024,
    AgentRole.SUMMARISER: 2048,
    AgentRole.COMPRESSOR: 4096,
}
"""`max_tokens` of each role's calls; also the output side of the budget estimate."""

SUMMARY_INPUT_SHARE = 0.8
"""Share of the summariser's context budget given to the milestones' results."""

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)

# Positions of an LLM activity's events (idempotency key indices).
IDX_STARTED = "started"
IDX_IN_PROGRESS = "in-progress"
IDX_COMPLETE = "complete"
IDX_AGENT_DONE = "agent-done"
IDX_STATE = "state"
IDX_STATE_2 = "state-2"

OutputT = TypeVar("OutputT", bound=LLMCallOutput)


@dataclass(frozen=True)
class _Call:
    """Who is calling: the task, the role, and the milestone when there is one."""

    task_id: UUID
    session_id: UUID | None
    role: AgentRole
    model: str
    milestone_id: UUID | None = None
    milestone_key: str | None = None
    milestone_attempt: int | None = None


class InvalidAgentAnswerError(Exception):
    """An agent answered with text that does not parse (retried by Temporal)."""


def _parse_json_object(text: str) -> dict[str, Any]:
    match = _JSON_OBJECT.search(text)
    if match is None:
        raise InvalidAgentAnswerError("the answer holds no JSON object")
    try:
        value = json.loads(match.group(0))
    except json.JSONDecodeError as exc:
        raise InvalidAgentAnswerError(f"the answer is not valid JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise InvalidAgentAnswerError("the answer is not a JSON object")
    return value


def _usage(response: LLMResponse) -> CallUsage:
    return CallUsage(
        input_tokens=response.usage.input_tokens,
        output_tokens=response.usage.output_tokens,
        cost_usd=response.cost_usd,
        model=response.model,
    )


class AgentActivities:
    """The LLM-calling activities of a task, with their dependencies injected."""

    def __init__(
        self,
        session_manager: DatabaseSessionManager,
        llm_client: LLMClient,
        settings: Settings,
        prompt_cache: PromptCache | None = None,
    ) -> None:
        """Inject dependencies.

        Args:
            session_manager: PostgreSQL sessions.
            llm_client: The LLM client (streaming).
            settings: Routing and pricing configuration.
            prompt_cache: Optional Redis cache of prompt versions.
        """
        self._db = session_manager
        self._llm = llm_client
        self._router = ModelRouter(settings)
        self._prices = PriceTable(settings)
        self._prompt_cache = prompt_cache

    # ------------------------------------------------------------------ routing

    @activity.defn(name="resolve_routes")
    async def resolve_routes(self, data: RoutesInput) -> RoutesOutput:
        """Choose the model and context budget of every role for a complexity.

        Routing reads settings, so it is an activity: the workflow records the choice
        and a running task keeps its models even if the configuration changes.
        """
        routes = {}
        for role in AgentRole:
            route = self._router.route(data.complexity, role)
            routes[role] = ModelChoice(
                model=route.model, context_budget_tokens=route.context_budget_tokens
            )
        return RoutesOutput(routes=routes)

    # ------------------------------------------------------------------ activities

    @activity.defn(name="classify")
    async def classify(self, data: ClassifyInput) -> ClassifyOutput:
        """Classify the task's complexity with a cheap model and store it."""
        call = _Call(data.task_id, data.session_id, AgentRole.CLASSIFIER, data.model)
        if (done := await self._recover(call, ClassifyOutput)) is not None:
            return done
        async with self._db.session() as session:
            task = await self._task(session, data.task_id)
            system = await self._prompt(session, AgentRole.CLASSIFIER, data.prompt_version)
        messages = [_system(system), _user(f"Goal: {task.goal}")]
        if (block := self._check_budget(call, messages, data.budget)) is not None:
            return ClassifyOutput(blocked=block)
        await self._started(call, "Classifying the goal")
        response = await self._stream(call, messages, json_mode=True)
        try:
            complexity = TaskComplexity(_parse_json_object(response.content)["complexity"])
        except (InvalidAgentAnswerError, KeyError, ValueError):
            logger.warning("classifier_answer_invalid", task_id=str(data.task_id))
            complexity = TaskComplexity.MODERATE
        output = ClassifyOutput(complexity=complexity, usage=_usage(response))
        async with self._db.session() as session, session.begin():
            await _set_task_fields(session, data.task_id, complexity=complexity.value)
            await self._commit_call(session, call, response, output, f"Complexity: {complexity}")
        return output

    @activity.defn(name="plan")
    async def plan(self, data: PlanInput) -> PlanOutput:
        """Ask the planner for a plan; persist it when valid, else return the error."""
        call = _Call(data.task_id, data.session_id, AgentRole.PLANNER, data.model)
        if (done := await self._recover(call, PlanOutput)) is not None:
            return done
        async with self._db.session() as session:
            task = await self._task(session, data.task_id)
            system = await self._prompt(session, AgentRole.PLANNER, data.prompt_version)
        parts = [f"Goal: {task.goal}"]
        if data.human_feedback:
            parts.append(f"Feedback from the person reviewing the plan:\n{data.human_feedback}")
        if data.feedback:
            parts.append(
                f"Your previous answer was rejected: {data.feedback}\n"
                "Answer again with a valid JSON plan."
            )
        messages = [_system(system), _user("\n\n".join(parts))]
        if (block := self._check_budget(call, messages, data.budget)) is not None:
            return PlanOutput(blocked=block)
        await self._started(call, f"Planning (attempt {data.attempt})")
        response = await self._stream(call, messages, json_mode=True)
        try:
            plan = parse_plan_text(response.content)
        except PlanValidationError as exc:
            output = PlanOutput(valid=False, error=str(exc)[:2000], usage=_usage(response))
            async with self._db.session() as session, session.begin():
                await self._commit_call(
                    session, call, response, output, f"Invalid plan: {exc}", failed=True
                )
            return output
        async with self._db.session() as session, session.begin():
            rows = await MilestoneRepository(session).replace_plan(data.task_id, plan.milestones)
            items = [
                PlanItem(key=r.key, title=r.title, depends_on=list(r.depends_on), milestone_id=r.id)
                for r in rows
            ]
            output = PlanOutput(valid=True, milestones=items, usage=_usage(response))
            await self._commit_call(
                session,
                call,
                response,
                output,
                f"Planned {len(items)} milestones",
                agent_details={"plan": [i.model_dump(mode="json") for i in items]},
            )
        return output

    @activity.defn(name="execute")
    async def execute(self, data: ExecuteInput) -> ExecuteOutput:
        """Run one attempt of a milestone with the worker agent; store its output."""
        call = self._milestone_call(data, AgentRole.WORKER)
        if (done := await self._recover(call, ExecuteOutput)) is not None:
            return done
        async with self._db.session() as session:
            task = await self._task(session, data.task_id)
            milestones = await self._milestones(session, data.task_id)
            milestone = milestones[data.milestone_key]
            system = await self._prompt(session, AgentRole.WORKER, data.prompt_version)
            if data.compressed_context_seq is not None:
                context = await self._compressed_context(
                    session, data.task_id, data.compressed_context_seq
                )
            else:
                context = _dependency_context(milestone, milestones)
        parts = [
            f"Goal: {task.goal}",
            f"Milestone: {milestone.key}\nTitle: {milestone.title}\n"
            f"Description: {milestone.description}\nAttempt: {data.attempt}",
        ]
        if context:
            parts.append(f"Results of the milestones it depends on:\n\n{context}")
        if data.use_verifier_feedback and milestone.feedback:
            parts.append(f"Feedback on the previous attempt:\n{milestone.feedback}")
        if data.human_feedback:
            parts.append(f"Guidance from the person supervising the task:\n{data.human_feedback}")
        messages = [_system(system), _user("\n\n".join(parts))]
        context_tokens = count_message_tokens(m.content for m in messages)
        if (
            context_tokens > data.context_budget_tokens
            and data.compressed_context_seq is None
            and context
        ):
            return ExecuteOutput(
                outcome=ExecuteOutcome.CONTEXT_TOO_LARGE, context_tokens=context_tokens
            )
        if (block := self._check_budget(call, messages, data.budget)) is not None:
            return ExecuteOutput(outcome=ExecuteOutcome.BLOCKED, blocked=block)
        await self._started(
            call,
            f"{data.label} {milestone.key}: attempt {data.attempt}",
            mark_in_progress=True,
        )
        response = await self._stream(call, messages)
        output = ExecuteOutput(
            outcome=ExecuteOutcome.DONE,
            context_tokens=context_tokens,
            output_preview=preview(response.content),
            usage=_usage(response),
        )
        async with self._db.session() as session, session.begin():
            await MilestoneRepository(session).record_output(
                data.task_id,
                data.milestone_key,
                data.attempt,
                response.content,
                input_tokens=response.usage.input_tokens,
                output_tokens=response.usage.output_tokens,
                cost_usd=response.cost_usd,
            )
            await self._commit_call(
                session,
                call,
                response,
                output,
                f"{milestone.key}: attempt {data.attempt} done",
                milestone_usage=False,
            )
        return output

    @activity.defn(name="verify")
    async def verify(self, data: VerifyInput) -> VerifyOutput:
        """Judge a milestone's latest output; pass it, ask for a retry, or fail it."""
        call = self._milestone_call(data, AgentRole.VERIFIER)
        if (done := await self._recover(call, VerifyOutput)) is not None:
            return done
        async with self._db.session() as session:
            task = await self._task(session, data.task_id)
            milestone = (await self._milestones(session, data.task_id))[data.milestone_key]
            system = await self._prompt(session, AgentRole.VERIFIER, data.prompt_version)
        user = (
            f"Goal: {task.goal}\n\nMilestone: {milestone.key}\nAttempt: {data.attempt}\n"
            f"Title: {milestone.title}\nDescription: {milestone.description}\n\n"
            f"Result to judge:\n{milestone.output or ''}"
        )
        messages = [_system(system), _user(user)]
        if (block := self._check_budget(call, messages, data.budget)) is not None:
            return VerifyOutput(blocked=block)
        await self._started(call, f"{data.label} {milestone.key}: verifying attempt {data.attempt}")
        response = await self._stream(call, messages, json_mode=True)
        try:
            verdict = _parse_json_object(response.content)
            passed = bool(verdict["passed"])
            feedback = str(verdict.get("feedback", ""))
        except (InvalidAgentAnswerError, KeyError) as exc:
            await self._record_failure(call, response, f"invalid verdict: {exc}")
            raise ApplicationError(
                f"the verifier's answer is not a verdict: {exc}",
                type=LLMErrorType.INVALID_RESPONSE,
            ) from exc
        if passed:
            status = MilestoneStatus.PASSED
        elif data.attempt >= data.max_attempts:
            status = MilestoneStatus.FAILED
        else:
            status = MilestoneStatus.IN_PROGRESS
        output = VerifyOutput(
            passed=passed,
            feedback_preview=preview(feedback),
            milestone_status=status,
            usage=_usage(response),
        )
        details = {"key": milestone.key, "attempt": data.attempt, "feedback": feedback}
        extra: list[EventDraft]
        if status == MilestoneStatus.IN_PROGRESS:
            extra = [
                _cdraft(
                    call,
                    IDX_STATE,
                    EventType.MILESTONE_RETRY,
                    status=MilestoneStatus.IN_PROGRESS,
                    message=f"{milestone.key}: attempt {data.attempt} rejected, retrying",
                    details={**details, "next_attempt": data.attempt + 1},
                )
            ]
        else:
            final_type = EventType.MILESTONE_COMPLETED if passed else EventType.MILESTONE_FAILED
            extra = [
                _cdraft(
                    call,
                    IDX_STATE,
                    EventType.MILESTONE_STATUS_CHANGED,
                    status=status,
                    message=f"{milestone.key}: {status.value}",
                    details=details,
                ),
                _cdraft(
                    call,
                    IDX_STATE_2,
                    final_type,
                    status=status,
                    message=f"{milestone.key} {status.value} after {data.attempt} attempt(s)",
                    details={**details, "output_preview": preview(milestone.output or "")},
                ),
            ]
        async with self._db.session() as session, session.begin():
            await MilestoneRepository(session).set_status(
                data.task_id, data.milestone_key, status, attempt=data.attempt, feedback=feedback
            )
            await self._commit_call(
                session,
                call,
                response,
                output,
                f"{milestone.key}: {'passed' if passed else 'rejected'}",
                extra=extra,
            )
        return output

    @activity.defn(name="compress")
    async def compress(self, data: CompressInput) -> CompressOutput:
        """Compress a milestone's dependency context; the text is kept in `LLM_COMPLETE`."""
        call = self._milestone_call(data, AgentRole.COMPRESSOR)
        if (done := await self._recover(call, CompressOutput)) is not None:
            return done
        async with self._db.session() as session:
            task = await self._task(session, data.task_id)
            milestones = await self._milestones(session, data.task_id)
            milestone = milestones[data.milestone_key]
            system = await self._prompt(session, AgentRole.COMPRESSOR, data.prompt_version)
        context = _dependency_context(milestone, milestones)
        tokens_before = count_tokens(context)
        user = (
            f"Goal: {task.goal}\n\nNext milestone: {milestone.title}\n"
            f"{milestone.description}\n\nCompress this context to at most "
            f"{data.target_tokens} tokens:\n\n{context}"
        )
        messages = [_system(system), _user(user)]
        max_tokens = min(data.target_tokens, MAX_OUTPUT_TOKENS[AgentRole.COMPRESSOR])
        if (block := self._check_budget(call, messages, data.budget, max_tokens)) is not None:
            return CompressOutput(blocked=block)
        await self._started(call, f"{data.label} {milestone.key}: compressing context")
        response = await self._stream(call, messages, max_tokens=max_tokens)
        tokens_after = count_tokens(response.content)
        output = CompressOutput(
            tokens_before=tokens_before, tokens_after=tokens_after, usage=_usage(response)
        )
        async with self._db.session() as session, session.begin():
            stored = await self._commit_call(
                session,
                call,
                response,
                output,
                f"Context compressed {tokens_before} -> {tokens_after} tokens",
                extra=[
                    draft(
                        IDX_STATE,
                        EventType.CONTEXT_COMPRESSED,
                        task_id=data.task_id,
                        session_id=data.session_id,
                        milestone_id=data.milestone_id,
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
            complete = await find_event(session, data.task_id, IDX_COMPLETE)
        del stored
        assert complete is not None
        return output.model_copy(update={"context_seq": complete.sequence_number})

    @activity.defn(name="summarise")
    async def summarise(self, data: SummariseInput) -> SummariseOutput:
        """Summarise the milestones' results into the task's result."""
        call = _Call(data.task_id, data.session_id, AgentRole.SUMMARISER, data.model)
        if (done := await self._recover(call, SummariseOutput)) is not None:
            return done
        async with self._db.session() as session:
            task = await self._task(session, data.task_id)
            milestones = list((await self._milestones(session, data.task_id)).values())
            system = await self._prompt(session, AgentRole.SUMMARISER, data.prompt_version)
            budget_tokens = self._router.route(
                TaskComplexity(task.complexity or TaskComplexity.MODERATE), AgentRole.SUMMARISER
            ).context_budget_tokens
        done_ms = [m for m in milestones if m.output]
        share_chars = (
            int(budget_tokens * SUMMARY_INPUT_SHARE * 4 / max(1, len(done_ms))) if done_ms else 0
        )
        sections = [
            f"### {m.key}: {m.title} ({m.status})\n{(m.output or '')[:share_chars]}"
            for m in done_ms
        ]
        user = f"Goal: {task.goal}\n\nResults of the milestones:\n\n" + "\n\n".join(sections)
        messages = [_system(system), _user(user)]
        if (block := self._check_budget(call, messages, data.budget)) is not None:
            return SummariseOutput(blocked=block)
        await self._started(call, "Summarising the results")
        response = await self._stream(call, messages)
        output = SummariseOutput(summary_preview=preview(response.content), usage=_usage(response))
        async with self._db.session() as session, session.begin():
            await _set_task_fields(session, data.task_id, result=response.content)
            await self._commit_call(session, call, response, output, "Summary written")
        return output

    # ------------------------------------------------------------------ plumbing

    def _milestone_call(self, data: Any, role: AgentRole) -> _Call:
        return _Call(
            task_id=data.task_id,
            session_id=data.session_id,
            role=role,
            model=data.model,
            milestone_id=data.milestone_id,
            milestone_key=data.milestone_key,
            milestone_attempt=data.attempt,
        )

    async def _task(self, session: AsyncSession, task_id: UUID) -> Task:
        task = await session.get(Task, task_id)
        if task is None:
            raise task_not_found(task_id)
        return task

    async def _milestones(self, session: AsyncSession, task_id: UUID) -> dict[str, Milestone]:
        return {m.key: m for m in await MilestoneRepository(session).list_for_task(task_id)}

    async def _compressed_context(self, session: AsyncSession, task_id: UUID, seq: int) -> str:
        row = (
            await session.execute(
                select(Event).where(Event.task_id == task_id, Event.sequence_number == seq)
            )
        ).scalar_one_or_none()
        if row is None or row.type != EventType.LLM_COMPLETE.value:
            raise ApplicationError(
                f"compressed context event {seq} not found", type="ContextNotFound"
            )
        return str(row.details.get("text", ""))

    async def _prompt(self, session: AsyncSession, role: AgentRole, version: int | None) -> str:
        repo = PromptRepository(session, self._prompt_cache)
        name = prompt_name(role)
        record = (
            await repo.get_version(name, version)
            if version is not None
            else await repo.get_by_name(name)
        )
        return record.content if record is not None else DEFAULT_PROMPTS[role]

    def _check_budget(
        self,
        call: _Call,
        messages: list[ChatMessage],
        budget: BudgetRemaining,
        max_tokens: int | None = None,
    ) -> BudgetBlock | None:
        """Estimate the next call (prompt + max output) against what is left."""
        if budget.tokens is None and budget.cost_usd is None:
            return None
        input_tokens = count_message_tokens(m.content for m in messages)
        output_tokens = max_tokens or MAX_OUTPUT_TOKENS[call.role]
        estimated_tokens = input_tokens + output_tokens
        estimated_cost = self._prices.cost(
            call.model, Usage(input_tokens=input_tokens, output_tokens=output_tokens)
        )
        over_tokens = budget.tokens is not None and estimated_tokens > budget.tokens
        over_cost = (
            budget.cost_usd is not None
            and estimated_cost is not None
            and estimated_cost > budget.cost_usd
        )
        if not (over_tokens or over_cost):
            return None
        logger.info(
            "llm_call_blocked_by_budget",
            task_id=str(call.task_id),
            role=call.role.value,
            estimated_tokens=estimated_tokens,
            estimated_cost_usd=estimated_cost,
        )
        return BudgetBlock(
            estimated_tokens=estimated_tokens,
            estimated_cost_usd=estimated_cost,
            remaining=budget,
        )

    async def _recover(self, call: _Call, output_type: type[OutputT]) -> OutputT | None:
        """Return the result a former attempt of this activity already committed."""
        async with self._db.session() as session:
            event = await find_event(session, call.task_id, IDX_COMPLETE)
        if event is None:
            return None
        try:
            output = output_type.model_validate(event.details["result"])
        except (KeyError, ValidationError):  # pragma: no cover - written by this module
            return None
        logger.info(
            "activity_result_recovered",
            task_id=str(call.task_id),
            role=call.role.value,
            activity_id=activity.info().activity_id,
        )
        if isinstance(output, CompressOutput):
            output = output.model_copy(update={"context_seq": event.sequence_number})
        return output

    async def _started(self, call: _Call, message: str, *, mark_in_progress: bool = False) -> None:
        async with self._db.session() as session, session.begin():
            drafts = []
            if mark_in_progress and call.milestone_key is not None:
                milestones = MilestoneRepository(session)
                before = await milestones.get_by_key(call.task_id, call.milestone_key)
                await milestones.set_status(
                    call.task_id,
                    call.milestone_key,
                    MilestoneStatus.IN_PROGRESS,
                    attempt=call.milestone_attempt,
                )
                if before is not None and before.status != MilestoneStatus.IN_PROGRESS:
                    drafts.append(
                        _cdraft(
                            call,
                            IDX_IN_PROGRESS,
                            EventType.MILESTONE_STATUS_CHANGED,
                            status=MilestoneStatus.IN_PROGRESS,
                            message=f"{call.milestone_key}: in_progress",
                            details={
                                "key": call.milestone_key,
                                "attempt": call.milestone_attempt,
                            },
                        )
                    )
            drafts.append(
                _cdraft(
                    call,
                    IDX_STARTED,
                    EventType.AGENT_STARTED,
                    agent=call.role,
                    status=AgentStatus.STARTED,
                    message=message,
                    details={
                        "model": call.model,
                        "attempt": call.milestone_attempt,
                        "activity_attempt": activity.info().attempt,
                        "key": call.milestone_key,
                    },
                )
            )
            await EventRepository(session).append(drafts)

    async def _stream(
        self,
        call: _Call,
        messages: list[ChatMessage],
        *,
        json_mode: bool = False,
        max_tokens: int | None = None,
    ) -> LLMResponse:
        """Stream one call with chunk batches and heartbeats; record usage on failure."""
        request = LLMRequest(
            model=call.model,
            messages=messages,
            role=call.role,
            max_tokens=max_tokens or MAX_OUTPUT_TOKENS[call.role],
            json_mode=json_mode,
        )
        publisher = ChunkPublisher(
            self._db,
            task_id=call.task_id,
            session_id=call.session_id,
            milestone_id=call.milestone_id,
            agent=call.role,
            milestone_attempt=call.milestone_attempt,
        )
        stream: LLMStream = self._llm.stream(request)
        opened = False
        try:
            async with heartbeating():
                async with stream:
                    opened = True
                    async for delta in stream:
                        await publisher.add(delta)
                await publisher.flush()
                return stream.response
        except asyncio.CancelledError:
            # The stream is closed by now (`async with` exited); account for what it used.
            partial = stream.partial_response() if opened else None
            await self._record_failure(call, partial, "cancelled", cancelled=True)
            raise
        except Exception as exc:
            partial = stream.partial_response() if opened else None
            error = to_application_error(exc)
            await self._record_failure(call, partial, str(error))
            raise error from exc

    async def _record_failure(
        self,
        call: _Call,
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
            async with self._db.session() as session, session.begin():
                stored = await EventRepository(session).append(
                    [
                        draft(
                            f"failed-{info.attempt}",
                            EventType.AGENT_FAILED,
                            task_id=call.task_id,
                            session_id=call.session_id,
                            milestone_id=call.milestone_id,
                            agent=call.role,
                            status=AgentStatus.FAILED,
                            message=("Cancelled" if cancelled else f"Failed: {error}")[:1000],
                            details={
                                "error": error[:2000],
                                "cancelled": cancelled,
                                "attempt": call.milestone_attempt,
                                "activity_attempt": info.attempt,
                                "partial_usage": {
                                    "input_tokens": usage.input_tokens,
                                    "output_tokens": usage.output_tokens,
                                    "cost_usd": cost,
                                },
                                "partial_chars": len(partial.content) if partial else 0,
                            },
                        )
                    ]
                )
                if stored and usage.total_tokens > 0:
                    await self._add_usage(session, call, usage, cost)
        except Exception as exc:  # the original failure matters more than its record
            logger.warning("agent_failure_not_recorded", error=str(exc), task_id=str(call.task_id))

    async def _add_usage(
        self, session: AsyncSession, call: _Call, usage: Usage, cost: float | None
    ) -> None:
        await TaskRepository(session).add_usage(
            call.task_id, usage.input_tokens, usage.output_tokens, cost
        )
        if call.milestone_key is not None:
            await MilestoneRepository(session).add_usage(
                call.task_id, call.milestone_key, usage.input_tokens, usage.output_tokens, cost
            )

    async def _commit_call(
        self,
        session: AsyncSession,
        call: _Call,
        response: LLMResponse,
        output: BaseModel,
        message: str,
        *,
        extra: list[EventDraft] | None = None,
        failed: bool = False,
        milestone_usage: bool = True,
        agent_details: dict[str, Any] | None = None,
    ) -> list[Any]:
        """Append `LLM_COMPLETE` + `AGENT_COMPLETED`/`AGENT_FAILED` (+ extra) and add usage.

        Runs inside the caller's transaction, next to the state change it reports.
        """
        info = activity.info()
        usage = {
            "input_tokens": response.usage.input_tokens,
            "output_tokens": response.usage.output_tokens,
            "cost_usd": response.cost_usd,
        }
        drafts = [
            _cdraft(
                call,
                IDX_COMPLETE,
                EventType.LLM_COMPLETE,
                status=AgentStatus.COMPLETED,
                message=f"{call.role.value} · {response.model}",
                details={
                    "text": response.content,
                    "model": response.model,
                    "usage": usage,
                    "attempt": call.milestone_attempt,
                    "activity_attempt": info.attempt,
                    "key": call.milestone_key,
                    "result": output.model_dump(mode="json"),
                },
                agent=call.role,
            ),
            _cdraft(
                call,
                IDX_AGENT_DONE,
                EventType.AGENT_FAILED if failed else EventType.AGENT_COMPLETED,
                status=AgentStatus.FAILED if failed else AgentStatus.COMPLETED,
                message=message[:1000],
                details={
                    "model": response.model,
                    "usage": usage,
                    "attempt": call.milestone_attempt,
                    "key": call.milestone_key,
                    "output_preview": preview(response.content),
                    **(agent_details or {}),
                },
                agent=call.role,
            ),
            *(extra or []),
        ]
        stored = await EventRepository(session).append(drafts)
        if any(e.type == EventType.LLM_COMPLETE for e in stored):
            if milestone_usage:
                await self._add_usage(session, call, response.usage, response.cost_usd)
            else:
                await TaskRepository(session).add_usage(
                    call.task_id,
                    response.usage.input_tokens,
                    response.usage.output_tokens,
                    response.cost_usd,
                )
        return stored


def _cdraft(
    call: _Call,
    index: int | str,
    type_: EventType,
    *,
    status: EventStatus | None,
    message: str,
    details: dict[str, Any],
    agent: AgentRole | None = None,
) -> EventDraft:
    return draft(
        index,
        type_,
        task_id=call.task_id,
        session_id=call.session_id,
        milestone_id=call.milestone_id,
        agent=agent,
        status=status,
        message=message,
        details=details,
    )


def _system(content: str) -> ChatMessage:
    return ChatMessage(role="system", content=content)


def _user(content: str) -> ChatMessage:
    return ChatMessage(role="user", content=content)


def _dependency_context(milestone: Milestone, milestones: dict[str, Milestone]) -> str:
    sections = []
    for key in milestone.depends_on:
        dep = milestones.get(key)
        if dep is None:
            continue
        body = dep.output if dep.output else f"(no result: {dep.status})"
        sections.append(f"### Result of {dep.key}: {dep.title}\n{body}")
    return "\n\n".join(sections)


async def _set_task_fields(session: AsyncSession, task_id: UUID, **fields: Any) -> None:
    await session.execute(update(Task).where(Task.id == task_id).values(**fields))
