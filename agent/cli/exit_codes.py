"""The one exit-code table of every `agent` task command (`run`, `follow`, `tasks`, ...).

Every command ends with an `ExitCode`: 0 when it did what was asked, 2 when the request
itself was wrong (bad arguments, an invalid goal, an unknown task, a refused key, bad
settings), 6 when the API could not be reached or failed. `agent run --follow` and
`agent follow` add the task's ending (1 failed, 3 cancelled, 5 paused) and 4 for Ctrl-C.
The README's table is this one; `tests/agent/cli/test_exit_codes.py` pins it.
"""

from __future__ import annotations

from enum import IntEnum
from http import HTTPStatus

from agent.contract.protocol import CloseCode
from agent.events.types import TaskStatus


class ExitCode(IntEnum):
    """How a task command ends."""

    OK = 0
    FAILED = 1
    USAGE = 2
    CANCELLED = 3
    DETACHED = 4
    PAUSED = 5
    UNAVAILABLE = 6

    # Names the follow commands used before every command shared this table.
    COMPLETED = 0


FollowExit = ExitCode
"""The former name of `ExitCode` (the follow commands had their own table)."""

EXIT_CODES_TABLE: tuple[tuple[ExitCode, str], ...] = (
    (ExitCode.OK, "done (with --follow: the task completed)"),
    (ExitCode.FAILED, "the task failed"),
    (
        ExitCode.USAGE,
        "usage error: bad arguments or settings, invalid request (e.g. empty goal), "
        "unknown task or ambiguous id prefix, refused API key, no API found",
    ),
    (ExitCode.CANCELLED, "the task was cancelled"),
    (ExitCode.DETACHED, "detached with Ctrl-C (the task goes on; `agent follow ID`)"),
    (ExitCode.PAUSED, "paused at a breakpoint that cannot be answered non-interactively"),
    (
        ExitCode.UNAVAILABLE,
        "the API cannot be reached, failed (5xx) or refused the request in the task's "
        "current state (409, 429)",
    ),
)
EXIT_CODES_HELP = "Exit codes: " + "; ".join(
    f"{int(code)} {meaning}" for code, meaning in EXIT_CODES_TABLE
)
STATUS_EXIT: dict[TaskStatus, ExitCode] = {
    TaskStatus.COMPLETED: ExitCode.OK,
    TaskStatus.FAILED: ExitCode.FAILED,
    TaskStatus.CANCELLED: ExitCode.CANCELLED,
}
# The request was wrong, not the server: HTTP statuses and the event socket's close codes.
_USAGE_STATUSES = frozenset(
    {
        HTTPStatus.BAD_REQUEST,
        HTTPStatus.UNAUTHORIZED,
        HTTPStatus.FORBIDDEN,
        HTTPStatus.NOT_FOUND,
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        HTTPStatus.UNPROCESSABLE_ENTITY,
        CloseCode.UNAUTHORIZED,
        CloseCode.NOT_FOUND,
        CloseCode.INVALID_REQUEST,
    }
)


def exit_code_for_status(status: int) -> ExitCode:
    """The exit code of an API error status (HTTP status or socket close code).

    Args:
        status: What the API answered.

    Returns:
        `USAGE` when the request was wrong, `UNAVAILABLE` otherwise.
    """
    return ExitCode.USAGE if status in _USAGE_STATUSES else ExitCode.UNAVAILABLE
