"""Print which top-level parts of the project import which (`python scripts/import_graph.py`).

A part is a root package (`api`, `workflows`, `activities`, `bench`) or a direct child of
`agent` (`agent.cli`, `agent.db`, ...); `agent.llm.simulator` counts apart from `agent.llm`
because it sits in another layer. Each line reads `importer -> imported (n), ...` where `n`
is how many import statements cross that edge, lazy and `TYPE_CHECKING` imports included
(import-linter checks those too). The layer rules themselves live in pyproject.toml's
`[tool.importlinter]` and are checked by `uv run lint-imports`.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

import grimp

ROOT_PACKAGES = ("agent", "workflows", "activities", "api", "bench")
SEPARATE_PARTS = ("agent.llm.simulator",)
"""Sub-packages reported on their own rather than folded into their parent part."""


def part_of(module: str) -> str:
    """The top-level part a module belongs to.

    Args:
        module: A dotted module name inside one of `ROOT_PACKAGES`.

    Returns:
        `agent.<child>` for modules of `agent` (or a `SEPARATE_PARTS` entry), else the root.
    """
    for separate in SEPARATE_PARTS:
        if module == separate or module.startswith(separate + "."):
            return separate
    names = module.split(".")
    if names[0] == "agent" and len(names) > 1:
        return ".".join(names[:2])
    return names[0]


def part_edges(graph: grimp.ImportGraph) -> dict[str, Counter[str]]:
    """Count the import statements between parts.

    Args:
        graph: The project's import graph.

    Returns:
        For each importing part, how many imports go to each other part.
    """
    edges: dict[str, Counter[str]] = defaultdict(Counter)
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            source, target = part_of(importer), part_of(imported)
            if source != target:
                lines = graph.get_import_details(importer=importer, imported=imported)
                edges[source][target] += max(1, len(lines))
    return edges


def main() -> None:
    """Build the graph of the checkout this script lives in and print it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-counts", action="store_true", help="print edges only")
    args = parser.parse_args()
    checkout = Path(__file__).resolve().parent.parent
    # grimp finds packages on sys.path; the checkout first, so another checkout's
    # installed copy is never graphed instead.
    sys.path.insert(0, str(checkout))
    graph = grimp.build_graph(*ROOT_PACKAGES, cache_dir=None)
    edges = part_edges(graph)
    for source in sorted(edges):
        targets = sorted(edges[source].items())
        shown = [t if args.no_counts else f"{t} ({n})" for t, n in targets]
        print(f"{source} -> {', '.join(shown)}")  # noqa: T201 - the report is the output


if __name__ == "__main__":
    main()
