"""Planning activities: classify the goal's complexity, plan it into milestones."""

from __future__ import annotations

from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities.calls import (
    MAX_OUTPUT_TOKENS,
    Call,
    InvalidAgentAnswerError,
    assistant_message,
    call_usage,
    parse_json_object,
    system_message,
    user_message,
)
from activities.llm_calls import LLMActivityBase
from activities.models import ClassifyInput, ClassifyOutput, PlanInput, PlanItem, PlanOutput
from activities.progress import model_routes
from activities.structured import PLAN_FORMAT, structured_format
from activities.tools import pinned_specs
from agent.contract.plan import PlanValidationError, parse_plan_text
from agent.contract.tools import ToolSpec
from agent.events.types import AgentRole, EventType, TaskComplexity
from agent.llm.types import ChatMessage
from agent.repositories.events import EventRepository
from agent.repositories.milestones import MilestoneRepository
from agent.repositories.tasks import TaskRepository

logger = structlog.get_logger(__name__)

DEFAULT_COMPLEXITY = TaskComplexity.MODERATE
"""The complexity of a task whose classifier answer does not parse."""


def tools_section(tools: list[ToolSpec]) -> str:
    """What the planner is told of the task's tools (the workers may call them)."""
    lines = [f"- {t.qualified_name}: {t.description or '(no description)'}" for t in tools]
    return "Tools the workers can call while doing a milestone:\n" + "\n".join(lines)


def rejection_message(error: str) -> str:
    """The user turn that tells the planner why its previous answer was rejected."""
    return f"Your plan was rejected: {error.rstrip('.')}. Answer again with a valid plan."


async def previous_invalid_plan(session: AsyncSession, task_id: UUID) -> str | None:
    """The text of the task's latest planner answer when that answer was an invalid plan.

    The workflow runs plan attempts one after another, so the latest planner `LLM_COMPLETE`
    before a re-ask is the answer being corrected. Its text is read from PostgreSQL rather
    than carried in the workflow input (claim-check: plans stay out of Temporal history).
    A retry of the re-ask reads the same row, since this attempt's own `LLM_COMPLETE` is
    only written when it commits (and a committed attempt is recovered before this runs).
    """
    row = await EventRepository(session).latest_of(
        task_id, EventType.LLM_COMPLETE, AgentRole.PLANNER
    )
    if row is None:
        return None
    result = row.details.get("result")
    if not isinstance(result, dict) or result.get("valid", True):
        return None
    text = row.details.get("text")
    return text if isinstance(text, str) else None


PLAN_TOKENS_PER_MILESTONE = 40
"""Output tokens a planner answer needs per milestone (key, title, dependencies as JSON)."""


def planner_max_tokens(max_milestones: int) -> int:
    """The planner's `max_tokens`: its role's default, more when the task accepts big plans.

    A plan limit above the default (`AGENT_MAX_PLAN_MILESTONES`) needs a planner model
    whose output limit allows this many tokens.
    """
    return max(MAX_OUTPUT_TOKENS[AgentRole.PLANNER], max_milestones * PLAN_TOKENS_PER_MILESTONE)


class PlanningActivities(LLMActivityBase):
    """`classify` and `plan`."""

    @activity.defn(name="classify")
    async def classify(self, data: ClassifyInput) -> ClassifyOutput:
        """Classify the task's complexity with a cheap model, store it, route its models."""
        call = Call(data.task_id, data.session_id, AgentRole.CLASSIFIER, data.model)
        async with self._db.session() as session, session.begin():
            if (done := await self._recover(session, call, ClassifyOutput)) is not None:
                return done
            task = await self._task(session, data.task_id)
            system = await self._prompt(session, AgentRole.CLASSIFIER, data.prompt_version)
            messages = [system_message(system), user_message(f"Goal: {task.goal}")]
            if (block := await self._check_limits(session, call, messages, data)) is not None:
                return ClassifyOutput(blocked=block)
            await self._started(session, call, "Classifying the goal")
        response = await self._stream(call, messages, json_mode=True)
        try:
            complexity = TaskComplexity(parse_json_object(response.content)["complexity"])
        except (InvalidAgentAnswerError, KeyError, ValueError):
            logger.warning("classifier_answer_invalid", task_id=str(data.task_id))
            complexity = DEFAULT_COMPLEXITY
        output = ClassifyOutput(
            complexity=complexity,
            routes=model_routes(self._router, complexity),
            usage=call_usage(response),
        )
        async with self._db.session() as session, session.begin():
            await TaskRepository(session).set_fields(data.task_id, complexity=complexity.value)
            await self._commit_call(session, call, response, output, f"Complexity: {complexity}")
        return output

    @activity.defn(name="plan")
    async def plan(self, data: PlanInput) -> PlanOutput:
        """Ask the planner for a plan; persist it when valid, else return the error."""
        call = Call(data.task_id, data.session_id, AgentRole.PLANNER, data.model)
        async with self._db.session() as session, session.begin():
            if (done := await self._recover(session, call, PlanOutput)) is not None:
                return done
            task = await self._task(session, data.task_id)
            system = await self._prompt(session, AgentRole.PLANNER, data.prompt_version)
            parts = [f"Goal: {task.goal}"]
            if tools := pinned_specs(task.tools):
                parts.append(tools_section(tools))
            if data.human_feedback:
                parts.append(f"Feedback from the person reviewing the plan:\n{data.human_feedback}")
            messages: list[ChatMessage] = [system_message(system)]
            previous = await previous_invalid_plan(session, data.task_id) if data.feedback else None
            if data.feedback and previous is not None:
                # Continue the conversation: the model sees what it wrote and why it failed.
                messages += [
                    user_message("\n\n".join(parts)),
                    assistant_message(previous),
                    user_message(rejection_message(data.feedback)),
                ]
            else:
                if data.feedback:
                    logger.warning("previous_plan_answer_missing", task_id=str(data.task_id))
                    parts.append(rejection_message(data.feedback))
                messages.append(user_message("\n\n".join(parts)))
            max_tokens = planner_max_tokens(data.max_milestones)
            if (
                block := await self._check_limits(session, call, messages, data, max_tokens)
            ) is not None:
                return PlanOutput(blocked=block)
            await self._started(session, call, f"Planning (attempt {data.attempt})")
        response = await self._stream(
            call,
            messages,
            json_mode=True,
            max_tokens=max_tokens,
            response_format=structured_format(self._settings, data.model, PLAN_FORMAT),
        )
        try:
            plan = parse_plan_text(response.content, max_milestones=data.max_milestones)
        except PlanValidationError as exc:
            output = PlanOutput(valid=False, error=str(exc)[:2000], usage=call_usage(response))
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
            output = PlanOutput(valid=True, milestones=items, usage=call_usage(response))
            await self._commit_call(
                session,
                call,
                response,
                output,
                f"Planned {len(items)} milestones",
                agent_details={"plan": [i.model_dump(mode="json") for i in items]},
            )
        return output
