"""The baseline's worker process: `python -m bench.bare_worker --task-queue Q ...`.

A process of its own, like the project's worker, so both sides pay the same for
process boundaries; it polls its own task queue on the same Temporal dev server and
calls the same simulator through the same `LLMClient`, and the MCP servers of
`--mcp-servers` through the same `Toolbox` (started on first use).
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from temporalio.worker import Worker

from agent.llm.client import LLMClient
from agent.logging import configure_logging
from agent.temporal import connect_temporal
from agent.tools.toolbox import Toolbox
from agent.worker import ACTIVITY_TASK_POLLERS, WORKFLOW_TASK_POLLERS, workflow_runner
from bench.bare_history import ConversationWorkflow, PeerActivities
from bench.bare_tools import BareToolActivities, BareToolTaskWorkflow
from bench.bare_workflow import BareActivities, BareTaskWorkflow, StreamBenchWorkflow
from bench.stack import BENCH_MAX_CONCURRENT_ACTIVITIES, bench_settings

MAX_CONCURRENT_WORKFLOW_TASKS = 100


async def serve(
    temporal_address: str,
    namespace: str,
    task_queue: str,
    llm_base_url: str,
    mcp_servers: str | None = None,
) -> None:
    """Run the baseline worker until SIGTERM/SIGINT.

    Args:
        temporal_address: The dev server.
        namespace: Temporal namespace.
        task_queue: The baseline's own queue.
        llm_base_url: The stack's simulator.
        mcp_servers: The tool servers (`AGENT_MCP_SERVERS` JSON); None: no tools.
    """
    settings = bench_settings().model_copy(
        update={
            "temporal_address": temporal_address,
            "temporal_namespace": namespace,
            "llm_base_url": llm_base_url,
            "mcp_servers": mcp_servers,
            "mcp_config": None,
        }
    )
    configure_logging("WARNING", json=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    client = await connect_temporal(settings)
    async with LLMClient(settings) as llm, Toolbox.from_settings(settings) as toolbox:
        activities = BareActivities(llm)
        tools = BareToolActivities(toolbox)
        peer = PeerActivities(llm)
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[
                BareTaskWorkflow,
                BareToolTaskWorkflow,
                StreamBenchWorkflow,
                ConversationWorkflow,
            ],
            activities=[activities.llm_call, tools.list_tools, tools.call, peer.call],
            max_concurrent_activities=BENCH_MAX_CONCURRENT_ACTIVITIES,
            max_concurrent_workflow_tasks=MAX_CONCURRENT_WORKFLOW_TASKS,
            # The project's worker's poller counts, so only the work differs.
            max_concurrent_workflow_task_polls=WORKFLOW_TASK_POLLERS,
            max_concurrent_activity_task_polls=ACTIVITY_TASK_POLLERS,
            # The project's sandbox settings too.
            workflow_runner=workflow_runner(),
        )
        async with worker:
            await stop.wait()


def main() -> None:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--temporal-address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--llm-base-url", required=True)
    parser.add_argument("--mcp-servers", default=None, help="AGENT_MCP_SERVERS JSON")
    args = parser.parse_args()
    asyncio.run(
        serve(
            args.temporal_address,
            args.namespace,
            args.task_queue,
            args.llm_base_url,
            args.mcp_servers,
        )
    )


if __name__ == "__main__":
    main()
