"""A model's arguments for a tool, checked before any call is made.

Bad arguments become an error result for the model to correct, never a call: the text is
JSON-parsed, must be an object, and must match the tool's input schema (the JSON Schema
dialect the schema names, Draft 2020-12 when it names none).
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import validators
from jsonschema.exceptions import SchemaError

from agent.contract.tools import ToolSpec

MAX_REPORTED_ERRORS = 5
"""Enough for a model to fix its call; more only lengthens its context."""


def validate_arguments(spec: ToolSpec, raw_json: str) -> dict[str, Any] | str:
    """Parse and check a model's arguments for `spec`.

    Args:
        spec: The tool, with its pinned input schema.
        raw_json: The arguments exactly as the model sent them; empty text means `{}`
            (models send it for tools without parameters).

    Returns:
        The arguments as a dict when they are valid, else a message for the model naming
        what is wrong (a `str`).
    """
    text = raw_json.strip() or "{}"
    try:
        arguments = json.loads(text)
    except json.JSONDecodeError as error:
        return f"arguments for {spec.qualified_name} are not valid JSON: {error}"
    if not isinstance(arguments, dict):
        return (
            f"arguments for {spec.qualified_name} must be a JSON object, "
            f"not {type(arguments).__name__}"
        )
    validator_class = validators.validator_for(
        spec.input_schema, default=validators.Draft202012Validator
    )
    try:
        validator_class.check_schema(spec.input_schema)
    except SchemaError as error:
        return f"the input schema of {spec.qualified_name} is invalid: {error.message}"
    validator = validator_class(spec.input_schema)
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    if not errors:
        return arguments
    lines = [f"{_where(list(error.absolute_path))}: {error.message}" for error in errors]
    shown = lines[:MAX_REPORTED_ERRORS]
    if len(lines) > len(shown):
        shown.append(f"... and {len(lines) - len(shown)} more")
    return f"arguments for {spec.qualified_name} do not match its schema: " + "; ".join(shown)


def _where(path: list[Any]) -> str:
    """`arguments.items[2].name` for a path into the arguments."""
    text = "arguments"
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text
