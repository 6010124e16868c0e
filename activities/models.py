"""Inputs and outputs of every activity: small, Pydantic, safe to import in workflow code.

Activities return ids, usage, verdicts and short previews; full texts (plans' descriptions,
outputs, summaries) stay in PostgreSQL (claim-check), so workflow histories stay small.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, Field

from agent.contract.spend import SpendWindow, UserSpendLimit
from agent.contract.task import MAX_MILESTONES, ModelChoice, PauseState, ResumeRequest, Totals
from agent.contract.tools import ToolCallRef
from agent.events.types import AgentRole, MilestoneStatus, TaskComplexity, TaskStatus
from agent.llm.types import Usage

PREVIEW_CHARS = 280
"""Length of the text previews activities hand back to the workflow."""


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """Return `text` cut to `limit` characters with an ellipsis when cut."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


class CallUsage(BaseModel):
    """Usage of one LLM call (or of the calls of one activity)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    model: str = ""
    estimated: bool = False
    """The provider reported no usage for (some of) these calls: it was estimated."""

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


class StreamUsage(BaseModel):
    """The usage an LLM activity attempt has streamed so far, carried in its heartbeats.

    When the attempt dies without recording it (worker killed mid-stream), the next
    attempt reads it from `activity.info().heartbeat_details` and bills it.
    """

    activity_attempt: int = Field(ge=1)
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_usd: float | None = 0.0
    estimated: bool = True
    """A stream cut short has no provider usage yet, so its usage is normally estimated."""

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def usage(self) -> Usage:
        """The streamed usage as an LLM `Usage`, with its provenance."""
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            estimated=self.estimated,
        )


class BudgetRemaining(BaseModel):
    """What a task may still spend; None means unlimited."""

    tokens: int | None = None
    cost_usd: float | None = None


class BudgetBlock(BaseModel):
    """An LLM call that was not made because its estimate would pass the budget."""

    estimated_tokens: int
    estimated_cost_usd: float | None = None
    remaining: BudgetRemaining
    user_daily: UserSpendLimit | None = None
    """Set when the user's daily spend limit refused the call (not the task's budget)."""


# --------------------------------------------------------------------------- task state


class StartTaskInput(BaseModel):
    """Input of `TaskActivities.start_task`; `complexity` is the one the user gave."""

    task_id: UUID
    session_id: UUID | None = None
    complexity: TaskComplexity | None = None


class StartTaskOutput(BaseModel):
    """Pinned prompt versions (role name -> version) and the routes to start with.

    `routes` are those of the given complexity, or of the trivial level (the cheapest
    models, for the classifier) when the task is still to be classified.
    """

    prompt_versions: dict[str, int]
    complexity: TaskComplexity | None = None
    routes: dict[AgentRole, ModelChoice] = Field(default_factory=dict)


class PauseInput(BaseModel):
    """Input of `TaskActivities.pause_task`: a breakpoint was hit."""

    task_id: UUID
    session_id: UUID | None = None
    pause: PauseState
    milestone_id: UUID | None = None
    totals: Totals


class DecisionInput(BaseModel):
    """Input of `TaskActivities.record_decision`: a person (or the timeout) decided."""

    task_id: UUID
    session_id: UUID | None = None
    pause: PauseState
    request: ResumeRequest
    timed_out: bool = False
    decided_at: datetime
    milestone_id: UUID | None = None
    plan_keys: list[str] = Field(default_factory=list)
    """Milestone keys of the plan after the edit, in order (positions)."""


class DecisionOutput(BaseModel):
    """Ids of the milestones after the decision's plan edit (key -> id)."""

    milestone_ids: dict[str, UUID] = Field(default_factory=dict)


class MilestoneMarkInput(BaseModel):
    """Input of `TaskActivities.mark_milestone`: a transition decided by the workflow."""

    task_id: UUID
    session_id: UUID | None = None
    milestone_id: UUID
    milestone_key: str
    status: MilestoneStatus
    reason: str = ""
    report_progress: bool = False
    """Also emit `TASK_PROGRESS` (the milestone is done: skipped)."""


class FinishInput(BaseModel):
    """Input of `TaskActivities.finish_task`: the task's terminal state."""

    task_id: UUID
    session_id: UUID | None = None
    status: TaskStatus
    failure_reason: str | None = None
    error: str | None = None
    totals: Totals
    counts: dict[MilestoneStatus, int] = Field(default_factory=dict)


# --------------------------------------------------------------------------- LLM calls


class LLMCallInput(BaseModel):
    """What every LLM activity needs: the task, the model, the prompt version, the budget."""

    task_id: UUID
    session_id: UUID | None = None
    model: str
    prompt_version: int | None = None
    budget: BudgetRemaining = Field(default_factory=BudgetRemaining)
    spend_window: SpendWindow | None = None
    """Check the user's daily spend limit in this window first (None: do not)."""


class LLMCallOutput(BaseModel):
    """What every LLM activity returns: usage (zero when blocked) and the budget block."""

    usage: CallUsage = Field(default_factory=CallUsage)
    blocked: BudgetBlock | None = None


class ClassifyInput(LLMCallInput):
    """Input of `AgentActivities.classify`."""


class ClassifyOutput(LLMCallOutput):
    """The complexity the classifier chose and the model of every role for it."""

    complexity: TaskComplexity | None = None
    routes: dict[AgentRole, ModelChoice] = Field(default_factory=dict)


class PlanInput(LLMCallInput):
    """Input of `AgentActivities.plan`; `feedback` is the previous answer's error."""

    attempt: int = Field(default=1, ge=1)
    feedback: str | None = None
    human_feedback: str | None = None
    max_milestones: int = Field(default=MAX_MILESTONES, ge=1)
    """The largest plan the task accepts: a longer answer is invalid (and asked again)."""


class PlanItem(BaseModel):
    """A milestone as the workflow carries it: no description (that stays in PostgreSQL)."""

    key: str
    title: str
    depends_on: list[str] = Field(default_factory=list)
    milestone_id: UUID


class PlanOutput(LLMCallOutput):
    """The persisted plan, or the validation error of an invalid answer."""

    valid: bool = False
    error: str | None = None
    milestones: list[PlanItem] = Field(default_factory=list)


class ExecuteOutcome(StrEnum):
    """How an execute call ended."""

    DONE = "done"
    BLOCKED = "blocked"
    CONTEXT_TOO_LARGE = "context_too_large"
    TOOL_CALLS = "tool_calls"
    """The model asked for tool calls (`ExecuteOutput.tool_calls`); the attempt goes on."""


class MilestoneCallInput(LLMCallInput):
    """Common input of the per-milestone LLM activities."""

    milestone_id: UUID
    milestone_key: str
    label: str = ""
    """Position label such as `M3/7`."""
    attempt: int = Field(default=1, ge=1)


class ExecuteInput(MilestoneCallInput):
    """Input of `AgentActivities.execute`."""

    context_budget_tokens: int = Field(gt=0)
    use_verifier_feedback: bool = False
    human_feedback: str | None = None
    compressed_context_seq: int | None = None
    """Sequence number of the compressor's `LLM_COMPLETE` event to use as context."""


class ExecuteOutput(LLMCallOutput):
    """Outcome of one execute attempt."""

    outcome: ExecuteOutcome = ExecuteOutcome.DONE
    context_tokens: int = 0
    output_preview: str = ""
    tool_calls: list[ToolCallRef] = Field(default_factory=list)
    """With `TOOL_CALLS`: the calls, stored in `tool_calls` (rejected ones already final)."""


class ExecuteTurnInput(ExecuteInput):
    """Input of `AgentActivities.execute_turn`: one model turn of a tool-using attempt."""

    turn: int = Field(default=0, ge=0)
    final_turn: bool = False
    """The attempt used its tool rounds: no tools are offered, the model must answer."""
    approve_every_call: bool = False
    """The task lists `before_tool` in its breakpoints: every call waits for a person."""


class VerifyInput(MilestoneCallInput):
    """Input of `AgentActivities.verify`."""

    max_attempts: int = Field(ge=1)


class VerifyOutput(LLMCallOutput):
    """The verifier's verdict and the milestone status it led to."""

    passed: bool = False
    feedback_preview: str = ""
    milestone_status: MilestoneStatus = MilestoneStatus.IN_PROGRESS


class CompressInput(MilestoneCallInput):
    """Input of `AgentActivities.compress`: shrink a milestone's context to `target_tokens`."""

    target_tokens: int = Field(gt=0)


class CompressOutput(LLMCallOutput):
    """Where the compressed context is stored and how much it shrank."""

    tokens_before: int = 0
    tokens_after: int = 0
    context_seq: int | None = None


class SummariseInput(LLMCallInput):
    """Input of `AgentActivities.summarise`."""


class SummariseOutput(LLMCallOutput):
    """A preview of the stored summary."""

    summary_preview: str = ""


# --------------------------------------------------------------------------- admission


class AdmitInput(BaseModel):
    """Input of `AdmissionActivities.admit_task`: a queued task whose slot is free."""

    task_id: UUID


class WithdrawInput(BaseModel):
    """Input of `AdmissionActivities.withdraw_task`: a queued task its owner cancelled."""

    task_id: UUID


class WatchInput(BaseModel):
    """Input of `AdmissionActivities.await_task_closed`: a task workflow to wait for."""

    workflow_id: str
