"""`GET /metrics`: Prometheus exposition of the API process (no API key, like the probes).

It shows aggregate counts only (tasks by status, no ids), so scrapers need no key; keep it
off the public internet with the rest of the operator endpoints if that matters.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from agent.db.session import DatabaseSessionManager
from agent.observability.exposition import CONTENT_TYPE, ApiSnapshot, api_exposition
from agent.repositories.task_stats import TaskStatsRepository

router = APIRouter(tags=["metrics"])


async def _snapshot(request: Request) -> ApiSnapshot:
    state = request.app.state
    db: DatabaseSessionManager = state.db
    async with db.session() as session:
        stats = await TaskStatsRepository(session).stats()
    listener = getattr(state, "listener", None)
    ws_manager = getattr(state, "ws_manager", None)
    return ApiSnapshot(
        tasks_by_status=stats.by_status,
        awaiting_person=stats.awaiting_person,
        oldest_pause=stats.oldest_pause,
        websocket_connections=ws_manager.subscription_count if ws_manager else 0,
        slow_consumer_closes=ws_manager.slow_consumer_closes if ws_manager else 0,
        listener_reconnects=listener.reconnect_count if listener else 0,
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """The project's metrics and the API's state, in Prometheus text format."""
    return Response(api_exposition(await _snapshot(request)), media_type=CONTENT_TYPE)
