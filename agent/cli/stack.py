"""`agent up`: the whole service on one machine (see `agent.stack.runner`)."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import psutil
import typer

from agent.cli.errors import load_settings_or_exit
from agent.logging import configure_logging
from agent.stack.lock import DataDirInUseError
from agent.stack.ports import BusyPortError

if TYPE_CHECKING:
    from agent.stack.runner import Stack

DEFAULT_API_PORT = 8000
DEFAULT_TEMPORAL_PORT = 7233
DEFAULT_UI_PORT = 8233
FAILURE_EXIT_CODE = 1
MAX_WORKERS = 16


def _echo(line: str) -> None:
    typer.echo(line)


async def _run(stack: Stack) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await stack.run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def up(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Where PostgreSQL, Temporal and logs keep their state "
            "(default: AGENT_DATA_DIR or a per-user directory).",
        ),
    ] = None,
    api_port: Annotated[int, typer.Option("--api-port", min=1, max=65535)] = DEFAULT_API_PORT,
    temporal_port: Annotated[
        int, typer.Option("--temporal-port", min=1, max=65535)
    ] = DEFAULT_TEMPORAL_PORT,
    ui_port: Annotated[int, typer.Option("--ui-port", min=1, max=65535)] = DEFAULT_UI_PORT,
    ui: Annotated[bool, typer.Option("--ui/--no-ui", help="Serve the Temporal Web UI.")] = True,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=MAX_WORKERS,
            help="Worker processes sharing the task queue (each serves its own metrics port).",
        ),
    ] = 1,
) -> None:
    """Run PostgreSQL, Redis, Temporal, the LLM simulator, the worker and the API.

    Services configured with AGENT_DATABASE_URL, AGENT_TEMPORAL_ADDRESS, AGENT_REDIS_URL or
    AGENT_LLM_BASE_URL/AGENT_LLM_API_KEY are used instead of started. When everything is
    ready, DIR/stack.json says where each piece is. Ctrl-C stops it all.
    """
    # Time-to-ready counts from the process's birth, interpreter start-up and imports too.
    started_at = time.monotonic() - max(0.0, time.time() - psutil.Process().create_time())
    # Imported here: every `agent` command (each worker and API child too) loads this module.
    from agent.stack.runner import Stack, StackError, StackOptions

    settings = load_settings_or_exit()
    configure_logging(settings.log_level, json=settings.log_json)
    # Readiness probes poll; one log line per probe would drown the summary.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    options = StackOptions(
        data_dir=data_dir if data_dir is not None else settings.data_dir,
        api_port=api_port,
        temporal_port=temporal_port,
        ui_port=ui_port,
        ui=ui,
        workers=workers,
    )
    stack = Stack(options, settings, report=_echo, started_at=started_at)
    try:
        code = asyncio.run(_run(stack))
    except (DataDirInUseError, BusyPortError, StackError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(FAILURE_EXIT_CODE) from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add `agent up` to the CLI."""
    app.command("up")(up)
