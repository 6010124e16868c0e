"""A fast, dependency-free token estimate shared by the client and the simulator.

The estimate is the common rule of thumb for English text with OpenAI tokenizers: about
four characters per token, rounded up. It is used where the provider reports no usage (a
stream cancelled early, a server that ignores `stream_options.include_usage`) and by the
simulator to report `usage`, so simulated usage and estimated usage agree exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

CHARS_PER_TOKEN = 4
"""Average characters per token assumed by the estimate."""


def count_tokens(text: str) -> int:
    """Estimate the number of tokens in `text` (about four characters per token).

    Args:
        text: Any text.

    Returns:
        `ceil(len(text) / 4)`; 0 for the empty string.
    """
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def count_message_tokens(contents: Iterable[str]) -> int:
    """Estimate the input tokens of a chat request: the sum over its message contents.

    Args:
        contents: The `content` of every message of the request.

    Returns:
        The summed estimate of every message.
    """
    return sum(count_tokens(content) for content in contents)


def tool_definition_text(definition: Mapping[str, Any]) -> str:
    """The text of one offered tool that counts as input: its definition as compact JSON.

    Keys are sorted so the client (which builds the definition) and the simulator (which
    parses it back) count the same text.

    Args:
        definition: One entry of a request's `tools` (`{"type": "function", ...}`).

    Returns:
        `json.dumps(definition, sort_keys=True, separators=(",", ":"))`.
    """
    return json.dumps(definition, sort_keys=True, separators=(",", ":"))
