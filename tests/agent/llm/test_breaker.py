"""Circuit breakers per route: a dead provider stops getting requests, a probe closes it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
import pytest_asyncio

from agent.config import Settings
from agent.llm.breaker import BreakerConfig, BreakerState, CircuitBreaker
from agent.llm.client import LLMClient
from agent.llm.errors import CircuitOpenError, LLMErrorType, to_application_error
from agent.llm.simulator.config import SimulatorConfig
from agent.llm.simulator.server import SimulatorServer
from agent.llm.types import ChatMessage, LLMRequest
from agent.observability.metrics import project_metrics
from tests.polling import wait_until

CONFIG = BreakerConfig(failure_threshold=3, cooldown=5.0, max_cooldown=20.0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def request(model: str = "gpt-4o-mini") -> LLMRequest:
    return LLMRequest(
        model=model,
        messages=[ChatMessage(role="user", content=f"Goal: breaker {uuid.uuid4().hex}")],
    )


@pytest.mark.asyncio(loop_scope="session")
async def test_opens_after_threshold_failures_and_refuses_until_the_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(CONFIG, clock=clock)

    for _ in range(3):
        assert await breaker.admit()
        breaker.record_failure()
    refused = not await breaker.admit()
    clock.now += 5.0
    probe = await breaker.admit()

    assert refused
    assert probe
    assert breaker.state is BreakerState.HALF_OPEN


@pytest.mark.asyncio(loop_scope="session")
async def test_a_success_between_failures_keeps_it_closed() -> None:
    breaker = CircuitBreaker(CONFIG, clock=Clock())

    for outcome in ("fail", "fail", "ok", "fail", "fail"):
        await breaker.admit()
        breaker.record_failure() if outcome == "fail" else breaker.record_success()

    assert breaker.state is BreakerState.CLOSED


@pytest.mark.asyncio(loop_scope="session")
async def test_failed_probe_reopens_with_a_doubled_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(CONFIG, clock=clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 5.0
    await breaker.admit()

    breaker.record_failure()

    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_in() == pytest.approx(10.0)


@pytest.mark.asyncio(loop_scope="session")
async def test_calls_arriving_during_the_probe_wait_for_its_success() -> None:
    clock = Clock()
    breaker = CircuitBreaker(CONFIG, clock=clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 5.0
    assert await breaker.admit()  # the probe

    waiter = asyncio.create_task(breaker.admit())
    await asyncio.sleep(0)
    assert not waiter.done()
    breaker.record_success()

    assert await waiter
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.asyncio(loop_scope="session")
async def test_a_last_chance_call_probes_an_open_breaker_at_once() -> None:
    clock = Clock()
    breaker = CircuitBreaker(CONFIG, clock=clock)
    for _ in range(3):
        breaker.record_failure()

    refused = not await breaker.admit()
    probe = await breaker.admit(last_chance=True)
    state_during_probe = breaker.state
    breaker.record_failure()

    assert refused
    assert probe
    assert state_during_probe is BreakerState.HALF_OPEN
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_in() == pytest.approx(10.0)


@pytest.mark.asyncio(loop_scope="session")
async def test_a_last_chance_call_that_saw_the_probe_fail_is_refused() -> None:
    clock = Clock()
    breaker = CircuitBreaker(CONFIG, clock=clock)
    for _ in range(3):
        breaker.record_failure()
    assert await breaker.admit(last_chance=True)  # the probe

    waiter = asyncio.create_task(breaker.admit(last_chance=True))
    await asyncio.sleep(0)
    assert not waiter.done()
    breaker.record_failure("503 again")

    assert not await waiter
    assert breaker.state is BreakerState.OPEN


@pytest.mark.asyncio(loop_scope="session")
async def test_a_last_chance_call_rides_on_a_successful_probe() -> None:
    breaker = CircuitBreaker(CONFIG, clock=Clock())
    for _ in range(3):
        breaker.record_failure()
    assert await breaker.admit(last_chance=True)  # the probe

    waiter = asyncio.create_task(breaker.admit(last_chance=True))
    await asyncio.sleep(0)
    breaker.record_success()

    assert await waiter
    assert breaker.state is BreakerState.CLOSED


def test_circuit_open_is_retried_at_the_probe_time() -> None:
    error = to_application_error(CircuitOpenError("http://x/v1", "m", 4.0))

    assert error.type == LLMErrorType.CIRCUIT_OPEN
    assert not error.non_retryable
    assert error.next_retry_delay is not None
    assert error.next_retry_delay.total_seconds() == pytest.approx(4.0)


@pytest_asyncio.fixture(loop_scope="session")
async def breaker_simulator() -> AsyncIterator[SimulatorServer]:
    """A simulator of this module alone: its outages must not reach other tests."""
    async with SimulatorServer(SimulatorConfig(port=0, ttft_ms=0, tps=0, output_tokens=10)) as s:
        yield s


def breaker_settings(llm_settings: Settings, **extra: object) -> Settings:
    return llm_settings.model_copy(
        update={"llm_breaker_failure_threshold": 3, "llm_breaker_cooldown_seconds": 0.5, **extra}
    )


async def stream_once(client: LLMClient, model: str = "gpt-4o-mini") -> str:
    async with client.stream(request(model)) as stream:
        return (await stream.read_all()).model


@pytest.mark.asyncio(loop_scope="session")
async def test_open_breaker_sends_nothing_then_its_probe_closes_it(
    breaker_simulator: SimulatorServer, llm_settings: Settings
) -> None:
    settings = breaker_settings(llm_settings)
    admin = breaker_simulator.base_url.removesuffix("/v1")
    async with (
        httpx.AsyncClient(base_url=admin) as http,
        LLMClient(settings, base_url=breaker_simulator.base_url) as client,
    ):
        await http.post("/sim/stats/reset")
        await http.post("/sim/outage", json={"status": 503, "seconds": 600})
        for _ in range(3):
            with pytest.raises(openai.InternalServerError):
                await stream_once(client)
        refused = 0
        refusal = ""
        for _ in range(20):
            with pytest.raises(CircuitOpenError) as caught:
                await stream_once(client)
            refused += 1
            caught_refusal = caught.value
            refusal = str(caught_refusal) if refused == 1 else refusal
        sent_while_open = (await http.get("/sim/stats")).json()["requests_total"]
        await http.delete("/sim/outage")

        async def probe_succeeds() -> bool:
            try:
                await stream_once(client)
            except CircuitOpenError:
                return False
            return True

        await wait_until(probe_succeeds)
        state = client.guard.breaker("gpt-4o-mini").state

    assert refused == 20
    assert "503" in refusal
    assert sent_while_open == 3
    assert state is BreakerState.CLOSED
    endpoint = f"127.0.0.1:{breaker_simulator.port}"
    gauge = project_metrics().registry.get_sample_value(
        "agent_llm_breaker_state", {"endpoint": endpoint, "model": "gpt-4o-mini"}
    )
    assert gauge == 0.0
    opened = project_metrics().registry.get_sample_value(
        "agent_llm_breaker_transitions_total",
        {"endpoint": endpoint, "model": "gpt-4o-mini", "state": "open"},
    )
    assert opened is not None
    assert opened >= 1


@pytest.mark.asyncio(loop_scope="session")
async def test_open_breaker_sends_calls_to_the_fallback_model(
    breaker_simulator: SimulatorServer, llm_settings: Settings
) -> None:
    settings = breaker_settings(llm_settings, llm_fallback_models={"gpt-4o": "gpt-4o-mini"})
    async with LLMClient(settings, base_url=breaker_simulator.base_url) as client:
        for _ in range(3):
            client.guard.breaker("gpt-4o").record_failure()

        async with client.stream(request("gpt-4o")) as stream:
            response = await stream.read_all()

    assert stream.fallback_from == "gpt-4o"
    assert response.model == "gpt-4o-mini"


@pytest.mark.asyncio(loop_scope="session")
async def test_a_last_chance_stream_reaches_the_provider_through_an_open_breaker(
    breaker_simulator: SimulatorServer, llm_settings: Settings
) -> None:
    # Arrange: an open breaker whose cool-down is far away.
    settings = breaker_settings(llm_settings, llm_breaker_cooldown_seconds=600.0)
    admin = breaker_simulator.base_url.removesuffix("/v1")
    async with (
        httpx.AsyncClient(base_url=admin) as http,
        LLMClient(settings, base_url=breaker_simulator.base_url) as client,
    ):
        for _ in range(3):
            client.guard.breaker("gpt-4o-mini").record_failure("503 earlier")
        await http.post("/sim/stats/reset")
        with pytest.raises(CircuitOpenError):
            await stream_once(client)

        # Act
        async with client.stream(request(), last_chance=True) as stream:
            await stream.read_all()
        sent = (await http.get("/sim/stats")).json()["requests_total"]
        state = client.guard.breaker("gpt-4o-mini").state

    # Assert: only the last-chance call was sent, and its success closed the breaker.
    assert sent == 1
    assert state is BreakerState.CLOSED
