"""Durations on the command line: `30m`, `12h`, `7d`, `2w` (`--since`, `--finished-before`)."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class DurationError(ValueError):
    """A `--since` value that is not a number followed by s, m, h, d or w."""


def parse_duration(text: str) -> timedelta:
    """Parse `30m`, `12h`, `7d` or `2w` into a timedelta.

    Raises:
        DurationError: When the text is not such a duration.
    """
    match = _DURATION.match(text)
    if match is None:
        raise DurationError(f"{text!r} is not a duration such as 30m, 12h, 7d or 2w")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
