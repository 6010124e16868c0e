"""OpenAI's error bodies (`{"error": {"message", "type", "param", "code"}}`) and faults."""

from __future__ import annotations

import math

from starlette.responses import JSONResponse, Response

from agent.llm.simulator.config import SimulatorConfig
from agent.llm.simulator.directives import Directives, Fault

MS_PER_SECOND = 1000.0


def error_response(
    status: int,
    message: str,
    error_type: str,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An OpenAI error body.

    Args:
        status: HTTP status.
        message: Human-readable message.
        error_type: OpenAI's `type` (`invalid_request_error`, `server_error`, ...).
        code: OpenAI's `code`, if any.
        param: The request parameter at fault, if any.
        headers: Extra response headers.

    Returns:
        The JSON response.
    """
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def bad_request(message: str, param: str | None = None) -> JSONResponse:
    """A 400 `invalid_request_error`.

    Args:
        message: Human-readable message.
        param: The request parameter at fault, if any.

    Returns:
        The JSON response.
    """
    return error_response(400, message, "invalid_request_error", param=param)


def fault_response(fault: Fault, directives: Directives, config: SimulatorConfig) -> Response:
    """The error response a request-level fault (429, 500, 401, 400) answers with.

    Args:
        fault: The fault selected for this request.
        directives: The request's directives (`retry_after` overrides the config).
        config: The simulator's knobs.

    Returns:
        OpenAI's error body with the status and headers the real API sends.
    """
    if fault is Fault.RATE_LIMIT:
        seconds = (
            directives.retry_after
            if directives.retry_after is not None
            else config.retry_after_seconds
        )
        return error_response(
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
        return error_response(
            500,
            "The server had an error while processing your request. Sorry about that! (simulated)",
            "server_error",
        )
    if fault is Fault.UNAUTHORIZED:
        return error_response(
            401,
            "Incorrect API key provided (simulated). You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            code="invalid_api_key",
        )
    return bad_request("Invalid request (simulated fault).", param="messages")
