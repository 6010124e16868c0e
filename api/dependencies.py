"""FastAPI dependencies: `DBSession`, `CurrentUserId`, `CurrentKey`, `AdminKey`, clients.

Typed on `HTTPConnection`, so the same dependencies serve HTTP and WebSocket routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Annotated, NoReturn, cast
from uuid import UUID

from fastapi import Depends, WebSocketException
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket
from temporalio.client import Client

from agent.config import Settings
from agent.contract.errors import ErrorCode
from agent.contract.protocol import CloseCode
from agent.db.session import DatabaseSessionManager
from agent.prompts.cache import PromptCache
from agent.repositories.api_keys import ResolvedApiKey
from agent.tools.toolbox import Toolbox
from api.auth import ApiKeyResolver, bearer_token
from api.errors import ApiError
from api.rate_limits import RequestLimits, retry_after_header
from api.ws.manager import WebSocketManager

# The getters below are `async def` although they never wait: FastAPI runs a plain `def`
# dependency in a worker thread, a thread hop per request for an attribute read.


async def get_session_manager(conn: HTTPConnection) -> DatabaseSessionManager:
    """The application's session manager."""
    return _session_manager(conn)


def _session_manager(conn: HTTPConnection) -> DatabaseSessionManager:
    return cast(DatabaseSessionManager, conn.app.state.db)


async def get_db(conn: HTTPConnection) -> AsyncIterator[AsyncSession]:
    """Yield one session per request; rolled back on error, always closed.

    Yields:
        An `AsyncSession`; handlers commit what they change.
    """
    async for session in _session_manager(conn).get_session():
        yield session


async def get_current_key(conn: HTTPConnection) -> ResolvedApiKey:
    """Resolve the caller's API key to what it grants.

    A socket is accepted and then closed with `CloseCode.UNAUTHORIZED`, so browsers see
    the code (a refused handshake would only show a generic failure).

    Raises:
        ApiError: 401 for HTTP requests without a valid key.
        WebSocketException: 4401 for sockets without a valid key.
    """
    cached = getattr(conn.state, "api_key", None)
    if isinstance(cached, ResolvedApiKey):
        return cached
    resolver = cast(ApiKeyResolver, conn.app.state.auth)
    limits = cast(RequestLimits, conn.app.state.limits)
    token = bearer_token(conn)
    address = conn.client.host if conn.client is not None else "unknown"
    resolved = None
    if token:
        # An address that sent too many rejected keys is not looked up at all (no key
        # guessing, no database load); keys this process already knows valid still pass.
        blocked = limits.auth_failures.exhausted(address)
        if blocked is not None and not resolver.is_cached(token):
            _refuse(conn, blocked, "too many rejected API keys from this address")
        resolved = await resolver.resolve(token)
        if resolved is None:
            limits.auth_failures.take(address)
    if resolved is not None:
        if conn.scope["type"] == "http":
            wait = limits.requests.take(resolved.key_id)
            if wait is not None:
                _refuse(conn, wait, "request rate limit of this API key exceeded")
        conn.state.api_key = resolved
        return resolved
    if conn.scope["type"] == "websocket":
        await cast(WebSocket, conn).accept()
        raise WebSocketException(code=CloseCode.UNAUTHORIZED, reason="invalid or missing API key")
    raise ApiError(
        HTTPStatus.UNAUTHORIZED,
        ErrorCode.UNAUTHORIZED,
        "a valid API key is required (Authorization: Bearer <key>)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _refuse(conn: HTTPConnection, wait_seconds: float, why: str) -> NoReturn:
    """Answer 429 with `Retry-After` (a socket: close 4401, it has no 429)."""
    retry_after = retry_after_header(wait_seconds)
    if conn.scope["type"] == "websocket":
        raise WebSocketException(
            code=CloseCode.UNAUTHORIZED, reason=f"{why}; retry in {retry_after} s"
        )
    raise ApiError(
        HTTPStatus.TOO_MANY_REQUESTS,
        ErrorCode.RATE_LIMITED,
        f"{why}; retry in {retry_after} s",
        details={"retry_after_seconds": int(retry_after)},
        headers={"Retry-After": retry_after},
    )


async def get_current_user_id(
    key: Annotated[ResolvedApiKey, Depends(get_current_key)],
) -> UUID:
    """The user whose key made the request."""
    return key.user_id


async def get_admin_key(key: Annotated[ResolvedApiKey, Depends(get_current_key)]) -> ResolvedApiKey:
    """The caller's key, which must be an admin key.

    Raises:
        ApiError: 403 `forbidden` for a valid key without the admin role.
    """
    if not key.is_admin:
        raise ApiError(
            HTTPStatus.FORBIDDEN,
            ErrorCode.FORBIDDEN,
            "this needs an admin API key: it changes what every user shares "
            "(create one with `agent keys create --admin`)",
        )
    return key


async def get_settings_dep(conn: HTTPConnection) -> Settings:
    """The settings the app was created with."""
    return cast(Settings, conn.app.state.settings)


async def get_temporal(conn: HTTPConnection) -> Client:
    """The application's Temporal client."""
    return cast(Client, conn.app.state.temporal)


async def get_ws_manager(conn: HTTPConnection) -> WebSocketManager:
    """The application's WebSocket manager."""
    return cast(WebSocketManager, conn.app.state.ws_manager)


async def get_prompt_cache(conn: HTTPConnection) -> PromptCache | None:
    """The application's prompt cache (a pass-through when Redis is not configured)."""
    return cast("PromptCache | None", conn.app.state.prompt_cache)


async def get_redis(conn: HTTPConnection) -> Redis | None:
    """The application's Redis client, or None when Redis is not configured."""
    return cast("Redis | None", conn.app.state.redis)


async def get_toolbox(conn: HTTPConnection) -> Toolbox:
    """The application's MCP servers (a task's `tools` are checked against them)."""
    return cast(Toolbox, conn.app.state.toolbox)


DBSession = Annotated[AsyncSession, Depends(get_db)]
CurrentUserId = Annotated[UUID, Depends(get_current_user_id)]
CurrentKey = Annotated[ResolvedApiKey, Depends(get_current_key)]
AdminKey = Annotated[ResolvedApiKey, Depends(get_admin_key)]
AppSettings = Annotated[Settings, Depends(get_settings_dep)]
TemporalClient = Annotated[Client, Depends(get_temporal)]
WSManager = Annotated[WebSocketManager, Depends(get_ws_manager)]
Prompts = Annotated[PromptCache | None, Depends(get_prompt_cache)]
SessionManager = Annotated[DatabaseSessionManager, Depends(get_session_manager)]
Tools = Annotated[Toolbox, Depends(get_toolbox)]
