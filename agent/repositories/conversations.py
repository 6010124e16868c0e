"""Conversations of milestone attempts that use tools, message by message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import ConversationMessage
from agent.repositories.base import BaseRepository


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One message to store: system, user, or the model's answer with its tool calls."""

    role: str
    content: str
    turn: int
    tool_calls: list[dict[str, Any]] | None = None


class ConversationRepository(BaseRepository[ConversationMessage]):
    """The messages of a milestone attempt (tool results live in `tool_calls`)."""

    def __init__(self, session: AsyncSession) -> None:
        """Bind the repository to the caller's session.

        Args:
            session: The session (and transaction) to work in.
        """
        super().__init__(ConversationMessage, session)

    async def messages(
        self, task_id: UUID, milestone_key: str, attempt: int
    ) -> list[ConversationMessage]:
        """The attempt's messages in order."""
        rows = await self.session.execute(
            select(ConversationMessage)
            .where(
                ConversationMessage.task_id == task_id,
                ConversationMessage.milestone_key == milestone_key,
                ConversationMessage.attempt == attempt,
            )
            .order_by(ConversationMessage.position)
        )
        return list(rows.scalars())

    async def append(
        self, task_id: UUID, milestone_key: str, attempt: int, messages: Sequence[NewMessage]
    ) -> None:
        """Add messages after the attempt's last one.

        Idempotent per position: a retried activity that appends the same messages again
        after a lost commit cannot happen (the caller's transaction holds the task lock
        or the activity's result is recovered first), and a conflict keeps the first row.
        """
        if not messages:
            return
        existing = await self.messages(task_id, milestone_key, attempt)
        start = len(existing)
        await self.session.execute(
            pg_insert(ConversationMessage)
            .values(
                [
                    {
                        "task_id": task_id,
                        "milestone_key": milestone_key,
                        "attempt": attempt,
                        "position": start + offset,
                        "turn": message.turn,
                        "role": message.role,
                        "content": message.content,
                        "tool_calls": message.tool_calls,
                    }
                    for offset, message in enumerate(messages)
                ]
            )
            .on_conflict_do_nothing(
                index_elements=["task_id", "milestone_key", "attempt", "position"]
            )
        )
