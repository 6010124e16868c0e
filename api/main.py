"""The FastAPI application: `create_app(settings)` and its lifespan.

Nothing happens at import time: the engine, the Temporal client, Redis, the WebSocket
manager and the PostgreSQL listener are built in the lifespan and kept on `app.state`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import structlog
from fastapi import FastAPI
from redis.asyncio import Redis

from agent.config import InsecureSettingError, Settings
from agent.db.session import DatabaseSessionManager
from agent.events.bus import get_event_bus
from agent.events.handlers.logging_handler import LoggingEventHandler
from agent.events.handlers.websocket_handler import WebSocketEventHandler
from agent.events.listener import PostgresEventListener
from agent.observability.metrics import observe_relayed
from agent.observability.tracing import (
    configure_tracing,
    shutdown_tracing,
    temporal_interceptors,
    trace_engine,
    traced_url_exclusions,
)
from agent.prompts.cache import PromptCache
from agent.temporal import TemporalStartupError, check_search_attributes, connect_temporal
from agent.tools.errors import ToolsConfigError
from agent.tools.toolbox import Toolbox
from api.auth import ApiKeyResolver
from api.errors import ErrorResponse, install_error_handlers
from api.middleware import DEFAULT_MAX_BODY_BYTES, BodySizeLimitMiddleware, RequestContextMiddleware
from api.rate_limits import RequestLimits
from api.routers import admin, events, health, metrics, prompts, tasks
from api.static import mount_console
from api.static.docs import mount_docs
from api.ws.manager import WebSocketManager
from api.ws.source import DatabaseEventSource

logger = structlog.get_logger(__name__)

API_VERSION = "1.0.0"
LISTENER_START_TIMEOUT_SECONDS = 10.0
API_SERVICE_NAME = "durable-agent-api"
"""The trace service name unless `OTEL_SERVICE_NAME` says otherwise."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build the app's clients on start-up and release them on shutdown."""
    settings: Settings = app.state.settings
    pepper_problem = settings.default_pepper_problem()
    if pepper_problem is not None:
        logger.error("api_start_failed", error=pepper_problem)
        raise InsecureSettingError(pepper_problem)
    # No pre-ping: it is three round trips (BEGIN, a statement, ROLLBACK) on every checkout,
    # three times the whole read of `GET /v1/tasks/{id}`. Connections the server closed
    # are still dropped on checkout (`DatabaseSessionManager`), at no cost.
    db = DatabaseSessionManager(
        settings.database_url_value(), pool_size=settings.api_db_pool_size, pre_ping=False
    )
    trace_engine(db.engine)
    redis: Redis | None = None
    listener: PostgresEventListener | None = None
    bus = get_event_bus()
    ws_handler: WebSocketEventHandler | None = None
    logging_handler = LoggingEventHandler()
    toolbox: Toolbox | None = None
    try:
        try:
            toolbox = Toolbox.from_settings(settings)
        except ToolsConfigError as exc:
            logger.error("api_start_failed", error=str(exc))
            raise
        try:
            # Retried while Temporal starts; the search attributes are registered by
            # whoever owns the server (`agent up`, the temporal-init job), only checked here.
            temporal = await connect_temporal(
                settings,
                retry_seconds=settings.temporal_connect_timeout_seconds,
                interceptors=temporal_interceptors(),
            )
            await check_search_attributes(temporal)
        except TemporalStartupError as exc:
            logger.error("api_start_failed", error=str(exc))
            raise
        if settings.redis_url is not None:
            redis = Redis.from_url(settings.redis_url, decode_responses=True)
        ws_manager = WebSocketManager(
            DatabaseEventSource(db),
            queue_size=settings.ws_queue_size,
            ping_interval_seconds=settings.ws_ping_interval_seconds,
        )
        app.state.db = db
        app.state.temporal = temporal
        app.state.redis = redis
        app.state.prompt_cache = (
            PromptCache(redis, settings.prompt_cache_ttl_seconds) if redis is not None else None
        )
        app.state.auth = ApiKeyResolver(db, settings.api_key_pepper)
        app.state.ws_manager = ws_manager
        app.state.toolbox = toolbox

        ws_handler = WebSocketEventHandler(app.state.ws_manager)
        bus.subscribe_all(ws_handler.handle)
        bus.subscribe_all(logging_handler.handle)
        bus.subscribe_all(observe_relayed)

        listener = PostgresEventListener(settings.database_url_value(), db.session, bus.emit)
        app.state.listener = listener
        await listener.start()
        with suppress(TimeoutError):
            await listener.wait_connected(LISTENER_START_TIMEOUT_SECONDS)
        logger.info("api_started", redis=redis is not None, listener=listener.connected)
        yield
    finally:
        if hasattr(app.state, "ws_manager"):
            await app.state.ws_manager.close_all()
        if listener is not None:
            await listener.stop()
        if ws_handler is not None:
            bus.unsubscribe(ws_handler.handle)
        bus.unsubscribe(logging_handler.handle)
        bus.unsubscribe(observe_relayed)
        if redis is not None:
            await redis.aclose()
        if toolbox is not None:
            await toolbox.aclose()
        await db.close()
        shutdown_tracing()
        logger.info("api_stopped")


def create_app(settings: Settings, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """Build the API application.

    Args:
        settings: Configuration; the database URL must be set.
        max_body_bytes: Largest accepted request body (larger ones get 413).

    Returns:
        The app; its clients are created when it starts (lifespan).
    """
    app = FastAPI(
        title="Durable agent tasks",
        version=API_VERSION,
        description=(
            "Long, LLM-driven agent tasks on Temporal. Authenticate with "
            "`Authorization: Bearer <api key>`. Errors: "
            '`{"error": {"code", "message", "details"}}`. Event sockets: see '
            "`/v1/tasks/{id}/events/ws` and `/v1/sessions/{id}/events/ws` "
            "(close codes 4401 unauthorized, 4404 not found, 4008 slow consumer)."
        ),
        lifespan=lifespan,
        # The docs pages are served from local assets (`api/static/docs.py`), not a CDN.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.limits = RequestLimits.from_settings(
        settings.rate_limit_per_second,
        settings.rate_limit_burst,
        settings.auth_failures_per_minute,
        settings.auth_failure_burst,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    for module in (health, metrics):
        app.include_router(module.router)
    # Every authenticated route may answer 429 (rate limits, rejected-key limits).
    rate_limited: dict[int | str, dict[str, object]] = {429: {"model": ErrorResponse}}
    for module in (tasks, events, prompts, admin):
        app.include_router(module.router, responses=rate_limited)
    mount_docs(app)
    mount_console(app, settings)
    if configure_tracing(API_SERVICE_NAME):
        _trace_requests(app)
    return app


def _trace_requests(app: FastAPI) -> None:
    """Give every HTTP request a server span (the root of a task's trace on create)."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # The ASGI send/receive sub-spans add a span per chunk of a response and say nothing
    # an operator needs.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=traced_url_exclusions(), exclude_spans=["receive", "send"]
    )
