"""The simulator's ASGI app: `POST /v1/chat/completions` (JSON and SSE), `GET /v1/models`.

Run it with uvicorn (`agent sim`) or in-process (`SimulatorServer`). The wire format follows
the OpenAI API: the same JSON bodies, `chat.completion.chunk` SSE events, a final usage
chunk with `stream_options.include_usage`, `data: [DONE]`, and OpenAI's error bodies
(`{"error": {"message", "type", "param", "code"}}`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from agent.config import get_settings
from agent.events.types import AgentRole
from agent.llm.simulator.config import SimulatorConfig
from agent.llm.simulator.directives import Directives, Fault, parse_directives
from agent.llm.simulator.faults import FaultCounter
from agent.llm.simulator.responder import (
    Message,
    answer,
    conversation_key,
    detect_role,
    invalid_plan_answer,
    request_seed,
)
from agent.llm.tokens import CHARS_PER_TOKEN, count_message_tokens, count_tokens

logger = structlog.get_logger(__name__)

ROLE_HEADER = "x-agent-role"
SYSTEM_FINGERPRINT = "fp_simulator"
MODEL_OWNER = "agent-simulator"
UNLIMITED_TPS_BATCH_TOKENS = 256
"""Tokens per SSE event when `tps` is 0 (as fast as possible)."""
MS_PER_SECOND = 1000.0

FINISH_STOP = "stop"
FINISH_LENGTH = "length"


def _error(
    status: int,
    message: str,
    error_type: str,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _bad_request(message: str, param: str | None = None) -> JSONResponse:
    return _error(400, message, "invalid_request_error", param=param)


def _fault_response(fault: Fault, directives: Directives, config: SimulatorConfig) -> Response:
    if fault is Fault.RATE_LIMIT:
        seconds = (
            directives.retry_after
            if directives.retry_after is not None
            else config.retry_after_seconds
        )
        return _error(
            429,
            f"Rate limit reached for requests (simulated). Please try again in {seconds:g}s.",
            "requests",
            code="rate_limit_exceeded",
            headers={
                "retry-after": f"{math.ceil(seconds):d}",
                "retry-after-ms": f"{int(seconds * MS_PER_SECOND):d}",
                "x-ratelimit-remaining-requests": "0",
            },
        )
    if fault is Fault.SERVER_ERROR:
        return _error(
            500,
            "The server had an error while processing your request. Sorry about that! (simulated)",
            "server_error",
        )
    if fault is Fault.UNAUTHORIZED:
        return _error(
            401,
            "Incorrect API key provided (simulated). You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            code="invalid_api_key",
        )
    return _bad_request("Invalid request (simulated fault).", param="messages")


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


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

    def __init__(self, completion: Completion, request_id: str, stats: SimulatorStats) -> None:
        self.completion = completion
        self.request_id = request_id
        self.stats = stats
        self.background = None

    def _response_headers(
        self, content_type: bytes, extra: Sequence[tuple[bytes, bytes]] = ()
    ) -> list[tuple[bytes, bytes]]:
        return [
            (b"content-type", content_type),
            (b"x-request-id", self.request_id.encode()),
            (b"openai-model", self.completion.model.encode()),
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
        if c.cut:
            # Returning before the body is complete makes uvicorn drop the connection.
            half = body[: len(body) // 2]
            await send({"type": "http.response.body", "body": half, "more_body": True})
            return
        await send({"type": "http.response.body", "body": body})

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
        while sent < n_tokens:
            if disconnected.is_set():
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
                pending = ""
                sent = upto
            if cut_at is not None and sent >= cut_at:
                logger.info("sim_stream_cut", tokens_sent=sent, tokens_total=n_tokens)
                if c.truncate:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
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


@dataclass
class SimulatorStats:
    """Counters of completions being sent, served at `GET /sim/stats`."""

    completions_total: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    def started(self) -> None:
        """Count a completion that starts being sent."""
        self.completions_total += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def finished(self) -> None:
        """Count a completion that is done (sent, cut, or abandoned by its client)."""
        self.in_flight -= 1

    def reset(self) -> None:
        """Zero the totals (in-flight completions stay counted)."""
        self.completions_total = 0
        self.max_in_flight = self.in_flight


class Simulator:
    """Turns chat completion requests into simulated completions."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.faults = FaultCounter()
        self.stats = SimulatorStats()

    def _select_fault(
        self, directives: Directives, role: AgentRole, model: str, messages: Sequence[Message]
    ) -> Fault | None:
        fault = directives.fault
        if fault is None:
            return None
        if directives.fault_role is not None and directives.fault_role is not role:
            return None
        if fault is Fault.INVALID_PLAN and role is not AgentRole.PLANNER:
            return None
        key = conversation_key(model, role, messages)
        if not self.faults.should_fault(key, directives.fault_count):
            return None
        return fault

    async def chat_completions(self, request: Request) -> Response:
        """`POST /v1/chat/completions`."""
        try:
            payload = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _bad_request("We could not parse the JSON body of your request.")
        if not isinstance(payload, dict):
            return _bad_request("The request body must be a JSON object.")
        model = payload.get("model")
        raw_messages = payload.get("messages")
        if not isinstance(model, str) or not model:
            return _bad_request("you must provide a model parameter", param="model")
        if not isinstance(raw_messages, list) or not raw_messages:
            return _bad_request("'messages' must be a non-empty array", param="messages")
        messages = [
            Message(role=str(m.get("role", "user")), content=_content_text(m.get("content")))
            for m in raw_messages
            if isinstance(m, dict)
        ]
        contents = [m.content for m in messages]
        role = detect_role(request.headers.get(ROLE_HEADER), messages)
        directives = parse_directives(contents)
        fault = self._select_fault(directives, role, model, messages)
        if fault in {Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.BAD_REQUEST, Fault.UNAUTHORIZED}:
            logger.info("sim_fault", fault=fault, role=role)
            assert fault is not None
            return _fault_response(fault, directives, self.config)

        seed = request_seed(model, role, messages)
        input_tokens = count_message_tokens(contents)
        output_tokens = directives.output_tokens or self.config.output_tokens
        if fault is Fault.INVALID_PLAN:
            text = invalid_plan_answer(messages, directives, seed)
        else:
            text = answer(
                role,
                messages,
                directives,
                seed,
                output_tokens=output_tokens,
                input_tokens=input_tokens,
            )
        finish_reason = FINISH_STOP
        limit = payload.get("max_completion_tokens") or payload.get("max_tokens")
        if isinstance(limit, int) and limit > 0 and count_tokens(text) > limit:
            text = text[: limit * CHARS_PER_TOKEN]
            finish_reason = FINISH_LENGTH
        stream_options = payload.get("stream_options") or {}
        ttft_ms = directives.ttft_ms if directives.ttft_ms is not None else self.config.ttft_ms
        completion = Completion(
            completion_id=f"chatcmpl-sim{seed:016x}",
            created=int(time.time()),
            model=model,
            text=text,
            finish_reason=finish_reason,
            prompt_tokens=input_tokens,
            completion_tokens=count_tokens(text),
            stream=payload.get("stream") is True,
            include_usage=isinstance(stream_options, dict)
            and stream_options.get("include_usage") is True,
            ttft_s=ttft_ms / MS_PER_SECOND,
            tps=directives.tps if directives.tps is not None else self.config.tps,
            event_interval_s=self.config.event_interval_ms / MS_PER_SECOND,
            hang_s=self.config.hang_seconds if fault is Fault.HANG else None,
            cut=fault is Fault.CUT,
            truncate=fault is Fault.TRUNCATE,
        )
        if fault is not None:
            logger.info("sim_fault", fault=fault, role=role)
        self.stats.started()
        return CompletionResponse(completion, f"req_{uuid.uuid4().hex}", self.stats)

    async def list_models(self, request: Request) -> Response:
        """`GET /v1/models`."""
        return JSONResponse(
            {"object": "list", "data": [self._model(m) for m in self.config.models]}
        )

    async def get_model(self, request: Request) -> Response:
        """`GET /v1/models/{model}` (any id exists: the simulator serves every model)."""
        return JSONResponse(self._model(request.path_params["model"]))

    @staticmethod
    def _model(model_id: str) -> dict[str, Any]:
        return {"id": model_id, "object": "model", "created": 0, "owned_by": MODEL_OWNER}

    async def get_stats(self, request: Request) -> Response:
        """`GET /sim/stats`: completions served, in flight now, and the peak."""
        return JSONResponse(
            {
                "completions_total": self.stats.completions_total,
                "in_flight": self.stats.in_flight,
                "max_in_flight": self.stats.max_in_flight,
            }
        )

    async def health(self, request: Request) -> Response:
        """`GET /healthz`."""
        return JSONResponse({"status": "ok"})


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = f"Invalid URL ({request.method} {request.url.path})"
    return _error(status, message, "invalid_request_error")


def create_simulator_app(config: SimulatorConfig | None = None) -> Starlette:
    """Build the simulator's ASGI app (uvicorn factory).

    Args:
        config: Knobs; read from `AGENT_SIM_*` settings when omitted.

    Returns:
        The app; `app.state.simulator` is the `Simulator` (its `faults` can be reset).
    """
    simulator = Simulator(config or SimulatorConfig.from_settings(get_settings()))
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", simulator.chat_completions, methods=["POST"]),
            Route("/chat/completions", simulator.chat_completions, methods=["POST"]),
            Route("/v1/models", simulator.list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", simulator.get_model, methods=["GET"]),
            Route("/healthz", simulator.health, methods=["GET"]),
            Route("/sim/stats", simulator.get_stats, methods=["GET"]),
        ],
        exception_handlers={404: _http_error, 405: _http_error},
    )
    app.state.simulator = simulator
    return app
