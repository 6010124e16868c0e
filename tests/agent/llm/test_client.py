"""The client against the simulator over real HTTP: JSON, streaming, usage, cost, errors."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import openai
import pytest

from agent.config import Settings
from agent.events.types import AgentRole
from agent.llm.client import LLMClient
from agent.llm.errors import LLMErrorType, LLMStreamCutError, to_application_error
from agent.llm.pricing import PriceTable
from agent.llm.simulator.server import SimulatorServer
from agent.llm.tokens import count_message_tokens, count_tokens
from agent.llm.types import ChatMessage, JsonSchemaFormat, LLMRequest


def make_request(
    text: str = "",
    *,
    role: AgentRole | None = AgentRole.WORKER,
    model: str = "gpt-4o-mini",
    max_tokens: int | None = None,
) -> LLMRequest:
    # A unique goal per request keeps the simulator's per-conversation fault counters apart.
    return LLMRequest(
        model=model,
        role=role,
        max_tokens=max_tokens,
        messages=[
            ChatMessage(role="system", content="You are a careful agent."),
            ChatMessage(role="user", content=f"Goal: test {uuid.uuid4().hex} {text}"),
        ],
    )


async def test_complete_returns_content_usage_and_cost(
    llm_client: LLMClient, llm_settings: Settings
) -> None:
    # Arrange
    request = make_request("[output_tokens=40]")

    # Act
    response = await llm_client.complete(request)

    # Assert
    assert count_tokens(response.content) == 40
    assert response.usage.output_tokens == 40
    assert response.usage.input_tokens == count_message_tokens(m.content for m in request.messages)
    assert response.usage.estimated is False
    assert response.model == "gpt-4o-mini"
    assert response.finish_reason == "stop"
    assert response.cost_usd == PriceTable(llm_settings).cost("gpt-4o-mini", response.usage)
    assert response.cost_usd is not None
    assert response.cost_usd > 0


async def test_stream_yields_the_same_answer_and_final_usage(llm_client: LLMClient) -> None:
    request = make_request("[output_tokens=80] [tps=400]")
    expected = await llm_client.complete(request)
    deltas: list[str] = []

    async with llm_client.stream(request) as stream:
        async for delta in stream:
            deltas.append(delta)

    assert len(deltas) > 1
    assert "".join(deltas) == expected.content
    assert stream.response.content == expected.content
    assert stream.response.usage == expected.usage
    assert stream.response.usage.estimated is False
    assert stream.response.cost_usd == expected.cost_usd
    assert stream.response.finish_reason == "stop"


async def test_role_header_selects_the_simulated_agent(llm_client: LLMClient) -> None:
    request = make_request("[milestones=5] [plan=sequential]", role=AgentRole.PLANNER)

    response = await llm_client.complete(request)

    plan = json.loads(response.content)
    assert [m["key"] for m in plan["milestones"]] == ["m1", "m2", "m3", "m4", "m5"]


async def test_response_format_schema_is_sent_and_wins_over_json_mode(
    llm_client: LLMClient,
) -> None:
    # A plan schema that drops title/description and adds a `tools` list per milestone.
    milestone = {
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            "depends_on": {"type": "array", "items": {"type": "string"}},
            "tools": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["key", "depends_on", "tools"],
        "additionalProperties": False,
    }
    schema = {
        "type": "object",
        "properties": {"milestones": {"type": "array", "items": milestone}},
        "required": ["milestones"],
        "additionalProperties": False,
    }
    request = make_request("[milestones=2] [plan=sequential]", role=AgentRole.PLANNER)
    request = request.model_copy(
        update={
            "json_mode": True,
            "response_format": JsonSchemaFormat(name="plan", json_schema=schema),
        }
    )

    response = await llm_client.complete(request)

    plan = json.loads(response.content)
    assert plan == {
        "milestones": [
            {"key": "m1", "depends_on": [], "tools": []},
            {"key": "m2", "depends_on": ["m1"], "tools": []},
        ]
    }


async def test_unknown_model_has_unknown_cost(llm_client: LLMClient) -> None:
    response = await llm_client.complete(make_request(model="some-unpriced-model"))

    assert response.cost_usd is None
    assert response.usage.output_tokens > 0


async def test_max_tokens_truncates_with_finish_reason_length(llm_client: LLMClient) -> None:
    response = await llm_client.complete(make_request("[output_tokens=100]", max_tokens=10))

    assert response.usage.output_tokens == 10
    assert response.finish_reason == "length"


async def test_complete_many_runs_calls_concurrently(
    llm_client: LLMClient, simulator_server: SimulatorServer
) -> None:
    # Each call is held 0.5 s by the server, so concurrent calls overlap there.
    requests = [make_request(f"[ttft_ms=500] [output_tokens={10 + i}]") for i in range(4)]
    simulator_server.simulator.stats.reset()

    responses = await llm_client.complete_many(requests)

    assert [r.usage.output_tokens for r in responses] == [10, 11, 12, 13]
    assert simulator_server.simulator.stats.max_in_flight == 4


async def test_early_exit_closes_the_stream_and_reports_partial_usage(
    llm_client: LLMClient,
) -> None:
    request = make_request("[output_tokens=400] [tps=200]")
    received: list[str] = []

    async with llm_client.stream(request) as stream:
        async for delta in stream:
            received.append(delta)
            break
    partial = stream.partial_response()

    assert partial.content == "".join(received)
    assert partial.finish_reason is None
    assert partial.usage.estimated is True
    assert 0 < partial.usage.output_tokens < 400
    assert partial.usage.input_tokens == count_message_tokens(m.content for m in request.messages)
    with pytest.raises(RuntimeError):
        _ = stream.response


async def test_cancelling_a_stream_consumer_closes_the_stream(llm_client: LLMClient) -> None:
    request = make_request("[output_tokens=2000] [tps=100]")
    first_delta = asyncio.Event()
    holder: dict[str, object] = {}

    async def consume() -> None:
        async with llm_client.stream(request) as stream:
            holder["stream"] = stream
            async for _ in stream:
                first_delta.set()

    task = asyncio.create_task(consume())
    await first_delta.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    stream = holder["stream"]
    assert stream._sdk_stream is None  # type: ignore[attr-defined]
    assert stream.partial_response().usage.output_tokens > 0  # type: ignore[attr-defined]


async def test_rate_limit_maps_to_retryable_error_with_retry_after(llm_client: LLMClient) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await llm_client.complete(make_request("[fault=429] [retry_after=3]"))

    error = to_application_error(caught.value)
    assert error.type == LLMErrorType.RATE_LIMITED
    assert error.non_retryable is False
    assert error.next_retry_delay == timedelta(seconds=3)


async def test_rate_limited_stream_maps_the_same_way(llm_client: LLMClient) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        async with llm_client.stream(make_request("[fault=429]")) as stream:
            await stream.read_all()

    assert to_application_error(caught.value).next_retry_delay == timedelta(seconds=2)


@pytest.mark.parametrize(
    ("fault", "expected_type", "non_retryable"),
    [
        ("500", LLMErrorType.SERVER_ERROR, False),
        ("400", LLMErrorType.BAD_REQUEST, True),
        ("401", LLMErrorType.AUTHENTICATION, True),
    ],
)
async def test_status_faults_map_to_their_error_types(
    llm_client: LLMClient, fault: str, expected_type: LLMErrorType, non_retryable: bool
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        await llm_client.complete(make_request(f"[fault={fault}]"))

    error = to_application_error(caught.value)
    assert error.type == expected_type
    assert error.non_retryable is non_retryable


async def test_fault_count_lets_the_retry_of_the_same_request_succeed(
    llm_client: LLMClient,
) -> None:
    request = make_request("[fault=500] [fault_count=2]")

    outcomes = []
    for _ in range(3):
        try:
            await llm_client.complete(request)
            outcomes.append("ok")
        except openai.InternalServerError:
            outcomes.append("500")

    assert outcomes == ["500", "500", "ok"]


async def test_fault_role_only_faults_that_role(llm_client: LLMClient) -> None:
    text = "[fault=500] [fault_role=verifier]"

    worker = await llm_client.complete(make_request(text, role=AgentRole.WORKER))
    with pytest.raises(openai.InternalServerError):
        await llm_client.complete(make_request(text, role=AgentRole.VERIFIER))

    assert worker.content


async def test_hang_maps_to_a_retryable_timeout(simulator_url: str) -> None:
    settings = Settings(_env_file=None, llm_timeout_seconds=0.5)
    async with LLMClient(settings, base_url=simulator_url) as client:
        with pytest.raises(openai.APITimeoutError) as caught:
            await client.complete(make_request("[fault=hang]"))

    error = to_application_error(caught.value)
    assert error.type == LLMErrorType.TIMEOUT
    assert error.non_retryable is False


async def test_stream_cut_mid_way_maps_to_a_retryable_connection_error(
    llm_client: LLMClient,
) -> None:
    received: list[str] = []

    async def consume() -> None:
        async with llm_client.stream(make_request("[fault=cut] [output_tokens=200]")) as stream:
            async for delta in stream:
                received.append(delta)

    with pytest.raises(openai.APIConnectionError) as caught:
        await consume()

    assert received  # the cut happened mid-way, after some text
    error = to_application_error(caught.value)
    assert error.type == LLMErrorType.CONNECTION_ERROR
    assert error.non_retryable is False


async def test_stream_ending_without_finish_reason_raises_a_retryable_cut(
    llm_client: LLMClient,
) -> None:
    with pytest.raises(LLMStreamCutError) as caught:
        async with llm_client.stream(make_request("[fault=truncate]")) as stream:
            await stream.read_all()

    error = to_application_error(caught.value)
    assert error.type == LLMErrorType.STREAM_CUT
    assert error.non_retryable is False


async def test_json_body_cut_maps_to_a_retryable_connection_error(llm_client: LLMClient) -> None:
    with pytest.raises(openai.APIConnectionError) as caught:
        await llm_client.complete(make_request("[fault=cut]"))

    assert to_application_error(caught.value).type == LLMErrorType.CONNECTION_ERROR


async def test_unreachable_server_maps_to_a_connection_error(llm_settings: Settings) -> None:
    async with LLMClient(llm_settings, base_url="http://127.0.0.1:9/v1") as client:
        with pytest.raises(openai.APIConnectionError) as caught:
            await client.complete(make_request())

    assert to_application_error(caught.value).type == LLMErrorType.CONNECTION_ERROR


def test_without_url_or_key_the_client_targets_the_simulator() -> None:
    settings = Settings(_env_file=None, sim_port=12345)

    client = LLMClient(settings)

    assert client.base_url == "http://127.0.0.1:12345/v1"


def test_configured_base_url_and_key_use_the_same_code_path() -> None:
    settings = Settings(
        _env_file=None,
        llm_base_url="http://llm.internal:8000/v1",
        llm_api_key="secret-key",
    )

    client = LLMClient(settings)

    assert client.base_url == "http://llm.internal:8000/v1"
    assert client._openai.api_key == "secret-key"
    assert client._openai.max_retries == 0


def test_key_without_url_targets_openai() -> None:
    settings = Settings(_env_file=None, llm_api_key="sk-real")

    assert LLMClient(settings).base_url == "https://api.openai.com/v1"


async def test_mock_llm_client_has_the_guide_shape(mock_llm_client: LLMClient) -> None:
    response = await mock_llm_client.complete(make_request())

    assert response.content == "test response"
    assert response.usage.input_tokens == 10
    assert response.usage.output_tokens == 20
    assert response.cost_usd == 0.001
