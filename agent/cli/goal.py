"""Where `agent run` takes the goal from: the argument, a file (`--goal-file`) or stdin (`-`).

A goal longer than a shell argument allows comes from a file or stdin; the server's
limits are checked here first so a person gets the reason, not a refused request.
"""

from __future__ import annotations

import sys
from pathlib import Path

from agent.contract.task import MAX_GOAL_CHARS, MAX_REQUEST_BODY_BYTES

STDIN = "-"
GOAL_LIMITS_HELP = (
    f"The server takes goals of 1 to {MAX_GOAL_CHARS:,} characters (surrounding whitespace "
    f"is dropped) in a request body of at most {MAX_REQUEST_BODY_BYTES // 1024:,} KiB."
)


class GoalError(ValueError):
    """The goal is missing, given twice, unreadable or beyond the server's limits."""


def read_goal(argument: str | None, goal_file: Path | None) -> str:
    """The goal from the argument, `-` (stdin) or `--goal-file`.

    Args:
        argument: The GOAL argument (`-` reads stdin).
        goal_file: `--goal-file PATH` (`-` reads stdin too).

    Returns:
        The goal text, as given: the server strips it and says when it is empty.

    Raises:
        GoalError: With the reason, naming the option.
    """
    if argument is not None and goal_file is not None:
        raise GoalError("give the goal as an argument or with --goal-file, not both")
    if argument is None and goal_file is None:
        raise GoalError("missing goal: give GOAL, `-` to read it from stdin, or --goal-file PATH")
    if goal_file is not None:
        source = "stdin" if str(goal_file) == STDIN else str(goal_file)
        try:
            text = sys.stdin.read() if str(goal_file) == STDIN else goal_file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise GoalError(f"--goal-file: cannot read {source}: {exc}") from exc
    elif argument == STDIN:
        source, text = "stdin", sys.stdin.read()
    else:
        source, text = "GOAL", argument or ""
    length = len(text.strip())
    if length > MAX_GOAL_CHARS:
        # Checked here: a goal near the body limit would be refused without naming the field.
        raise GoalError(
            f"goal: the goal from {source} has {length:,} characters; the server takes at "
            f"most {MAX_GOAL_CHARS:,}"
        )
    return text
