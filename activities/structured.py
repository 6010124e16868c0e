"""Structured output for the planner and the verifier: the JSON schemas their answers fit.

Where the routed model's provider honours `response_format` with a JSON schema
(`AGENT_STRUCTURED_OUTPUT_MODELS`), the planner and the verifier ask for it; elsewhere they
ask for JSON mode. Either way the answer is parsed and validated as before, and a plan that
does not validate is asked again with the reason (the fallback for every provider).
"""

from __future__ import annotations

from agent.config import Settings
from agent.llm.types import JsonSchemaFormat

ALL_MODELS = "*"

PLAN_FORMAT = JsonSchemaFormat(
    name="plan",
    description="The goal as milestones; depends_on names keys of earlier milestones.",
    json_schema={
        "type": "object",
        "properties": {
            "milestones": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "key": {"type": "string"},
                        "title": {"type": "string"},
                        "description": {"type": "string"},
                        "depends_on": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["key", "title", "description", "depends_on"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["milestones"],
        "additionalProperties": False,
    },
)
"""What `agent.contract.plan.parse_plan_text` reads (strict mode: every field required)."""

VERDICT_FORMAT = JsonSchemaFormat(
    name="verdict",
    description="Whether the milestone's result meets it, and what to fix when it does not.",
    json_schema={
        "type": "object",
        "properties": {"passed": {"type": "boolean"}, "feedback": {"type": "string"}},
        "required": ["passed", "feedback"],
        "additionalProperties": False,
    },
)
"""What the verifier answers."""


def structured_format(
    settings: Settings, model: str, answer: JsonSchemaFormat
) -> JsonSchemaFormat | None:
    """`answer` when `model`'s provider honours JSON schemas, else None (JSON mode)."""
    models = settings.structured_output_models
    return answer if ALL_MODELS in models or model in models else None
