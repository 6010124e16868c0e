"""`TaskView`: a task's live state, folded from a snapshot and the events after it.

Pure state (no I/O, no rendering): the CLI renders it with rich, tests inspect it. The
snapshot (`GET /v1/tasks/{id}`) already reflects every event up to its
`last_event_seq`, so usage of later events only is added on top of it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from agent.client.models import TaskDetail
from agent.contract.task import PauseState, Totals
from agent.events.types import AgentActivityEvent, EventType, MilestoneStatus, TaskStatus

RECENT_EVENTS = 40
STREAM_TAIL_CHARS = 4000
TASK_STREAM = "_task"
"""Stream key of agents that work for the whole task (classifier, planner, summariser)."""

TERMINAL_EVENTS: dict[EventType, TaskStatus] = {
    EventType.TASK_COMPLETED: TaskStatus.COMPLETED,
    EventType.TASK_FAILED: TaskStatus.FAILED,
    EventType.TASK_CANCELLED: TaskStatus.CANCELLED,
}
DONE_STATUSES = frozenset({MilestoneStatus.PASSED, MilestoneStatus.FAILED, MilestoneStatus.SKIPPED})


@dataclass
class MilestoneState:
    """One milestone as the view shows it."""

    key: str
    title: str
    depends_on: list[str]
    status: MilestoneStatus
    position: int = 0
    milestone_id: UUID | None = None
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class StreamState:
    """The streaming text of one agent run (reset when a retry starts over)."""

    label: str
    agent: str
    text: str = ""
    attempt_key: tuple[Any, ...] = ()
    active: bool = True


@dataclass
class ProviderWaiting:
    """A call of the task waiting out a provider outage (from its `LLM_WAITING` event)."""

    model: str
    since: str
    next_try_at: str
    last_error: str


@dataclass
class TaskView:
    """A task's state for a live display."""

    task_id: UUID
    goal: str
    status: TaskStatus
    workflow_id: str
    totals: Totals
    snapshot_seq: int
    milestones: dict[str, MilestoneState] = field(default_factory=dict)
    streams: dict[str, StreamState] = field(default_factory=dict)
    recent: deque[AgentActivityEvent] = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))
    paused: PauseState | None = None
    last_seq: int = 0
    result: str | None = None
    failure_reason: str | None = None
    plan_stale: bool = False
    """Set when the plan changed (planned, edited): the caller should re-read the task."""
    waiting: dict[str, ProviderWaiting] = field(default_factory=dict)
    """Calls waiting out a provider outage, by stream key, until they recover or end."""

    @classmethod
    def from_detail(cls, detail: TaskDetail) -> TaskView:
        """Build the view from a task snapshot."""
        view = cls(
            task_id=detail.id,
            goal=detail.goal,
            status=detail.status,
            workflow_id=detail.workflow_id,
            totals=detail.totals.model_copy(),
            snapshot_seq=detail.last_event_seq,
            paused=detail.paused,
            result=detail.result,
            failure_reason=detail.failure_reason,
        )
        view.merge_plan(detail)
        return view

    def merge_plan(self, detail: TaskDetail) -> None:
        """Take the plan (and milestone usage) of a fresher snapshot."""
        self.milestones = {
            m.key: MilestoneState(
                key=m.key,
                title=m.title,
                depends_on=list(m.depends_on),
                status=m.status,
                position=m.position,
                milestone_id=m.id,
                attempts=m.attempts,
                input_tokens=m.input_tokens,
                output_tokens=m.output_tokens,
                cost_usd=m.cost_usd,
            )
            for m in sorted(detail.milestones, key=lambda m: m.position)
        }
        if detail.last_event_seq >= self.last_seq:
            self.totals = detail.totals.model_copy()
            self.snapshot_seq = detail.last_event_seq
        self.paused = detail.paused
        self.result = detail.result
        self.failure_reason = detail.failure_reason
        self.plan_stale = False

    @property
    def done_count(self) -> int:
        """Milestones that passed, failed or were skipped."""
        return sum(1 for m in self.milestones.values() if m.status in DONE_STATUSES)

    @property
    def is_terminal(self) -> bool:
        """Whether the task has ended."""
        return self.status.is_terminal

    def key_of(self, milestone_id: UUID | None) -> str | None:
        """The key of a milestone id, when known."""
        if milestone_id is None:
            return None
        for milestone in self.milestones.values():
            if milestone.milestone_id == milestone_id:
                return milestone.key
        return None

    def active_streams(self) -> list[StreamState]:
        """Streams of agents still running, oldest first."""
        return [s for s in self.streams.values() if s.active and s.text]

    def apply(self, event: AgentActivityEvent) -> None:
        """Fold one event (stored or ephemeral) into the view."""
        if event.type is EventType.LLM_CHUNK:
            self._apply_chunk(event)
            return
        if event.sequence_number is not None:
            self.last_seq = max(self.last_seq, event.sequence_number)
        self.recent.append(event)
        fresh = event.sequence_number is not None and event.sequence_number > self.snapshot_seq
        details = event.details
        key = details.get("key") or self.key_of(event.milestone_id)
        milestone = self.milestones.get(key) if isinstance(key, str) else None
        totals = details.get("totals")
        if isinstance(totals, dict):
            self.totals = Totals.model_validate(totals)
            self.snapshot_seq = max(self.snapshot_seq, event.sequence_number or 0)
        match event.type:
            case EventType.TASK_STARTED:
                self.status = TaskStatus.RUNNING
            case EventType.TASK_PAUSED | EventType.BREAKPOINT_HIT:
                self.status = TaskStatus.PAUSED
                if event.type is EventType.BREAKPOINT_HIT:
                    self.paused = PauseState.model_validate(details)
            case EventType.BREAKPOINT_RESUMED:
                self.status = TaskStatus.RUNNING
                self.paused = None
                self.plan_stale = True
            case EventType.MILESTONE_STATUS_CHANGED | EventType.MILESTONE_RETRY:
                if milestone is not None and event.status is not None:
                    milestone.status = MilestoneStatus(event.status)
                    attempt = details.get("next_attempt") or details.get("attempt")
                    if isinstance(attempt, int):
                        milestone.attempts = max(milestone.attempts, attempt)
            case EventType.MILESTONE_COMPLETED | EventType.MILESTONE_FAILED:
                if milestone is not None and event.status is not None:
                    milestone.status = MilestoneStatus(event.status)
                self._close_streams(key if isinstance(key, str) else None)
            case EventType.AGENT_STARTED:
                self._open_stream(event, key if isinstance(key, str) else None)
                # Work on a milestone means it runs, whichever event announced that first.
                if milestone is not None and milestone.status is MilestoneStatus.PENDING:
                    milestone.status = MilestoneStatus.IN_PROGRESS
            case EventType.AGENT_COMPLETED | EventType.AGENT_FAILED:
                stream = self.streams.get(self._stream_key(event, key))
                if stream is not None:
                    stream.active = False
                if event.agent is not None and event.agent.value == "planner" and "plan" in details:
                    self.plan_stale = True
            case EventType.LLM_COMPLETE:
                if fresh:
                    self._add_usage(details.get("usage"), milestone)
            case EventType.LLM_WAITING:
                self.waiting[self._stream_key(event, key)] = ProviderWaiting(
                    model=str(details.get("model", "")),
                    since=str(details.get("since", "")),
                    next_try_at=str(details.get("next_try_at", "")),
                    last_error=str(details.get("last_error", "")),
                )
            case EventType.LLM_RECOVERED:
                self.waiting.pop(self._stream_key(event, key), None)
            case _:
                pass
        if event.type in TERMINAL_EVENTS:
            self.status = TERMINAL_EVENTS[event.type]
            self.paused = None
            reason = details.get("reason")
            self.failure_reason = reason if isinstance(reason, str) else self.failure_reason
            for stream in self.streams.values():
                stream.active = False
            self.waiting.clear()

    def _add_usage(self, usage: Any, milestone: MilestoneState | None) -> None:
        if not isinstance(usage, dict):
            return
        tokens_in = int(usage.get("input_tokens") or 0)
        tokens_out = int(usage.get("output_tokens") or 0)
        cost = usage.get("cost_usd")
        self.totals = self.totals.model_copy(
            update={
                "input_tokens": self.totals.input_tokens + tokens_in,
                "output_tokens": self.totals.output_tokens + tokens_out,
                "cost_usd": self.totals.cost_usd + float(cost or 0.0),
                "cost_unknown": self.totals.cost_unknown or cost is None,
                "estimated": self.totals.estimated or usage.get("usage_source") == "estimated",
            }
        )
        if milestone is not None:
            milestone.input_tokens += tokens_in
            milestone.output_tokens += tokens_out
            milestone.cost_usd += float(cost or 0.0)

    def _stream_key(self, event: AgentActivityEvent, key: Any) -> str:
        agent = event.agent.value if event.agent is not None else "agent"
        return f"{key if isinstance(key, str) else TASK_STREAM}:{agent}"

    def _open_stream(self, event: AgentActivityEvent, key: str | None) -> None:
        agent = event.agent.value if event.agent is not None else "agent"
        attempt = event.details.get("attempt")
        label = f"{key} · {agent}" if key else agent
        if isinstance(attempt, int):
            label += f" · attempt {attempt}"
        self.streams[self._stream_key(event, key)] = StreamState(label=label, agent=agent)

    def _close_streams(self, key: str | None) -> None:
        prefix = f"{key}:"
        for name, stream in self.streams.items():
            if name.startswith(prefix):
                stream.active = False

    def _apply_chunk(self, event: AgentActivityEvent) -> None:
        key = self.key_of(event.milestone_id)
        name = self._stream_key(event, key)
        details = event.details
        attempt_key = (
            details.get("activity_id"),
            details.get("attempt"),
            details.get("milestone_attempt"),
        )
        stream = self.streams.get(name)
        if stream is None:
            agent = event.agent.value if event.agent is not None else "agent"
            label = f"{key} · {agent}" if key else agent
            stream = StreamState(label=label, agent=agent)
            self.streams[name] = stream
        if stream.attempt_key != attempt_key:
            # A retried activity streams its answer again from the start.
            stream.text = ""
            stream.attempt_key = attempt_key
        stream.active = True
        text = details.get("text")
        stream.text = (stream.text + (text if isinstance(text, str) else event.message))[
            -STREAM_TAIL_CHARS:
        ]
