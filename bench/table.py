"""The benchmark's table, for a terminal (rich) and for Markdown (the README)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

_console = Console()


def say(line: str) -> None:
    """A progress line."""
    _console.print(line, highlight=False)


def _value(figure: dict[str, Any]) -> str:
    value = figure["value"]
    if value is None:
        return "n/a"
    unit = figure["unit"]
    if unit == "x":
        return f"{value:.3f}x"
    if unit in {"count"}:
        return f"{value:.0f}"
    return f"{value:g} {unit}"


def _met(figure: dict[str, Any]) -> str:
    met = figure["met"]
    if met is None:
        return ""
    if met:
        return "yes"
    return f"NO (off by {figure['miss_fraction'] * 100:.0f}%)"


def rows(document: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(scenario, figure, measured, target, met, note) rows of a results document."""
    out = []
    for scenario in document["scenarios"]:
        if scenario.get("error"):
            out.append((scenario["title"], "FAILED", "", "", "", scenario["error"][:200]))
            continue
        for figure in scenario["figures"]:
            out.append(
                (
                    scenario["title"],
                    figure["name"],
                    _value(figure),
                    figure["target"] or "",
                    _met(figure),
                    figure["note"],
                )
            )
    return out


def print_table(document: dict[str, Any]) -> None:
    """Print the results table and where the files are."""
    table = Table(title=f"agent bench ({document['mode']}, {document['seconds']} s)")
    for column in ("scenario", "figure", "measured", "target", "met", "note"):
        table.add_column(column, overflow="fold")
    last = None
    for scenario, *rest in rows(document):
        table.add_row(scenario if scenario != last else "", *rest)
        last = scenario
    _console.print(table)
    m = document["machine"]
    _console.print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}")
    _console.print(f"results: {document.get('json_path')}  chart: {document.get('chart_path')}")


def markdown(document: dict[str, Any]) -> str:
    """The results table as Markdown."""
    lines = [
        "| scenario | figure | measured | target | met | note |",
        "|---|---|---|---|---|---|",
    ]
    last = None
    for scenario, *rest in rows(document):
        cells = [scenario if scenario != last else "", *rest]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        last = scenario
    return "\n".join(lines)
