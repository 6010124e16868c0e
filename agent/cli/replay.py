"""`agent replay`: the check before deploying a workflow change.

Replays the histories of recent task workflows (fetched from the Temporal server) or of
history files against the workflow code of this checkout. A history that the current code
cannot replay means the change would break the running tasks that history stands for
(nondeterminism): deploy it behind `workflow.patched()` instead. Exits 0 when every history
replays, 1 naming each one that does not, 2 on a usage or connection error.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from temporalio.client import Client, WorkflowHistory
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError

from agent.cli.durations import DurationError, parse_duration
from agent.cli.errors import load_settings_or_exit
from agent.config import Settings
from agent.stack.info import StackInfo
from agent.temporal import connect_temporal, data_converter

EXIT_ALL_REPLAYED = 0
EXIT_REPLAY_FAILED = 1
EXIT_USAGE = 2

DEFAULT_SINCE = "7d"
DEFAULT_LIMIT = 200
WORKFLOW_TYPE = "TaskWorkflow"


@dataclass(frozen=True)
class ReplayOutcome:
    """What replaying one history showed."""

    workflow_id: str
    error: str | None

    @property
    def ok(self) -> bool:
        """Whether the history replayed without a failure."""
        return self.error is None


async def replay_histories(histories: AsyncIterator[WorkflowHistory]) -> list[ReplayOutcome]:
    """Replay each history against the current `TaskWorkflow` code.

    Args:
        histories: The histories to replay.

    Returns:
        One outcome per history, in the order given.
    """
    # The core SDK would log every failing workflow task as a WARN line on stdout; the
    # outcome below says the same once, so only its errors are logged.
    quiet = Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
        )
    )
    # Imported here: every `agent` command loads this module, and the workflow code pulls in
    # the activities, the LLM and MCP clients (seconds of start-up for `agent keys`).
    from temporalio.worker import Replayer

    from workflows.task_workflow import TaskWorkflow

    replayer = Replayer(workflows=[TaskWorkflow], data_converter=data_converter, runtime=quiet)
    outcomes: list[ReplayOutcome] = []
    async for history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        failure = result.replay_failure
        error = None if failure is None else _describe(failure)
        outcomes.append(ReplayOutcome(history.workflow_id, error))
    return outcomes


_CORE_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')


def _describe(failure: Exception) -> str:
    """One line naming the failure: the core SDK's own message when it wraps one."""
    text = str(failure)
    match = _CORE_MESSAGE.search(text)
    return f"{type(failure).__name__}: {match.group(1) if match else text}"


async def histories_from_files(paths: Iterable[Path]) -> AsyncIterator[WorkflowHistory]:
    """Read histories exported as JSON (the Temporal UI's or `temporal workflow show`'s).

    The workflow id of each is taken from the file name (without `.json`).
    """
    for path in paths:
        text = await asyncio.to_thread(path.read_text)
        yield WorkflowHistory.from_json(path.stem, text)


def recent_query(since: timedelta, now: datetime) -> str:
    """The visibility query of task workflows started within `since` before `now`."""
    start = (now - since).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"WorkflowType = '{WORKFLOW_TYPE}' AND StartTime > '{start}'"


async def histories_from_server(
    client: Client, since: timedelta, limit: int
) -> AsyncIterator[WorkflowHistory]:
    """Fetch the histories of the task workflows started within `since`, newest first."""
    executions = client.list_workflows(recent_query(since, datetime.now(UTC)), limit=limit)
    async for history in executions.map_histories():
        yield history


def _temporal_settings(settings: Settings, data_dir: Path | None) -> Settings:
    """Settings whose Temporal address is the configured one or the running `agent up`'s."""
    if settings.temporal_address is not None:
        return settings
    info = StackInfo.read(data_dir if data_dir is not None else settings.data_dir)
    if info is None:
        return settings
    return settings.model_copy(
        update={
            "temporal_address": info.temporal_address,
            "temporal_namespace": info.temporal_namespace,
        }
    )


async def _replay(
    settings: Settings, files: list[Path], since: timedelta, limit: int
) -> list[ReplayOutcome]:
    if files:
        return await replay_histories(histories_from_files(files))
    client = await connect_temporal(settings)
    return await replay_histories(histories_from_server(client, since, limit))


def replay(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="History JSON files to replay instead of fetching from the server.",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str, typer.Option(help="Replay task workflows started within this long (30m, 12h, 7d).")
    ] = DEFAULT_SINCE,
    limit: Annotated[
        int, typer.Option(min=1, max=100_000, help="Replay at most this many workflows.")
    ] = DEFAULT_LIMIT,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Data directory of the `agent up` whose Temporal server to use "
            "(when AGENT_TEMPORAL_ADDRESS is not set).",
        ),
    ] = None,
) -> None:
    """Replay recent task workflows against this code; non-zero if any would break.

    Run it before deploying a change to `workflows/`: every workflow it names would fail
    with a nondeterminism error on the new code.
    """
    try:
        window = parse_duration(since)
    except DurationError as exc:
        typer.echo(f"error: --since: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    settings = _temporal_settings(load_settings_or_exit(), data_dir)
    try:
        outcomes = asyncio.run(_replay(settings, files or [], window, limit))
    except (RPCError, RuntimeError, OSError) as exc:
        where = settings.temporal_address or "localhost:7233"
        typer.echo(
            f"error: cannot read workflow histories from Temporal at {where}: {exc}", err=True
        )
        raise typer.Exit(EXIT_USAGE) from exc
    except ValueError as exc:
        typer.echo(f"error: not a workflow history: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    failed = [outcome for outcome in outcomes if not outcome.ok]
    for outcome in outcomes:
        mark = "ok  " if outcome.ok else "FAIL"
        line = f"{mark} {outcome.workflow_id}"
        if outcome.error is not None:
            line += f"  {outcome.error}"
        typer.echo(line)
    source = f"{len(files)} file(s)" if files else f"task workflows started in the last {since}"
    typer.echo(f"{len(outcomes)} replayed from {source}, {len(failed)} failed")
    if failed:
        raise typer.Exit(EXIT_REPLAY_FAILED)


def register(app: typer.Typer) -> None:
    """Add this module's command to the CLI."""
    app.command("replay")(replay)
