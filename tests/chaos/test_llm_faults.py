"""Scenario 5: LLM faults from the simulator (429 + Retry-After, 500, hang, cut, bad plan).

Besides the invariants: retry gaps follow `Retry-After`; every Temporal attempt of an LLM
activity made exactly one HTTP request; a 400/401 is attempted once and fails the task
with a clear reason; a retried stream reaches clients with its attempt number.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.client import Client

from agent.db.models import Task
from agent.events.types import EventType, TaskStatus
from tests.chaos.clients import Api, Follower, new_tag
from tests.chaos.harness import Cluster
from tests.chaos.invariants import Outcome
from tests.chaos.scenario import finish, reference_outcomes

LLM_ACTIVITIES = frozenset({"classify", "plan", "execute", "verify", "compress", "summarise"})
RETRY_AFTER_SECONDS = 3
GAP_TOLERANCE_SECONDS = 0.25
"""Clock granularity between the worker's timer and the recorder's arrival stamp."""
BASE = "Draft a reading list on rivers [milestones=2][plan=sequential]"
OPTIONS: dict[str, Any] = {"max_attempts": 2, "complexity": "simple"}
DIRECTIVE = re.compile(r"\[(fault|fault_role|fault_count|retry_after|tps)=[^\]]*\]")


@dataclass(frozen=True)
class Case:
    """One fault and what it must end with."""

    name: str
    directives: str
    fails: bool = False


CASES = [
    Case(
        "429",
        f"[fault=429][fault_role=worker][fault_count=2][retry_after={RETRY_AFTER_SECONDS}]",
    ),
    Case("500", "[fault=500][fault_role=verifier][fault_count=2]"),
    Case("hang", "[fault=hang][fault_role=planner][fault_count=1]"),
    Case("cut", "[fault=cut][fault_role=worker][fault_count=1][tps=150]"),
    Case("truncate", "[fault=truncate][fault_role=summariser][fault_count=1]"),
    Case("invalid_plan", "[fault=invalid_plan][invalid=duplicate][fault_count=1]"),
    Case("401", "[fault=401][fault_role=planner]", fails=True),
    Case("400", "[fault=400][fault_role=worker]", fails=True),
]
QUICK = {"429", "401", "cut"}


async def llm_attempts(client: Client, workflow_id: str) -> dict[str, int]:
    """Temporal attempts of the workflow's LLM activities, summed per activity type."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled: dict[int, str] = {}
    attempts: dict[str, int] = defaultdict(int)
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = name
        elif event.HasField("activity_task_started_event_attributes"):
            attrs = event.activity_task_started_event_attributes
            name = scheduled[attrs.scheduled_event_id]
            if name in LLM_ACTIVITIES:
                attempts[name] += attrs.attempt
    return dict(attempts)


ROLE_OF_ACTIVITY = {
    "classify": "classifier",
    "plan": "planner",
    "execute": "worker",
    "verify": "verifier",
    "compress": "compressor",
    "summarise": "summariser",
}


async def _run(cluster: Cluster, cases: list[Case]) -> None:
    owner = cluster.users[0]
    api = Api(cluster.api_url, owner.key)
    try:
        reference = await reference_outcomes(cluster, api, [BASE], **OPTIONS)
        tags = {c.name: new_tag() for c in cases}
        ids = {
            c.name: await api.create_task(f"{BASE}{c.directives} {tags[c.name]}", **OPTIONS)
            for c in cases
        }
        followers = {n: Follower(cluster.ws_url, i, owner.key) for n, i in ids.items()}
        runs = [asyncio.create_task(f.run()) for f in followers.values()]
        expected: dict[uuid.UUID, Outcome] = {
            ids[c.name]: reference[BASE] for c in cases if not c.fails
        }
        report = await finish(
            cluster, "llm-faults", api, list(ids.values()), expected, list(followers.values()), runs
        )
        problems = list(report.violations)
        requests = cluster.sim_requests()
        client = await cluster.temporal()
        for case in cases:
            task_id = ids[case.name]
            tagged = [r for r in requests if r["tag"] == tags[case.name]]
            per_role: dict[str, int] = defaultdict(int)
            for r in tagged:
                per_role[r["role"]] += 1
            attempts = await llm_attempts(client, f"task-{task_id}")
            by_role = {ROLE_OF_ACTIVITY[a]: n for a, n in attempts.items()}
            # HTTP requests per Temporal attempt = 1, for every role.
            if by_role != dict(per_role):
                problems.append(f"{case.name}: attempts {by_role} != HTTP requests {per_role}")
            async with cluster.db().session() as session:
                task = await session.get(Task, task_id)
                assert task is not None
            if case.fails:
                role = re.search(r"fault_role=(\w+)", case.directives)
                assert role is not None
                if per_role.get(role.group(1)) != 1:
                    problems.append(f"{case.name}: {role.group(1)} asked {per_role} times")
                reason = f"{task.failure_reason} {task.error}"
                print(f"  {case.name}: task failed with {reason[:300]!r}")
                if task.status != TaskStatus.FAILED or case.name not in reason:
                    problems.append(f"{case.name}: {task.status}, unclear reason {reason!r}")
            if case.name == "429":
                worker = sorted(
                    r["t"] for r in tagged if r["role"] == "worker" and r["milestone"] == "m1"
                )
                gaps = [b - a for a, b in itertools.pairwise(worker)]
                if len(gaps) < 2 or min(gaps) < RETRY_AFTER_SECONDS - GAP_TOLERANCE_SECONDS:
                    problems.append(f"429: retry gaps {gaps} ignore Retry-After")
            if case.name == "cut":
                chunks = [
                    e
                    for e in followers[case.name].ephemeral
                    if e["type"] == EventType.LLM_CHUNK and e["agent"] == "worker"
                ]
                seen = {int(e["details"]["attempt"]) for e in chunks}
                if not {1, 2} <= seen:
                    problems.append(f"cut: clients saw stream attempts {seen}, not 1 and 2")
    finally:
        await api.aclose()
    assert problems == []


@pytest.mark.chaos
@pytest.mark.chaos_quick
@pytest.mark.chaos_quick_only  # its cases are among `test_llm_faults`'s
@pytest.mark.timeout(600)
async def test_llm_faults_quick(cluster_factory: Callable[..., Any]) -> None:
    cluster: Cluster = await cluster_factory()
    await _run(cluster, [c for c in CASES if c.name in QUICK])


@pytest.mark.chaos
@pytest.mark.timeout(900)
async def test_llm_faults(cluster_factory: Callable[..., Any]) -> None:
    cluster: Cluster = await cluster_factory()
    only = os.environ.get("CHAOS_FAULT_CASES")
    await _run(cluster, [c for c in CASES if only is None or c.name in only.split(",")])


@pytest.mark.chaos
@pytest.mark.timeout(600)
async def test_invalid_plan_reask_continues_the_conversation(
    cluster_factory: Callable[..., Any],
) -> None:
    # Two invalid answers in ONE conversation, then a valid one: a re-ask that shows the
    # model its answer and the error gets the third plan within MAX_PLAN_ATTEMPTS (3).
    cluster: Cluster = await cluster_factory()
    case = Case("invalid_plan_twice", "[fault=invalid_plan][invalid=duplicate][fault_count=2]")
    await _run(cluster, [case])
    tag_requests = [r for r in cluster.sim_requests() if r["role"] == "planner"]
    assert len(tag_requests) == 1 + 3  # the reference run's plan + 2 invalid + 1 valid
