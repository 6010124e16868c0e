"""The project's data converter: `None` is written as JSON `null`; old `binary/null` reads."""

from __future__ import annotations

import json

from temporalio.api.common.v1 import Payload
from temporalio.converter import WorkflowSerializationContext

from agent.contract.task import Totals
from agent.temporal import data_converter


def encoding(payload: Payload) -> str:
    return payload.metadata["encoding"].decode()


def test_none_is_written_as_json_null() -> None:
    # Act
    [payload] = data_converter.payload_converter.to_payloads([None])

    # Assert
    assert encoding(payload) == "json/plain"
    assert json.loads(payload.data) is None


def test_none_is_json_null_in_every_serialization_context() -> None:
    # Arrange: the SDK may rebuild the converter per workflow or activity context.
    context = WorkflowSerializationContext(namespace="default", workflow_id="task-1")
    converter = data_converter.with_context(context).payload_converter

    # Act
    [payload] = converter.to_payloads([None])

    # Assert
    assert encoding(payload) == "json/plain"
    assert payload.data == b"null"


def test_json_null_and_old_binary_null_both_read_as_none() -> None:
    # Arrange
    old = Payload(metadata={"encoding": b"binary/null"})
    [new] = data_converter.payload_converter.to_payloads([None])

    # Act
    values = data_converter.payload_converter.from_payloads([old, new], [type(None), type(None)])

    # Assert
    assert values == [None, None]


def test_models_are_still_pydantic_json() -> None:
    # Arrange
    totals = Totals(input_tokens=3, output_tokens=4, cost_usd=0.5)

    # Act
    [payload] = data_converter.payload_converter.to_payloads([totals])
    [back] = data_converter.payload_converter.from_payloads([payload], [Totals])

    # Assert
    assert encoding(payload) == "json/plain"
    assert json.loads(payload.data)["input_tokens"] == 3
    assert back == totals
