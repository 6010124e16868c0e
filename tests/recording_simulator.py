"""The LLM simulator in this event loop, keeping every chat completion request it received.

Tests use it to assert on what the agents actually sent (system prompts, feedback in the
user turn), not only on what they stored. It wraps the product simulator app with a small
ASGI middleware instead of changing product code; `tests/chaos/recording_sim.py` does the
same for a simulator in its own process, where a log file is the only way out.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.events.types import AgentRole
from agent.llm.simulator.config import SimulatorConfig
from agent.llm.simulator.server import SimulatorServer

COMPLETIONS_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
ROLE_HEADER = "x-agent-role"


@dataclass(frozen=True)
class RecordedRequest:
    """One chat completion request as the simulator received it."""

    role: str | None
    """The `X-Agent-Role` header (the calling agent)."""
    body: dict[str, Any]
    """The parsed JSON body."""

    def contents(self, message_role: str | None = None) -> list[str]:
        """The text of each message, optionally only of one message role (`system`, `user`)."""
        texts: list[str] = []
        for message in self.body.get("messages", []):
            if message_role is not None and message.get("role") != message_role:
                continue
            content = message.get("content")
            if isinstance(content, list):
                content = "".join(str(part.get("text", "")) for part in content)
            texts.append(str(content or ""))
        return texts

    @property
    def system(self) -> str:
        """The system prompt (empty when there is none)."""
        found = self.contents("system")
        return found[0] if found else ""

    @property
    def prompt(self) -> str:
        """Every non-system message, joined: what the agent was asked."""
        texts = [
            str(m.get("content") or "")
            for m in self.body.get("messages", [])
            if m.get("role") != "system"
        ]
        return "\n\n".join(texts)


@dataclass
class RequestRecorder:
    """ASGI middleware appending each completion request to `requests` before serving it."""

    app: ASGIApp
    requests: list[RecordedRequest]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the whole body, record it, then let the app read it again."""
        if scope["type"] != "http" or scope.get("path") not in COMPLETIONS_PATHS:
            await self.app(scope, receive, send)
            return
        replay: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            replay.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        try:
            body = json.loads(b"".join(chunks))
        except ValueError:
            body = {}
        self.requests.append(
            RecordedRequest(
                role=headers.get(ROLE_HEADER), body=body if isinstance(body, dict) else {}
            )
        )

        async def replaying() -> Message:
            if replay:
                return replay.pop(0)
            return await receive()

        await self.app(scope, replaying, send)


@dataclass
class RecordingSimulator:
    """A running simulator and the requests it received, oldest first."""

    base_url: str
    requests: list[RecordedRequest] = field(default_factory=list)

    def calls(self, role: AgentRole, containing: str = "") -> list[RecordedRequest]:
        """The requests of one agent role whose messages contain `containing`."""
        return [
            r
            for r in self.requests
            if r.role == role.value and containing in "\n".join(r.contents())
        ]


@contextlib.asynccontextmanager
async def recording_simulator(**config: Any) -> AsyncIterator[RecordingSimulator]:
    """Serve a fresh simulator on a loopback port that records every completion request.

    Args:
        **config: `SimulatorConfig` fields; fast, short answers by default.

    Yields:
        The simulator's base URL and its growing request list.
    """
    values: dict[str, Any] = {
        "port": 0,
        "ttft_ms": 0,
        "tps": 0,
        "output_tokens": 40,
        "hang_seconds": 30,
    }
    values.update(config)
    server = SimulatorServer(SimulatorConfig(**values))
    requests: list[RecordedRequest] = []
    # Added before start: Starlette builds its middleware stack on the first request.
    server.app.add_middleware(RequestRecorder, requests=requests)
    async with server:
        yield RecordingSimulator(base_url=server.base_url, requests=requests)
