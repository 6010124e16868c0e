"""The dashboard reads only what the services export (no Grafana runs here).

The full check, against the real pages of an API and a worker after a task, runs in
`test_metrics.py`; this one needs no services: the project's own metrics from their
definitions, the Temporal SDK's names left to the full check.
"""

from __future__ import annotations

from agent.observability.exposition import ApiSnapshot, api_exposition
from tests.observability.dashboard import dashboard_expressions, referenced_metrics, unexported


def test_every_panel_has_a_query_and_project_metrics_exist() -> None:
    expressions = dashboard_expressions()
    assert len(expressions) >= 15
    project_only = api_exposition(ApiSnapshot(tasks_by_status={"running": 0})).decode()
    missing = {
        expression: names
        for expression, names in unexported([project_only]).items()
        if not all(name.startswith("temporal_") for name in referenced_metrics(expression))
    }
    assert missing == {}


def test_a_misspelt_metric_is_caught() -> None:
    assert unexported([""])  # nothing exported: every expression is reported
    assert referenced_metrics("sum(rate(agent_llm_callz_total[5m]))") == {"agent_llm_callz_total"}
