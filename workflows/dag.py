"""The milestone DAG as the workflow tracks it: pure bookkeeping and scheduling rules.

No workflow APIs: `TaskWorkflow` keeps a `MilestoneState` per milestone (texts stay in
PostgreSQL) and asks these helpers which milestones to start, in which order to show
them, and how a plan edit carries the states over.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.models import PlanItem
    from agent.contract.plan import Plan, ready_milestones
    from agent.events.types import MilestoneStatus

VERDICT_STATUSES = frozenset({MilestoneStatus.PASSED, MilestoneStatus.FAILED})
"""Verdicts after which the verifier's activity has reported the task's progress."""


@dataclass
class MilestoneState:
    """What the workflow tracks of one milestone (its texts stay in PostgreSQL)."""

    key: str
    title: str
    depends_on: list[str]
    milestone_id: UUID
    status: MilestoneStatus = MilestoneStatus.PENDING
    attempts: int = 0


def states_of_plan(items: Iterable[PlanItem]) -> dict[str, MilestoneState]:
    """Fresh states (pending, no attempts) of the planner's persisted milestones."""
    return {
        m.key: MilestoneState(
            key=m.key, title=m.title, depends_on=m.depends_on, milestone_id=m.milestone_id
        )
        for m in items
    }


def states_after_edit(
    previous: Mapping[str, MilestoneState], plan: Plan, milestone_ids: Mapping[str, UUID]
) -> dict[str, MilestoneState]:
    """The states of an edited plan.

    A milestone that stays keeps its state object (a running milestone's coroutine holds
    it), updated in place with its new title and dependencies; a new one starts pending.

    Args:
        previous: The states before the edit.
        plan: The edited plan.
        milestone_ids: Ids of the edited plan's milestones (key -> id), as persisted.

    Returns:
        The states in the edited plan's order.
    """
    states: dict[str, MilestoneState] = {}
    for spec in plan.milestones:
        old = previous.get(spec.key)
        if old is not None:
            old.title, old.depends_on = spec.title, list(spec.depends_on)
            states[spec.key] = old
        else:
            states[spec.key] = MilestoneState(
                key=spec.key,
                title=spec.title,
                depends_on=list(spec.depends_on),
                milestone_id=milestone_ids[spec.key],
            )
    return states


def plan_keys(plan: Plan | None) -> list[str]:
    """Milestone keys in plan order (none before there is a plan)."""
    return plan.keys if plan is not None else []


def in_plan_order(plan: Plan | None, states: Mapping[str, MilestoneState]) -> list[MilestoneState]:
    """The milestone states in plan order."""
    return [states[k] for k in plan_keys(plan) if k in states]


def statuses(states: Mapping[str, MilestoneState]) -> dict[str, MilestoneStatus]:
    """Every milestone's status (key -> status)."""
    return {k: m.status for k, m in states.items()}


def status_counts(states: Mapping[str, MilestoneState]) -> dict[MilestoneStatus, int]:
    """How many milestones are in each status (every status present, zeros included)."""
    counts = dict.fromkeys(MilestoneStatus, 0)
    for milestone in states.values():
        counts[milestone.status] += 1
    return counts


def any_failed(states: Mapping[str, MilestoneState]) -> bool:
    """Whether a milestone ended failed (the task then fails)."""
    return any(m.status == MilestoneStatus.FAILED for m in states.values())


def position_label(plan: Plan | None, key: str) -> str:
    """A milestone's position such as `M3/7` (`M0/n` when the plan no longer has it)."""
    keys = plan_keys(plan)
    position = keys.index(key) + 1 if key in keys else 0
    return f"M{position}/{len(keys)}"


def running_in_order(plan: Plan | None, running: Collection[str]) -> list[str]:
    """The running milestones' keys in plan order."""
    return [k for k in plan_keys(plan) if k in running]


def milestones_to_start(
    plan: Plan,
    states: Mapping[str, MilestoneState],
    running: Collection[str],
    max_parallel: int,
) -> list[str]:
    """The ready milestones to start now, so that at most `max_parallel` run at once.

    Args:
        plan: The current plan.
        states: The milestone states.
        running: Keys of the milestones running now.
        max_parallel: The task's limit of milestones running at once.

    Returns:
        Keys in plan order.
    """
    ready = ready_milestones(plan, statuses(states), running)
    return ready[: max(0, max_parallel - len(running))]


def feedback_for(
    task_feedback: Sequence[str], milestone_feedback: Mapping[str, Sequence[str]], key: str
) -> str | None:
    """A person's notes for a milestone's worker: the task-wide ones, then its own."""
    notes = [*task_feedback, *milestone_feedback.get(key, [])]
    return "\n\n".join(notes) if notes else None
