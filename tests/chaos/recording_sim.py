"""The LLM simulator in its own process, logging every chat completion request.

`python -m tests.chaos.recording_sim --port P --log FILE` serves `agent sim`'s app and
appends one JSON line per `POST /v1/chat/completions`: when it arrived (wall clock),
the role header, the task tag found in the messages (`tag-<hex>`), and the `Milestone:`
and `Attempt:` lines. The chaos suite reads it to count HTTP requests per Temporal
attempt and to measure retry gaps.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.config import get_settings
from agent.llm.simulator.app import create_simulator_app
from agent.llm.simulator.config import SimulatorConfig
from agent.llm.simulator.server import uvicorn_config

TAG = re.compile(r"tag-[0-9a-f]{12}")
MILESTONE = re.compile(r"Milestone: ([A-Za-z0-9_-]+)")
ATTEMPT = re.compile(r"Attempt: (\d+)")


class RequestLog:
    """ASGI middleware appending one JSON line per completion request."""

    def __init__(self, app: ASGIApp, path: Path) -> None:
        self.app = app
        self.handle = path.open("a", buffering=1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != "/v1/chat/completions":
            await self.app(scope, receive, send)
            return
        arrived = time.time()
        chunks: list[bytes] = []
        replay: list[Message] = []
        while True:
            message = await receive()
            replay.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks).decode(errors="replace")
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        record: dict[str, Any] = {
            "t": arrived,
            "role": headers.get("x-agent-role"),
            "tag": _first(TAG, body),
            "milestone": _first(MILESTONE, body),
            "attempt": _first(ATTEMPT, body),
        }
        # Written on arrival: a hung request never answers, and it still counts.
        self.handle.write(json.dumps(record) + "\n")

        async def replaying() -> Message:
            if replay:
                return replay.pop(0)
            return await receive()

        await self.app(scope, replaying, send)


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match.group(1) if match and match.groups() else (match.group(0) if match else None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    config = SimulatorConfig.from_settings(get_settings(), port=args.port, host="127.0.0.1")
    app = RequestLog(create_simulator_app(config), args.log)
    uvicorn.Server(uvicorn_config(app, config.host, config.port)).run()


if __name__ == "__main__":
    main()
