"""`stack.json` and the lines `agent up` prints once ready: every address, metrics included."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from agent.stack.info import STACK_FILE_NAME, StackInfo
from agent.stack.readiness import ready_report

API_METRICS = "http://127.0.0.1:8000/metrics"
WORKER_METRICS = "http://127.0.0.1:9464/metrics"


def _info(**fields: object) -> StackInfo:
    values: dict[str, object] = {
        "api_url": "http://127.0.0.1:8000",
        "temporal_address": "127.0.0.1:7233",
        "temporal_namespace": "default",
        "temporal_ui_url": "http://127.0.0.1:8233",
        "task_queue": "agent-tasks",
        "database_url": "postgresql://agent@127.0.0.1:5432/agent",
        "redis_url": None,
        "llm_base_url": "http://127.0.0.1:9000/v1",
        "api_key": "ak_dev",
        "pid": 1234,
        "started_at": datetime(2026, 12, 15, tzinfo=UTC),
        **fields,
    }
    return StackInfo.model_validate(values)


def test_the_ready_report_says_where_the_metrics_are(tmp_path: Path) -> None:
    # Arrange
    info = _info(api_metrics_url=API_METRICS, worker_metrics_urls=[WORKER_METRICS])

    # Act
    lines = ready_report(
        info, data_dir=tmp_path, logs_dir=tmp_path / "logs", simulated_llm=True, ready_after=1.5
    )

    # Assert
    assert f"  API metrics    {API_METRICS}" in lines
    assert f"  Worker metrics {WORKER_METRICS}" in lines
    assert lines.index(f"  API metrics    {API_METRICS}") < lines.index(
        f"  Worker metrics {WORKER_METRICS}"
    )


def test_stack_json_keeps_the_metrics_urls(tmp_path: Path) -> None:
    # Arrange
    info = _info(api_metrics_url=API_METRICS, worker_metrics_urls=[WORKER_METRICS])

    # Act
    info.write(tmp_path)
    read = StackInfo.read(tmp_path)

    # Assert
    written = json.loads((tmp_path / STACK_FILE_NAME).read_text())
    assert written["api_metrics_url"] == API_METRICS
    assert written["worker_metrics_urls"] == [WORKER_METRICS]
    assert read == info


def test_a_stack_json_written_before_the_metrics_urls_still_reads(tmp_path: Path) -> None:
    # Arrange: the file of an older `agent up`.
    old = json.loads(_info().model_dump_json())
    del old["api_metrics_url"], old["worker_metrics_urls"]
    (tmp_path / STACK_FILE_NAME).write_text(json.dumps(old))

    # Act
    read = StackInfo.read(tmp_path)

    # Assert
    assert read is not None
    assert read.api_metrics_url is None
    assert read.worker_metrics_urls == []
    lines = ready_report(
        read, data_dir=tmp_path, logs_dir=tmp_path, simulated_llm=False, ready_after=1.0
    )
    assert not [line for line in lines if "metrics" in line]
