"""One attempt of the `summarise` activity in a process of its own, to be SIGKILLed.

`python -m tests.activities.dying_attempt DATABASE_URL SIMULATOR_URL TASK_ID WORKFLOW_ID`
runs attempt 1 and prints the details of every heartbeat as one `HEARTBEAT <json>` line,
so a test can kill the process mid-stream, like a worker dying, and hand the last details
to the next attempt as Temporal would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from typing import Any
from uuid import UUID

from temporalio.testing import ActivityEnvironment

from activities.agent_activities import AgentActivities
from activities.models import SummariseInput
from agent.db.session import DatabaseSessionManager
from agent.llm.client import LLMClient
from tests.workflows.conftest import engine_settings

ACTIVITY_ID = "summarise-1"
HEARTBEAT_PREFIX = "HEARTBEAT "
"""Starts the lines carrying heartbeat details (logs go to stdout too)."""


def _print_details(*details: Any) -> None:
    print(HEARTBEAT_PREFIX + json.dumps(list(details)), flush=True)


async def main(database_url: str, simulator_url: str, task_id: UUID, workflow_id: str) -> None:
    settings = engine_settings(simulator_url)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, workflow_id=workflow_id, activity_id=ACTIVITY_ID, attempt=1
    )
    env.on_heartbeat = _print_details
    async with DatabaseSessionManager(database_url) as db, LLMClient(settings) as llm:
        agents = AgentActivities(db, llm, settings)
        await env.run(agents.summarise, SummariseInput(task_id=task_id, model="gpt-4o-mini"))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], UUID(sys.argv[3]), sys.argv[4]))
