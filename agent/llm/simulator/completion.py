"""One simulated completion and the ASGI response that sends it (JSON or SSE).

The response paces tokens at the completion's `tps`, waits `ttft_s` first, and plays the
hang, cut and truncate faults; it stops as soon as the client goes away. A completion
either answers text or asks for tool calls (`finish_reason: "tool_calls"`, content null);
the SSE events of either are built in `sse.py`.
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
from agent.llm.simulator.messages import SimToolCall
from agent.llm.simulator.sse import SSEEvent, StreamFraming, stream_events
from agent.llm.simulator.stats import SimulatorStats

logger = structlog.get_logger(__name__)

SYSTEM_FINGERPRINT = "fp_simulator"
UNLIMITED_TPS_BATCH_TOKENS = 256
"""Tokens per SSE write when `tps` is 0 (as fast as possible)."""


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
    tool_calls: tuple[SimToolCall, ...] = ()
    """The calls this turn asks for (then `text` is empty and the content null)."""

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
                    "message": self._message(),
                    "logprobs": None,
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": self.usage(),
        }

    def _message(self) -> dict[str, Any]:
        if not self.tool_calls:
            return {"role": "assistant", "content": self.text, "refusal": None}
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [call.wire() for call in self.tool_calls],
            "refusal": None,
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

    def _framing(self) -> StreamFraming:
        c = self.completion
        return StreamFraming(
            completion_id=c.completion_id,
            created=c.created,
            model=c.model,
            system_fingerprint=SYSTEM_FINGERPRINT,
            include_usage=c.include_usage,
        )

    def _per_write(self) -> int:
        c = self.completion
        if c.tps > 0:
            return max(1, math.ceil(c.tps * c.event_interval_s))
        return UNLIMITED_TPS_BATCH_TOKENS

    async def _send_stream(self, send: Send, disconnected: asyncio.Event) -> None:
        c = self.completion
        headers = self._response_headers(
            b"text/event-stream; charset=utf-8",
            [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")],
        )
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await asyncio.sleep(c.ttft_s)
        framing = self._framing()
        per_write = self._per_write()
        n_tokens = c.completion_tokens
        cut_at = n_tokens // 2 if (c.cut or c.truncate) and n_tokens else None
        events = stream_events(framing, c.text, c.tool_calls, per_write, cut_at)
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        index = 0
        self.ledger.started(c.task, c.prompt_tokens)
        while index < len(events) or (cut_at is not None and sent >= cut_at):
            if cut_at is not None and sent >= cut_at:
                logger.info("sim_stream_cut", tokens_sent=sent, tokens_total=n_tokens)
                if c.truncate:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                self.ledger.unfinished(c.task)
                # Returning without finishing makes uvicorn drop the connection mid-stream.
                return
            if disconnected.is_set():
                self.ledger.unfinished(c.task)
                return
            batch, index = _next_write(events, index, per_write, sent, cut_at)
            tokens = sum(event.tokens for event in batch)
            if tokens and c.tps > 0:
                delay = start + (sent + tokens - 1) / c.tps - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            body = "".join(event.data for event in batch).encode()
            await send({"type": "http.response.body", "body": body, "more_body": True})
            if tokens:
                self.ledger.sent(c.task, tokens)
            sent += tokens
        tail = framing.finish_event(c.finish_reason)
        if c.include_usage:
            tail += framing.usage_event(c.usage())
        tail += "data: [DONE]\n\n"
        await send({"type": "http.response.body", "body": tail.encode(), "more_body": False})


def _next_write(
    events: Sequence[SSEEvent], index: int, per_write: int, sent: int, cut_at: int | None
) -> tuple[list[SSEEvent], int]:
    """The events of the next write: up to `per_write` tokens, never past `cut_at`."""
    batch: list[SSEEvent] = []
    tokens = 0
    while index < len(events):
        event = events[index]
        if batch and event.tokens and tokens + event.tokens > per_write:
            break
        if batch and event.tokens and cut_at is not None and sent + tokens + event.tokens > cut_at:
            break
        batch.append(event)
        tokens += event.tokens
        index += 1
    return batch, index
