"""Shared steps of the scenarios: reference runs, starting and finishing tasks."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.chaos.clients import Api, Follower, new_tag
from tests.chaos.harness import Cluster
from tests.chaos.invariants import Outcome, Report, check, outcome_of


async def reference_outcomes(
    cluster: Cluster, api: Api, templates: list[str], **options: Any
) -> dict[str, Outcome]:
    """Run each goal template once with no fault injected; return its outcome."""
    ids = [await api.create_task(f"{t} {new_tag()}", **options) for t in templates]
    for task_id in ids:
        await api.wait_status(task_id)
    return {t: await outcome_of(cluster, i) for t, i in zip(templates, ids, strict=True)}


async def start_tasks(api: Api, goals: list[str], **options: Any) -> list[uuid.UUID]:
    """Create the tasks concurrently."""
    return list(await asyncio.gather(*(api.create_task(g, **options) for g in goals)))


async def finish(
    cluster: Cluster,
    name: str,
    api: Api,
    task_ids: list[uuid.UUID],
    expected: dict[uuid.UUID, Outcome],
    followers: list[Follower] | None = None,
    follower_tasks: list[asyncio.Task[None]] | None = None,
) -> Report:
    """Wait for every task and follower, check the invariants, print the scenario line."""
    for task_id in task_ids:
        await api.wait_status(task_id)
    if follower_tasks:
        await asyncio.gather(*follower_tasks)
    report = await check(cluster, name, task_ids, expected, followers)
    print(report.line())  # the scenario line of the issue
    for violation in report.violations[:30]:
        print("  VIOLATION", violation)
    return report
