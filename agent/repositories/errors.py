"""Typed errors raised by the repositories.

Every error subclasses `ValueError` as well as `RepositoryError`, so callers that only
know the guide's `ValueError` convention keep working while the API maps each type to a
precise status code (not found -> 404, bad cursor/field -> 400/422, conflict -> 409).
"""

from __future__ import annotations

from typing import Any


class RepositoryError(Exception):
    """Base class of every repository error."""


class RecordNotFoundError(RepositoryError, ValueError):
    """A record looked up by id does not exist."""

    def __init__(self, model: str, record_id: Any) -> None:
        self.model = model
        self.record_id = record_id
        super().__init__(f"{model} with id {record_id} not found")


class InvalidFieldError(RepositoryError, ValueError):
    """`create`/`update` was given fields the model does not have (or must not be set)."""

    def __init__(self, model: str, fields: list[str]) -> None:
        self.model = model
        self.fields = sorted(fields)
        super().__init__(f"{model} has no writable field(s): {', '.join(self.fields)}")


class InvalidCursorError(RepositoryError, ValueError):
    """A pagination cursor is malformed, was tampered with, or belongs to another listing."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"invalid cursor: {reason}")


class InvalidPageSizeError(RepositoryError, ValueError):
    """A page size outside the allowed range."""

    def __init__(self, limit: int, maximum: int) -> None:
        self.limit = limit
        self.maximum = maximum
        super().__init__(f"page size must be between 1 and {maximum}, got {limit}")


class InvalidEventError(RepositoryError, ValueError):
    """Event drafts that cannot be stored as one batch (mixed tasks, ephemeral types, ...)."""


class EventSequenceConflictError(RepositoryError):
    """Fewer events were inserted than sequence numbers were allocated.

    Only possible when something wrote events without holding the task's row lock; the
    caller's transaction must be rolled back so the per-task sequence stays gapless.
    """


class InvalidPlanError(RepositoryError, ValueError):
    """A milestone plan that cannot be stored (for example duplicate keys)."""
