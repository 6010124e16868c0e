"""`WindowTracker`: the window each LLM call is checked in, and the usage carried into it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.contract.spend import day_window
from agent.contract.task import Totals
from workflows.user_spend import MIN_PAUSE, WindowTracker, wait_until_reset

NOON = datetime(2026, 12, 2, 12, tzinfo=UTC)


def test_a_day_keeps_the_window_its_first_call_opened() -> None:
    tracker = WindowTracker()

    first = tracker.window_for(NOON, Totals(input_tokens=10, cost_usd=0.1))
    later = tracker.window_for(NOON + timedelta(hours=11), Totals(input_tokens=900))

    assert first == later
    assert (first.start, first.resets_at) == day_window(NOON)
    assert (first.carried_tokens, first.carried_cost_usd) == (10, 0.1)


def test_the_next_day_carries_the_usage_of_its_first_call() -> None:
    tracker = WindowTracker()
    tracker.window_for(NOON, Totals())

    next_day = tracker.window_for(NOON + timedelta(hours=13), Totals(output_tokens=700, cost_usd=2))

    assert next_day.start == datetime(2026, 12, 3, tzinfo=UTC)
    assert (next_day.carried_tokens, next_day.carried_cost_usd) == (700, 2.0)


def test_a_pause_waits_until_the_reset_and_never_for_nothing() -> None:
    _, resets = day_window(NOON)

    assert wait_until_reset(NOON, resets) == timedelta(hours=12)
    assert wait_until_reset(resets, resets) == MIN_PAUSE
