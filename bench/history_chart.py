"""The history scenario's chart: the largest run's history against model calls, as SVG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

Series = Sequence[tuple[float, float]]


def write_history_chart(
    path: Path,
    project: Sequence[dict[str, Any]],
    peer: Sequence[dict[str, Any]],
    peer_death: dict[str, Any] | None,
    limits: tuple[int, int],
) -> Path:
    """Two panels (bytes, events) of the largest run against model calls, log-log.

    Args:
        path: Where the SVG goes.
        project: Points with `milestones`, `calls`, `max_run_events`, `max_run_bytes`.
        peer: The baseline's points with `milestones`, `calls`, `events`, `bytes`.
        peer_death: The baseline's extrapolated end (`calls`, `milestones`, `bytes`), or None.
        limits: Temporal's history size (bytes) and event-count limits.

    Returns:
        `path`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Text stays text: a small file that diffs and reads in any browser.
    plt.rcParams["svg.fonttype"] = "none"
    size_limit, count_limit = limits
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    panels = (
        (axes[0], "max_run_bytes", "bytes", size_limit, "history bytes of the largest run"),
        (axes[1], "max_run_events", "events", count_limit, "history events of the largest run"),
    )
    for ax, project_key, peer_key, limit, title in panels:
        xs = [p["calls"] for p in project]
        ys = [p[project_key] for p in project]
        ax.plot(xs, ys, "o-", color="tab:blue", label="this project (continue-as-new)")
        for point in project:
            ax.annotate(
                f"{point['milestones']:,} milestones",
                (point["calls"], point[project_key]),
                textcoords="offset points",
                xytext=(0, 7),
                ha="center",
                fontsize=7,
            )
        ax.plot(
            [p["calls"] for p in peer],
            [p[peer_key] for p in peer],
            "-",
            color="tab:red",
            label="bare peer, context through history (measured)",
        )
        if peer_death is not None and peer:
            last = peer[-1]
            death_y = peer_death["bytes"] if peer_key == "bytes" else peer_death["events"]
            ax.plot(
                [last["calls"], peer_death["calls"]],
                [last[peer_key], death_y],
                ":",
                color="tab:red",
                label="bare peer, extrapolated to its end",
            )
        ax.axhline(limit, color="black", linestyle="--", linewidth=0.8)
        ax.annotate(
            "Temporal's limit",
            (xs[0] if xs else 1, limit),
            xytext=(2, 3),
            textcoords="offset points",
            fontsize=7,
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("model calls of the task", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg")
    plt.close(fig)
    return path
