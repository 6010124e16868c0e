"""`execute_turn`: one model turn of a milestone attempt whose task has tools.

The attempt is a conversation kept in PostgreSQL (`conversation_messages`; tool results in
`tool_calls`): turn 0 is the worker's system and user message, as `execute` builds them;
every later turn replays the conversation with each call's result as a `role: tool`
message. A turn either answers (the attempt's output, as `execute` stores it) or asks for
tool calls: they are checked (known tool, JSON arguments that fit its schema) and stored,
and the workflow runs each as its own activity. The workflow history carries ids only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities.calls import Call, call_usage, system_message, user_message
from activities.common import draft
from activities.llm_calls import LLMActivityBase
from activities.milestones import (
    attempt_context,
    attempt_done,
    attempt_prompt,
    milestone_by_key,
    milestone_call,
    record_attempt_output,
)
from activities.models import ExecuteOutcome, ExecuteOutput, ExecuteTurnInput, preview
from activities.tools import pinned_specs, tool_error_text
from agent.contract.tools import ToolCall, ToolCallRef, ToolCallStatus, ToolResult, ToolSpec
from agent.db.models import ToolCallRecord
from agent.events.types import AgentRole, EventType
from agent.llm.tokens import count_message_tokens
from agent.llm.types import ChatMessage, LLMResponse
from agent.observability.tools import count_tool_call
from agent.repositories.conversations import ConversationRepository, NewMessage
from agent.repositories.events import EventDraft
from agent.repositories.tool_calls import NewToolCall, ToolCallRepository
from agent.tools.arguments import validate_arguments
from agent.tools.results import cut_for_model

TOOL_RESULT_MODEL_CHARS = 20_000
"""A tool result longer than this reaches the model cut (with a marker); it is stored whole."""

NO_RESULT = "the call ended without a result (its worker was lost on every attempt)"

FINAL_TURN_INSTRUCTION = (
    "You have used every tool round this attempt allows. Do not call tools any more: "
    "give your final answer now, from what you have."
)


def conversation_messages(stored: list[Any], calls: list[ToolCallRecord]) -> list[ChatMessage]:
    """The conversation as the model sees it: each turn's calls followed by their results."""
    by_turn: dict[int, list[ToolCallRecord]] = {}
    for call in calls:
        by_turn.setdefault(call.turn, []).append(call)
    messages: list[ChatMessage] = []
    for row in stored:
        if row.role == "assistant" and row.tool_calls:
            requested = [ToolCall.model_validate(c) for c in row.tool_calls]
            messages.append(ChatMessage.assistant_tool_calls(requested, row.content))
            for call in by_turn.get(row.turn, []):
                result = call.result
                if result is None:  # every attempt of the call was lost
                    result = tool_error_text(call.function_name, NO_RESULT)
                messages.append(
                    ChatMessage.tool_result(
                        ToolResult(
                            call_id=call.call_id,
                            content=cut_for_model(result, TOOL_RESULT_MODEL_CHARS),
                            is_error=call.is_error or call.result is None,
                        )
                    )
                )
        else:
            messages.append(ChatMessage(role=row.role, content=row.content))
    return messages


def checked_call(
    call: ToolCall, tools: dict[str, ToolSpec], approve_every_call: bool
) -> NewToolCall:
    """A model's call as first stored: rejected with an error result, or ready to run."""
    spec = tools.get(call.function_name)
    if spec is None:
        known = ", ".join(sorted(tools)) or "none"
        return NewToolCall(
            call_id=call.id,
            function_name=call.function_name,
            server=None,
            tool=None,
            arguments=call.arguments,
            status=ToolCallStatus.REJECTED,
            result=tool_error_text(
                call.function_name, f"no such tool in this task (available: {known})"
            ),
        )
    checked = validate_arguments(spec, call.arguments)
    if isinstance(checked, str):
        return NewToolCall(
            call_id=call.id,
            function_name=call.function_name,
            server=spec.server,
            tool=spec.name,
            arguments=call.arguments,
            status=ToolCallStatus.REJECTED,
            result=tool_error_text(spec.qualified_name, checked),
        )
    needs_person = spec.needs_approval or approve_every_call
    return NewToolCall(
        call_id=call.id,
        function_name=call.function_name,
        server=spec.server,
        tool=spec.name,
        arguments=call.arguments,
        status=ToolCallStatus.AWAITING_APPROVAL if needs_person else ToolCallStatus.REQUESTED,
    )


def call_ref(row: ToolCallRecord, tools: dict[str, ToolSpec]) -> ToolCallRef:
    """What the workflow learns of a stored call."""
    spec = tools.get(row.function_name)
    return ToolCallRef(
        id=row.id,
        call_id=row.call_id,
        function_name=row.function_name,
        server=row.server,
        tool=row.tool,
        arguments=row.arguments,
        status=ToolCallStatus(row.status),
        **({"retry": spec.retry, "timeout_seconds": spec.timeout_seconds} if spec else {}),
    )


class ToolTurnActivities(LLMActivityBase):
    """`execute_turn`."""

    @activity.defn(name="execute_turn")
    async def execute_turn(self, data: ExecuteTurnInput) -> ExecuteOutput:
        """Run one model turn of a tool-using attempt; store its answer or its tool calls."""
        call = milestone_call(data, AgentRole.WORKER)
        async with self._db.session() as session, session.begin():
            if (done := await self._recover(session, call, ExecuteOutput)) is not None:
                return done
            task = await self._task(session, data.task_id)
            milestones = await self._attempt_milestones(session, data.task_id, data.milestone_key)
            milestone = milestone_by_key(milestones, data.task_id, data.milestone_key)
            specs = pinned_specs(task.tools)
            tools = {spec.function_name: spec for spec in specs}
            approve_every_call = data.approve_every_call
            if data.turn == 0:
                system = await self._prompt(session, AgentRole.WORKER, data.prompt_version)
                context = await attempt_context(session, data, milestone, milestones)
                opening = [
                    system_message(system),
                    user_message(attempt_prompt(task.goal, milestone, context, data)),
                ]
                messages = list(opening)
                context_tokens = count_message_tokens(m.content for m in messages)
                if (
                    context_tokens > data.context_budget_tokens
                    and data.compressed_context_seq is None
                    and context
                ):
                    return ExecuteOutput(
                        outcome=ExecuteOutcome.CONTEXT_TOO_LARGE, context_tokens=context_tokens
                    )
            else:
                opening = []
                messages = await self._conversation(session, data)
                context_tokens = count_message_tokens(
                    text for m in messages for text in m.token_texts()
                )
            if data.final_turn:
                messages.append(user_message(FINAL_TURN_INSTRUCTION))
            if (block := await self._check_limits(session, call, messages, data)) is not None:
                return ExecuteOutput(outcome=ExecuteOutcome.BLOCKED, blocked=block)
            await self._started(
                session,
                call,
                f"{data.label} {milestone.key}: attempt {data.attempt}, turn {data.turn + 1}",
                milestone=milestone,
            )
        offered = [] if data.final_turn else specs
        response = await self._stream(call, messages, tools=offered)
        if response.tool_calls and not data.final_turn:
            return await self._store_calls(
                data, call, response, opening, tools, approve_every_call, context_tokens
            )
        return await self._store_answer(data, call, response, opening, context_tokens)

    async def _conversation(
        self, session: AsyncSession, data: ExecuteTurnInput
    ) -> list[ChatMessage]:
        stored = await ConversationRepository(session).messages(
            data.task_id, data.milestone_key, data.attempt
        )
        calls = await ToolCallRepository(session).for_attempt(
            data.task_id, data.milestone_key, data.attempt
        )
        return conversation_messages(stored, calls)

    async def _store_calls(
        self,
        data: ExecuteTurnInput,
        call: Call,
        response: LLMResponse,
        opening: list[ChatMessage],
        tools: dict[str, ToolSpec],
        approve_every_call: bool,
        context_tokens: int,
    ) -> ExecuteOutput:
        checked = [checked_call(c, tools, approve_every_call) for c in response.tool_calls]
        async with self._db.session() as session, session.begin():
            await ConversationRepository(session).append(
                data.task_id,
                data.milestone_key,
                data.attempt,
                [
                    *(NewMessage(m.role, m.content, data.turn) for m in opening),
                    NewMessage(
                        "assistant",
                        response.content,
                        data.turn,
                        [c.model_dump(mode="json") for c in response.tool_calls],
                    ),
                ],
            )
            rows = await ToolCallRepository(session).add_turn(
                data.task_id, data.milestone_key, data.attempt, data.turn, checked
            )
            refs = [call_ref(row, tools) for row in rows]
            output = ExecuteOutput(
                outcome=ExecuteOutcome.TOOL_CALLS,
                context_tokens=context_tokens,
                output_preview=preview(response.content),
                usage=call_usage(response),
                tool_calls=refs,
            )
            names = ", ".join(ref.label for ref in refs)
            await self._commit_call(
                session,
                call,
                response,
                output,
                f"{data.milestone_key}: turn {data.turn + 1} calls {names}",
                extra=[_rejected_draft(call, data, row) for row in rows if row.result],
            )
        # Counted once the calls are stored (a retried turn returns the stored ones instead).
        for ref in refs:
            if ref.status == ToolCallStatus.REJECTED:
                count_tool_call(ref.server, ref.tool, ref.status)
        return output

    async def _store_answer(
        self,
        data: ExecuteTurnInput,
        call: Call,
        response: LLMResponse,
        opening: list[ChatMessage],
        context_tokens: int,
    ) -> ExecuteOutput:
        output = attempt_done(response, context_tokens)
        async with self._db.session() as session, session.begin():
            await ConversationRepository(session).append(
                data.task_id,
                data.milestone_key,
                data.attempt,
                [
                    *(NewMessage(m.role, m.content, data.turn) for m in opening),
                    NewMessage("assistant", response.content, data.turn),
                ],
            )
            await record_attempt_output(session, data, response)
            await self._commit_call(
                session,
                call,
                response,
                output,
                f"{data.milestone_key}: attempt {data.attempt} done",
                milestone_usage=False,
            )
        return output


def _rejected_draft(call: Call, data: ExecuteTurnInput, row: ToolCallRecord) -> EventDraft:
    """`TOOL_CALL_FAILED` of a call rejected before it ran (no call was made)."""
    return draft(
        f"tool-rejected-{row.position}",
        EventType.TOOL_CALL_FAILED,
        task_id=call.task_id,
        session_id=call.session_id,
        milestone_id=call.milestone_id,
        message=f"{row.function_name}: rejected, not called"[:1000],
        details={
            "key": data.milestone_key,
            "tool_call": str(row.id),
            "call_id": row.call_id,
            "server": row.server,
            "tool": row.tool,
            "arguments": row.arguments,
            "error": preview(row.result or ""),
            "result_chars": len(row.result or ""),
            "is_error": True,
            "attempt": activity.info().attempt,
        },
    )
