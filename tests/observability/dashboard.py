"""The provisioned Grafana dashboard's PromQL, and the metric names an exposition offers."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "observability" / "grafana" / "dashboards" / "durable-agent.json"
_METRIC = re.compile(r"\b((?:agent|temporal)_[a-zA-Z0-9_]+)\b")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "summary": ()}


def dashboard_expressions() -> list[str]:
    """Every PromQL expression of the dashboard's panels."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def referenced_metrics(expression: str) -> set[str]:
    """The project's and the Temporal SDK's metric names an expression reads."""
    return set(_METRIC.findall(expression))


def exported_names(text: str) -> set[str]:
    """Every series name a Prometheus server would store from this exposition.

    Sample names, plus the names a family implies even before it has samples (a labelled
    counter no one incremented yet still declares `name_total`).
    """
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
        names.add(family.name)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
    # The Temporal SDK core names counters without `_total`; the parser strips nothing
    # from those, so their sample names above are already the stored names.
    return names


def unexported(exposition_texts: list[str]) -> dict[str, set[str]]:
    """Dashboard expressions naming a metric none of the texts exports, with those names."""
    exported = set().union(*(exported_names(text) for text in exposition_texts))
    missing: dict[str, set[str]] = {}
    for expression in dashboard_expressions():
        names = referenced_metrics(expression)
        if not names:
            missing[expression] = {"<no metric>"}
        elif names - exported:
            missing[expression] = names - exported
    return missing
