"""The project's Temporal data converter: Pydantic models as JSON, and `None` as JSON too.

`temporalio.contrib.pydantic.pydantic_data_converter` encodes `None` with the SDK's first
encoding converter, `binary/null`: an empty payload. The Temporal UI parses every payload's
data as JSON first, so each `None` in a history (an activity or local activity that
returns nothing, the result of an update that returns nothing) made it log
`Could not parse payload: Unexpected end of JSON input`. `data_converter` is that converter
with one difference: `None` is encoded as the JSON `null` (`json/plain`), which the UI shows
as `null`. Payloads already written as `binary/null` (the histories of tasks started before
this change) still decode to `None`, so running workflows replay unchanged.

`bytes` keep the SDK's `binary/plain` encoding (JSON has no bytes); no task payload carries
bytes (tests/agent/test_temporal_payloads.py checks a task's history for both encodings).
"""

from __future__ import annotations

from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import BinaryNullPayloadConverter, DataConverter

__all__ = ["NullAsJSONPayloadConverter", "data_converter"]


class _DecodeOnlyBinaryNullPayloadConverter(BinaryNullPayloadConverter):
    """Reads `binary/null` payloads (old histories) but never writes one.

    Returning `None` from `to_payload` tells the composite converter to try the next
    encoding, so `None` reaches the JSON converter and becomes `null`.
    """

    def to_payload(self, value: Any) -> Payload | None:
        """Decline every value: `None` is left to the JSON converter."""
        return None


class NullAsJSONPayloadConverter(PydanticPayloadConverter):
    """`PydanticPayloadConverter` whose `None` is the JSON `null`, not an empty `binary/null`.

    Nullary, as the SDK requires of a `payload_converter_class` (it rebuilds the converter
    per serialization context with `type(self)()`).
    """

    def __init__(self) -> None:
        """Build the Pydantic composite converter, then swap its `binary/null` converter."""
        super().__init__()
        self._set_converters(
            *(
                _DecodeOnlyBinaryNullPayloadConverter()
                if isinstance(converter, BinaryNullPayloadConverter)
                else converter
                for converter in self.converters.values()
            )
        )


data_converter = DataConverter(payload_converter_class=NullAsJSONPayloadConverter)
"""The data converter of every Temporal client, worker and replayer of the project."""
