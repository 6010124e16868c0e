"""The simulator's outage window, rate limit and request counts; usage provenance."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
import pytest_asyncio

from agent.config import Settings
from agent.llm.client import LLMClient
from agent.llm.simulator.admin import ProviderTrouble
from agent.llm.simulator.config import SimulatorConfig
from agent.llm.simulator.server import SimulatorServer
from agent.llm.types import ChatMessage, LLMRequest


def make_request(text: str = "") -> LLMRequest:
    return LLMRequest(
        model="gpt-4o-mini",
        messages=[ChatMessage(role="user", content=f"Goal: trouble {uuid.uuid4().hex} {text}")],
    )


@pytest_asyncio.fixture(loop_scope="session")
async def own_simulator() -> AsyncIterator[SimulatorServer]:
    """A simulator of this module alone: outages must not reach other tests."""
    config = SimulatorConfig(port=0, ttft_ms=0, tps=0, output_tokens=20)
    async with SimulatorServer(config) as server:
        yield server


def admin_url(server: SimulatorServer) -> str:
    return server.base_url.removesuffix("/v1")


def test_rate_limit_admits_rpm_per_sliding_minute() -> None:
    trouble = ProviderTrouble()
    trouble.set_rate_limit(2)

    verdicts = [trouble.judge(now=t) for t in (0.0, 1.0, 2.0, 60.5)]

    assert [v.status for v in verdicts] == [None, None, 429, None]
    assert verdicts[2].retry_after_seconds == pytest.approx(58.0)
    assert verdicts[1].remaining_requests == 0
    assert trouble.counts() == {"requests_total": 4, "outage_rejected": 0, "rate_limited": 1}


def test_outage_rejects_until_its_end() -> None:
    trouble = ProviderTrouble()
    trouble.start_outage(503, 10.0)
    until = trouble.outage.until if trouble.outage else 0.0

    assert trouble.judge(now=until - 1).status == 503
    assert trouble.judge(now=until + 0.01).status is None
    assert trouble.counts()["outage_rejected"] == 1


@pytest.mark.asyncio(loop_scope="session")
async def test_outage_endpoint_fails_requests_and_counts_them(
    own_simulator: SimulatorServer, llm_settings: Settings
) -> None:
    # Arrange
    base = admin_url(own_simulator)
    async with (
        httpx.AsyncClient(base_url=base) as http,
        LLMClient(llm_settings, base_url=own_simulator.base_url) as client,
    ):
        await http.post("/sim/stats/reset")
        await http.post("/sim/outage", json={"status": 503, "seconds": 30})

        # Act
        with pytest.raises(openai.InternalServerError) as caught:
            await client.complete(make_request())
        await http.delete("/sim/outage")
        ok = await client.complete(make_request())
        stats = (await http.get("/sim/stats")).json()

    # Assert
    assert caught.value.status_code == 503
    assert ok.content
    assert stats["requests_total"] == 2
    assert stats["outage_rejected"] == 1


@pytest.mark.asyncio(loop_scope="session")
async def test_rate_limit_endpoint_answers_429_with_headers(
    own_simulator: SimulatorServer, llm_settings: Settings
) -> None:
    base = admin_url(own_simulator)
    async with (
        httpx.AsyncClient(base_url=base) as http,
        LLMClient(llm_settings, base_url=own_simulator.base_url) as client,
    ):
        await http.post("/sim/stats/reset")
        await http.post("/sim/rate_limit", json={"rpm": 1})
        try:
            await client.complete(make_request())
            with pytest.raises(openai.RateLimitError) as caught:
                await client.complete(make_request())
        finally:
            await http.delete("/sim/rate_limit")
        stats = (await http.get("/sim/stats")).json()

    headers = caught.value.response.headers
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert float(headers["retry-after-ms"]) > 0
    assert stats["rate_limited"] == 1


@pytest.mark.asyncio(loop_scope="session")
async def test_stream_without_usage_chunk_is_estimated_and_with_it_is_not(
    llm_client: LLMClient,
) -> None:
    async with llm_client.stream(make_request("[usage=none]")) as stream:
        without = await stream.read_all()
    async with llm_client.stream(make_request()) as stream:
        with_usage = await stream.read_all()

    assert without.usage.estimated
    assert without.usage.source == "estimated"
    assert without.usage.as_details(without.cost_usd)["usage_source"] == "estimated"
    assert not with_usage.usage.estimated
    assert with_usage.usage.source == "provider"
