"""`stack.json`: where a running `agent up` can be reached."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

STACK_FILE_NAME = "stack.json"


class StackInfo(BaseModel):
    """Addresses of every service of a running stack, written once all are ready."""

    api_url: str
    temporal_address: str
    temporal_namespace: str
    temporal_ui_url: str | None
    task_queue: str
    database_url: str
    redis_url: str | None
    llm_base_url: str | None
    api_metrics_url: str | None = Field(
        default=None, description="The API's Prometheus page (`GET /metrics`)."
    )
    worker_metrics_urls: list[str] = Field(
        default_factory=list,
        description="Each worker's Prometheus page (`AGENT_WORKER_METRICS_PORT`).",
    )
    api_key: str
    pid: int
    started_at: datetime
    processes: dict[str, int] = Field(
        default_factory=dict,
        description="pid of each child `agent up` runs, by name (worker, api, temporal, ...).",
    )

    def write(self, data_dir: Path) -> Path:
        """Write the file atomically into `data_dir` (readable by the owner only)."""
        path = data_dir / STACK_FILE_NAME
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json(indent=2))
        tmp.chmod(0o600)
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, data_dir: Path) -> StackInfo | None:
        """Read the stack file of `data_dir`, or None when there is none."""
        path = data_dir / STACK_FILE_NAME
        if not path.exists():
            return None
        return cls.model_validate_json(path.read_text())
