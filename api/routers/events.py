"""Event sockets: a task's or a session's stored events after a cursor, then live ones.

See `api.ws.protocol` for the message shapes and close codes.
"""

from __future__ import annotations

from typing import Annotated, cast
from uuid import UUID

from fastapi import APIRouter, Query, WebSocket

from agent.contract.protocol import CloseCode
from agent.repositories.tasks import TaskRepository
from api.auth import ApiKeyResolver
from api.dependencies import CurrentKey, SessionManager, WSManager
from api.ws.manager import RevocationWatch

router = APIRouter(tags=["events"])


def _revocation(websocket: WebSocket, key_id: UUID) -> RevocationWatch:
    """What the socket waits on to close with 4401: its key being revoked or expiring."""
    resolver = cast(ApiKeyResolver, websocket.app.state.auth)

    async def revoked() -> None:
        await resolver.wait_invalid(key_id)

    return revoked


Cursor = Annotated[int, Query(ge=0, le=2**62, description="Last cursor the client has.")]


@router.websocket("/v1/tasks/{task_id}/events/ws", name="task_events_ws")
async def task_events_ws(
    websocket: WebSocket,
    task_id: UUID,
    key: CurrentKey,
    manager: WSManager,
    sessions: SessionManager,
    after_seq: Cursor = 0,
) -> None:
    """Stream a task's events with `sequence_number > after_seq`, then live ones, in order.

    Closes with 4404 when the task does not exist or is another user's.
    """
    async with sessions.session() as session:
        task = await TaskRepository(session).get_for_user(task_id, key.user_id)
    await websocket.accept()
    if task is None:
        await websocket.close(code=CloseCode.NOT_FOUND, reason="task not found")
        return
    await manager.serve_task(websocket, task_id, after_seq, _revocation(websocket, key.key_id))


@router.websocket("/v1/sessions/{session_id}/events/ws", name="session_events_ws")
async def session_events_ws(
    websocket: WebSocket,
    session_id: UUID,
    key: CurrentKey,
    manager: WSManager,
    after_seq: Cursor = 0,
) -> None:
    """Stream the caller's events of a session after event id `after_seq`, then live ones.

    Only the caller's own tasks in the session are streamed (session ids are chosen by
    clients, so another user may use the same one); the cursor is the event row id.
    """
    await websocket.accept()
    await manager.serve_session(
        websocket, session_id, key.user_id, after_seq, _revocation(websocket, key.key_id)
    )
