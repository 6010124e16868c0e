"""Scenario 1: the worker is SIGKILLed at random moments; a new worker starts each time."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from agent.db.models import Event, Task
from agent.events.types import AgentRole, EventType, TaskStatus
from tests.chaos.clients import Api, follow_all, new_tag
from tests.chaos.harness import Cluster
from tests.chaos.scenario import finish, reference_outcomes, start_tasks

TEMPLATES = [
    "Write a short report on tide pools [milestones=3][plan=sequential]",
    "Survey note-taking methods [milestones=4][plan=diamond][fail_first=1]",
    "Compare three build tools [milestones=3][plan=parallel][fail_always=m2]",
]
OPTIONS: dict[str, Any] = {"max_attempts": 2, "complexity": "simple"}


async def _phases(cluster: Cluster, task_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """What each unfinished task is doing right now, judged by its last stored event."""
    phases: dict[uuid.UUID, str] = {}
    async with cluster.db().session() as session:
        for task_id in task_ids:
            task = await session.get(Task, task_id)
            if task is None or TaskStatus(task.status).is_terminal:
                continue
            last = (
                await session.execute(
                    select(Event)
                    .where(Event.task_id == task_id)
                    .order_by(Event.sequence_number.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            phases[task_id] = _phase(last)
    return phases


def _phase(event: Event | None) -> str:
    if event is None:
        return "starting"
    if event.type == EventType.AGENT_STARTED:
        return {
            AgentRole.PLANNER: "planning",
            AgentRole.WORKER: "streaming",
            AgentRole.VERIFIER: "verification",
            AgentRole.CLASSIFIER: "classifying",
            AgentRole.SUMMARISER: "summarising",
        }.get(AgentRole(event.agent) if event.agent else AgentRole.WORKER, "agent")
    if event.type in {
        EventType.MILESTONE_COMPLETED,
        EventType.MILESTONE_FAILED,
        EventType.MILESTONE_RETRY,
        EventType.MILESTONE_STATUS_CHANGED,
    }:
        return "between milestones"
    return "other"


async def _total_seq(cluster: Cluster, task_ids: list[uuid.UUID]) -> int:
    async with cluster.db().session() as session:
        rows = await session.execute(select(Task.last_event_seq).where(Task.id.in_(task_ids)))
        return sum(rows.scalars())


TARGET_PHASES = [
    {"planning"},
    {"streaming"},
    {"verification"},
    {"between milestones"},
]
"""What some unfinished task should be doing at each kill (all of a set at once)."""
PHASE_WAIT_SECONDS = 30.0


async def _kill_loop(
    cluster: Cluster, task_ids: list[uuid.UUID], kills: int, rng: random.Random
) -> tuple[Counter[uuid.UUID], Counter[str], list[str]]:
    """Kill the worker `kills` times, each when some task is in the next target phase.

    Returns:
        Kills seen per task, tasks per phase at the kills, and one line per kill that did
        not land in every phase of its target (the suite asserts there is none).
    """
    per_task: Counter[uuid.UUID] = Counter()
    phases_hit: Counter[str] = Counter()
    missed: list[str] = []
    for number in range(kills):
        target = TARGET_PHASES[number % len(TARGET_PHASES)]
        before = await _total_seq(cluster, task_ids)
        # Let the (new) worker move the tasks on, then wait for a random moment at which
        # an unfinished task is in the target phase.
        while await _total_seq(cluster, task_ids) <= before:
            await asyncio.sleep(0.2)
        await asyncio.sleep(rng.uniform(0.0, 0.5))
        # Kill when an unfinished task is in the target phase, or at the next moment
        # after PHASE_WAIT_SECONDS when none gets there.
        deadline = asyncio.get_running_loop().time() + PHASE_WAIT_SECONDS
        while True:
            phases = await _phases(cluster, task_ids)
            if not phases or target <= set(phases.values()):
                break
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.02)
        if not phases:
            missed.append(f"kill {number + 1}: every task had finished")
            break
        if not target <= set(phases.values()):
            missed.append(
                f"kill {number + 1}: wanted {sorted(target)}, tasks were in "
                f"{sorted(set(phases.values()))}"
            )
        cluster.kill_workers()
        cluster.start_worker()
        per_task.update(phases.keys())
        phases_hit.update(phases.values())
    return per_task, phases_hit, missed


async def _run(cluster: Cluster, n_tasks: int, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    owner = cluster.users[0]
    api = Api(cluster.api_url, owner.key)
    try:
        reference = await reference_outcomes(cluster, api, TEMPLATES, **OPTIONS)
        templates = [TEMPLATES[i % len(TEMPLATES)] for i in range(n_tasks)]
        goals = [f"{t} {new_tag()}" for t in templates]
        task_ids = await start_tasks(api, goals, **OPTIONS)
        expected = {i: reference[t] for i, t in zip(task_ids, templates, strict=True)}
        followers = follow_all(cluster.ws_url, owner.key, task_ids)
        follower_tasks = [asyncio.create_task(f.run()) for f in followers]
        per_task, phases, missed = await _kill_loop(cluster, task_ids, kills, rng)
        counts = Counter(per_task[t] for t in task_ids)
        print(
            f"worker kills: {kills}; unfinished tasks hit per phase: {dict(phases)}; "
            f"tasks by kills seen: {dict(sorted(counts.items()))}"
        )
        report = await finish(
            cluster, "worker-kills", api, task_ids, expected, followers, follower_tasks
        )
    finally:
        await api.aclose()
    assert report.violations == []
    assert missed == [], "kills that missed their phase"
    for number in range(kills):
        for phase in TARGET_PHASES[number % len(TARGET_PHASES)]:
            assert phases[phase] >= 1, f"no kill landed in {phase}: {dict(phases)}"
    killed = [per_task[t] for t in task_ids]
    assert min(killed) >= 1, f"a task saw no kill: {killed}"
    assert max(killed) <= kills


@pytest.mark.chaos
@pytest.mark.chaos_quick
@pytest.mark.chaos_quick_only  # the 50-task run below kills in planning too, and more
@pytest.mark.timeout(600)
async def test_worker_sigkill_quick(cluster_factory: Callable[..., Any]) -> None:
    cluster: Cluster = await cluster_factory()
    await _run(cluster, n_tasks=6, kills=1, seed=1)


@pytest.mark.chaos
@pytest.mark.xdist_group("kills")
@pytest.mark.timeout(1800)
async def test_worker_sigkill_50_tasks(cluster_factory: Callable[..., Any]) -> None:
    cluster: Cluster = await cluster_factory()
    await _run(cluster, n_tasks=50, kills=len(TARGET_PHASES), seed=8)
