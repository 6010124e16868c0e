"""One simulated completion and the ASGI response that sends it (JSON or SSE).

The response paces tokens at the completion's `tps`, waits `ttft_s` first, and plays the
hang, cut and truncate faults; it stops as soon as the client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from agent.llm.simulator.ledger import ServedLedger
from agent.llm.simulator.stats import SimulatorStats
from agent.llm.tokens import CHARS_PER_TOKEN

logger = structlog.get_logger(__name__)

SYSTEM_FINGERPRINT = "fp_simulator"
UNLIMITED_TPS_BATCH_TOKENS = 256
"""Tokens per SSE event when `tps` is 0 (as fast as possible)."""


@dataclass(frozen=True)
class Completion:
    """Everything needed to send one simulated completion."""

    completion_id: str
    created: int
    model: str
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    stream: bool
    include_usage: bool
    ttft_s: float
    tps: float
    event_interval_s: float
    hang_s: float | None
    cut: bool
    truncate: bool
    task: str | None = None
    """The `X-Agent-Task` header: whose served tokens this completion counts as."""
    headers: tuple[tuple[str, str], ...] = ()
    """Extra response headers (e.g. `x-ratelimit-remaining-requests` under a limit)."""

    def usage(self) -> dict[str, int]:
        """The OpenAI `usage` object."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    def body(self) -> dict[str, Any]:
        """The non-streaming `chat.completion` body."""
        return {
            "id": self.completion_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": self.usage(),
        }

    def generation_seconds(self) -> float:
        """Time to produce the whole answer at `tps` (0 when unlimited)."""
        return self.completion_tokens / self.tps if self.tps > 0 else 0.0


async def _wait_for_disconnect(receive: Receive, disconnected: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            disconnected.set()
            return


class CompletionResponse(Response):
    """Sends a `Completion` with its timing, hang and cut behaviour."""

    def __init__(
        self,
        completion: Completion,
        request_id: str,
        stats: SimulatorStats,
        ledger: ServedLedger,
    ) -> None:
        self.completion = completion
        self.request_id = request_id
        self.stats = stats
        self.ledger = ledger
        self.background = None

    def _response_headers(
        self, content_type: bytes, extra: Sequence[tuple[bytes, bytes]] = ()
    ) -> list[tuple[bytes, bytes]]:
        return [
            (b"content-type", content_type),
            (b"x-request-id", self.request_id.encode()),
            (b"openai-model", self.completion.model.encode()),
            *((k.encode(), v.encode()) for k, v in self.completion.headers),
            *extra,
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the completion, watching for the client going away."""
        disconnected = asyncio.Event()
        watcher = asyncio.create_task(_wait_for_disconnect(receive, disconnected))
        try:
            if self.completion.hang_s is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(disconnected.wait(), self.completion.hang_s)
                if disconnected.is_set():
                    return
            if self.completion.stream:
                await self._send_stream(send, disconnected)
            else:
                await self._send_json(send, disconnected)
        finally:
            watcher.cancel()
            self.stats.finished()

    async def _send_json(self, send: Send, disconnected: asyncio.Event) -> None:
        c = self.completion
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(disconnected.wait(), c.ttft_s + c.generation_seconds())
        if disconnected.is_set():
            return
        body = json.dumps(c.body()).encode()
        length = (b"content-length", str(len(body)).encode())
        headers = self._response_headers(b"application/json", [length])
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        self.ledger.started(c.task, c.prompt_tokens)
        if c.cut:
            # Returning before the body is complete makes uvicorn drop the connection.
            half = body[: len(body) // 2]
            await send({"type": "http.response.body", "body": half, "more_body": True})
            self.ledger.unfinished(c.task)
            return
        await send({"type": "http.response.body", "body": body})
        self.ledger.sent(c.task, c.completion_tokens)

    def _chunk_prefix(self) -> str:
        c = self.completion
        return (
            f'data: {{"id":"{c.completion_id}","object":"chat.completion.chunk",'
            f'"created":{c.created},"model":{json.dumps(c.model)},'
            f'"system_fingerprint":"{SYSTEM_FINGERPRINT}","choices":['
        )

    async def _send_stream(self, send: Send, disconnected: asyncio.Event) -> None:
        c = self.completion
        headers = self._response_headers(
            b"text/event-stream; charset=utf-8",
            [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")],
        )
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await asyncio.sleep(c.ttft_s)
        prefix = self._chunk_prefix()
        usage_null = ',"usage":null' if c.include_usage else ""
        content_open = '{"index":0,"delta":{"content":'
        content_close = '},"logprobs":null,"finish_reason":null}]' + usage_null + "}\n\n"
        role_event = (
            prefix
            + '{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,'
            + '"finish_reason":null}]'
            + usage_null
            + "}\n\n"
        )
        text = c.text
        n_tokens = math.ceil(len(text) / CHARS_PER_TOKEN)
        if c.tps > 0:
            per_event = max(1, math.ceil(c.tps * c.event_interval_s))
        else:
            per_event = UNLIMITED_TPS_BATCH_TOKENS
        cut_at = n_tokens // 2 if c.cut or c.truncate else None
        loop = asyncio.get_running_loop()
        start = loop.time()
        pending = role_event
        sent = 0
        self.ledger.started(c.task, c.prompt_tokens)
        while sent < n_tokens:
            if disconnected.is_set():
                self.ledger.unfinished(c.task)
                return
            upto = min(n_tokens, sent + per_event)
            if cut_at is not None and upto > cut_at:
                upto = cut_at
            if upto > sent:
                if c.tps > 0:
                    delay = start + (upto - 1) / c.tps - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                piece = text[sent * CHARS_PER_TOKEN : upto * CHARS_PER_TOKEN]
                pending += prefix + content_open + json.dumps(piece) + content_close
                await send(
                    {"type": "http.response.body", "body": pending.encode(), "more_body": True}
                )
                self.ledger.sent(c.task, upto - sent)
                pending = ""
                sent = upto
            if cut_at is not None and sent >= cut_at:
                logger.info("sim_stream_cut", tokens_sent=sent, tokens_total=n_tokens)
                if c.truncate:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                self.ledger.unfinished(c.task)
                # Returning without finishing makes uvicorn drop the connection mid-stream.
                return
        tail = (
            pending
            + prefix
            + '{"index":0,"delta":{},"logprobs":null,"finish_reason":'
            + json.dumps(c.finish_reason)
            + "}]"
            + usage_null
            + "}\n\n"
        )
        if c.include_usage:
            tail += prefix + '],"usage":' + json.dumps(c.usage()) + "}\n\n"
        tail += "data: [DONE]\n\n"
        await send({"type": "http.response.body", "body": tail.encode(), "more_body": False})
