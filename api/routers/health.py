"""Liveness and readiness probes: the only routes that need no API key."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from agent.db.session import DatabaseSessionManager
from api.schemas import ComponentStatus, Health, Readiness

router = APIRouter(tags=["health"])

READINESS_TIMEOUT_SECONDS = 2.0


HEALTHY_BODY = Health().model_dump_json().encode()
"""Always the same answer: serialised once, not validated and encoded per probe."""


@router.get("/healthz", operation_id="healthz", summary="Liveness", response_model=Health)
async def healthz() -> Response:
    """The process is up and serving."""
    return Response(HEALTHY_BODY, media_type="application/json")


async def _check(probe: Awaitable[Any]) -> ComponentStatus:
    try:
        await asyncio.wait_for(probe, READINESS_TIMEOUT_SECONDS)
    except TimeoutError:
        return ComponentStatus(ok=False, detail="timed out")
    except Exception as exc:
        return ComponentStatus(ok=False, detail=type(exc).__name__)
    return ComponentStatus(ok=True)


async def _ping_database(manager: DatabaseSessionManager) -> None:
    async with manager.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="Readiness",
    responses={HTTPStatus.SERVICE_UNAVAILABLE: {"model": Readiness}},
)
async def readyz(request: Request) -> JSONResponse:
    """PostgreSQL, Temporal, Redis (when configured) and the event listener answer."""
    state = request.app.state
    probes: dict[str, Awaitable[Any]] = {
        "postgres": _ping_database(state.db),
        "temporal": state.temporal.service_client.check_health(),
    }
    if state.redis is not None:
        probes["redis"] = state.redis.ping()
    names = list(probes)
    results = await asyncio.gather(*(_check(probes[n]) for n in names))
    components = dict(zip(names, results, strict=True))
    listener = state.listener
    components["event_listener"] = ComponentStatus(
        ok=listener.connected, detail="" if listener.connected else "reconnecting"
    )
    ready = all(c.ok for c in components.values())
    body = Readiness(ready=ready, components=components)
    status = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
    return JSONResponse(body.model_dump(mode="json"), status_code=status)
