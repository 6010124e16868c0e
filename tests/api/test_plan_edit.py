"""A valid plan edit over HTTP, end to end: add, change and remove at `after_plan`."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from agent.db.models import BreakpointDecision, Milestone
from agent.db.session import DatabaseSessionManager
from agent.events.types import AgentRole, EventType, MilestoneStatus, TaskStatus
from agent.repositories.events import EventRepository
from tests.api.conftest import ApiUser, RunningApi
from tests.api.live_worker import running_worker, wait_finished, wait_paused
from tests.recording_simulator import recording_simulator

GOAL = "Write three notes on bees [milestones=3] [plan=sequential]"
NEW_TITLE = "Collect bee facts"
NEW_DESCRIPTION = "List ten surprising facts about honey bees."


async def test_plan_edit_adds_changes_and_removes_milestones_and_is_audited(
    api: RunningApi,
    alice: ApiUser,
    temporal_dev_env: WorkflowEnvironment,
    session_manager: DatabaseSessionManager,
) -> None:
    async with (
        recording_simulator() as sim,
        running_worker(temporal_dev_env.client, api.settings, session_manager, sim.base_url),
        api.client(alice.key) as http,
    ):
        # Arrange: the planner's plan is m1 -> m2 -> m3.
        created = await http.post(
            "/v1/tasks",
            json={"goal": GOAL, "complexity": "simple", "breakpoints": ["after_plan"]},
        )
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        paused = await wait_paused(http, task_id)
        planned = {m["key"]: m["depends_on"] for m in paused["milestones"]}
        added = {
            "key": "review",
            "title": "Review the notes",
            "description": "Check every note for accuracy.",
            "depends_on": ["m2"],
        }
        edits = {
            "add": [added],
            "change": [{"key": "m1", "title": NEW_TITLE, "description": NEW_DESCRIPTION}],
            "remove": ["m3"],
        }

        # Act
        resumed = await http.post(
            f"/v1/tasks/{task_id}/resume",
            json={
                "breakpoint_id": paused["paused"]["breakpoint_id"],
                "action": "continue",
                "edits": edits,
                "feedback": "Keep it short.",
            },
        )
        final = await wait_finished(http, task_id)

    # Assert
    assert planned == {"m1": [], "m2": ["m1"], "m3": ["m2"]}
    assert resumed.status_code == 200, resumed.text
    assert final["status"] == TaskStatus.COMPLETED
    plan = {m["key"]: (m["title"], m["depends_on"], m["status"]) for m in final["milestones"]}
    m2_title = next(m["title"] for m in paused["milestones"] if m["key"] == "m2")
    assert plan == {
        "m1": (NEW_TITLE, [], MilestoneStatus.PASSED),
        "m2": (m2_title, ["m1"], MilestoneStatus.PASSED),
        "review": ("Review the notes", ["m2"], MilestoneStatus.PASSED),
    }
    m1 = next(m for m in final["milestones"] if m["key"] == "m1")
    assert m1["description"] == NEW_DESCRIPTION
    # The worker was given the edited milestone, and never the removed one.
    worker_calls = sim.calls(AgentRole.WORKER, "Goal: Write three notes on bees")
    m1_prompts = [c.prompt for c in worker_calls if "Milestone: m1\n" in c.prompt]
    assert len(m1_prompts) == 1
    assert f"Title: {NEW_TITLE}\nDescription: {NEW_DESCRIPTION}" in m1_prompts[0]
    assert not any("Milestone: m3\n" in c.prompt for c in worker_calls)
    assert sum("Milestone: review\n" in c.prompt for c in worker_calls) == 1
    async with session_manager.session() as session:
        rows = (
            await session.execute(select(Milestone).where(Milestone.task_id == UUID(task_id)))
        ).scalars()
        stored_keys = sorted(m.key for m in rows)
        decisions = list(
            (
                await session.execute(
                    select(BreakpointDecision).where(BreakpointDecision.task_id == UUID(task_id))
                )
            ).scalars()
        )
        events = await EventRepository(session).list_after(UUID(task_id), 0, 500)
    assert stored_keys == ["m1", "m2", "review"]
    assert len(decisions) == 1
    decision = decisions[0]
    assert (decision.kind, decision.action) == ("after_plan", "continue")
    assert decision.breakpoint_id == paused["paused"]["breakpoint_id"]
    assert decision.user_id == alice.id
    assert decision.feedback == "Keep it short."
    assert decision.edits == {
        "add": [added],
        "change": [
            {"key": "m1", "title": NEW_TITLE, "description": NEW_DESCRIPTION, "depends_on": None}
        ],
        "remove": ["m3"],
    }
    resumed_events = [e for e in events if e.type == EventType.BREAKPOINT_RESUMED]
    assert len(resumed_events) == 1
    assert resumed_events[0].details["user_id"] == str(alice.id)
    assert events[-1].type == EventType.TASK_COMPLETED
