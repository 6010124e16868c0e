"""Fairness: user B's start latency while user A floods the queue, against B on an idle system.

Two users get keys through the admin route, and A a running-task quota (`quota`). B
submits tasks one at a time on the idle system (the baseline), then A submits `flood`
tasks at once (all but `quota` wait queued), and B submits again while A's queue is
still long; A's tasks are then cancelled and B measures the idle system once more. B's
start latency is `POST /v1/tasks` sent -> the task's `started_at` (its `start_task`
step, on the database's clock, which is the host's). Figure: B's median under A's flood
/ B's median on the idle system (before and after the flood), target <= 2. Numbers that
cannot be right (a task that never started, a negative latency, a flood that was no
longer queued while B was measured, A's tasks not queued by the quota) raise
`ImpossibleFairnessResultError` instead of printing a figure.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from bench.client import HTTP_TIMEOUT_SECONDS, INSTANT, STATUS_POLL_SECONDS
from bench.harness import Bench
from bench.model import Figure, ScenarioResult, at_most, percentile, ratio

TARGET = at_most(2.0)
START_WAIT_SECONDS = 300.0
"""A task not started this long after its POST counts as never started."""
QUEUED = "queued"
TERMINAL = {"completed", "failed", "cancelled"}


@dataclass(frozen=True)
class Sizes:
    """How many tasks A floods with, A's quota, and B's samples per side."""

    flood: int
    quota: int
    samples: int

    @classmethod
    def for_mode(cls, quick: bool) -> Sizes:
        """The quick or the full sizes."""
        return cls(flood=200, quota=4, samples=5) if quick else cls(flood=200, quota=4, samples=9)


sizes = Sizes.for_mode
"""The sizes of a run (the smoke test shrinks them)."""

FLOOD_GOAL = "bench fairness {tag} A{i}: a short report [milestones=1] [ttft_ms=200]"
"""A's tasks: one milestone, 200 ms to first token, so the quota keeps most queued."""
B_GOAL = "bench fairness {tag} B{i}: a short report " + INSTANT + " [milestones=1]"


class ImpossibleFairnessResultError(RuntimeError):
    """The scenario's own numbers cannot be right, so it reports no figure at all."""


class _User:
    """One user's HTTP client (its own key)."""

    def __init__(self, bench: Bench, name: str, key: str) -> None:
        self.name = name
        self.http = httpx.AsyncClient(
            base_url=bench.stack.info.api_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=HTTP_TIMEOUT_SECONDS,
        )

    async def create(self, goal: str) -> dict[str, Any]:
        response = await self.http.post("/v1/tasks", json={"goal": goal, "complexity": "simple"})
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    async def get(self, task_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/tasks/{task_id}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


async def _user(bench: Bench, name: str) -> _User:
    """A new user with a key of its own (the bench's key is an admin key)."""
    response = await bench.clients.http.post(
        "/v1/admin/keys", json={"user": name, "name": "bench fairness"}
    )
    response.raise_for_status()
    return _User(bench, name, response.json()["key"])


async def _started_at(user: _User, task_id: str) -> float:
    """Poll the task until it has started; its `started_at` as a Unix time."""
    deadline = time.monotonic() + START_WAIT_SECONDS
    while True:
        task = await user.get(task_id)
        if task["started_at"] is not None:
            return datetime.fromisoformat(task["started_at"]).timestamp()
        if task["status"] in TERMINAL or time.monotonic() > deadline:
            raise ImpossibleFairnessResultError(
                f"{user.name}'s task {task_id} never started (status {task['status']})"
            )
        await asyncio.sleep(STATUS_POLL_SECONDS)


async def _b_samples(
    bench: Bench, b: _User, n: int, label: str, answered: list[float] | None = None
) -> list[float]:
    """B submits `n` tasks one after the other; each one's POST -> started, in ms.

    `answered` collects how long each POST took to answer (the API's share), in ms.
    """
    samples: list[float] = []
    for i in range(n):
        sent = time.time()
        task = await b.create(B_GOAL.format(tag=f"{bench.run_tag}-{label}", i=i))
        if answered is not None:
            answered.append((time.time() - sent) * 1000)
        started = await _started_at(b, task["id"])
        latency = (started - sent) * 1000
        if latency <= 0:
            raise ImpossibleFairnessResultError(
                f"B's task {task['id']} started {latency:.1f} ms after its POST was sent"
            )
        samples.append(latency)
        await bench.clients.wait_result(task["workflow_id"])
    return samples


async def _cancel_all(user: _User, task_ids: list[str]) -> None:
    """Cancel what is left of A's flood and wait until every task of it has ended.

    Queued tasks would take later scenarios' worker, and B's second idle side needs the
    system idle again.
    """
    for task_id in task_ids:
        response = await user.http.post(f"/v1/tasks/{task_id}/cancel")
        if response.status_code not in (200, 202, 409):
            response.raise_for_status()
    deadline = time.monotonic() + START_WAIT_SECONDS
    left = list(task_ids)
    while left:
        tasks = await asyncio.gather(*(user.get(task_id) for task_id in left))
        left = [t["id"] for t in tasks if t["status"] not in TERMINAL]
        if left and time.monotonic() > deadline:
            raise ImpossibleFairnessResultError(f"{len(left)} of A's tasks never ended")
        await asyncio.sleep(STATUS_POLL_SECONDS * 4)


async def run(bench: Bench) -> ScenarioResult:
    """Measure B's start latency on an idle system, then under A's flood."""
    size = sizes(bench.params.quick)
    result = ScenarioResult(
        "fairness", f"Fairness: B starts while A floods {size.flood} tasks (A's quota {size.quota})"
    )
    tag = f"{bench.run_tag}-{uuid.uuid4().hex[:4]}"
    a = await _user(bench, f"bench-a-{tag}")
    b = await _user(bench, f"bench-b-{tag}")
    flood_ids: list[str] = []
    try:
        limits = await bench.clients.http.put(
            f"/v1/admin/users/{a.name}/limits", json={"max_running_tasks": size.quota}
        )
        limits.raise_for_status()
        # A warm-up, not counted: the first requests of a new user and its first task.
        await _b_samples(bench, b, 1, "warm")
        idle_post: list[float] = []
        loaded_post: list[float] = []
        idle = await _b_samples(bench, b, size.samples, "idle", idle_post)
        created = await asyncio.gather(
            *(a.create(FLOOD_GOAL.format(tag=tag, i=i)) for i in range(size.flood))
        )
        flood_ids = [t["id"] for t in created]
        queued_at_post = sum(1 for t in created if t["status"] == QUEUED)
        loaded = await _b_samples(bench, b, size.samples, "loaded", loaded_post)
        still_queued = sum(
            1
            for t in await asyncio.gather(*(a.get(task_id) for task_id in flood_ids))
            if t["status"] == QUEUED
        )
        await _cancel_all(a, flood_ids)
        flood_ids = []
        # Idle again: B's baseline is taken on both sides of the flood, so a drift of the
        # machine's load during the run weighs on both sides alike.
        idle += await _b_samples(bench, b, size.samples, "idle-after", idle_post)
    finally:
        try:
            await _cancel_all(a, flood_ids)
        finally:
            await a.http.aclose()
            await b.http.aclose()
    problems = []
    if queued_at_post < size.flood - size.quota:
        problems.append(
            f"only {queued_at_post} of A's {size.flood} tasks were queued (quota {size.quota})"
        )
    if still_queued == 0:
        problems.append(
            "A's queue had drained before B's last sample: B was not measured under load"
        )
    if problems:
        raise ImpossibleFairnessResultError("; ".join(problems))
    idle_p50, loaded_p50 = percentile(idle, 50), percentile(loaded, 50)
    result.figures.append(
        Figure(
            "B's start latency under A's flood / on an idle system (p50)",
            ratio(loaded_p50, idle_p50),
            "x",
            TARGET,
            note=f"B p50 {loaded_p50:.1f} ms under the flood ({still_queued} of A's tasks "
            f"still queued after), {idle_p50:.1f} ms idle (before and after the flood); "
            "POST sent -> started_at",
        )
    )
    result.distributions["B start, idle"] = idle
    result.distributions["B start, A flooding"] = loaded
    result.raw.update(
        {
            "flood": size.flood,
            "quota": size.quota,
            "samples": size.samples,
            "idle_ms": [round(v, 2) for v in idle],
            "loaded_ms": [round(v, 2) for v in loaded],
            "idle_p50_ms": round(idle_p50, 2),
            "loaded_p50_ms": round(loaded_p50, 2),
            "idle_post_answered_p50_ms": round(percentile(idle_post, 50), 2),
            "loaded_post_answered_p50_ms": round(percentile(loaded_post, 50), 2),
            "a_queued_at_post": queued_at_post,
            "a_still_queued_after_b": still_queued,
        }
    )
    return result
