"""The simulator's ASGI app: `POST /v1/chat/completions` (JSON and SSE), `GET /v1/models`.

Run it with uvicorn (`agent sim`) or in-process (`SimulatorServer`). The wire format follows
the OpenAI API: the same JSON bodies, `chat.completion.chunk` SSE events, a final usage
chunk with `stream_options.include_usage`, `data: [DONE]`, and OpenAI's error bodies
(`{"error": {"message", "type", "param", "code"}}`). Sending a completion lives in
`completion.py`, the error bodies in `openai_errors.py`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agent.config import get_settings
from agent.events.types import AgentRole
from agent.llm.simulator.admin import ProviderTrouble, Verdict, rate_limit_headers
from agent.llm.simulator.completion import Completion, CompletionResponse
from agent.llm.simulator.config import SimulatorConfig
from agent.llm.simulator.directives import Directives, Fault, parse_directives
from agent.llm.simulator.faults import FaultCounter
from agent.llm.simulator.ledger import ServedLedger
from agent.llm.simulator.messages import Message, parse_message, parse_tools, response_schema
from agent.llm.simulator.openai_errors import (
    MS_PER_SECOND,
    bad_request,
    error_response,
    fault_response,
)
from agent.llm.simulator.responder import (
    JSON_ROLES,
    answer,
    conversation_key,
    detect_role,
    invalid_plan_answer,
    request_seed,
)
from agent.llm.simulator.stats import SimulatorStats
from agent.llm.simulator.turn import TurnRequest, take_turn
from agent.llm.tokens import count_message_tokens

logger = structlog.get_logger(__name__)

ROLE_HEADER = "x-agent-role"
TASK_HEADER = "x-agent-task"
MODEL_OWNER = "agent-simulator"

HTTP_TOO_MANY_REQUESTS = 429


class Simulator:
    """Turns chat completion requests into simulated completions."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.faults = FaultCounter()
        self.stats = SimulatorStats()
        self.served = ServedLedger()
        self.trouble = ProviderTrouble()

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
            return bad_request("We could not parse the JSON body of your request.")
        if not isinstance(payload, dict):
            return bad_request("The request body must be a JSON object.")
        model = payload.get("model")
        raw_messages = payload.get("messages")
        if not isinstance(model, str) or not model:
            return bad_request("you must provide a model parameter", param="model")
        if not isinstance(raw_messages, list) or not raw_messages:
            return bad_request("'messages' must be a non-empty array", param="messages")
        messages = [parse_message(m) for m in raw_messages if isinstance(m, dict)]
        tools = parse_tools(payload.get("tools"))
        if isinstance(tools, str):
            return bad_request(tools, param="tools")
        verdict = self.trouble.judge()
        if verdict.status is not None:
            return _trouble_response(verdict)
        contents = [m.content for m in messages]
        role = detect_role(request.headers.get(ROLE_HEADER), messages)
        directives = parse_directives(contents)
        fault = self._select_fault(directives, role, model, messages)
        if fault in {Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.BAD_REQUEST, Fault.UNAUTHORIZED}:
            logger.info("sim_fault", fault=fault, role=role)
            assert fault is not None
            return fault_response(fault, directives, self.config)

        seed = request_seed(model, role, messages)
        input_tokens = count_message_tokens(
            [text for m in messages for text in m.token_texts()] + list(tools.definition_texts)
        )
        output_tokens = directives.output_tokens or self.config.output_tokens

        def role_answer() -> str:
            if fault is Fault.INVALID_PLAN:
                return invalid_plan_answer(messages, directives, seed)
            return answer(
                role,
                messages,
                directives,
                seed,
                output_tokens=output_tokens,
                input_tokens=input_tokens,
            )

        limit = payload.get("max_completion_tokens") or payload.get("max_tokens")
        turn = take_turn(
            TurnRequest(
                messages=messages,
                conversation=conversation_key(model, role, messages),
                answer=role_answer,
                answers_json=role in JSON_ROLES,
                offers_tools=bool(tools.names) and payload.get("tool_choice") != "none",
                schema=response_schema(payload.get("response_format")),
                max_tokens=limit if isinstance(limit, int) else None,
            )
        )
        stream_options = payload.get("stream_options") or {}
        ttft_ms = directives.ttft_ms if directives.ttft_ms is not None else self.config.ttft_ms
        completion = Completion(
            completion_id=f"chatcmpl-sim{seed:016x}",
            created=int(time.time()),
            model=model,
            text=turn.text,
            finish_reason=turn.finish_reason,
            prompt_tokens=input_tokens,
            completion_tokens=turn.completion_tokens,
            stream=payload.get("stream") is True,
            include_usage=isinstance(stream_options, dict)
            and stream_options.get("include_usage") is True
            and directives.usage != "none",
            ttft_s=ttft_ms / MS_PER_SECOND,
            tps=directives.tps if directives.tps is not None else self.config.tps,
            event_interval_s=self.config.event_interval_ms / MS_PER_SECOND,
            hang_s=self.config.hang_seconds if fault is Fault.HANG else None,
            cut=fault is Fault.CUT,
            truncate=fault is Fault.TRUNCATE,
            task=request.headers.get(TASK_HEADER),
            headers=tuple(rate_limit_headers(verdict).items()),
            tool_calls=turn.tool_calls,
        )
        if fault is not None:
            logger.info("sim_fault", fault=fault, role=role)
        self.stats.started()
        return CompletionResponse(completion, f"req_{uuid.uuid4().hex}", self.stats, self.served)

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
                **self.trouble.counts(),
            }
        )

    async def reset_stats(self, request: Request) -> Response:
        """`POST /sim/stats/reset`: zero the counters (a test run starts)."""
        self.stats.reset()
        self.trouble.reset_counts()
        return JSONResponse({"status": "ok"})

    async def outage(self, request: Request) -> Response:
        """`POST /sim/outage {"status": 503, "seconds": 30}` / `DELETE /sim/outage`."""
        if request.method == "DELETE":
            self.trouble.end_outage()
            return JSONResponse({"status": "ok"})
        body = await _json_object(request)
        status, seconds = body.get("status", 503), body.get("seconds")
        if not isinstance(status, int) or not isinstance(seconds, int | float) or seconds <= 0:
            return bad_request("send {'status': int, 'seconds': positive number}")
        self.trouble.start_outage(status, float(seconds))
        logger.info("sim_outage_started", status=status, seconds=seconds)
        return JSONResponse({"status": "ok"})

    async def rate_limit(self, request: Request) -> Response:
        """`POST /sim/rate_limit {"rpm": 60}` / `DELETE /sim/rate_limit`."""
        if request.method == "DELETE":
            self.trouble.set_rate_limit(None)
            return JSONResponse({"status": "ok"})
        rpm = (await _json_object(request)).get("rpm")
        if not isinstance(rpm, int) or rpm < 1:
            return bad_request("send {'rpm': positive int}")
        self.trouble.set_rate_limit(rpm)
        return JSONResponse({"status": "ok"})

    async def get_served(self, request: Request) -> Response:
        """`GET /sim/served`: tokens served per task (see `agent.llm.simulator.ledger`)."""
        return JSONResponse(self.served.snapshot())

    async def health(self, request: Request) -> Response:
        """`GET /healthz`."""
        return JSONResponse({"status": "ok"})


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _trouble_response(verdict: Verdict) -> Response:
    """The answer to a request refused by an outage or the rate limit."""
    status = verdict.status or 503
    if status == HTTP_TOO_MANY_REQUESTS:
        return error_response(
            status,
            "Rate limit reached for requests (simulated limit).",
            "requests",
            code="rate_limit_exceeded",
            headers=rate_limit_headers(verdict),
        )
    return error_response(
        status, "The server is overloaded or not ready yet (simulated outage).", "server_error"
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = f"Invalid URL ({request.method} {request.url.path})"
    return error_response(status, message, "invalid_request_error")


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
            Route("/sim/served", simulator.get_served, methods=["GET"]),
            Route("/sim/stats/reset", simulator.reset_stats, methods=["POST"]),
            Route("/sim/outage", simulator.outage, methods=["POST", "DELETE"]),
            Route("/sim/rate_limit", simulator.rate_limit, methods=["POST", "DELETE"]),
        ],
        exception_handlers={404: _http_error, 405: _http_error},
    )
    app.state.simulator = simulator
    return app
