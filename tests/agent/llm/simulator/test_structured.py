"""Structured output: answers fitted to a `response_format` JSON schema."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent.llm.simulator.structured import structured_answer


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    kind: str = Field(json_schema_extra={"enum": ["read", "write"]})
    tools: list[str]
    weight: int = Field(ge=1, le=5)
    note: str | None


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[Step] = Field(min_length=1, max_length=2)


class Tree(BaseModel):
    name: str
    children: list[Tree]
    parent: Tree | None


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """Every property required, as OpenAI's strict mode (and the SDK) makes it."""
    for sub in [schema, *schema.get("$defs", {}).values()]:
        if "properties" in sub:
            sub["required"] = list(sub["properties"])
    return schema


def test_values_that_fit_are_kept_and_the_rest_is_made_to_fit() -> None:
    # Arrange
    answer = {
        "steps": [
            {"key": "m1", "kind": "read", "weight": 3, "extra": True},
            {"key": "m2", "kind": "delete", "weight": 99, "tools": ["time.now"]},
            {"key": "m3", "kind": "read", "weight": 1},
        ],
        "unknown": 1,
    }
    schema = strict(Plan.model_json_schema())

    # Act
    fitted = json.loads(structured_answer(json.dumps(answer), schema))

    # Assert
    plan = Plan.model_validate(fitted)
    assert [s.key for s in plan.steps] == ["m1", "m2"]  # maxItems
    assert plan.steps[0].kind == "read"
    assert plan.steps[1].kind == "read"  # Not in the enum: its first value.
    assert [s.weight for s in plan.steps] == [3, 5]  # Clamped to the maximum.
    assert plan.steps[0].tools == []  # Required, missing: an empty array.
    assert plan.steps[1].tools == ["time.now"]
    assert plan.steps[0].note is None  # Required, nullable, missing: null.
    assert "unknown" not in fitted
    assert "extra" not in fitted["steps"][0]


def test_a_missing_required_array_gets_its_minimum_items() -> None:
    fitted = json.loads(structured_answer("{}", strict(Plan.model_json_schema())))

    plan = Plan.model_validate(fitted)
    assert len(plan.steps) == 1
    assert plan.steps[0].weight == 1  # The minimum.


def test_free_text_goes_into_the_first_string() -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "sources": {"type": "string"}},
        "required": ["answer", "sources"],
        "additionalProperties": False,
    }

    fitted = json.loads(structured_answer("## m1: the result", schema))

    assert fitted == {"answer": "## m1: the result", "sources": "simulated"}


def test_a_recursive_schema_is_generated_without_recursing_forever() -> None:
    schema = strict(Tree.model_json_schema())
    answer = '{"name": "root", "children": [{"name": "leaf"}]}'

    fitted = json.loads(structured_answer(answer, schema))

    tree = Tree.model_validate(fitted)
    assert tree.name == "root"
    assert tree.children[0].name == "leaf"
    assert tree.children[0].children == []
    assert tree.parent is None


def test_type_lists_consts_and_booleans() -> None:
    schema = {
        "type": "object",
        "properties": {
            "passed": {"type": "boolean"},
            "score": {"type": ["number", "null"], "minimum": 0.5},
            "version": {"const": 2},
        },
        "required": ["passed", "score", "version"],
    }

    fitted = json.loads(structured_answer('{"passed": "yes", "score": 0.1, "version": 1}', schema))

    assert fitted == {"passed": True, "score": 0.5, "version": 2}


def test_numbers_respect_inclusive_and_exclusive_bounds() -> None:
    schema = {
        "type": "object",
        "properties": {
            "low": {"type": "integer", "exclusiveMinimum": 3},
            "high": {"type": "integer", "minimum": 0, "exclusiveMaximum": 10},
            "kept": {"type": "integer", "minimum": 0, "maximum": 10},
        },
        "required": ["low", "high", "kept"],
    }

    fitted = json.loads(structured_answer('{"low": 3, "high": 10, "kept": 7}', schema))

    assert fitted == {"low": 4, "high": 9, "kept": 7}
