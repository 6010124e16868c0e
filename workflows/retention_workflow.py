"""`RetentionWorkflow`: one scheduled run of event retention (pure orchestration).

The Temporal Schedule `agent-event-retention` starts it daily with the configured
retention; it computes the cut-off from the workflow's own clock (deterministic on replay)
and hands the pruning to `prune_finished_tasks`, which commits in bounded batches.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.options import prune_options

with workflow.unsafe.imports_passed_through():
    from activities.retention import RetentionActivities
    from agent.contract.retention import PruneRequest, PruneSummary, RetentionInput


@workflow.defn(name="RetentionWorkflow")
class RetentionWorkflow:
    """Deletes the events and outputs of tasks finished more than `retention_days` ago."""

    @workflow.run
    async def run(self, data: RetentionInput) -> PruneSummary:
        """Prune the tasks finished before now minus the retention, and report what went."""
        now = workflow.now()
        return await workflow.execute_activity_method(
            RetentionActivities.prune_finished_tasks,
            PruneRequest(
                cutoff=now - timedelta(days=data.retention_days),
                pruned_at=now,
                batch_tasks=data.batch_tasks,
            ),
            **prune_options(),
        )
