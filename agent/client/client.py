"""`AgentApiClient`: the public HTTP API and the task event socket, typed.

The event stream reconnects by itself from the last cursor it delivered (after a slow
consumer close, a server restart or a network error), so a caller sees every stored
event exactly once, in order.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode, urlsplit, urlunsplit
from uuid import UUID

import httpx
import structlog
from pydantic import BaseModel
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from agent.client.models import (
    CancelOut,
    EventPage,
    ResumeOut,
    StreamMessage,
    TaskDetail,
    TaskOut,
    TaskPage,
)
from agent.client.target import ApiTarget
from agent.contract.breakpoints import ResumeAction
from agent.contract.protocol import CONSOLE_CONFIG_PATH, CloseCode, ConsoleConfig, MessageKind
from agent.contract.task import Budget, PlanEdit
from agent.contract.tools import ToolCallList
from agent.events.types import BreakpointKind, TaskComplexity, TaskStatus

logger = structlog.get_logger(__name__)

HTTP_TIMEOUT_SECONDS = 30.0
WS_OPEN_TIMEOUT_SECONDS = 10.0
WS_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
RECONNECT_BASE_DELAY_SECONDS = 0.2
RECONNECT_MAX_DELAY_SECONDS = 5.0
DEFAULT_MAX_RECONNECTS = 60
_REQUEST_PARTS = frozenset({"body", "query", "path", "header"})


class ApiRequestError(Exception):
    """The API answered with an error (or a socket was refused).

    Attributes:
        status: HTTP status (or the socket's close code).
        code: The stable error code of the JSON error body, when there is one.
        message: Human-readable reason.
        details: Extra fields of the error body (a dict), when there are any.
        field_errors: For a validation error: one `field: reason` line per bad field.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        field_errors: list[str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.field_errors = field_errors or []

    def describe(self) -> str:
        """One line for a person: status, code, message and each bad field with its reason."""
        reasons = "; ".join(self.field_errors)
        return f"{self.status} {self.code}: {self.message}" + (f" ({reasons})" if reasons else "")


class EventStreamClosedError(Exception):
    """The event socket could not be (re)opened within the allowed reconnects."""


def _field_errors(details: Any) -> list[str]:
    """`goal: String should have at least 1 character` from a 422's `[{loc, msg}]` details."""
    if not isinstance(details, list):
        return []
    lines: list[str] = []
    for item in details:
        if not isinstance(item, dict):
            continue
        # The location starts with where the value came from (body, query, path).
        location = [str(part) for part in item.get("loc") or []]
        if location and location[0] in _REQUEST_PARTS:
            location = location[1:]
        field = ".".join(location) or "request"
        lines.append(f"{field}: {item.get('msg') or 'invalid'}")
    return lines


def _error_from(response: httpx.Response) -> ApiRequestError:
    try:
        body = response.json()
        error = body.get("error", {}) if isinstance(body, dict) else {}
    except ValueError:
        error = {}
    details = error.get("details")
    return ApiRequestError(
        response.status_code,
        str(error.get("code") or HTTPStatus(response.status_code).phrase.lower()),
        str(error.get("message") or response.text[:500] or response.reason_phrase),
        details if isinstance(details, dict) else None,
        _field_errors(details),
    )


def _ws_base(url: str) -> str:
    parts = urlsplit(url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class AgentApiClient:
    """Async client of the task API.

    Example:
        >>> async with AgentApiClient(target) as api:
        ...     task = await api.create_task("Write a report", breakpoints=[...])
        ...     async for message in api.stream_events(task.id):
        ...         ...

    Args:
        target: Base URL and API key.
        timeout: HTTP timeout in seconds.
        transport: Optional httpx transport (tests).
    """

    def __init__(
        self,
        target: ApiTarget,
        *,
        timeout: float = HTTP_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.target = target
        self._http = httpx.AsyncClient(
            base_url=target.url,
            headers={"Authorization": f"Bearer {target.api_key.get_secret_value()}"},
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        response = await self._http.request(
            method, path, json=json_body, params=params, headers=headers
        )
        if response.is_error:
            raise _error_from(response)
        return response.json()

    async def create_task(
        self,
        goal: str,
        *,
        breakpoints: list[BreakpointKind] | None = None,
        budget: Budget | None = None,
        complexity: TaskComplexity | None = None,
        session_id: UUID | None = None,
        max_parallel: int | None = None,
        max_attempts: int | None = None,
        tools: list[str] | None = None,
        max_tool_rounds: int | None = None,
        idempotency_key: str | None = None,
    ) -> TaskOut:
        """Start a task (`POST /v1/tasks`).

        Args:
            goal: What to achieve.
            breakpoints: Where the task pauses for a person.
            budget: Spending limits.
            complexity: Skip classification with this complexity.
            session_id: Group the task into a session.
            max_parallel: Milestones run at once.
            max_attempts: Attempts per milestone.
            tools: MCP servers (`time`) or tools (`time.get_current_time`) the task may
                call; None: every allowed tool of every configured server.
            max_tool_rounds: Model turns with tool calls per milestone attempt.
            idempotency_key: Retries with the same key return the same task.

        Returns:
            The created task.
        """
        body: dict[str, Any] = {"goal": goal, "breakpoints": [b.value for b in breakpoints or []]}
        if budget is not None:
            body["budget"] = budget.model_dump(mode="json", exclude_none=True)
        if complexity is not None:
            body["complexity"] = complexity.value
        if session_id is not None:
            body["session_id"] = str(session_id)
        if max_parallel is not None:
            body["max_parallel"] = max_parallel
        if max_attempts is not None:
            body["max_attempts"] = max_attempts
        if tools is not None:
            body["tools"] = tools
        if max_tool_rounds is not None:
            body["max_tool_rounds"] = max_tool_rounds
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        data = await self._request("POST", "/v1/tasks", json_body=body, headers=headers)
        return TaskOut.model_validate(data)

    async def get_task(self, task_id: UUID) -> TaskDetail:
        """A task with its milestones, totals, result and pause state."""
        return TaskDetail.model_validate(await self._request("GET", f"/v1/tasks/{task_id}"))

    async def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> TaskPage:
        """One page of the caller's tasks, newest first."""
        params: dict[str, Any] = {}
        if status is not None:
            params["status"] = status.value
        if limit is not None:
            params["limit"] = limit
        if cursor is not None:
            params["cursor"] = cursor
        return TaskPage.model_validate(await self._request("GET", "/v1/tasks", params=params))

    async def resume(
        self,
        task_id: UUID,
        breakpoint_id: str,
        action: ResumeAction = ResumeAction.CONTINUE,
        *,
        edits: PlanEdit | None = None,
        budget: Budget | None = None,
        feedback: str | None = None,
        arguments: dict[str, Any] | None = None,
    ) -> ResumeOut:
        """Answer the breakpoint a paused task waits at (409 when it does not wait there).

        `arguments` go with `edit` at a `before_tool` breakpoint: the call's new arguments
        (422 when they do not fit the tool's input schema).
        """
        body: dict[str, Any] = {"breakpoint_id": breakpoint_id, "action": action.value}
        optional: dict[str, BaseModel | None] = {"edits": edits, "budget": budget}
        for name, model in optional.items():
            if model is not None:
                body[name] = model.model_dump(mode="json", exclude_none=True)
        if feedback:
            body["feedback"] = feedback
        if arguments is not None:
            body["arguments"] = arguments
        data = await self._request("POST", f"/v1/tasks/{task_id}/resume", json_body=body)
        return ResumeOut.model_validate(data)

    async def list_tool_calls(self, task_id: UUID) -> ToolCallList:
        """Every tool call of a task, oldest first (`GET /v1/tasks/{id}/tool-calls`)."""
        return ToolCallList.model_validate(
            await self._request("GET", f"/v1/tasks/{task_id}/tool-calls")
        )

    async def cancel(self, task_id: UUID) -> CancelOut:
        """Request cancellation of a task."""
        return CancelOut.model_validate(await self._request("POST", f"/v1/tasks/{task_id}/cancel"))

    async def list_events(self, task_id: UUID, after_seq: int = 0, limit: int = 100) -> EventPage:
        """Stored events with `sequence_number > after_seq` (REST view of the log)."""
        data = await self._request(
            "GET", f"/v1/tasks/{task_id}/events", params={"after_seq": after_seq, "limit": limit}
        )
        return EventPage.model_validate(data)

    async def console_config(self) -> ConsoleConfig:
        """The server's public client hints (Temporal UI address); empty when not served."""
        try:
            response = await self._http.get(CONSOLE_CONFIG_PATH)
        except httpx.HTTPError:
            return ConsoleConfig()
        if response.is_error:
            return ConsoleConfig()
        try:
            return ConsoleConfig.model_validate(response.json())
        except ValueError:
            return ConsoleConfig()

    def events_ws_url(self, task_id: UUID, after_seq: int) -> str:
        """The task event socket's URL for a cursor (the key goes in a header, not here)."""
        query = urlencode({"after_seq": after_seq})
        return f"{_ws_base(self.target.url)}/v1/tasks/{task_id}/events/ws?{query}"

    async def stream_events(
        self,
        task_id: UUID,
        after_seq: int = 0,
        *,
        max_reconnects: int = DEFAULT_MAX_RECONNECTS,
    ) -> AsyncGenerator[StreamMessage, None]:
        """Stored events after `after_seq`, then live ones; reconnects from the last cursor.

        Yields `event`, `ephemeral` and `caught_up` messages (pings are answered by the
        protocol and not yielded). A stored event is never yielded twice, even across
        reconnects. The iterator runs until the caller stops it.

        Args:
            task_id: The task.
            after_seq: Last sequence number the caller already has.
            max_reconnects: Consecutive failed (re)connections before giving up.

        Raises:
            ApiRequestError: The socket was refused (4401 unauthorized, 4404 not found).
            EventStreamClosedError: It could not reconnect.
        """
        cursor = after_seq
        failures = 0
        headers = {"Authorization": f"Bearer {self.target.api_key.get_secret_value()}"}
        while True:
            try:
                async with connect(
                    self.events_ws_url(task_id, cursor),
                    additional_headers=headers,
                    open_timeout=WS_OPEN_TIMEOUT_SECONDS,
                    max_size=WS_MAX_MESSAGE_BYTES,
                ) as socket:
                    async for raw in socket:
                        message = StreamMessage.model_validate(json.loads(raw))
                        failures = 0
                        if message.kind in (MessageKind.PING, MessageKind.PONG):
                            continue
                        if message.kind is MessageKind.EVENT:
                            if message.cursor is not None and message.cursor <= cursor:
                                continue
                            cursor = message.cursor if message.cursor is not None else cursor
                        yield message
                    code, reason = socket.close_code, socket.close_reason or ""
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                reason = exc.rcvd.reason if exc.rcvd is not None else ""
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
                    raise ApiRequestError(
                        status, "unauthorized", "the API key was refused"
                    ) from exc
                code = None
            except (OSError, TimeoutError, WebSocketException) as exc:
                logger.debug("event_socket_error", error=repr(exc))
                code = None
            if code == CloseCode.UNAUTHORIZED:
                raise ApiRequestError(code, "unauthorized", "the API key was refused")
            if code == CloseCode.NOT_FOUND:
                raise ApiRequestError(code, "not_found", f"task {task_id} not found")
            if code == CloseCode.INVALID_REQUEST:
                raise ApiRequestError(code, "validation_error", f"event socket refused: {reason}")
            failures += 1
            if failures > max_reconnects:
                raise EventStreamClosedError(f"event socket closed (last code {code}); gave up")
            delay = min(RECONNECT_MAX_DELAY_SECONDS, RECONNECT_BASE_DELAY_SECONDS * 2**failures)
            logger.debug("event_socket_reconnect", code=code, cursor=cursor, delay=delay)
            await asyncio.sleep(delay)
