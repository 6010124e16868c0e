"""The exit codes of the task commands.

`agent run --follow` and `agent follow` end with a `FollowExit`; the other task commands
exit 0, or `COMMAND_ERROR_EXIT` when the API refuses or cannot be reached, or
`FollowExit.USAGE` when there is no API to talk to.
"""

from __future__ import annotations

from enum import IntEnum

from agent.events.types import TaskStatus


class FollowExit(IntEnum):
    """How `agent run --follow` / `agent follow` end."""

    COMPLETED = 0
    FAILED = 1
    USAGE = 2
    CANCELLED = 3
    DETACHED = 4
    PAUSED = 5


EXIT_CODES_HELP = (
    "Exit codes: 0 completed, 1 failed, 2 usage or configuration error, 3 cancelled, "
    "4 detached with Ctrl-C (the task goes on; re-attach with `agent follow ID`), "
    "5 paused at a breakpoint that cannot be answered non-interactively."
)
STATUS_EXIT: dict[TaskStatus, FollowExit] = {
    TaskStatus.COMPLETED: FollowExit.COMPLETED,
    TaskStatus.FAILED: FollowExit.FAILED,
    TaskStatus.CANCELLED: FollowExit.CANCELLED,
}
COMMAND_ERROR_EXIT = 1
