"""Live subscriptions and the fan-out of events to them, never waiting on a socket.

Each subscription has a bounded `asyncio.Queue`; `dispatch` only ever does `put_nowait`,
so a slow client never delays the listener nor other clients. A subscription whose queue
overflows is flagged, and its socket is closed as a slow consumer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

from agent.events.types import AgentActivityEvent
from api.ws.protocol import LiveEvent


class StreamScope(StrEnum):
    """What a socket follows."""

    TASK = "task"
    SESSION = "session"


@dataclass(eq=False)
class Subscription:
    """One socket's live feed: a bounded queue and an overflow flag."""

    scope: StreamScope
    target_id: UUID
    queue: asyncio.Queue[LiveEvent]
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, event: LiveEvent) -> None:
        """Queue an event without waiting; flag an overflow instead of blocking."""
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed.set()


class SubscriptionRegistry:
    """The live subscriptions, by the task or session they follow.

    Args:
        queue_size: Capacity of each subscription's queue.
    """

    def __init__(self, queue_size: int) -> None:
        self._queue_size = queue_size
        self._subscriptions: dict[tuple[StreamScope, UUID], set[Subscription]] = {}

    @property
    def count(self) -> int:
        """Number of live subscriptions."""
        return sum(len(subs) for subs in self._subscriptions.values())

    def subscribe(self, scope: StreamScope, target_id: UUID) -> Subscription:
        """Register a live subscription (before reading the backfill)."""
        subscription = Subscription(scope, target_id, asyncio.Queue(maxsize=self._queue_size))
        self._subscriptions.setdefault((scope, target_id), set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Remove a subscription; unknown ones are ignored."""
        key = (subscription.scope, subscription.target_id)
        subs = self._subscriptions.get(key)
        if subs is None:
            return
        subs.discard(subscription)
        if not subs:
            del self._subscriptions[key]

    def dispatch(self, event: AgentActivityEvent) -> None:
        """Offer an event to every subscription of its task and session; never blocks.

        The event is serialised once (`LiveEvent`), not once per socket.

        Args:
            event: A stored or ephemeral event.
        """
        task_subs = self._subscriptions.get((StreamScope.TASK, event.task_id), ())
        session_subs = (
            self._subscriptions.get((StreamScope.SESSION, event.session_id), ())
            if event.session_id is not None
            else ()
        )
        if not task_subs and not session_subs:
            return
        live = LiveEvent(event)
        for sub in task_subs:
            sub.offer(live)
        for sub in session_subs:
            sub.offer(live)
