"""One JSON error shape for every failure: ``{"error": {"code", "message", "details"}}``.

Whatever a client sends gets a 4xx with this shape; only a bug on our side is a 500, and
even that answers with the shape and no traceback.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request, WebSocket
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import InterfaceError as SAInterfaceError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

from agent.contract.errors import ErrorCode
from agent.contract.protocol import CloseCode
from agent.repositories.errors import (
    InvalidCursorError,
    InvalidPageSizeError,
    RecordNotFoundError,
)

logger = structlog.get_logger(__name__)


class ErrorBody(BaseModel):
    """The body of an error."""

    code: ErrorCode
    message: str
    details: Any = Field(default=None)


class ErrorResponse(BaseModel):
    """Every error response."""

    error: ErrorBody


class ApiError(Exception):
    """An error a handler raises to answer with a given status and code.

    Args:
        status_code: HTTP status.
        code: Stable error code.
        message: Human-readable explanation.
        details: Optional structured details.
        headers: Optional response headers.
    """

    def __init__(
        self,
        status_code: int,
        code: ErrorCode,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def not_found(what: str = "task") -> ApiError:
    """Build the 404 used for missing and other users' resources alike."""
    return ApiError(HTTPStatus.NOT_FOUND, ErrorCode.NOT_FOUND, f"{what} not found")


def error_response(
    status_code: int,
    code: ErrorCode,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Render the error shape."""
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details))
    return JSONResponse(
        jsonable_encoder(body.model_dump(mode="json")), status_code=status_code, headers=headers
    )


_STATUS_CODES: dict[int, ErrorCode] = {
    HTTPStatus.NOT_FOUND: ErrorCode.NOT_FOUND,
    HTTPStatus.UNAUTHORIZED: ErrorCode.UNAUTHORIZED,
    HTTPStatus.FORBIDDEN: ErrorCode.FORBIDDEN,
    HTTPStatus.TOO_MANY_REQUESTS: ErrorCode.RATE_LIMITED,
    HTTPStatus.CONFLICT: ErrorCode.CONFLICT,
    HTTPStatus.METHOD_NOT_ALLOWED: ErrorCode.METHOD_NOT_ALLOWED,
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: ErrorCode.PAYLOAD_TOO_LARGE,
    HTTPStatus.UNPROCESSABLE_ENTITY: ErrorCode.VALIDATION_ERROR,
    HTTPStatus.SERVICE_UNAVAILABLE: ErrorCode.SERVICE_UNAVAILABLE,
}


def _validation_details(errors: Any) -> list[dict[str, Any]]:
    details = []
    for error in errors:
        details.append(
            {
                "loc": list(error.get("loc", ())),
                "msg": error.get("msg", ""),
                "type": error.get("type", ""),
            }
        )
    return details


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _http_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == HTTPStatus.BAD_REQUEST:
        # FastAPI's own 400 for a body it cannot decode (malformed, or nested deeper than
        # the JSON parser's recursion limit): bad input is a 422 with the field, like
        # every other validation failure, and the only client error the schema declares.
        return error_response(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            ErrorCode.VALIDATION_ERROR,
            "the request body could not be decoded as JSON",
            [{"loc": ["body"], "msg": str(exc.detail), "type": "json_invalid"}],
        )
    code = _STATUS_CODES.get(exc.status_code, ErrorCode.HTTP_ERROR)
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, message, headers=headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        ErrorCode.VALIDATION_ERROR,
        "request validation failed",
        _validation_details(exc.errors()),
    )


async def _not_found(_request: Request, exc: Exception) -> JSONResponse:
    model = getattr(exc, "model", "record")
    return error_response(HTTPStatus.NOT_FOUND, ErrorCode.NOT_FOUND, f"{model} not found")


async def _invalid_cursor(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        ErrorCode.INVALID_CURSOR,
        str(exc),
        [{"loc": ["query", "cursor"], "msg": str(exc), "type": "invalid_cursor"}],
    )


async def _invalid_page_size(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        ErrorCode.VALIDATION_ERROR,
        str(exc),
        [{"loc": ["query", "limit"], "msg": str(exc), "type": "value_error"}],
    )


async def _temporal_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    logger.warning("temporal_unavailable", error=repr(exc))
    return error_response(
        HTTPStatus.SERVICE_UNAVAILABLE,
        ErrorCode.SERVICE_UNAVAILABLE,
        "the workflow service is unavailable; retry later",
        headers={"Retry-After": "5"},
    )


async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    logger.warning("database_unavailable", error=repr(exc))
    return error_response(
        HTTPStatus.SERVICE_UNAVAILABLE,
        ErrorCode.SERVICE_UNAVAILABLE,
        "the database is unavailable; retry later",
        headers={"Retry-After": "5"},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled_error", path=request.url.path, method=request.method, exc_info=exc)
    return error_response(
        HTTPStatus.INTERNAL_SERVER_ERROR, ErrorCode.INTERNAL_ERROR, "internal server error"
    )


CLOSE_REASON_MAX_BYTES = 123
"""RFC 6455 caps a close frame's reason at 123 bytes."""


async def _websocket_validation_error(websocket: WebSocket, exc: Exception) -> None:
    """Close a socket whose query is invalid with 4422 and a reason naming the field.

    Without this, Starlette refuses the handshake with a bare HTTP 403 that says nothing.
    """
    assert isinstance(exc, WebSocketRequestValidationError)
    problems = [
        f"{_field_path(error.get('loc', ()))}: {error.get('msg', '')}" for error in exc.errors()
    ]
    reason = "; ".join(problems).encode()[:CLOSE_REASON_MAX_BYTES].decode(errors="ignore")
    await websocket.accept()
    await websocket.close(code=CloseCode.INVALID_REQUEST, reason=reason)


def _field_path(location: Any) -> str:
    """`("query", "after_seq")` -> `after_seq`: the field a client can fix."""
    parts = [str(part) for part in location if part not in ("query", "path", "body")]
    return ".".join(parts) or "request"


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that render every error in the one shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(WebSocketRequestValidationError, _websocket_validation_error)
    app.add_exception_handler(RecordNotFoundError, _not_found)
    app.add_exception_handler(InvalidCursorError, _invalid_cursor)
    app.add_exception_handler(InvalidPageSizeError, _invalid_page_size)
    app.add_exception_handler(RPCError, _temporal_unavailable)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(SAInterfaceError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)


__all__ = [
    "ApiError",
    "ErrorBody",
    "ErrorCode",
    "ErrorResponse",
    "error_response",
    "install_error_handlers",
    "not_found",
]
