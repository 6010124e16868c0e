"""The simulator's wire format, checked with the official SDK and with raw HTTP."""

from __future__ import annotations

import json
import uuid

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from agent.llm.tokens import count_tokens


def goal(text: str = "") -> list[ChatCompletionMessageParam]:
    return [
        {"role": "system", "content": "You are a worker."},
        {"role": "user", "content": f"Goal: wire {uuid.uuid4().hex} {text}"},
    ]


async def test_sdk_non_streaming_call_parses_with_usage(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.chat.completions.create(
        model="gpt-4o",
        messages=goal("[output_tokens=30]"),
    )

    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    content = completion.choices[0].message.content or ""
    assert completion.usage is not None
    assert completion.usage.completion_tokens == count_tokens(content) == 30
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


async def test_sdk_streaming_call_ends_with_a_usage_chunk(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="gpt-4o",
        messages=goal("[output_tokens=50] [tps=1000]"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert finish[-1] == "stop"
    assert all(f is None for f in finish[:-1])
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == count_tokens(text) == 50
    assert all(c.usage is None for c in chunks[:-1])


async def test_sdk_lists_models(sdk: openai.AsyncOpenAI) -> None:
    models = [m.id async for m in sdk.models.list()]

    assert "gpt-4o-mini" in models


async def test_raw_sse_framing_has_data_lines_and_done(http: httpx.AsyncClient) -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": goal("[output_tokens=20]"),
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    async with http.stream("POST", "/chat/completions", json=body) as response:
        raw = (await response.aread()).decode()

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert raw.endswith("\n\n")
    events = raw.split("\n\n")[:-1]
    assert all(event.startswith("data: ") and "\n" not in event for event in events)
    assert events[-1] == "data: [DONE]"
    payloads = [json.loads(event.removeprefix("data: ")) for event in events[:-1]]
    assert {p["object"] for p in payloads} == {"chat.completion.chunk"}
    assert len({p["id"] for p in payloads}) == 1
    assert payloads[-1]["usage"]["completion_tokens"] == 20


async def test_without_include_usage_chunks_carry_no_usage(http: httpx.AsyncClient) -> None:
    body = {"model": "m", "messages": goal(), "stream": True}

    async with http.stream("POST", "/chat/completions", json=body) as response:
        raw = (await response.aread()).decode()

    payloads = [json.loads(e[6:]) for e in raw.split("\n\n")[:-1] if e != "data: [DONE]"]
    assert all("usage" not in p for p in payloads)
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"


async def test_same_request_gets_the_same_answer(http: httpx.AsyncClient) -> None:
    body = {"model": "m", "messages": goal()}

    first = (await http.post("/chat/completions", json=body)).json()
    second = (await http.post("/chat/completions", json=body)).json()

    assert first["choices"][0]["message"] == second["choices"][0]["message"]
    assert first["usage"] == second["usage"]


async def test_rate_limit_fault_has_openai_error_body_and_retry_after(
    http: httpx.AsyncClient,
) -> None:
    body = {"model": "m", "messages": goal("[fault=429] [retry_after=5]")}

    response = await http.post("/chat/completions", json=body)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "5"
    assert response.headers["retry-after-ms"] == "5000"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("fault", "status", "error_type"),
    [
        ("500", 500, "server_error"),
        ("400", 400, "invalid_request_error"),
        ("401", 401, "invalid_request_error"),
    ],
)
async def test_error_faults_use_openai_error_bodies(
    http: httpx.AsyncClient, fault: str, status: int, error_type: str
) -> None:
    response = await http.post(
        "/chat/completions", json={"model": "m", "messages": goal(f"[fault={fault}]")}
    )

    assert response.status_code == status
    assert response.json()["error"]["type"] == error_type


async def test_invalid_bodies_are_400_with_the_offending_param(http: httpx.AsyncClient) -> None:
    not_json = await http.post("/chat/completions", content=b"{nope")
    no_messages = await http.post("/chat/completions", json={"model": "m", "messages": []})
    no_model = await http.post("/chat/completions", json={"messages": goal()})

    assert not_json.status_code == 400
    assert no_messages.json()["error"]["param"] == "messages"
    assert no_model.json()["error"]["param"] == "model"


async def test_unknown_route_is_a_json_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/nothing-here")

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_system_prompt_detects_the_role_without_the_header(http: httpx.AsyncClient) -> None:
    messages = [
        {"role": "system", "content": "You are the verifier. Judge the work."},
        {
            "role": "user",
            "content": f"Goal: {uuid.uuid4().hex} [fail_first=1]\nMilestone: m1\nAttempt: 1",
        },
    ]

    response = await http.post("/chat/completions", json={"model": "m", "messages": messages})

    verdict = json.loads(response.json()["choices"][0]["message"]["content"])
    assert verdict["passed"] is False
    assert verdict["feedback"]


async def test_invalid_plan_fault_only_hits_the_planner(http: httpx.AsyncClient) -> None:
    text = f"Goal: {uuid.uuid4().hex} [fault=invalid_plan] [invalid=malformed]"
    body = {"model": "m", "messages": [{"role": "user", "content": text}]}

    planner = await http.post("/chat/completions", json=body, headers={"X-Agent-Role": "planner"})
    worker = await http.post("/chat/completions", json=body, headers={"X-Agent-Role": "worker"})

    with pytest.raises(json.JSONDecodeError):
        json.loads(planner.json()["choices"][0]["message"]["content"])
    assert worker.json()["choices"][0]["message"]["content"].startswith("## ")
