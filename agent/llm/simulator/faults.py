"""The simulator's one piece of state: how many times each conversation was faulted."""

from __future__ import annotations

from collections import OrderedDict

MAX_TRACKED_CONVERSATIONS = 100_000
"""Oldest counters are forgotten beyond this, bounding memory on long benchmark runs."""


class FaultCounter:
    """Counts faults per conversation so `[fault_count=N]` fails only the first N requests.

    The key is `responder.conversation_key`: a retry of the same request, or a re-ask that
    appends the model's answer and a correction, counts against the same budget, so the
    conversation eventually succeeds. Counters live in the server process and are lost on
    restart.
    """

    def __init__(self, capacity: int = MAX_TRACKED_CONVERSATIONS) -> None:
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._capacity = capacity

    def should_fault(self, key: str, limit: int | None) -> bool:
        """Decide whether this request gets the fault, and count it if so.

        Args:
            key: The conversation key.
            limit: `fault_count`, or None to fault every matching request.

        Returns:
            True when the request must fail.
        """
        if limit is None:
            return True
        served = self._counts.get(key, 0)
        if served >= limit:
            return False
        self._counts[key] = served + 1
        self._counts.move_to_end(key)
        while len(self._counts) > self._capacity:
            self._counts.popitem(last=False)
        return True

    def reset(self) -> None:
        """Forget every counter."""
        self._counts.clear()
