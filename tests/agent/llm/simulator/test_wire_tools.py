"""Function calling and structured output on the wire, with the official SDK and raw HTTP."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import openai
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from pydantic import BaseModel, ConfigDict

from agent.llm.tokens import count_tokens

TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "time__get_current_time",
            "description": "The current time in a timezone.",
            "parameters": {
                "type": "object",
                "properties": {"timezone": {"type": "string"}},
                "required": ["timezone"],
            },
        },
    }
]
ARGUMENTS = '{"timezone": "Pacific/Auckland"}'


def goal(text: str = "", system: str = "You are a worker.") -> list[ChatCompletionMessageParam]:
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"Goal: wire {uuid.uuid4().hex} {text}"},
    ]


def sse_payloads(raw: str) -> list[dict[str, Any]]:
    events = raw.split("\n\n")[:-1]
    assert events[-1] == "data: [DONE]"
    return [json.loads(event.removeprefix("data: ")) for event in events[:-1]]


async def test_json_answer_has_tool_calls_and_null_content(http: httpx.AsyncClient) -> None:
    body = {
        "model": "m",
        "messages": goal(f"[tool=time.get_current_time {ARGUMENTS}]"),
        "tools": TOOLS,
    }

    response = await http.post("/chat/completions", json=body)

    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["role"] == "assistant"
    assert message["content"] is None
    [call] = message["tool_calls"]
    assert set(call) == {"id", "type", "function"}
    assert call["type"] == "function"
    assert call["function"] == {"name": "time__get_current_time", "arguments": ARGUMENTS}
    assert response.json()["usage"]["completion_tokens"] == count_tokens(ARGUMENTS)


async def test_streamed_calls_are_framed_as_openai_frames_them(http: httpx.AsyncClient) -> None:
    # Arrange
    second = '{"timezone": "UTC"}'
    body = {
        "model": "m",
        "messages": goal(
            f"[tool=time.get_current_time {ARGUMENTS}] [tool=time.get_current_time {second}]"
        ),
        "tools": TOOLS,
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    # Act
    async with http.stream("POST", "/chat/completions", json=body) as response:
        payloads = sse_payloads((await response.aread()).decode())

    # Assert
    deltas = [p["choices"][0]["delta"] for p in payloads if p["choices"]]
    first = deltas[0]
    assert first["role"] == "assistant"
    assert first["content"] is None
    [opening] = first["tool_calls"]
    assert opening["index"] == 0
    assert opening["id"].startswith("call_")
    assert opening["type"] == "function"
    assert opening["function"] == {"name": "time__get_current_time", "arguments": ""}
    fragments: dict[int, list[str]] = {0: [], 1: []}
    openings = [opening]
    for delta in deltas[1:-1]:
        [call] = delta["tool_calls"]
        if "id" in call:
            openings.append(call)
            continue
        assert set(call) == {"index", "function"}
        assert set(call["function"]) == {"arguments"}
        fragments[call["index"]].append(call["function"]["arguments"])
    assert [o["index"] for o in openings] == [0, 1]
    assert openings[0]["id"] != openings[1]["id"]
    assert len(fragments[0]) > 1  # Arguments arrive in several fragments.
    assert "".join(fragments[0]) == ARGUMENTS
    assert "".join(fragments[1]) == second
    assert deltas[-1] == {}
    finishes = [p["choices"][0]["finish_reason"] for p in payloads if p["choices"]]
    assert finishes[-1] == "tool_calls"
    assert all(f is None for f in finishes[:-1])
    assert payloads[-1]["usage"]["completion_tokens"] == count_tokens(ARGUMENTS) + count_tokens(
        second
    )


async def test_sdk_reads_calls_and_sends_tool_results_back(sdk: openai.AsyncOpenAI) -> None:
    messages = goal(f"[tool=time.get_current_time {ARGUMENTS}]")
    first = await sdk.chat.completions.create(model="m", messages=messages, tools=TOOLS)
    [call] = first.choices[0].message.tool_calls or []
    assert call.type == "function"
    turn: list[ChatCompletionMessageParam] = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "2031-05-04 22:00 NZST"},
    ]

    second = await sdk.chat.completions.create(model="m", messages=[*messages, *turn], tools=TOOLS)

    assert second.choices[0].finish_reason == "stop"
    assert not second.choices[0].message.tool_calls
    content = second.choices[0].message.content or ""
    assert "tool result time__get_current_time: 2031-05-04 22:00 NZST" in content


async def test_tool_choice_none_answers_with_text(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.chat.completions.create(
        model="m",
        messages=goal(f"[tool=time.get_current_time {ARGUMENTS}]"),
        tools=TOOLS,
        tool_choice="none",
    )

    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].message.content


async def test_tool_definitions_count_as_input_tokens(http: httpx.AsyncClient) -> None:
    messages = goal("[output_tokens=10]")
    plain = {"model": "m", "messages": messages}
    offered = {**plain, "tools": TOOLS, "tool_choice": "none"}

    without = (await http.post("/chat/completions", json=plain)).json()["usage"]
    with_tools = (await http.post("/chat/completions", json=offered)).json()["usage"]

    definition = json.dumps(TOOLS[0], sort_keys=True, separators=(",", ":"))
    assert with_tools["prompt_tokens"] == without["prompt_tokens"] + count_tokens(definition)


async def test_malformed_tools_are_a_400_naming_tools(http: httpx.AsyncClient) -> None:
    not_a_list = {"model": "m", "messages": goal(), "tools": {"type": "function"}}
    no_name = {"model": "m", "messages": goal(), "tools": [{"type": "function", "function": {}}]}

    for body in (not_a_list, no_name):
        response = await http.post("/chat/completions", json=body)
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "tools"


class Milestone(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    title: str
    depends_on: list[str]
    tools: list[str]
    note: str | None = None


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    milestones: list[Milestone]


class Verdict(BaseModel):
    passed: bool
    feedback: str


class Report(BaseModel):
    headline: str
    confidence: float


async def test_sdk_parse_gets_a_plan_that_fits_the_schema(sdk: openai.AsyncOpenAI) -> None:
    # The SDK turns the model into a strict JSON schema ($defs, no extra properties).
    completion = await sdk.chat.completions.parse(
        model="m",
        messages=goal("[milestones=3] [plan=sequential]", system="You are the planner."),
        response_format=Plan,
    )

    plan = completion.choices[0].message.parsed
    assert plan is not None
    assert [m.key for m in plan.milestones] == ["m1", "m2", "m3"]
    assert [m.depends_on for m in plan.milestones] == [[], ["m1"], ["m2"]]
    assert all(m.tools == [] and m.note is None for m in plan.milestones)


async def test_sdk_parse_keeps_the_verifier_verdict(sdk: openai.AsyncOpenAI) -> None:
    text = f"Goal: wire {uuid.uuid4().hex} [fail_first=1]\nMilestone: m2\nAttempt: 1"

    completion = await sdk.chat.completions.parse(
        model="m",
        messages=[
            {"role": "system", "content": "You are the verifier."},
            {"role": "user", "content": text},
        ],
        response_format=Verdict,
    )

    verdict = completion.choices[0].message.parsed
    assert verdict is not None
    assert verdict.passed is False
    assert "m2" in verdict.feedback


async def test_a_worker_under_a_schema_answers_fitting_json(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.chat.completions.parse(
        model="m", messages=goal("[output_tokens=20]"), response_format=Report
    )

    report = completion.choices[0].message.parsed
    assert report is not None
    assert report.headline.startswith("## ")  # The worker's text, in the first string.


async def test_json_object_mode_is_unchanged(http: httpx.AsyncClient) -> None:
    body = {
        "model": "m",
        "messages": goal("[milestones=2]", system="You are the planner."),
        "response_format": {"type": "json_object"},
    }

    response = await http.post("/chat/completions", json=body)

    plan = json.loads(response.json()["choices"][0]["message"]["content"])
    assert set(plan["milestones"][0]) == {"key", "title", "description", "depends_on"}
