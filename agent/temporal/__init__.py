"""Temporal for this project: one way to connect, one policy for search attributes.

`connect_temporal` builds every client (with `data_converter`, so Pydantic models
cross the wire as themselves and every payload reads as JSON in the Temporal UI) from the
settings, including Temporal Cloud and mTLS.
`check_search_attributes` is what the API and the worker run at start-up;
`ensure_search_attributes` is for whoever owns the server (`agent up`, tests, init jobs).
"""

from agent.temporal.connection import (
    DEFAULT_TEMPORAL_ADDRESS,
    TemporalConnectOptions,
    connect_temporal,
    temporal_connect_options,
)
from agent.temporal.converter import NullAsJSONPayloadConverter, data_converter
from agent.temporal.errors import (
    SearchAttributesMissingError,
    TemporalConnectError,
    TemporalSettingError,
    TemporalStartupError,
)
from agent.temporal.search_attributes import (
    AWAITING_HUMAN,
    CLI_TYPE_NAMES,
    COMPLEXITY,
    COST_USD,
    CURRENT_MILESTONE,
    SEARCH_ATTRIBUTES,
    TASK_STATUS,
    USER_ID,
    WAITING_ON,
    check_search_attributes,
    ensure_search_attributes,
    search_attribute_cli_args,
)

__all__ = [
    "AWAITING_HUMAN",
    "CLI_TYPE_NAMES",
    "COMPLEXITY",
    "COST_USD",
    "CURRENT_MILESTONE",
    "DEFAULT_TEMPORAL_ADDRESS",
    "SEARCH_ATTRIBUTES",
    "TASK_STATUS",
    "USER_ID",
    "WAITING_ON",
    "NullAsJSONPayloadConverter",
    "SearchAttributesMissingError",
    "TemporalConnectError",
    "TemporalConnectOptions",
    "TemporalSettingError",
    "TemporalStartupError",
    "check_search_attributes",
    "connect_temporal",
    "data_converter",
    "ensure_search_attributes",
    "search_attribute_cli_args",
    "temporal_connect_options",
]
