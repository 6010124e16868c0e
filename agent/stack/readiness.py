"""When a starting `agent up` is ready, and what it tells a person then.

Ready means: the LLM simulator (if any) listens, the API's `/readyz` answers 200 and every
worker polls the task queue; the stack waits for the simulator itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from agent.stack.info import STACK_FILE_NAME, StackInfo

READY_POLL_SECONDS = 0.2
HTTP_PROBE_TIMEOUT_SECONDS = 2.0


async def wait_until_serving(
    api_url: str, client: Client, namespace: str, task_queue: str, *, workers: int = 1
) -> None:
    """Wait until the API answers `/readyz` with 200 and `workers` workers poll `task_queue`.

    Args:
        api_url: Base URL of the API.
        client: A Temporal client.
        namespace: The Temporal namespace.
        task_queue: The workers' task queue.
        workers: How many distinct workers must poll.
    """
    async with httpx.AsyncClient(timeout=HTTP_PROBE_TIMEOUT_SECONDS) as http:
        api_ready = workers_ready = False
        while not (api_ready and workers_ready):
            if not api_ready:
                with contextlib.suppress(httpx.HTTPError):
                    response = await http.get(f"{api_url}/readyz")
                    api_ready = response.status_code == httpx.codes.OK
            if not workers_ready:
                polling = await polling_workers(client, namespace, task_queue)
                workers_ready = len(polling) >= workers
            if not (api_ready and workers_ready):
                await asyncio.sleep(READY_POLL_SECONDS)


async def polling_workers(client: Client, namespace: str, task_queue: str) -> set[str]:
    """The identities of the workers Temporal lists as polling the task queue.

    Args:
        client: A Temporal client.
        namespace: The Temporal namespace.
        task_queue: The task queue.

    Returns:
        Poller identities for workflow or activity tasks (empty while none, or on error).
    """
    identities: set[str] = set()
    for queue_type in (
        TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    ):
        try:
            response = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=namespace,
                    task_queue=TaskQueue(name=task_queue),
                    task_queue_type=queue_type,
                )
            )
        except RPCError:
            return set()
        identities.update(poller.identity for poller in response.pollers)
    return identities


def ready_report(
    info: StackInfo,
    *,
    data_dir: Path,
    logs_dir: Path,
    simulated_llm: bool,
    ready_after: float,
    tool_servers: Sequence[str] = (),
) -> list[str]:
    """The lines `agent up` prints once ready: where everything is.

    Args:
        info: What `stack.json` holds.
        data_dir: The stack's data directory.
        logs_dir: Where the children log.
        simulated_llm: Whether the LLM is the stack's own simulator.
        ready_after: Seconds from the command's start to ready.
        tool_servers: The configured MCP servers (AGENT_MCP_SERVERS / AGENT_MCP_CONFIG).

    Returns:
        The lines, without newlines.
    """
    metrics = [f"  API metrics    {info.api_metrics_url}"] if info.api_metrics_url else []
    metrics += [f"  Worker metrics {url}" for url in info.worker_metrics_urls]
    return [
        "",
        f"  API            {info.api_url}",
        f"  API docs       {info.api_url}/docs",
        *metrics,
        f"  Temporal UI    {info.temporal_ui_url or '(disabled)'}",
        f"  Temporal       {info.temporal_address} (namespace {info.temporal_namespace})",
        f"  Database       {info.database_url}",
        f"  Redis          {info.redis_url or '(none: prompt cache off)'}",
        f"  LLM            {info.llm_base_url or 'default provider'}"
        + (" (simulator)" if simulated_llm else ""),
        f"  Tool servers   {', '.join(tool_servers) or '(none: AGENT_MCP_SERVERS unset)'}",
        f"  API key        {info.api_key}",
        f"  Data dir       {data_dir}  (logs in {logs_dir})",
        f"  stack.json     {data_dir / STACK_FILE_NAME}",
        "",
        f"ready in {ready_after:.1f}s; press Ctrl-C to stop",
    ]
