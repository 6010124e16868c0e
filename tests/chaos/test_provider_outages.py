"""Scenarios 9-11 (issue 20): provider outages and a 429 storm, with the requests they cost.

Scaled to what runs in about two minutes each on a small machine (the issue's sizes: a
3-minute outage with 50 tasks, a 60 rpm storm with 30 tasks):

* `provider-outage`: a 60 s outage (every request answered 503) while 10 tasks run. Every
  task completes afterwards, the invariants hold, and the requests the simulator received
  during the outage are reported against what 10 calls retrying independently on their
  own backoff would have sent.
* `outage-past-tolerance`: a 30 s outage; one task with a 10 s tolerance fails with
  `provider_unavailable`, one with a 10 s tolerance and `on_failure` pauses there (and
  completes after a person's `retry` once the provider is back), the others complete.
* `429-storm`: a 30 rpm simulator limit and 8 tasks (48 requests), run without and then
  with `AGENT_MODEL_LIMITS`; every task completes, and the 429s are reported per run.

Each prints its scenario line (invariants) and a line of request counts: requests the
simulator received, requests refused by the worker's circuit breaker (never sent, from the
worker's `/metrics`), and 429s.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.events.types import TaskStatus
from agent.llm.outage import OutageTolerance
from agent.stack.ports import free_port
from tests.chaos.clients import Api, Follower, new_tag
from tests.chaos.harness import Cluster, SimOptions
from tests.chaos.invariants import Outcome
from tests.chaos.scenario import finish, reference_outcomes, start_tasks

BASE = "Survey the tides of a bay [milestones=2][plan=sequential]"
OPTIONS: dict[str, Any] = {"max_attempts": 2, "complexity": "simple"}
MODEL = "gpt-4o-mini"
"""The model of every call of a simple task."""
PACED_SIM = SimOptions(tps=150.0)
"""About a second per answer: the tasks are mid-run when the outage begins."""
POLL_SECONDS = 0.2

OUTAGE_SECONDS = 60.0
OUTAGE_TASKS = 10
SHORT_OUTAGE_SECONDS = 30.0
SHORT_TOLERANCE_SECONDS = 10.0
TOLERANT_TASKS = 4
STORM_RPM = 30
STORM_TASKS = 8
RETRY_CAP_SECONDS = 60.0
"""`AGENT_LLM_RETRY_MAX_INTERVAL_SECONDS` (the default), for the independent-retry estimate."""


def metrics_env(port: int) -> dict[str, str]:
    """Worker settings serving its `/metrics` (the breaker's refusals) on `port`."""
    return {"AGENT_WORKER_METRICS_PORT": str(port), "AGENT_WORKER_METRICS_HOST": "127.0.0.1"}


async def sim_admin(cluster: Cluster, method: str, path: str, body: Any = None) -> Any:
    """Call one of the simulator's admin endpoints; return its JSON answer."""
    async with httpx.AsyncClient(base_url=cluster.sim_url, timeout=30.0) as http:
        response = await http.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None


async def breaker_refusals(port: int) -> int:
    """Calls the worker's breakers refused (`agent_llm_breaker_refusals_total`)."""
    async with httpx.AsyncClient(timeout=30.0) as http:
        response = await http.get(f"http://127.0.0.1:{port}/metrics")
        response.raise_for_status()
    total = 0.0
    for family in text_string_to_metric_families(response.text):
        if family.name == "agent_llm_breaker_refusals":
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return int(total)


def independent_requests(outage_seconds: float, calls: int) -> int:
    """Requests `calls` calls retrying on their own backoff send during an outage.

    Each call is retried after 1, 2, 4, ... s (capped), as without a breaker; the 503s
    carry no `Retry-After`.
    """
    backoff = OutageTolerance(
        tolerance=timedelta(hours=1), max_interval=timedelta(seconds=RETRY_CAP_SECONDS)
    )
    attempts, at = 0, 0.0
    while at < outage_seconds:
        attempts += 1
        at += backoff.backoff(attempts).total_seconds()
    return attempts * calls


async def wait_for_requests(cluster: Cluster, at_least: int) -> None:
    """Wait until the simulator received `at_least` completion requests."""
    while len(cluster.sim_requests()) < at_least:
        await asyncio.sleep(POLL_SECONDS)


def follow(cluster: Cluster, ids: list[uuid.UUID]) -> tuple[list[Follower], list[Any]]:
    """A follower per task, running."""
    followers = [Follower(cluster.ws_url, i, cluster.users[0].key) for i in ids]
    return followers, [asyncio.create_task(f.run()) for f in followers]


@pytest.mark.chaos
@pytest.mark.timeout(600)
async def test_provider_outage_while_many_tasks_run(cluster_factory: Callable[..., Any]) -> None:
    port = free_port()
    cluster: Cluster = await cluster_factory(sim_options=PACED_SIM, extra_env=metrics_env(port))
    api = Api(cluster.api_url, cluster.users[0].key)
    try:
        reference = await reference_outcomes(cluster, api, [BASE], **OPTIONS)
        before = len(cluster.sim_requests())
        ids = await start_tasks(
            api, [f"{BASE} {new_tag()}" for _ in range(OUTAGE_TASKS)], **OPTIONS
        )
        followers, runs = follow(cluster, ids)
        await wait_for_requests(cluster, before + OUTAGE_TASKS)  # every task is under way

        await sim_admin(cluster, "POST", "/sim/stats/reset")
        await sim_admin(cluster, "POST", "/sim/outage", {"status": 503, "seconds": OUTAGE_SECONDS})
        began = time.monotonic()
        report = await finish(
            cluster, "provider-outage", api, ids, dict.fromkeys(ids, reference[BASE]),
            followers, runs,
        )  # fmt: skip
        recovered_after = time.monotonic() - began
        stats = await sim_admin(cluster, "GET", "/sim/stats")
        refused = await breaker_refusals(port)
    finally:
        await api.aclose()

    independent = independent_requests(OUTAGE_SECONDS, OUTAGE_TASKS)
    print(
        f"  provider-outage: {OUTAGE_SECONDS:.0f}s outage, {OUTAGE_TASKS} tasks: "
        f"requests during the outage {stats['outage_rejected']} "
        f"(~{independent} if each task retried on its own), refused by the breaker {refused}, "
        f"requests since the outage began {stats['requests_total']}, "
        f"all done {recovered_after:.0f}s after it began"
    )
    assert report.violations == []
    assert report.completed == OUTAGE_TASKS
    assert stats["outage_rejected"] >= 1
    assert refused >= 1
    assert stats["outage_rejected"] * 2 < independent


@pytest.mark.chaos
@pytest.mark.timeout(600)
async def test_outage_past_one_tasks_tolerance(cluster_factory: Callable[..., Any]) -> None:
    port = free_port()
    cluster: Cluster = await cluster_factory(sim_options=PACED_SIM, extra_env=metrics_env(port))
    api = Api(cluster.api_url, cluster.users[0].key)
    short = {"llm_outage_tolerance_seconds": SHORT_TOLERANCE_SECONDS}
    try:
        reference = await reference_outcomes(cluster, api, [BASE], **OPTIONS)
        before = len(cluster.sim_requests())
        tolerant = await start_tasks(
            api, [f"{BASE} {new_tag()}" for _ in range(TOLERANT_TASKS)], **OPTIONS
        )
        failing = await api.create_task(f"{BASE} {new_tag()}", **OPTIONS, **short)
        pausing = await api.create_task(
            f"{BASE} {new_tag()}", **OPTIONS, **short, breakpoints=["on_failure"]
        )
        ids = [*tolerant, failing, pausing]
        followers, runs = follow(cluster, ids)
        await wait_for_requests(cluster, before + len(ids))

        await sim_admin(cluster, "POST", "/sim/stats/reset")
        await sim_admin(
            cluster, "POST", "/sim/outage", {"status": 503, "seconds": SHORT_OUTAGE_SECONDS}
        )
        outage_ends = time.monotonic() + SHORT_OUTAGE_SECONDS
        paused = await api.wait_status(pausing, frozenset({TaskStatus.PAUSED}))
        failed = await api.wait_status(failing)
        # A person retries once the provider is back.
        await asyncio.sleep(max(outage_ends - time.monotonic(), 0.0))
        resumed = await api.request(
            "POST",
            f"/v1/tasks/{pausing}/resume",
            json={"breakpoint_id": paused["paused"]["breakpoint_id"], "action": "retry"},
        )
        expected: dict[uuid.UUID, Outcome] = dict.fromkeys([*tolerant, pausing], reference[BASE])
        report = await finish(cluster, "outage-past-tolerance", api, ids, expected, followers, runs)
        stats = await sim_admin(cluster, "GET", "/sim/stats")
        refused = await breaker_refusals(port)
    finally:
        await api.aclose()

    print(
        f"  outage-past-tolerance: {SHORT_OUTAGE_SECONDS:.0f}s outage, {len(ids)} tasks "
        f"(2 with a {SHORT_TOLERANCE_SECONDS:.0f}s tolerance): "
        f"failed {failed['failure_reason']}, paused at {paused['paused']['kind']} then retried; "
        f"requests during the outage {stats['outage_rejected']}, "
        f"refused by the breaker {refused}, requests since it began {stats['requests_total']}"
    )
    print(f"  failed with: {str(failed['error'])[:240]!r}")
    assert report.violations == []
    assert failed["status"] == TaskStatus.FAILED
    assert failed["failure_reason"] == "provider_unavailable"
    assert cluster.sim_url in failed["error"]
    assert "503" in failed["error"]
    assert paused["paused"]["kind"] == "on_failure"
    assert "provider unavailable" in paused["paused"]["reason"]
    assert resumed.status_code == httpx.codes.OK, resumed.text
    assert report.completed == TOLERANT_TASKS + 1


async def storm(cluster: Cluster, api: Api, label: str, reference: Outcome) -> dict[str, int]:
    """Run `STORM_TASKS` tasks against the simulator's rate limit; return its counts."""
    await sim_admin(cluster, "POST", "/sim/rate_limit", {"rpm": STORM_RPM})  # a fresh window
    await sim_admin(cluster, "POST", "/sim/stats/reset")
    began = time.monotonic()
    ids = await start_tasks(api, [f"{BASE} {new_tag()}" for _ in range(STORM_TASKS)], **OPTIONS)
    followers, runs = follow(cluster, ids)
    report = await finish(
        cluster, f"429-storm {label}", api, ids, dict.fromkeys(ids, reference), followers, runs
    )
    seconds = time.monotonic() - began
    stats: dict[str, int] = await sim_admin(cluster, "GET", "/sim/stats")
    share = stats["rate_limited"] / max(stats["requests_total"], 1)
    print(
        f"  429-storm {label}: {STORM_RPM} rpm limit, {STORM_TASKS} tasks: "
        f"requests {stats['requests_total']}, 429s {stats['rate_limited']} ({share:.0%}), "
        f"all done in {seconds:.0f}s"
    )
    assert report.violations == []
    assert report.completed == STORM_TASKS
    return stats


@pytest.mark.chaos
@pytest.mark.timeout(900)
async def test_429_storm_with_and_without_model_limits(
    cluster_factory: Callable[..., Any],
) -> None:
    cluster: Cluster = await cluster_factory()
    api = Api(cluster.api_url, cluster.users[0].key)
    try:
        reference = await reference_outcomes(cluster, api, [BASE], **OPTIONS)
        without = await storm(cluster, api, "without limits", reference[BASE])

        # The same storm on a worker that queues for capacity (AGENT_MODEL_LIMITS).
        cluster.workers[0].stop()
        cluster.extra_env["AGENT_MODEL_LIMITS"] = json.dumps({MODEL: {"rpm": STORM_RPM}})
        cluster.start_worker()
        await cluster.wait_worker_polling()
        limited = await storm(
            cluster, api, f"with AGENT_MODEL_LIMITS rpm {STORM_RPM}", reference[BASE]
        )
    finally:
        await api.aclose()

    assert without["rate_limited"] >= 1
    assert limited["rate_limited"] * 10 <= limited["requests_total"]
    assert limited["rate_limited"] < without["rate_limited"]
