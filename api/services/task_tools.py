"""A task's `tools`: checked against the configured MCP servers when it is created."""

from __future__ import annotations

import json
from http import HTTPStatus

import structlog

from agent.contract.breakpoints import ResumeAction
from agent.contract.errors import ErrorCode
from agent.contract.task import PauseState
from agent.contract.tools import ToolSpec
from agent.db.models import Task
from agent.tools.arguments import validate_arguments
from agent.tools.errors import ToolServerUnavailable, UnknownToolError
from agent.tools.toolbox import Toolbox
from api.errors import ApiError
from api.schemas import ResumeBody, TaskCreate

logger = structlog.get_logger(__name__)


async def check_requested_tools(body: TaskCreate, toolbox: Toolbox) -> bool:
    """Refuse tools no configured server offers; say whether the task may call tools.

    A server that cannot be reached now is not held against the request: the task
    pins its tools when it starts, and fails there naming the server if it is still down.

    Returns:
        Whether the task may call tools (it asked for some, or it asked for none in
        particular and servers are configured).

    Raises:
        ApiError: 422 naming the unknown server or tool (`body.tools[i]`).
    """
    if body.tools is None:
        return bool(toolbox.servers)
    if not body.tools:
        return False
    try:
        await toolbox.resolve(body.tools)
    except UnknownToolError as exc:
        index = body.tools.index(exc.entry) if exc.entry in body.tools else 0
        message = f"tools[{index}]: {exc}"
        raise ApiError(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            ErrorCode.VALIDATION_ERROR,
            message,
            [{"loc": ["body", "tools", index], "msg": str(exc), "type": "unknown_tool"}],
        ) from exc
    except ToolServerUnavailable as exc:
        logger.warning("tool_server_unavailable_at_create", server=exc.server, error=str(exc))
    return True


def check_edited_arguments(task: Task, body: ResumeBody) -> None:
    """Refuse an `edit` at `before_tool` whose arguments do not fit the tool's schema.

    Only checked when the task is paused at a tool call; the workflow's validator answers
    every other misuse (409), and the decision activity checks the arguments again.

    Raises:
        ApiError: 422 naming `arguments` and what does not fit.
    """
    if body.action != ResumeAction.EDIT or body.arguments is None or not task.pause_state:
        return
    pause = PauseState.model_validate(task.pause_state)
    if pause.tool_call is None or pause.breakpoint_id != body.breakpoint_id:
        return
    call = pause.tool_call
    specs = [ToolSpec.model_validate(spec) for spec in task.tools or []]
    spec = next((s for s in specs if (s.server, s.name) == (call.server, call.tool)), None)
    if spec is None:
        return
    problem = validate_arguments(spec, json.dumps(body.arguments))
    if isinstance(problem, str):
        raise ApiError(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            ErrorCode.VALIDATION_ERROR,
            problem,
            [{"loc": ["body", "arguments"], "msg": problem, "type": "tool_arguments"}],
        )
