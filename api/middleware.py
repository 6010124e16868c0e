"""Pure ASGI middleware: request ids, a body size limit, the console's security headers."""

from __future__ import annotations

import itertools
import re
import uuid
from http import HTTPStatus

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.contract.errors import ErrorCode
from agent.contract.task import MAX_REQUEST_BODY_BYTES
from api.errors import error_response

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
DEFAULT_MAX_BODY_BYTES = MAX_REQUEST_BODY_BYTES
REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode()
_PROCESS_ID = uuid.uuid4().hex[:16]
_REQUEST_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A request id unique across processes: a random per-process part and a counter.

    Cheaper than `uuid4()` per request (a `getrandom` system call each), as unique.
    """
    return f"{_PROCESS_ID}{next(_REQUEST_COUNTER):016x}"


class RequestContextMiddleware:
    """Binds a request id into structlog's contextvars for the request (or socket).

    A well-formed incoming ``X-Request-ID`` is kept, anything else is replaced by a new
    id; the id is echoed in the response headers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with the request id bound."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER_BYTES, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(
            request_id=request_id, path=scope.get("path", "")
        ):
            await self.app(scope, receive, send_with_id)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER_BYTES:
            text = value.decode("latin-1")
            return text if _REQUEST_ID_PATTERN.match(text) else None
    return None


class BodySizeLimitMiddleware:
    """Rejects request bodies larger than `max_bytes` with 413, before they are parsed.

    A declared ``Content-Length`` over the limit is refused without reading anything; a
    chunked body is counted while it streams and refused as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, refusing oversized bodies."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        received = 0
        started = False
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Look like a client that went away: the app stops reading, and
                    # whatever it answers is replaced by the 413 below.
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"request body exceeds {self.max_bytes} bytes",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


CONSOLE_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        # 'self' covers the same host's ws:/wss: event sockets (CSP level 3).
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""The console keeps an API key in the browser: only its own scripts may run, nothing may
frame it (clickjacking), and it may talk to its own origin only."""
ALWAYS_HEADERS = ((b"x-content-type-options", b"nosniff"),)
PAGE_HEADERS = (
    (b"content-security-policy", CONSOLE_CSP.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
ALWAYS_AND_PAGE_HEADERS = ALWAYS_HEADERS + PAGE_HEADERS
ALWAYS_NAMES = frozenset(name for name, _ in ALWAYS_HEADERS)
ALWAYS_AND_PAGE_NAMES = frozenset(name for name, _ in ALWAYS_AND_PAGE_HEADERS)


class SecurityHeadersMiddleware:
    """`nosniff` on every response; CSP, no-referrer and no framing on the console's pages.

    Args:
        app: The application.
        page_paths: Exact paths served as console pages (e.g. `/`).
        page_prefixes: Path prefixes of the console's files (e.g. `/console/`).
    """

    def __init__(
        self, app: ASGIApp, page_paths: tuple[str, ...], page_prefixes: tuple[str, ...]
    ) -> None:
        self.app = app
        self.page_paths = page_paths
        self.page_prefixes = page_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, adding the headers to its response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        is_page = path in self.page_paths or path.startswith(self.page_prefixes)
        extra = ALWAYS_AND_PAGE_HEADERS if is_page else ALWAYS_HEADERS
        replaced = ALWAYS_AND_PAGE_NAMES if is_page else ALWAYS_NAMES

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in replaced
                ]
                headers.extend(extra)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
