"""Acceptance: `agent sim --port P` with the official (sync) `openai` SDK."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from agent.stack.ports import free_port, wait_for_port

STARTUP_TIMEOUT_SECONDS = 60.0


@pytest.fixture(scope="module")
def sim_cli_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    agent = shutil.which("agent", path=str(Path(sys.executable).parent)) or "agent"
    log = (tmp_path_factory.mktemp("sim") / "sim.log").open("wb")
    env = {**os.environ, "AGENT_SIM_TTFT_MS": "0", "AGENT_SIM_TPS": "0"}
    process = subprocess.Popen(
        [agent, "sim", "--port", str(port), "--output-tokens", "25"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        assert wait_for_port(port, timeout=STARTUP_TIMEOUT_SECONDS), "agent sim did not start"
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def test_cli_simulator_serves_streaming_and_non_streaming_calls(sim_cli_url: str) -> None:
    client = openai.OpenAI(base_url=sim_cli_url, api_key="anything", max_retries=0)
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Goal: say hello"}]

    completion = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert completion.usage is not None
    assert completion.usage.completion_tokens == 25
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == completion.choices[0].message.content
    assert chunks[-1].usage == completion.usage


def test_cli_simulator_answers_429_with_retry_after(sim_cli_url: str) -> None:
    client = openai.OpenAI(base_url=sim_cli_url, api_key="anything", max_retries=0)

    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Goal: x [fault=429] [retry_after=4]"}],
        )

    assert caught.value.response.headers["retry-after"] == "4"
