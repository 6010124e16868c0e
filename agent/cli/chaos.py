"""`agent chaos`: run the chaos suite (real processes killed and restarted)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import typer

CHAOS_MARKER = "chaos"
QUICK_MARKER = "chaos_quick"
QUICK_ONLY_MARKER = "chaos_quick_only"
"""A smaller copy of another scenario: `--quick` runs it, the whole suite runs the larger one."""
CHAOS_TESTS = "tests/chaos"
DEFAULT_PARALLEL = 2
"""Scenarios at once: each runs its own cluster on free ports in a directory of its own."""


def _project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def _marker(*, quick: bool, keyword: str | None) -> str:
    """The scenarios to run: the CI subset, or all but the smaller copies (unless picked)."""
    if quick:
        return QUICK_MARKER
    if keyword:
        return CHAOS_MARKER
    return f"{CHAOS_MARKER} and not {QUICK_ONLY_MARKER}"


def chaos(
    quick: bool = typer.Option(False, "--quick", help="Only the CI subset (a few minutes)."),
    keyword: str | None = typer.Option(None, "-k", help="pytest -k expression (one scenario)."),
    parallel: int = typer.Option(
        DEFAULT_PARALLEL,
        "--parallel",
        min=0,
        help="Scenarios run at once (pytest-xdist workers; the heavy kill scenarios still "
        "run one after another); 0 = one at a time in this process, lines printed live.",
    ),
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
        _marker(quick=quick, keyword=keyword),
        "-q",
        # A directory of this run alone: pytest rotates the shared numbered ones, and a
        # concurrent session's rotation must not pull data dirs from under the clusters.
        "--basetemp",
        basetemp,
    ]
    if parallel > 0:
        # `loadgroup`: the scenarios marked `xdist_group("kills")` (the CPU-heavy ones, whose
        # faults are timed on the tasks' progress) run on one worker, one after another,
        # the others beside them. xdist workers' output is not shown live: `-rP` prints
        # each passed scenario's lines in the summary (a failure's are always shown).
        args += ["-n", str(parallel), "--dist", "loadgroup", "-rfEP"]
    else:
        args += ["-n", "0", "-s"]
    if keyword:
        args += ["-k", keyword]
    result = subprocess.run(args, cwd=root, check=False)
    raise typer.Exit(code=result.returncode)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("chaos")(chaos)
