"""Task-level facts several activities report: model routes and `TASK_PROGRESS`.

Both used to be activities of their own; they are now part of the activity whose state
change they follow (routes in `start_task` / `classify`, progress in `verify` /
`mark_milestone`), which saves a workflow round trip each.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from activities.common import draft
from agent.contract.task import ModelChoice, Totals
from agent.events.types import AgentRole, EventType, MilestoneStatus, TaskComplexity, TaskStatus
from agent.llm.routing import ModelRouter
from agent.llm.types import Usage
from agent.repositories.events import EventDraft, EventRepository
from agent.repositories.milestones import MilestoneRepository
from agent.repositories.tasks import TaskRepository

DONE_STATUSES = frozenset({MilestoneStatus.PASSED, MilestoneStatus.FAILED, MilestoneStatus.SKIPPED})
"""Milestone statuses that count as done in `TASK_PROGRESS`."""


def model_routes(router: ModelRouter, complexity: TaskComplexity) -> dict[AgentRole, ModelChoice]:
    """The model and context budget of every role for a complexity.

    Routing reads settings, so it runs in an activity: the workflow records the choice
    and a running task keeps its models even if the configuration changes.
    """
    routes = {}
    for role in AgentRole:
        route = router.route(complexity, role)
        routes[role] = ModelChoice(
            model=route.model, context_budget_tokens=route.context_budget_tokens
        )
    return routes


async def progress_draft(
    session: AsyncSession,
    index: int | str,
    *,
    task_id: UUID,
    session_id: UUID | None,
    milestone_key: str,
    pending_usage: Usage | None = None,
    pending_cost_usd: float | None = None,
) -> EventDraft:
    """`TASK_PROGRESS` with milestone counts and usage totals as of the caller's commit.

    Call it in the caller's transaction after its milestone update. It first takes the
    task's append locks (held until commit): milestones finishing together each count in
    their own transaction, and without the lock each would miss the other's uncommitted
    update ("1/2 done" twice). Under the lock the count sees every earlier commit, and
    a later one waits for this commit. `pending_usage` is usage the same transaction
    adds after appending this event.
    """
    await EventRepository(session).lock_task(task_id, [session_id])
    counts = await MilestoneRepository(session).count_by_status(task_id)
    stored = await TaskRepository(session).usage_totals(task_id)
    usage = pending_usage or Usage()
    totals = Totals(
        input_tokens=stored.input_tokens + usage.input_tokens,
        output_tokens=stored.output_tokens + usage.output_tokens,
        cost_usd=stored.cost_usd + (pending_cost_usd or 0.0),
        cost_unknown=stored.cost_unknown or (usage.total_tokens > 0 and pending_cost_usd is None),
    )
    total = sum(counts.values())
    done = sum(counts[s] for s in DONE_STATUSES)
    return draft(
        index,
        EventType.TASK_PROGRESS,
        task_id=task_id,
        session_id=session_id,
        status=TaskStatus.RUNNING,
        message=f"{done}/{total} milestones done",
        details={
            "milestone_key": milestone_key,
            "counts": {k.value: v for k, v in counts.items()},
            "total_milestones": total,
            "done": done,
            "totals": totals.model_dump(mode="json"),
        },
    )
