from __future__ import annotations

import pytest

from agent.contract.tools import ToolSpec
from agent.tools.arguments import validate_arguments

SPEC = ToolSpec(
    server="time",
    name="get_current_time",
    input_schema={
        "type": "object",
        "properties": {"timezone": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["timezone"],
        "additionalProperties": False,
    },
)


def test_valid_arguments_come_back_as_a_dict() -> None:
    assert validate_arguments(SPEC, '{"timezone": "UTC", "days": 2}') == {
        "timezone": "UTC",
        "days": 2,
    }


def test_empty_text_means_no_arguments() -> None:
    spec = ToolSpec(server="c", name="fail", input_schema={"type": "object", "properties": {}})

    assert validate_arguments(spec, "  ") == {}


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ('{"timezone": ', "not valid JSON"),
        ('["UTC"]', "must be a JSON object, not list"),
        ("{}", "arguments: 'timezone' is a required property"),
        ('{"timezone": 5}', "arguments.timezone: 5 is not of type 'string'"),
        ('{"timezone": "UTC", "x": 1}', "Additional properties are not allowed"),
    ],
)
def test_bad_arguments_become_a_message_naming_the_tool(raw: str, words: str) -> None:
    message = validate_arguments(SPEC, raw)

    assert isinstance(message, str)
    assert "time.get_current_time" in message
    assert words in message


def test_an_invalid_schema_is_reported_not_raised() -> None:
    spec = ToolSpec(server="c", name="t", input_schema={"type": "object", "required": "x"})

    message = validate_arguments(spec, "{}")

    assert isinstance(message, str)
    assert "input schema of c.t is invalid" in message
