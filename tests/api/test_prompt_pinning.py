"""A task keeps the prompt versions it pinned at start when a new version is published."""

from __future__ import annotations

from uuid import UUID

from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from agent.db.models import Task
from agent.db.session import DatabaseSessionManager
from agent.events.types import AgentRole, EventType, TaskStatus
from agent.prompts.defaults import DEFAULT_PROMPTS
from agent.repositories.events import EventRepository
from tests.api.conftest import ApiUser, RunningApi
from tests.api.live_worker import running_worker, wait_finished, wait_paused
from tests.recording_simulator import recording_simulator

PINNED_GOAL = "Write two notes on owls [milestones=2] [plan=sequential]"
LATER_GOAL = "Write two notes on larks [milestones=2] [plan=sequential]"
NEW_WORKER_PROMPT = (
    "You are a worker agent, version two. Carry out the milestone you are given and "
    "answer with its complete result."
)


async def pinned_versions(manager: DatabaseSessionManager, task_id: str) -> dict[str, int]:
    async with manager.session() as session:
        task = await session.get(Task, UUID(task_id))
        assert task is not None
        return dict(task.prompt_versions or {})


async def test_prompt_published_mid_task_does_not_change_the_pinned_version(
    api: RunningApi,
    alice: ApiUser,
    operator: ApiUser,
    temporal_dev_env: WorkflowEnvironment,
    session_manager: DatabaseSessionManager,
    redis_client: Redis,
) -> None:
    # The worker reads prompts through the Redis cache as deployed: publishing moves the
    # cache's `latest` pointer while the task is paused.
    async with (
        recording_simulator() as sim,
        running_worker(
            temporal_dev_env.client, api.settings, session_manager, sim.base_url, redis_client
        ),
        api.client(alice.key) as http,
        api.client(operator.key) as admin_http,
    ):
        # Arrange: a task paused after its plan (prompt versions pinned at its start).
        created = await http.post(
            "/v1/tasks",
            json={"goal": PINNED_GOAL, "complexity": "simple", "breakpoints": ["after_plan"]},
        )
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        paused = await wait_paused(http, task_id)
        pinned_before = await pinned_versions(session_manager, task_id)

        # Act: publish worker v2, resume; then a new task starts after the publication.
        published = await admin_http.post(
            "/v1/prompts", json={"name": "worker", "content": NEW_WORKER_PROMPT}
        )
        resumed = await http.post(
            f"/v1/tasks/{task_id}/resume",
            json={"breakpoint_id": paused["paused"]["breakpoint_id"], "action": "continue"},
        )
        final = await wait_finished(http, task_id)
        later = await http.post("/v1/tasks", json={"goal": LATER_GOAL, "complexity": "simple"})
        later_id = later.json()["id"]
        later_final = await wait_finished(http, later_id)

    # Assert
    assert published.status_code == 201, published.text
    assert published.json()["version"] == 2
    assert resumed.status_code == 200, resumed.text
    assert final["status"] == TaskStatus.COMPLETED
    assert later_final["status"] == TaskStatus.COMPLETED
    assert pinned_before["worker"] == 1
    assert await pinned_versions(session_manager, task_id) == pinned_before
    pinned_calls = sim.calls(AgentRole.WORKER, "Goal: Write two notes on owls")
    assert len(pinned_calls) == 2
    assert [c.system for c in pinned_calls] == [DEFAULT_PROMPTS[AgentRole.WORKER]] * 2
    async with session_manager.session() as session:
        events = await EventRepository(session).list_after(UUID(task_id), 0, 500)
    started = next(e for e in events if e.type == EventType.TASK_STARTED)
    assert started.details["prompt_versions"] == pinned_before
    # Control: the publication did take effect, for the task started after it.
    assert (await pinned_versions(session_manager, later_id))["worker"] == 2
    later_calls = sim.calls(AgentRole.WORKER, "Goal: Write two notes on larks")
    assert len(later_calls) == 2
    assert [c.system for c in later_calls] == [NEW_WORKER_PROMPT] * 2
