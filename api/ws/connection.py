"""One socket's I/O: its only writer (backfill, live events, keep-alive) and its reader.

The writer drains everything queued before it waits again, and pings an idle client;
the reader only watches for client pings (answered by the writer) and the disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from starlette.websockets import WebSocket, WebSocketState

from agent.contract.protocol import CloseCode, MessageKind
from api.ws.protocol import (
    LiveEvent,
    caught_up_message,
    control_message,
)
from api.ws.streams import EventStream
from api.ws.subscriptions import Subscription

CLOSE_TIMEOUT_SECONDS = 2.0
"""A stalled client cannot take the close handshake; give up on it after this long."""


async def send_events(
    websocket: WebSocket,
    subscription: Subscription,
    stream: EventStream,
    pong_wanted: asyncio.Event,
    ping_interval_seconds: float,
) -> None:
    """Send the backfill, `caught_up`, then live events and keep-alives until cancelled.

    Args:
        websocket: The accepted socket.
        subscription: Its live feed (registered before the backfill is read).
        stream: Its ordering state.
        pong_wanted: Set by the reader when the client pinged.
        ping_interval_seconds: Idle time after which a ping is sent.
    """
    # The only writer of this socket: pings and pongs go through here too.
    for message in await stream.backfill():
        await websocket.send_text(message)
    await websocket.send_text(caught_up_message(stream.cursor))
    queue = subscription.queue
    getter: asyncio.Task[LiveEvent] | None = None
    pong: asyncio.Task[bool] | None = None
    try:
        while True:
            if pong_wanted.is_set():
                pong_wanted.clear()
                await websocket.send_text(control_message(MessageKind.PONG))
            if getter is None and not queue.empty():
                # Busy: send what is queued without creating a waiter per event.
                await _send_live(websocket, stream, _drain(queue, []))
                continue
            if getter is None:
                getter = asyncio.create_task(queue.get())
            if pong is None:
                pong = asyncio.create_task(pong_wanted.wait())
            # Pending waiters survive the timeout, so no queued item is lost to it.
            done, _ = await asyncio.wait(
                {getter, pong}, timeout=ping_interval_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                await websocket.send_text(control_message(MessageKind.PING))
                continue
            if pong in done:
                pong = None  # answered at the top of the loop
            if getter in done:
                # The getter's item is older than anything still queued.
                first = getter.result()
                getter = None
                await _send_live(websocket, stream, _drain(queue, [first]))
    finally:
        for waiter in (getter, pong):
            if waiter is not None:
                waiter.cancel()


async def receive_pings(websocket: WebSocket, pong_wanted: asyncio.Event) -> None:
    """Read client messages: ask the sender for a pong on a ping; end on disconnect.

    Args:
        websocket: The accepted socket.
        pong_wanted: Set when the client pinged.
    """
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            continue
        try:
            payload = json.loads(text)
        except ValueError:
            continue
        if isinstance(payload, dict) and payload.get("kind") == MessageKind.PING:
            pong_wanted.set()


async def close_socket(websocket: WebSocket, code: CloseCode, reason: str) -> None:
    """Close a socket unless either side already left; never raises, never hangs.

    Args:
        websocket: The socket.
        code: The close code.
        reason: The close reason.
    """
    if websocket.application_state is WebSocketState.DISCONNECTED:
        return
    if websocket.client_state is WebSocketState.DISCONNECTED:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code=code, reason=reason), CLOSE_TIMEOUT_SECONDS)


async def _send_live(websocket: WebSocket, stream: EventStream, items: list[LiveEvent]) -> None:
    for item in items:
        for message in await stream.on_live(item):
            await websocket.send_text(message)


def _drain(queue: asyncio.Queue[LiveEvent], items: list[LiveEvent]) -> list[LiveEvent]:
    """Append everything queued right now to `items`, in order."""
    while True:
        try:
            items.append(queue.get_nowait())
        except asyncio.QueueEmpty:
            return items
