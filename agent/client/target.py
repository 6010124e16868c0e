"""Where the API is: `AGENT_API_URL`/`AGENT_API_KEY`, else a running `agent up`'s `stack.json`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr, ValidationError

from agent.config import Settings
from agent.stack.info import STACK_FILE_NAME, StackInfo


class ApiTargetError(Exception):
    """No API address and key could be found (the message says how to provide them)."""


@dataclass(frozen=True)
class ApiTarget:
    """An API base URL and the key to use with it.

    Attributes:
        url: Base URL, e.g. `http://127.0.0.1:8000` (no trailing slash).
        api_key: The API key (sent as `Authorization: Bearer`).
        temporal_ui_url: Temporal Web UI base URL when known (links to workflows).
        temporal_namespace: Namespace of the task workflows.
        source: Where the values came from (for messages).
    """

    url: str
    api_key: SecretStr
    temporal_ui_url: str | None = None
    temporal_namespace: str = "default"
    source: str = "environment"

    def workflow_url(self, workflow_id: str) -> str | None:
        """Link to a workflow in the Temporal UI, when the UI's address is known."""
        if not self.temporal_ui_url:
            return None
        base = self.temporal_ui_url.rstrip("/")
        return f"{base}/namespaces/{self.temporal_namespace}/workflows/{workflow_id}"


def resolve_target(settings: Settings, data_dir: Path | None = None) -> ApiTarget:
    """Find the API to talk to.

    `AGENT_API_URL` (with `AGENT_API_KEY`) wins; otherwise the `stack.json` that a
    running `agent up` wrote into the data directory.

    Args:
        settings: The process's settings.
        data_dir: Data directory of the `agent up` to use (default: `settings.data_dir`).

    Returns:
        The target.

    Raises:
        ApiTargetError: When neither source gives a URL and a key.
    """
    if settings.api_url:
        if settings.api_key is None:
            raise ApiTargetError("AGENT_API_URL is set but AGENT_API_KEY is not")
        return ApiTarget(
            url=settings.api_url.rstrip("/"),
            api_key=settings.api_key,
            temporal_ui_url=settings.temporal_ui_url,
            temporal_namespace=settings.temporal_namespace,
        )
    directory = data_dir if data_dir is not None else settings.data_dir
    try:
        info = StackInfo.read(directory)
    except (ValidationError, OSError) as exc:
        raise ApiTargetError(f"cannot read {directory / STACK_FILE_NAME}: {exc}") from exc
    if info is None:
        raise ApiTargetError(
            f"no API configured: set AGENT_API_URL and AGENT_API_KEY, or start `agent up` "
            f"(no {STACK_FILE_NAME} in {directory}; pass --data-dir or AGENT_DATA_DIR if "
            "`agent up` runs with another data directory)"
        )
    key = settings.api_key or SecretStr(info.api_key)
    return ApiTarget(
        url=info.api_url.rstrip("/"),
        api_key=key,
        temporal_ui_url=info.temporal_ui_url,
        temporal_namespace=info.temporal_namespace,
        source=str(directory / STACK_FILE_NAME),
    )
