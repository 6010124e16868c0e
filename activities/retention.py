"""The side effect of `RetentionWorkflow`: prune finished tasks, in bounded batches."""

from __future__ import annotations

import structlog
from temporalio import activity

from agent.contract.retention import PruneRequest, PruneSummary
from agent.db.session import DatabaseSessionManager
from agent.repositories.retention import DEFAULT_BATCH_TASKS, PruneResult, prune_in_batches

logger = structlog.get_logger(__name__)


class RetentionActivities:
    """Deletes the events and outputs of tasks finished before a cut-off."""

    def __init__(self, session_manager: DatabaseSessionManager) -> None:
        """Inject dependencies.

        Args:
            session_manager: PostgreSQL sessions.
        """
        self._db = session_manager

    @activity.defn(name="prune_finished_tasks")
    async def prune_finished_tasks(self, data: PruneRequest) -> PruneSummary:
        """Prune every task finished before the cut-off, one committed batch at a time.

        The same code as `agent db prune`. Each batch commits on its own and heartbeats
        the running totals, so a retry (after a worker died) only does what is left, and
        running or paused tasks are never touched.

        Returns:
            How many tasks, events and outputs this attempt pruned.
        """

        def heartbeat(total: PruneResult) -> None:
            activity.heartbeat(total.tasks, total.events)

        result = await prune_in_batches(
            self._db,
            data.cutoff,
            data.pruned_at,
            batch_tasks=data.batch_tasks or DEFAULT_BATCH_TASKS,
            on_batch=heartbeat,
        )
        logger.info(
            "events_pruned",
            cutoff=data.cutoff.isoformat(),
            tasks=result.tasks,
            events=result.events,
            outputs=result.outputs,
        )
        return PruneSummary(
            cutoff=data.cutoff, tasks=result.tasks, events=result.events, outputs=result.outputs
        )
