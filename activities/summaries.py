"""Summaries: the summariser agent turns the milestones' results into the task's result."""

from __future__ import annotations

from temporalio import activity

from activities.calls import (
    Call,
    call_usage,
    system_message,
    user_message,
)
from activities.llm_calls import LLMActivityBase
from activities.models import SummariseInput, SummariseOutput, preview
from agent.events.types import AgentRole, TaskComplexity
from agent.repositories.tasks import TaskRepository

SUMMARY_INPUT_SHARE = 0.8
"""Share of the summariser's context budget given to the milestones' results."""

CHARS_PER_TOKEN = 4
"""Rough characters per token, to cut each milestone's result to its share."""


class SummaryActivities(LLMActivityBase):
    """`summarise`."""

    @activity.defn(name="summarise")
    async def summarise(self, data: SummariseInput) -> SummariseOutput:
        """Summarise the milestones' results into the task's result."""
        call = Call(data.task_id, data.session_id, AgentRole.SUMMARISER, data.model)
        async with self._db.session() as session, session.begin():
            if (done := await self._recover(session, call, SummariseOutput)) is not None:
                return done
            task = await self._task(session, data.task_id)
            milestones = list((await self._milestones(session, data.task_id)).values())
            system = await self._prompt(session, AgentRole.SUMMARISER, data.prompt_version)
            budget_tokens = self._router.route(
                TaskComplexity(task.complexity or TaskComplexity.MODERATE), AgentRole.SUMMARISER
            ).context_budget_tokens
            done_ms = [m for m in milestones if m.output]
            share_chars = (
                int(budget_tokens * SUMMARY_INPUT_SHARE * CHARS_PER_TOKEN / max(1, len(done_ms)))
                if done_ms
                else 0
            )
            sections = [
                f"### {m.key}: {m.title} ({m.status})\n{(m.output or '')[:share_chars]}"
                for m in done_ms
            ]
            user = f"Goal: {task.goal}\n\nResults of the milestones:\n\n" + "\n\n".join(sections)
            messages = [system_message(system), user_message(user)]
            if (block := await self._check_limits(session, call, messages, data)) is not None:
                return SummariseOutput(blocked=block)
            await self._started(session, call, "Summarising the results")
        response = await self._stream(call, messages)
        output = SummariseOutput(
            summary_preview=preview(response.content), usage=call_usage(response)
        )
        async with self._db.session() as session, session.begin():
            await TaskRepository(session).set_fields(data.task_id, result=response.content)
            await self._commit_call(session, call, response, output, "Summary written")
        return output
