"""Client-side model limits: calls queue for capacity; provider headers tighten the limits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from agent.config import ModelLimit, Settings
from agent.llm.client import LLMClient
from agent.llm.limits import Limit, ModelLimiter, parse_reset
from agent.llm.simulator.config import SimulatorConfig
from agent.llm.simulator.server import SimulatorServer
from agent.llm.types import ChatMessage, LLMRequest


class FakeTime:
    """A clock that only moves when a limiter sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_reset_durations_parse() -> None:
    assert parse_reset("1s") == 1.0
    assert parse_reset("6m0s") == 360.0
    assert parse_reset("20ms") == pytest.approx(0.02)
    assert parse_reset("0.5") == 0.5
    assert parse_reset("soon") is None


@pytest.mark.asyncio(loop_scope="session")
async def test_requests_past_rpm_wait_for_the_sliding_minute() -> None:
    time = FakeTime()
    limiter = ModelLimiter(Limit(rpm=3), clock=time.clock, sleep=time.sleep)

    grants = [await limiter.acquire(10) for _ in range(4)]

    assert [g.waited_seconds for g in grants[:3]] == [0.0, 0.0, 0.0]
    assert grants[3].waited_seconds == pytest.approx(60.0)


@pytest.mark.asyncio(loop_scope="session")
async def test_tokens_are_settled_to_the_real_usage() -> None:
    time = FakeTime()
    limiter = ModelLimiter(Limit(tpm=1000), clock=time.clock, sleep=time.sleep)

    first = await limiter.acquire(900)  # estimated: prompt plus output cap
    first.settle(100)  # the call really used 100
    second = await limiter.acquire(800)

    assert second.waited_seconds == 0.0


@pytest.mark.asyncio(loop_scope="session")
async def test_remaining_header_tightens_until_its_reset() -> None:
    time = FakeTime()
    limiter = ModelLimiter(Limit(rpm=100), clock=time.clock, sleep=time.sleep)
    await limiter.acquire(1)

    # Other clients share the key: the provider says 0 remain for 5 s.
    limiter.observe_headers(
        {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "5s"}
    )
    grant = await limiter.acquire(1)

    assert grant.waited_seconds == pytest.approx(5.0)


@pytest.mark.asyncio(loop_scope="session")
async def test_waiters_are_served_in_arrival_order() -> None:
    time = FakeTime()
    limiter = ModelLimiter(Limit(rpm=1), clock=time.clock, sleep=time.sleep)
    order: list[int] = []

    async def call(n: int) -> None:
        await limiter.acquire(1)
        order.append(n)

    await asyncio.gather(*(call(n) for n in range(4)))

    assert order == [0, 1, 2, 3]


def request() -> LLMRequest:
    return LLMRequest(
        model="gpt-4o-mini",
        messages=[ChatMessage(role="user", content=f"Goal: limits {uuid.uuid4().hex}")],
    )


@pytest_asyncio.fixture(loop_scope="session")
async def limited_simulator() -> AsyncIterator[SimulatorServer]:
    """A simulator of this module alone: its rate limit must not reach other tests."""
    async with SimulatorServer(SimulatorConfig(port=0, ttft_ms=0, tps=0, output_tokens=10)) as s:
        yield s


@pytest.mark.asyncio(loop_scope="session")
async def test_model_limit_from_settings_holds_back_the_call_that_would_get_a_429(
    limited_simulator: SimulatorServer, llm_settings: Settings
) -> None:
    # The simulator allows 2 requests a minute; so does the client.
    settings = llm_settings.model_copy(update={"model_limits": {"gpt-4o-mini": ModelLimit(rpm=2)}})
    admin = limited_simulator.base_url.removesuffix("/v1")
    async with (
        httpx.AsyncClient(base_url=admin) as http,
        LLMClient(settings, base_url=limited_simulator.base_url) as client,
    ):
        await http.post("/sim/stats/reset")
        await http.post("/sim/rate_limit", json={"rpm": 2})
        try:
            for _ in range(2):
                async with client.stream(request()) as stream:
                    await stream.read_all()
        finally:
            await http.delete("/sim/rate_limit")
        stats = (await http.get("/sim/stats")).json()
        limiter = client.guard.limiter("gpt-4o-mini")
        unlimited = client.guard.limiter("gpt-4o")

    assert stats["requests_total"] == 2
    assert stats["rate_limited"] == 0
    assert limiter is not None
    assert limiter.wait_seconds(1) > 55  # the third call waits for the window
    assert unlimited is None
