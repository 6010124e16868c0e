"""`window_spend`: a task that runs past midnight counts in the new day only what it spends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from activities.spend_limits import window_spend
from agent.contract.spend import SpendWindow
from agent.repositories.spend import Spend, TaskWindowSpend, UserSpendLimits

MIDNIGHT = datetime(2026, 12, 2, tzinfo=UTC)


def found(created_at: datetime, task_tokens: int, window_tokens: int) -> TaskWindowSpend:
    return TaskWindowSpend(
        window=Spend(window_tokens, window_tokens / 1000),
        task_created_at=created_at,
        task=Spend(task_tokens, task_tokens / 1000),
        limits=UserSpendLimits(None, None),
    )


def test_a_task_created_in_the_window_is_in_the_sum_already() -> None:
    window = SpendWindow(start=MIDNIGHT, carried_tokens=0)

    spent = window_spend(found(MIDNIGHT + timedelta(hours=1), 300, 500), window)

    assert spent == (500, 0.5)


def test_a_task_from_yesterday_counts_what_it_spent_since_its_first_call_today() -> None:
    window = SpendWindow(start=MIDNIGHT, carried_tokens=1000, carried_cost_usd=1.0)

    spent = window_spend(found(MIDNIGHT - timedelta(hours=2), 1300, 500), window)

    assert spent == (500 + 300, 0.5 + 0.3)


def test_a_task_from_yesterday_that_has_not_spent_today_adds_nothing() -> None:
    window = SpendWindow(start=MIDNIGHT, carried_tokens=1000, carried_cost_usd=1.0)

    spent = window_spend(found(MIDNIGHT - timedelta(hours=2), 1000, 0), window)

    assert spent == (0, 0.0)
