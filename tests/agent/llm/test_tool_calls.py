"""Function calling through the client (the openai SDK) against the real simulator server."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from agent.contract.tools import ToolCall, ToolResult, ToolSpec
from agent.events.types import AgentRole
from agent.llm.client import LLMClient
from agent.llm.errors import LLMStreamCutError
from agent.llm.simulator.server import SimulatorServer
from agent.llm.tokens import count_tokens
from agent.llm.types import ChatMessage, LLMRequest, LLMResponse

TIME_TOOL = ToolSpec(
    server="time",
    name="get_current_time",
    description="The current time in a timezone.",
    input_schema={
        "type": "object",
        "properties": {"timezone": {"type": "string"}},
        "required": ["timezone"],
    },
)
CONVERT_TOOL = ToolSpec(
    server="time",
    name="convert_time",
    description="Convert a time between timezones.",
    input_schema={"type": "object", "properties": {"time": {"type": "string"}}},
)
UTC = '{"timezone": "UTC"}'
PARIS = '{"timezone": "Europe/Paris"}'


def tool_request(
    text: str,
    *,
    tools: list[ToolSpec] | None = None,
    history: list[ChatMessage] | None = None,
    task_id: uuid.UUID | None = None,
) -> LLMRequest:
    # A unique goal per request keeps conversations (and their call ids) apart.
    return LLMRequest(
        model="gpt-4o-mini",
        role=AgentRole.WORKER,
        task_id=task_id,
        tools=[TIME_TOOL, CONVERT_TOOL] if tools is None else tools,
        messages=[
            ChatMessage(role="system", content="You are a careful agent."),
            ChatMessage(role="user", content=f"Goal: tools {uuid.uuid4().hex} {text}"),
            *(history or []),
        ],
    )


async def streamed(client: LLMClient, request: LLMRequest) -> tuple[list[str], LLMResponse]:
    async with client.stream(request) as stream:
        deltas = [delta async for delta in stream]
    return deltas, stream.response


def answered(request: LLMRequest, first: LLMResponse, contents: list[str]) -> LLMRequest:
    """The next turn: the model's calls and one result per call appended."""
    results = [
        ChatMessage.tool_result(ToolResult(call_id=call.id, content=content))
        for call, content in zip(first.tool_calls, contents, strict=True)
    ]
    history = [ChatMessage.assistant_tool_calls(first.tool_calls), *results]
    return request.model_copy(update={"messages": [*request.messages, *history]})


async def test_complete_returns_the_tool_call_with_usage(llm_client: LLMClient) -> None:
    # Arrange
    request = tool_request(f"[tool=time.get_current_time {UTC}]")

    # Act
    response = await llm_client.complete(request)

    # Assert
    assert response.finish_reason == "tool_calls"
    assert response.content == ""
    [call] = response.tool_calls
    assert call.id.startswith("call_")
    assert call.function_name == "time__get_current_time"
    assert json.loads(call.arguments) == {"timezone": "UTC"}
    assert response.usage.estimated is False
    assert response.usage.output_tokens == count_tokens(call.arguments)
    assert response.usage.input_tokens == request.estimated_input_tokens()
    assert response.cost_usd is not None
    assert response.cost_usd > 0


async def test_stream_assembles_the_fragmented_call_like_the_json_answer(
    llm_client: LLMClient,
) -> None:
    request = tool_request(f"[tool=time.get_current_time {PARIS}]")
    expected = await llm_client.complete(request)

    deltas, response = await streamed(llm_client, request)

    assert deltas == []  # Call fragments are not text.
    assert response.tool_calls == expected.tool_calls
    assert json.loads(response.tool_calls[0].arguments) == {"timezone": "Europe/Paris"}
    assert response.finish_reason == "tool_calls"
    assert response.usage == expected.usage
    assert response.usage.estimated is False


async def test_several_directives_make_several_calls_in_one_turn(llm_client: LLMClient) -> None:
    request = tool_request(
        f"[tool=time.get_current_time {UTC}] then [tool=time.convert_time "
        '{"time": "12:00", "zones": ["UTC", "Asia/Tokyo"]}] and '
        f"[tool=time.get_current_time {PARIS}]"
    )

    complete = await llm_client.complete(request)
    _, stream = await streamed(llm_client, request)

    assert [c.function_name for c in stream.tool_calls] == [
        "time__get_current_time",
        "time__convert_time",
        "time__get_current_time",
    ]
    assert [json.loads(c.arguments) for c in stream.tool_calls] == [
        {"timezone": "UTC"},
        {"time": "12:00", "zones": ["UTC", "Asia/Tokyo"]},
        {"timezone": "Europe/Paris"},
    ]
    assert len({c.id for c in stream.tool_calls}) == 3
    assert stream.tool_calls == complete.tool_calls
    assert stream.usage.output_tokens == sum(count_tokens(c.arguments) for c in stream.tool_calls)


async def test_the_turn_after_the_results_quotes_each_result(llm_client: LLMClient) -> None:
    request = tool_request(f"[tool=time.get_current_time {UTC}] [tool=time.convert_time {{}}]")
    first = await llm_client.complete(request)
    contents = ['{"datetime": "2031-05-04T10:00:00+00:00"}', "converted: 19:00 JST"]
    second_request = answered(request, first, contents)

    complete = await llm_client.complete(second_request)
    deltas, stream = await streamed(llm_client, second_request)

    for response in (complete, stream):
        assert response.tool_calls == []
        assert response.finish_reason == "stop"
        assert f"tool result time__get_current_time: {contents[0]}" in response.content
        assert f"tool result time__convert_time: {contents[1]}" in response.content
    assert "".join(deltas) == stream.content == complete.content
    assert stream.usage.input_tokens == second_request.estimated_input_tokens()


async def test_only_calls_without_a_result_are_asked_again(llm_client: LLMClient) -> None:
    request = tool_request(f"[tool=time.get_current_time {UTC}] [tool=time.convert_time {{}}]")
    first = await llm_client.complete(request)
    only_first = ChatMessage.tool_result(ToolResult(call_id=first.tool_calls[0].id, content="t"))
    history = [ChatMessage.assistant_tool_calls(first.tool_calls), only_first]
    partial = request.model_copy(update={"messages": [*request.messages, *history]})

    response = await llm_client.complete(partial)

    assert response.tool_calls == [first.tool_calls[1]]


async def test_a_retried_request_asks_for_the_same_calls(llm_client: LLMClient) -> None:
    request = tool_request(f"[tool=time.get_current_time {UTC}]")

    first = await llm_client.complete(request)
    again = await llm_client.complete(request)

    assert again.tool_calls == first.tool_calls


async def test_unknown_tool_directive_calls_a_function_not_offered(llm_client: LLMClient) -> None:
    request = tool_request("[tool=nope.nothing {}]")

    _, response = await streamed(llm_client, request)

    [call] = response.tool_calls
    assert call.function_name == "nope__nothing"
    assert call.function_name not in {t.function_name for t in request.tools}
    assert call.arguments == "{}"


async def test_bad_json_directive_sends_arguments_that_do_not_parse(
    llm_client: LLMClient,
) -> None:
    request = tool_request("[tool_bad_json=time.get_current_time]")

    complete = await llm_client.complete(request)
    _, stream = await streamed(llm_client, request)

    assert stream.tool_calls == complete.tool_calls
    [call] = stream.tool_calls
    assert call.function_name == "time__get_current_time"
    with pytest.raises(json.JSONDecodeError):
        json.loads(call.arguments)


async def test_without_tools_the_directive_is_plain_text(llm_client: LLMClient) -> None:
    # Planner, verifier and every caller that offers no tools see today's answers.
    request = tool_request(f"[tool=time.get_current_time {UTC}] [output_tokens=30]", tools=[])

    response = await llm_client.complete(request)

    assert response.tool_calls == []
    assert response.finish_reason == "stop"
    assert response.usage.output_tokens == 30


async def test_estimated_usage_counts_arguments_and_tool_definitions(
    llm_client: LLMClient,
) -> None:
    # `[usage=none]`: the stream sends no usage chunk, so the client estimates it.
    request = tool_request(f"[tool=time.get_current_time {UTC}] [usage=none]")
    reported = (await llm_client.complete(request)).usage

    _, response = await streamed(llm_client, request)

    assert response.usage.estimated is True
    assert response.usage.input_tokens == reported.input_tokens
    assert response.usage.output_tokens == reported.output_tokens > 0


async def test_a_truncated_stream_keeps_the_partial_call(llm_client: LLMClient) -> None:
    arguments = json.dumps({"timezone": "America/Argentina/Buenos_Aires", "note": "x" * 200})
    request = tool_request(f"[tool=time.get_current_time {arguments}] [fault=truncate]")

    with pytest.raises(LLMStreamCutError):
        async with llm_client.stream(request) as stream:
            await stream.read_all()
    partial = stream.partial_response()

    [call] = partial.tool_calls
    assert call.function_name == "time__get_current_time"
    assert 0 < len(call.arguments) < len(arguments)
    assert arguments.startswith(call.arguments)
    assert partial.usage.estimated is True
    assert partial.usage.output_tokens == count_tokens(call.arguments)


async def test_the_ledger_counts_the_tokens_of_tool_call_turns(
    llm_client: LLMClient, simulator_server: SimulatorServer
) -> None:
    task_id = uuid.uuid4()
    request = tool_request(f"[tool=time.get_current_time {UTC}]", task_id=task_id)

    _, first = await streamed(llm_client, request)
    _, second = await streamed(llm_client, answered(request, first, ["10:00"]))

    async with httpx.AsyncClient(base_url=simulator_server.base_url.removesuffix("/v1")) as http:
        served: dict[str, Any] = (await http.get("/sim/served")).json()[str(task_id)]
    assert served["completions"] == 2
    assert served["unfinished"] == 0
    assert served["output_tokens"] == first.usage.output_tokens + second.usage.output_tokens
    assert served["input_tokens"] == first.usage.input_tokens + second.usage.input_tokens


def test_messages_take_the_openai_wire_form() -> None:
    call = ToolCall(id="call_1", function_name="time__get_current_time", arguments=UTC)

    assistant = ChatMessage.assistant_tool_calls([call]).to_openai()
    tool = ChatMessage.tool_result(ToolResult(call_id="call_1", content="10:00")).to_openai()

    assert assistant == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "time__get_current_time", "arguments": UTC},
            }
        ],
    }
    assert tool == {"role": "tool", "tool_call_id": "call_1", "content": "10:00"}
    assert ChatMessage(role="user", content="hi").to_openai() == {"role": "user", "content": "hi"}


@pytest.mark.parametrize(
    "fields",
    [
        {"role": "tool", "content": "x"},
        {"role": "user", "content": "x", "tool_call_id": "call_1"},
        {"role": "user", "tool_calls": [{"id": "c", "function_name": "f"}]},
    ],
)
def test_tool_fields_belong_to_their_roles(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="tool"):
        ChatMessage.model_validate(fields)


def test_tools_are_offered_as_openai_functions() -> None:
    request = tool_request("x", tools=[TIME_TOOL])

    assert request.openai_tools() == [
        {
            "type": "function",
            "function": {
                "name": "time__get_current_time",
                "description": "The current time in a timezone.",
                "parameters": TIME_TOOL.input_schema,
            },
        }
    ]
