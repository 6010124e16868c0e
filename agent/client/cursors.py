"""Remembers the last event sequence number a follower saw, per task, on disk.

`agent follow TASK_ID` re-attaches from there, so a detached follower resumes without
missing or repeating a stored event.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

FOLLOW_DIR_NAME = "follow"
SEQ_SUFFIX = ".seq"


class CursorStore:
    """Files `<data_dir>/follow/<task_id>.seq` holding one integer each.

    Args:
        data_dir: The data directory (the one `agent up` uses, by default).
    """

    def __init__(self, data_dir: Path) -> None:
        self.directory = data_dir / FOLLOW_DIR_NAME

    def path(self, task_id: UUID) -> Path:
        """The file of a task."""
        return self.directory / f"{task_id}{SEQ_SUFFIX}"

    def load(self, task_id: UUID) -> int:
        """The last sequence number saved for a task; 0 when none (or unreadable)."""
        try:
            return max(0, int(self.path(task_id).read_text().strip()))
        except (OSError, ValueError):
            return 0

    def save(self, task_id: UUID, seq: int) -> None:
        """Save a sequence number atomically (write, then rename)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(task_id)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{seq}\n")
        tmp.replace(path)
