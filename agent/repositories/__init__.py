"""Data access: one repository per aggregate; repositories never commit."""

from agent.repositories.base import BaseRepository, KeysetOrder, Page
from agent.repositories.errors import (
    EventSequenceConflictError,
    InvalidCursorError,
    InvalidEventError,
    InvalidFieldError,
    InvalidPageSizeError,
    InvalidPlanError,
    RecordNotFoundError,
    RepositoryError,
)
from agent.repositories.events import EventDraft, EventRepository, SessionEvent
from agent.repositories.prompts import PromptRepository, PromptVersionResult
from agent.repositories.tasks import (
    MilestoneRepository,
    TaskRepository,
    UsageTotals,
    workflow_id_for,
)
from agent.repositories.users import (
    ApiKeyRepository,
    BreakpointDecisionRepository,
    RecordedDecision,
    UserRepository,
)

__all__ = [
    "ApiKeyRepository",
    "BaseRepository",
    "BreakpointDecisionRepository",
    "EventDraft",
    "EventRepository",
    "EventSequenceConflictError",
    "InvalidCursorError",
    "InvalidEventError",
    "InvalidFieldError",
    "InvalidPageSizeError",
    "InvalidPlanError",
    "KeysetOrder",
    "MilestoneRepository",
    "Page",
    "PromptRepository",
    "PromptVersionResult",
    "RecordNotFoundError",
    "RecordedDecision",
    "RepositoryError",
    "SessionEvent",
    "TaskRepository",
    "UsageTotals",
    "UserRepository",
    "workflow_id_for",
]
