"""Event retention run by a Temporal Schedule: the workflow's input and what a run pruned."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

RETENTION_SCHEDULE_ID = "agent-event-retention"
"""The Schedule that starts `RetentionWorkflow` daily (its runs' ids start with it too)."""


class RetentionInput(BaseModel):
    """Input of `RetentionWorkflow.run`: how long finished tasks keep their events."""

    retention_days: int = Field(ge=1)
    """Tasks finished longer ago than this many days lose their events and outputs."""
    batch_tasks: int | None = Field(default=None, ge=1)
    """Tasks pruned per transaction (None: the repository's default)."""


class PruneRequest(BaseModel):
    """Input of the `prune_finished_tasks` activity."""

    cutoff: datetime
    """Tasks that finished before this instant are pruned."""
    pruned_at: datetime
    """Recorded as the pruned tasks' `events_pruned_at`."""
    batch_tasks: int | None = Field(default=None, ge=1)
    """Tasks per transaction (None: the repository's default)."""


class PruneSummary(BaseModel):
    """What a prune removed (the activity's and the workflow's result)."""

    cutoff: datetime
    tasks: int = Field(default=0, ge=0)
    """Tasks whose log was pruned (their rows and totals stay)."""
    events: int = Field(default=0, ge=0)
    """Event rows deleted."""
    outputs: int = Field(default=0, ge=0)
    """Milestone outputs cleared."""
