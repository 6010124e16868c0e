"""Scenarios 2-4: the API, PostgreSQL (and the listener's connection) and Temporal restart.

Scenario 2: the API process is SIGKILLed and restarted while 20 WebSocket clients follow
tasks; they reconnect with `after_seq`. In every scenario here the tasks also belong to
two sessions, each followed on its session socket, reconnecting with its cursor.
Scenario 3: the API's LISTEN connection is terminated; PostgreSQL itself is restarted.
Scenario 4: the Temporal dev server is restarted on its state file (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select

from agent.db.models import Task
from tests.chaos.clients import Api, Follower, SessionFollower, follow_all, new_tag
from tests.chaos.harness import Cluster
from tests.chaos.scenario import finish, reference_outcomes

TEMPLATES = [
    "Outline a talk on bridges [milestones=4][plan=sequential][tps=300]",
    "List birds of the coast [milestones=3][plan=diamond][fail_first=1][tps=300]",
]
OPTIONS: dict[str, Any] = {"max_attempts": 2, "complexity": "simple"}


async def _total_seq(cluster: Cluster, task_ids: list[uuid.UUID]) -> int:
    """Sum of the tasks' last sequence numbers (0 while the database is down)."""
    try:
        async with cluster.db().session() as session:
            rows = await session.execute(select(Task.last_event_seq).where(Task.id.in_(task_ids)))
            return sum(rows.scalars())
    except Exception:
        return 0


async def _after_progress(cluster: Cluster, task_ids: list[uuid.UUID], rng: random.Random) -> None:
    """Wait until the tasks moved on since now, then a random moment more."""
    before = await _total_seq(cluster, task_ids)
    while await _total_seq(cluster, task_ids) <= before:
        await asyncio.sleep(0.2)
    await asyncio.sleep(rng.uniform(0.3, 2.0))


SESSIONS = 2
"""Tasks are spread over this many sessions, each also followed on its session socket."""


async def _run(
    cluster: Cluster,
    name: str,
    n_tasks: int,
    faults: list[Callable[[], Awaitable[None]]],
    seed: int,
) -> list[Follower]:
    rng = random.Random(seed)
    owner = cluster.users[0]
    api = Api(cluster.api_url, owner.key)
    sessions = [uuid.uuid4() for _ in range(SESSIONS)]
    try:
        reference = await reference_outcomes(cluster, api, TEMPLATES, **OPTIONS)
        templates = [TEMPLATES[i % len(TEMPLATES)] for i in range(n_tasks)]
        task_ids = [
            await api.create_task(
                f"{t} {new_tag()}", session_id=str(sessions[i % SESSIONS]), **OPTIONS
            )
            for i, t in enumerate(templates)
        ]
        expected = {i: reference[t] for i, t in zip(task_ids, templates, strict=True)}
        followers = follow_all(cluster.ws_url, owner.key, task_ids)
        session_followers = [
            SessionFollower(
                cluster.ws_url, s, owner.key, sum(1 for i in range(n_tasks) if i % SESSIONS == n)
            )
            for n, s in enumerate(sessions)
        ]
        runs = [asyncio.create_task(f.run()) for f in followers]
        runs += [asyncio.create_task(f.run()) for f in session_followers]
        for fault in faults:
            await _after_progress(cluster, task_ids, rng)
            await fault()
        for task_id in task_ids:
            await api.wait_status(task_id)
        await asyncio.gather(*runs)
        views = [view for sf in session_followers for view in sf.per_task()]
        report = await finish(cluster, name, api, task_ids, expected, [*followers, *views])
    finally:
        await api.aclose()
    assert report.violations == []
    return followers


async def _restart_api(cluster: Cluster) -> None:
    assert cluster.api is not None
    cluster.api.kill()
    await asyncio.sleep(0.5)
    cluster.start_api()
    await cluster.wait_api_ready()


def _api_faults(cluster: Cluster, times: int) -> list[Callable[[], Awaitable[None]]]:
    return [lambda: _restart_api(cluster) for _ in range(times)]


@pytest.mark.chaos
@pytest.mark.chaos_quick
@pytest.mark.timeout(600)
async def test_api_restart_quick(cluster_factory: Callable[..., Any]) -> None:
    cluster: Cluster = await cluster_factory()
    followers = await _run(cluster, "api-restart", 4, _api_faults(cluster, 1), seed=2)
    assert all(f.connects >= 2 for f in followers if f.events)


@pytest.mark.chaos
@pytest.mark.xdist_group("kills")
@pytest.mark.timeout(900)
async def test_api_killed_while_20_clients_follow(cluster_factory: Callable[..., Any]) -> None:
    cluster: Cluster = await cluster_factory()
    followers = await _run(cluster, "api-restart", 20, _api_faults(cluster, 2), seed=3)
    assert sum(f.connects for f in followers) >= 2 * len(followers)


@pytest.mark.chaos
@pytest.mark.timeout(900)
async def test_listener_connection_killed_and_postgres_restarted(
    cluster_factory: Callable[..., Any],
) -> None:
    cluster: Cluster = await cluster_factory()
    terminated: list[int] = []

    async def kill_listener() -> None:
        terminated.append(await cluster.terminate_listeners())

    await _run(cluster, "postgres", 10, [kill_listener, cluster.restart_postgres], seed=4)
    assert terminated
    assert terminated[0] >= 1


@pytest.mark.chaos
@pytest.mark.timeout(900)
async def test_temporal_restarted_with_its_state_file(
    cluster_factory: Callable[..., Any],
) -> None:
    cluster: Cluster = await cluster_factory()

    async def restart_temporal() -> None:
        await cluster.restart_temporal()

    async def kill_and_restart_temporal() -> None:
        await cluster.restart_temporal(hard=True)

    await _run(cluster, "temporal", 10, [restart_temporal, kill_and_restart_temporal], seed=5)
