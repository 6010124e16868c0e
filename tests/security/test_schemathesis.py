"""Property-based requests from the app's own OpenAPI schema: no 5xx, schema-conformant.

Every operation gets `EXAMPLES_PER_OPERATION` generated requests with the owner's key and
as many without a key: at least `MIN_REQUESTS` in all. Failures are collected, not
stopped at, so one run reports every non-conformant operation.
"""

from __future__ import annotations

from collections import Counter

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.chaos.harness import Cluster

EXAMPLES_PER_OPERATION = 60
MIN_REQUESTS = 1000
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
]
GENERATION = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
    derandomize=True,
    database=None,
)


def _exercise(
    operation: schemathesis.APIOperation,  # type: ignore[type-arg]
    headers: dict[str, str],
    sent: Counter[str],
    failures: dict[str, str],
) -> None:
    label = f"{operation.label} ({'key' if headers else 'anonymous'})"

    @given(case=operation.as_strategy())
    @GENERATION
    def run(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
        sent[label] += 1
        try:
            case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)
        except (Exception, BaseExceptionGroup) as exc:  # collected: one report per operation
            failures.setdefault(label, f"{type(exc).__name__}: {str(exc)[:1500]}")

    run()


def test_generated_requests_conform_to_the_schema(security_cluster: Cluster) -> None:
    schema = schemathesis.openapi.from_url(f"{security_cluster.api_url}/openapi.json")
    sent: Counter[str] = Counter()
    failures: dict[str, str] = {}
    owner = {"Authorization": f"Bearer {security_cluster.users[0].key}"}

    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        for headers in (owner, {}):
            _exercise(operation, headers, sent, failures)

    for label, failure in failures.items():
        print(f"--- {label}\n{failure}")
    assert sum(sent.values()) >= MIN_REQUESTS, dict(sent)
    assert failures == {}
