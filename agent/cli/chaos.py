"""`agent chaos`: run the chaos suite (real processes killed and restarted)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import typer

CHAOS_MARKER = "chaos"
QUICK_MARKER = "chaos_quick"
CHAOS_TESTS = "tests/chaos"


def _project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def chaos(
    quick: bool = typer.Option(False, "--quick", help="Only the CI subset (a few minutes)."),
    keyword: str | None = typer.Option(None, "-k", help="pytest -k expression (one scenario)."),
) -> None:
    """Run `pytest -m chaos` (or `-m chaos_quick`): each scenario prints its line."""
    root = _project_root()
    if not (root / CHAOS_TESTS).is_dir():
        typer.echo(f"{CHAOS_TESTS} not found: run from a source checkout", err=True)
        raise typer.Exit(code=2)
    basetemp = tempfile.mkdtemp(prefix="agent-chaos-")
    typer.echo(f"process logs and data of every cluster: {basetemp}")
    args = [
        sys.executable,
        "-m",
        "pytest",
        CHAOS_TESTS,
        "-m",
        QUICK_MARKER if quick else CHAOS_MARKER,
        "-s",
        "-q",
        # One scenario at a time: each runs a whole cluster and times its faults.
        "-n",
        "0",
        # A directory of this run alone: pytest rotates the shared numbered ones, and a
        # concurrent session's rotation must not pull data dirs from under the clusters.
        "--basetemp",
        basetemp,
    ]
    if keyword:
        args += ["-k", keyword]
    result = subprocess.run(args, cwd=root, check=False)
    raise typer.Exit(code=result.returncode)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("chaos")(chaos)
