"""The relay scenario refuses to report numbers that cannot be right."""

from __future__ import annotations

from bench.scenarios.relay import check_possible


def _run(rate: int, achieved: float, missing: int = 0) -> dict[str, float | int]:
    return {"rate": rate, "achieved_rate": achieved, "missing_deliveries": missing}


def test_a_sound_run_has_no_problem() -> None:
    assert check_possible(_run(200, 199.0), [0.8, 1.5, 9.0]) == []


def test_negative_latency_is_impossible() -> None:
    problems = check_possible(_run(200, 200.0), [1.0, -0.137])
    assert problems == ["200/s: negative latency -0.14 ms"]


def test_a_rate_not_reached_is_reported_not_met() -> None:
    problems = check_possible(_run(1000, 527.0), [3.0])
    assert len(problems) == 1
    assert "achieved only 527.0/s" in problems[0]


def test_missing_deliveries_fail_the_run() -> None:
    problems = check_possible(_run(200, 200.0, missing=3), [2.0])
    assert problems == ["200/s: 3 deliveries missing"]


def test_a_rate_failure_names_the_append_latency_and_the_database_capacity() -> None:
    run_ = {**_run(1000, 400.0), "append_p50_ms": 12.5, "append_p99_ms": 80.0}
    [problem] = check_possible(run_, [3.0], capacity=450.0)
    assert "append p50 12.5 ms, p99 80.0 ms" in problem
    assert "bare row+NOTIFY capacity of this database 450/s" in problem
