"""Event handler that writes every event to the structured log."""

from __future__ import annotations

import structlog

from agent.events.types import AgentActivityEvent, EventType

logger = structlog.get_logger("agent.events")


class LoggingEventHandler:
    """Logs events; token chunks at debug level so they do not flood the log."""

    async def handle(self, event: AgentActivityEvent) -> None:
        """Log one event.

        Args:
            event: The event to log.
        """
        fields = {
            "event_type": event.type.value,
            "task_id": str(event.task_id),
            "sequence_number": event.sequence_number,
            "milestone_id": str(event.milestone_id) if event.milestone_id else None,
            "agent": event.agent.value if event.agent else None,
            "status": event.status.value if event.status else None,
        }
        if event.type is EventType.LLM_CHUNK:
            logger.debug("agent_event", **fields)
        else:
            logger.info("agent_event", message_text=event.message, **fields)
