"""Directives: `[name=value]` markers anywhere in a request's messages steer the simulator.

Tool directives take JSON arguments, so they have their own parser: `[tool=server.tool
{"a": 1}]` (arguments optional, `{}` by default) and `[tool_bad_json=server.tool]` (a call
whose arguments are not JSON).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.events.types import AgentRole, TaskComplexity

_DIRECTIVE = re.compile(r"\[(?P<name>[a-z_]+)=(?P<value>[^\]\s]+)\]")
_TOOL_DIRECTIVE = re.compile(r"\[tool(?P<bad>_bad_json)?=(?P<name>[A-Za-z0-9_.-]+)")
_WHITESPACE = re.compile(r"\s*")
_JSON = json.JSONDecoder()

BAD_JSON_ARGUMENTS = '{"arguments": "cut off'
"""The arguments of a `[tool_bad_json=...]` call: not JSON."""
FUNCTION_NAME_SEPARATOR = "__"
"""`server.tool` in a directive is the function `server__tool` (as `agent.contract.tools`)."""


class Fault(StrEnum):
    """Faults the simulator can inject.

    `cut` drops the connection half-way (stream or JSON body); `truncate` ends a stream
    cleanly half-way, with neither a `finish_reason` nor `[DONE]`.
    """

    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    BAD_REQUEST = "400"
    UNAUTHORIZED = "401"
    HANG = "hang"
    CUT = "cut"
    TRUNCATE = "truncate"
    INVALID_PLAN = "invalid_plan"


class PlanShape(StrEnum):
    """Dependency shapes of a simulated plan."""

    SEQUENTIAL = "sequential"
    PARALLEL = "parallel"
    DIAMOND = "diamond"
    DAG = "dag"


class InvalidPlanKind(StrEnum):
    """How an `invalid_plan` fault breaks the plan."""

    MALFORMED = "malformed"
    CYCLE = "cycle"
    UNKNOWN_DEPENDENCY = "unknown_dep"
    DUPLICATE_KEY = "duplicate"


MAX_MILESTONES = 10_000
"""The most milestones `[milestones=N]` asks for (the contract's plan ceiling)."""


class Directives(BaseModel):
    """Every directive found in one request (the first occurrence of each name wins)."""

    model_config = ConfigDict(frozen=True)

    milestones: int | None = Field(default=None, ge=1, le=MAX_MILESTONES)
    plan: PlanShape | None = None
    complexity: TaskComplexity | None = None
    fail_first: int | None = Field(default=None, ge=0)
    fail_always: str | None = None
    output_tokens: int | None = Field(default=None, ge=1)
    ttft_ms: int | None = Field(default=None, ge=0)
    tps: float | None = Field(default=None, ge=0)
    fault: Fault | None = None
    fault_role: AgentRole | None = None
    fault_count: int | None = Field(default=None, ge=0)
    retry_after: float | None = Field(default=None, ge=0)
    invalid: InvalidPlanKind | None = None
    usage: Literal["none"] | None = None
    """`[usage=none]`: a stream ends without the final usage chunk (usage then estimated)."""


def parse_directives(texts: Iterable[str]) -> Directives:
    """Collect the directives in `texts`; unknown names and invalid values are ignored.

    Args:
        texts: Message contents, in order.

    Returns:
        The directives.
    """
    found: dict[str, str] = {}
    for text in texts:
        for match in _DIRECTIVE.finditer(text):
            name = match.group("name")
            if name in Directives.model_fields and name not in found:
                found[name] = match.group("value")
    valid: dict[str, str] = {}
    for name, value in found.items():
        try:
            Directives.model_validate({name: value})
        except ValidationError:
            continue
        valid[name] = value
    return Directives.model_validate(valid)


class ToolDirective(BaseModel):
    """`[tool=...]`: the model calls `function_name` with `arguments` (raw text)."""

    model_config = ConfigDict(frozen=True)

    function_name: str
    arguments: str
    start: int
    end: int
    """The directive's span in its text."""


def _function_name(name: str) -> str:
    server, dot, tool = name.partition(".")
    return f"{server}{FUNCTION_NAME_SEPARATOR}{tool}" if dot else name


def parse_tool_directives(text: str) -> list[ToolDirective]:
    """The tool directives of one text, in order; malformed ones are ignored.

    Args:
        text: One message's content.

    Returns:
        `[tool=server.tool {json}]` calls with the JSON text as written (`{}` when omitted),
        `[tool_bad_json=server.tool]` calls with `BAD_JSON_ARGUMENTS`.
    """
    found: list[ToolDirective] = []
    for match in _TOOL_DIRECTIVE.finditer(text):
        position = _WHITESPACE.match(text, match.end())
        at = position.end() if position is not None else match.end()
        arguments = "{}"
        if match.group("bad"):
            arguments = BAD_JSON_ARGUMENTS
        elif at < len(text) and text[at] == "{":
            try:
                _, after = _JSON.raw_decode(text, at)
            except json.JSONDecodeError:
                continue
            arguments = text[at:after]
            position = _WHITESPACE.match(text, after)
            at = position.end() if position is not None else after
        if at >= len(text) or text[at] != "]":
            continue
        found.append(
            ToolDirective(
                function_name=_function_name(match.group("name")),
                arguments=arguments,
                start=match.start(),
                end=at + 1,
            )
        )
    return found


def strip_directives(text: str) -> str:
    """Return `text` without its directive markers (tool directives included)."""
    for directive in reversed(parse_tool_directives(text)):
        text = text[: directive.start] + text[directive.end :]
    return _DIRECTIVE.sub("", text)
