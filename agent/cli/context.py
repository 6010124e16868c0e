"""What every task command needs: the API target, the cursor store, the consoles.

The commands talk to the public API only (`agent.client`), found through
`AGENT_API_URL` / `AGENT_API_KEY` or the `stack.json` of a running `agent up`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from agent.cli.errors import load_settings_or_exit
from agent.cli.exit_codes import ExitCode, exit_code_for_status
from agent.client import AgentApiClient, ApiRequestError, ApiTarget, ApiTargetError, resolve_target
from agent.client.cursors import CursorStore
from agent.client.ids import MIN_PREFIX_CHARS

T = TypeVar("T")

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory of the `agent up` to talk to (its stack.json) and where "
        "follow cursors are kept [AGENT_DATA_DIR].",
    ),
]
TASK_ID_HELP = (
    f"The task: its id or a unique prefix of it (at least {MIN_PREFIX_CHARS} characters, "
    "as `agent tasks` shows)."
)
TaskIdArgument = Annotated[str, typer.Argument(metavar="TASK_ID", help=TASK_ID_HELP)]
JsonOption = Annotated[
    bool, typer.Option("--json", help="One JSON object per line (for scripts), no live view.")
]


@dataclass
class CliContext:
    """What every task command needs: the API target and the cursor store."""

    target: ApiTarget
    cursors: CursorStore
    console: Console
    err: Console


def open_context(data_dir: Path | None) -> CliContext:
    """The context for a command; exits with `ExitCode.USAGE` when no API can be found.

    Args:
        data_dir: `--data-dir`, else the configured data directory.

    Returns:
        The context.
    """
    settings = load_settings_or_exit()
    directory = data_dir if data_dir is not None else settings.data_dir
    err = Console(stderr=True)
    try:
        target = resolve_target(settings, directory)
    except ApiTargetError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(ExitCode.USAGE) from exc
    return CliContext(target=target, cursors=CursorStore(directory), console=Console(), err=err)


def report_api_error(ctx: CliContext, exc: ApiRequestError) -> ExitCode:
    """Print an API error (with each bad field and its reason) and return its exit code."""
    # soft_wrap: one line however long, so it can be grepped and copied.
    ctx.err.print(f"[red]error:[/] {escape(exc.describe())}", soft_wrap=True)
    return exit_code_for_status(exc.status)


def report_unreachable(ctx: CliContext, exc: Exception) -> ExitCode:
    """Print that the API cannot be reached and return `ExitCode.UNAVAILABLE`."""
    ctx.err.print(
        f"[red]error:[/] cannot reach the API at {ctx.target.url}: {escape(str(exc))}",
        soft_wrap=True,
    )
    return ExitCode.UNAVAILABLE


def run_api(ctx: CliContext, work: Callable[[AgentApiClient], Awaitable[T]]) -> T:
    """Run one API interaction; an error becomes one line and its `ExitCode`."""

    async def main() -> T:
        async with AgentApiClient(ctx.target) as api:
            return await work(api)

    try:
        return asyncio.run(main())
    except ApiRequestError as exc:
        raise typer.Exit(report_api_error(ctx, exc)) from exc
    except (OSError, httpx.HTTPError) as exc:
        raise typer.Exit(report_unreachable(ctx, exc)) from exc


async def temporal_link(api: AgentApiClient, target: ApiTarget, workflow_id: str) -> str | None:
    """Link to a task's workflow in the Temporal UI (from stack.json or the server's hints)."""
    link = target.workflow_url(workflow_id)
    if link is not None:
        return link
    config = await api.console_config()
    if not config.temporal_ui_url:
        return None
    hinted = ApiTarget(
        url=target.url,
        api_key=target.api_key,
        temporal_ui_url=config.temporal_ui_url,
        temporal_namespace=config.temporal_namespace,
    )
    return hinted.workflow_url(workflow_id)
