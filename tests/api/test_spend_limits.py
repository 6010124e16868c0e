"""Daily spend limits per user: new tasks are refused with 429 until the window resets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import update
from temporalio.testing import WorkflowEnvironment

from agent.config import Settings
from agent.db.models import Task
from agent.db.session import DatabaseSessionManager
from agent.events.types import TaskStatus
from agent.repositories.tasks import TaskRepository
from api.errors import ApiError
from api.services.task_creation import check_daily_spend
from tests.api.conftest import ApiUser, RunningApi
from tests.api.live_worker import running_worker, wait_finished, wait_for_task, wait_paused
from tests.recording_simulator import recording_simulator

ApiFactory = Callable[[Settings], Awaitable[RunningApi]]
TASK = {"goal": "Write a haiku about owls", "complexity": "simple"}
ONE_MILESTONE = "Write a haiku about owls [milestones=1]"


async def _record_usage(manager: DatabaseSessionManager, task_id: str, tokens: int) -> None:
    async with manager.session() as session:
        await session.execute(
            update(Task).where(Task.id == UUID(task_id)).values(input_tokens=tokens)
        )
        await session.commit()


async def test_new_tasks_are_refused_once_the_daily_limit_is_spent(
    api_factory: ApiFactory,
    api_settings: Settings,
    alice: ApiUser,
    bob: ApiUser,
    operator: ApiUser,
    session_manager: DatabaseSessionManager,
) -> None:
    api = await api_factory(api_settings.model_copy(update={"user_daily_token_limit": 100}))
    async with api.client(alice.key) as http, api.client(bob.key) as other:
        first = await http.post("/v1/tasks", json=TASK, headers={"Idempotency-Key": "first"})
        await _record_usage(session_manager, first.json()["id"], 150)

        refused = await http.post("/v1/tasks", json=TASK)
        replay = await http.post("/v1/tasks", json=TASK, headers={"Idempotency-Key": "first"})
        bobs = await other.post("/v1/tasks", json=TASK)
        async with api.client(operator.key) as admin:
            raised = await admin.put(
                "/v1/admin/users/alice/limits", json={"daily_token_limit": 1000}
            )
            forbidden = await http.put(
                "/v1/admin/users/alice/limits", json={"daily_token_limit": 10**9}
            )
        allowed = await http.post("/v1/tasks", json=TASK)

    assert first.status_code == 201, first.text
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "spend_limit_reached"
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert error["details"]["window_resets_at"].startswith(tomorrow)
    assert error["details"]["tokens_spent"] == 150
    assert error["details"]["token_limit"] == 100
    assert "resets at" in error["message"]
    assert 0 < int(refused.headers["retry-after"]) <= 86_400
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert bobs.status_code == 201
    assert raised.status_code == 200, raised.text
    assert forbidden.status_code == 403
    assert allowed.status_code == 201


async def test_the_next_days_window_starts_empty(
    api: RunningApi,
    api_settings: Settings,
    alice: ApiUser,
    session_manager: DatabaseSessionManager,
) -> None:
    settings = api_settings.model_copy(update={"user_daily_cost_limit_usd": 1.0})
    async with api.client(alice.key) as http:
        created = await http.post("/v1/tasks", json=TASK)
    async with session_manager.session() as session:
        await session.execute(
            update(Task).where(Task.id == UUID(created.json()["id"])).values(cost_usd=2.5)
        )
        await session.commit()

    async with session_manager.session() as session:
        try:
            await check_daily_spend(session, alice.id, settings)
        except ApiError as exc:
            today = exc
        else:
            raise AssertionError("today's spend is over the limit")
        await check_daily_spend(
            session, alice.id, settings, now=datetime.now(UTC) + timedelta(days=1)
        )

    assert today.code == "spend_limit_reached"
    assert today.details["cost_spent_usd"] == 2.5


async def test_a_running_task_pauses_when_another_task_spends_the_days_limit(
    api_factory: ApiFactory,
    api_settings: Settings,
    alice: ApiUser,
    temporal_dev_env: WorkflowEnvironment,
    session_manager: DatabaseSessionManager,
) -> None:
    # Arrange: alice's task waits before its milestone; another of her tasks then
    # records the whole day's limit.
    limit = 1_000_000
    api = await api_factory(api_settings.model_copy(update={"user_daily_token_limit": limit}))
    async with (
        recording_simulator() as sim,
        running_worker(temporal_dev_env.client, api.settings, session_manager, sim.base_url),
        api.client(alice.key) as http,
    ):
        created = await http.post(
            "/v1/tasks", json={**TASK, "goal": ONE_MILESTONE, "breakpoints": ["before_milestone"]}
        )
        task_id = created.json()["id"]
        before = await wait_paused(http, task_id)
        async with session_manager.session() as session, session.begin():
            other = await TaskRepository(session).create(user_id=alice.id, goal="Other work")
            other_id = str(other.id)
        await _record_usage(session_manager, other_id, limit)

        # Act: continue; the worker's call is refused at the limit, and alice aborts.
        await http.post(
            f"/v1/tasks/{task_id}/resume",
            json={"breakpoint_id": before["paused"]["breakpoint_id"], "action": "continue"},
        )
        at_limit = await wait_for_task(
            http,
            task_id,
            lambda t: t["paused"] is not None and t["paused"]["kind"] == "budget_exhausted",
            "the pause at the daily limit",
        )
        aborted = await http.post(
            f"/v1/tasks/{task_id}/resume",
            json={"breakpoint_id": at_limit["paused"]["breakpoint_id"], "action": "abort"},
        )
        final = await wait_finished(http, task_id)

    # Assert
    pause = at_limit["paused"]
    assert at_limit["status"] == TaskStatus.PAUSED.value
    assert pause["scope"] == "user_daily"
    assert "daily spend limit" in pause["reason"]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert pause["resets_at"].startswith(tomorrow)
    assert pause["timeout_at"] == pause["resets_at"]
    assert pause["default_action"] == "continue"
    assert aborted.status_code == 200, aborted.text
    assert (final["status"], final["failure_reason"]) == (TaskStatus.CANCELLED.value, "aborted")
