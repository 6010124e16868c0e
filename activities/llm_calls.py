"""The machinery every LLM activity shares: prepare, stream, commit, record failures.

An LLM activity runs in three database steps, each one transaction:

1. prepare: return the result a former attempt already committed (crash after commit,
   before Temporal recorded completion), else bill what a former attempt lost mid-stream;
   read what the prompt needs; check the budget (no call, no write when the estimate
   would pass it); write `AGENT_STARTED`.
2. stream through `LLMClient.stream`, publishing batched `LLM_CHUNK`s and heartbeating
   the running usage; on failure or cancellation close the provider stream and record
   the partial usage with `AGENT_FAILED` before re-raising.
3. commit: `LLM_COMPLETE` (full text, usage, cost), `AGENT_COMPLETED`, the state change
   and the usage increments.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import structlog
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.billing import add_usage, bill_lost_attempt, record_failure
from activities.calls import MAX_OUTPUT_TOKENS, Call, EventIndex, call_draft
from activities.common import (
    ChunkPublisher,
    StreamHeartbeat,
    find_event,
    heartbeating,
    task_not_found,
)
from activities.models import (
    BudgetBlock,
    BudgetRemaining,
    CompressOutput,
    LLMCallInput,
    LLMCallOutput,
    preview,
)
from activities.policies import outage_tolerance
from activities.spend_limits import user_spend_limit
from activities.waiting import record_waiting, recovered_draft
from agent.config import Settings
from agent.contract.tools import ToolSpec
from agent.db.models import Milestone, Task
from agent.db.session import DatabaseSessionManager
from agent.events.types import AgentRole, AgentStatus, EventType, MilestoneStatus
from agent.llm.client import LLMClient, LLMStream
from agent.llm.errors import to_application_error
from agent.llm.outage import OutageTolerance, retry_or_give_up
from agent.llm.pricing import PriceTable
from agent.llm.routing import ModelRouter
from agent.llm.tokens import count_message_tokens
from agent.llm.types import ChatMessage, JsonSchemaFormat, LLMRequest, LLMResponse, Usage
from agent.prompts.cache import PromptCache
from agent.prompts.defaults import DEFAULT_PROMPTS, prompt_name
from agent.repositories.events import EventDraft, EventRepository
from agent.repositories.milestones import MilestoneRepository
from agent.repositories.prompts import PromptRepository
from agent.repositories.tasks import TaskRepository

logger = structlog.get_logger(__name__)

PINNED_PROMPTS_KEPT = 256
"""Pinned prompt versions kept in process memory (versions never change once written)."""

OutputT = TypeVar("OutputT", bound=LLMCallOutput)


def _now() -> datetime:
    return datetime.now(UTC)


class LLMActivityBase:
    """Dependencies and plumbing of the LLM-calling activities (see the module doc)."""

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
        self._settings = settings
        self._router = ModelRouter(settings)
        self._prices = PriceTable(settings)
        self._prompt_cache = prompt_cache
        self._pinned_prompts: dict[tuple[str, int], str] = {}

    # ------------------------------------------------------------------ reads

    async def _task(self, session: AsyncSession, task_id: UUID) -> Task:
        task = await TaskRepository(session).get_by_id(task_id)
        if task is None:
            raise task_not_found(task_id)
        return task

    async def _milestones(self, session: AsyncSession, task_id: UUID) -> dict[str, Milestone]:
        return {m.key: m for m in await MilestoneRepository(session).list_for_task(task_id)}

    async def _attempt_milestones(
        self, session: AsyncSession, task_id: UUID, key: str
    ) -> dict[str, Milestone]:
        """Milestone `key` and its dependencies: all a milestone's call reads, at any plan size."""
        return await MilestoneRepository(session).get_with_dependencies(task_id, key)

    async def _prompt(self, session: AsyncSession, role: AgentRole, version: int | None) -> str:
        """The system prompt of a role at its pinned version (memoised: versions are immutable)."""
        name = prompt_name(role)
        if version is not None and (name, version) in self._pinned_prompts:
            return self._pinned_prompts[(name, version)]
        repo = PromptRepository(session, self._prompt_cache)
        record = (
            await repo.get_version(name, version)
            if version is not None
            else await repo.get_by_name(name)
        )
        content = record.content if record is not None else DEFAULT_PROMPTS[role]
        if version is not None and record is not None:
            if len(self._pinned_prompts) >= PINNED_PROMPTS_KEPT:
                self._pinned_prompts.clear()
            self._pinned_prompts[(name, version)] = content
        return content

    # ------------------------------------------------------------------ prepare

    async def _check_limits(
        self,
        session: AsyncSession,
        call: Call,
        messages: list[ChatMessage],
        data: LLMCallInput,
        max_tokens: int | None = None,
    ) -> BudgetBlock | None:
        """The user's daily limit (when the workflow sends its window), then the budget."""
        if data.spend_window is not None:
            user = await user_spend_limit(session, self._settings, call.task_id, data.spend_window)
            if user is not None:
                tokens, cost = self._estimate(call, messages, max_tokens)
                return BudgetBlock(
                    estimated_tokens=tokens,
                    estimated_cost_usd=cost,
                    remaining=data.budget,
                    user_daily=user,
                )
        return self._check_budget(call, messages, data.budget, max_tokens)

    def _estimate(
        self, call: Call, messages: list[ChatMessage], max_tokens: int | None
    ) -> tuple[int, float | None]:
        """The next call's tokens (prompt + max output) and their cost (None: no price)."""
        input_tokens = count_message_tokens(m.content for m in messages)
        output_tokens = max_tokens or MAX_OUTPUT_TOKENS[call.role]
        cost = self._prices.cost(
            call.model, Usage(input_tokens=input_tokens, output_tokens=output_tokens)
        )
        return input_tokens + output_tokens, cost

    def _check_budget(
        self,
        call: Call,
        messages: list[ChatMessage],
        budget: BudgetRemaining,
        max_tokens: int | None = None,
    ) -> BudgetBlock | None:
        """Estimate the next call (prompt + max output) against what is left."""
        if budget.tokens is None and budget.cost_usd is None:
            return None
        estimated_tokens, estimated_cost = self._estimate(call, messages, max_tokens)
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

    async def _recover(
        self, session: AsyncSession, call: Call, output_type: type[OutputT]
    ) -> OutputT | None:
        """Return the result a former attempt of this activity already committed.

        When there is none, a former attempt may have died mid-stream (worker killed)
        without recording what it used; bill that first (see `billing.bill_lost_attempt`).
        """
        event = await find_event(session, call.task_id, EventIndex.COMPLETE)
        if event is None:
            await bill_lost_attempt(session, call)
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
            # The compressed text is that event's: its place in the log is the result.
            output = output.model_copy(update={"context_seq": event.sequence_number})
        return output

    async def _started(
        self,
        session: AsyncSession,
        call: Call,
        message: str,
        *,
        milestone: Milestone | None = None,
    ) -> None:
        """Write `AGENT_STARTED` (and mark `milestone` in progress) in the caller's transaction."""
        drafts = []
        if milestone is not None and call.milestone_key is not None:
            before = milestone.status
            await MilestoneRepository(session).set_status(
                call.task_id,
                call.milestone_key,
                MilestoneStatus.IN_PROGRESS,
                attempt=call.milestone_attempt,
            )
            if before != MilestoneStatus.IN_PROGRESS:
                drafts.append(
                    call_draft(
                        call,
                        EventIndex.IN_PROGRESS,
                        EventType.MILESTONE_STATUS_CHANGED,
                        status=MilestoneStatus.IN_PROGRESS,
                        message=f"{call.milestone_key}: in_progress",
                        details={"key": call.milestone_key, "attempt": call.milestone_attempt},
                    )
                )
        drafts.append(
            call_draft(
                call,
                EventIndex.STARTED,
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

    # ------------------------------------------------------------------ stream

    async def _stream(
        self,
        call: Call,
        messages: list[ChatMessage],
        *,
        json_mode: bool = False,
        max_tokens: int | None = None,
        tools: list[ToolSpec] | None = None,
        response_format: JsonSchemaFormat | None = None,
    ) -> LLMResponse:
        """Stream one call with chunk batches and heartbeats; record usage on failure."""
        request = LLMRequest(
            model=call.model,
            messages=messages,
            role=call.role,
            task_id=call.task_id,
            max_tokens=max_tokens or MAX_OUTPUT_TOKENS[call.role],
            json_mode=json_mode,
            tools=tools or [],
            response_format=response_format,
        )
        beat = StreamHeartbeat()
        publisher = ChunkPublisher(
            self._db,
            beat,
            task_id=call.task_id,
            session_id=call.session_id,
            milestone_id=call.milestone_id,
            agent=call.role,
            milestone_attempt=call.milestone_attempt,
        )
        # The attempt that ends the call's tolerance asks the provider itself, even when
        # the worker's breaker is cooling down (see `agent.llm.breaker`).
        waited, tolerance = self._outage_clock()
        stream: LLMStream = self._llm.stream(request, last_chance=tolerance.is_last_attempt(waited))
        opened = False
        try:
            async with heartbeating(beat):
                async with stream:
                    opened = True
                    beat.watch(stream)
                    beat()  # the prompt is billed from here on: say so at once
                    async for delta in stream:
                        await publisher.add(delta)
                await publisher.flush()
                return stream.response
        except asyncio.CancelledError:
            # The stream is closed by now (`async with` exited); account for what it used.
            partial = stream.partial_response() if opened else None
            await record_failure(self._db, call, partial, "cancelled", cancelled=True)
            raise
        except Exception as exc:
            partial = stream.partial_response() if opened else None
            error = to_application_error(exc)
            await record_failure(self._db, call, partial, str(error))
            decided = self._retry_or_give_up(call, error)
            if not decided.non_retryable:
                await record_waiting(self._db, call, self._llm.base_url, decided, _now())
            raise decided from exc

    def _outage_clock(self) -> tuple[timedelta, OutageTolerance]:
        """How long this call has been retrying, and its outage tolerance.

        The wait is measured on the Temporal server's clock (first attempt scheduled ->
        this attempt scheduled), so worker clock skew cannot stretch or cut it.
        """
        info = activity.info()
        return (
            info.current_attempt_scheduled_time - info.scheduled_time,
            OutageTolerance(
                tolerance=outage_tolerance(
                    info.schedule_to_close_timeout, self._settings.llm_outage_tolerance
                ),
                max_interval=timedelta(seconds=self._settings.llm_retry_max_interval_seconds),
            ),
        )

    def _retry_or_give_up(self, call: Call, error: ApplicationError) -> ApplicationError:
        """Set the next attempt's delay, or give up once the outage outlasted the tolerance."""
        waited, tolerance = self._outage_clock()
        return retry_or_give_up(
            error,
            attempt=activity.info().attempt,
            waited=waited,
            tolerance=tolerance,
            endpoint=self._llm.base_url,
            model=call.model,
        )

    # ------------------------------------------------------------------ commit

    async def _commit_call(
        self,
        session: AsyncSession,
        call: Call,
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
        usage = response.usage.as_details(response.cost_usd)
        drafts = [
            call_draft(
                call,
                EventIndex.COMPLETE,
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
            call_draft(
                call,
                EventIndex.AGENT_DONE,
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
            *await recovered_draft(session, call, _now()),
        ]
        stored = await EventRepository(session).append(drafts)
        if any(e.type == EventType.LLM_COMPLETE for e in stored):
            if milestone_usage:
                await add_usage(session, call, response.usage, response.cost_usd)
            else:
                await TaskRepository(session).add_usage(
                    call.task_id,
                    response.usage.input_tokens,
                    response.usage.output_tokens,
                    response.cost_usd,
                    estimated=response.usage.estimated,
                )
                if response.usage.estimated and call.milestone_key is not None:
                    # The caller stored the milestone's usage itself (`record_output`);
                    # only its provenance is added here.
                    await MilestoneRepository(session).add_usage(
                        call.task_id, call.milestone_key, 0, 0, 0.0, estimated=True
                    )
        return stored
