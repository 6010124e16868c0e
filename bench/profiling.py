"""Sampling profile of a running process with py-spy, summarised as top costs.

py-spy attaches from outside (`--nonblocking`: the target is never paused), so the
worker runs its ordinary code; the collapsed stacks are reduced to the functions and
packages with the most samples, self and inclusive.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

SAMPLE_RATE_HZ = 200
TOP_N = 20
STOP_TIMEOUT_SECONDS = 30.0
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")
_PACKAGE = re.compile(r"(?:site-packages|lib/python3\.\d+)/(?P<pkg>[A-Za-z0-9_]+)")
_PROJECT_PACKAGES = ("activities", "workflows", "agent", "api", "bench")


def py_spy_path() -> str | None:
    """The py-spy executable of this environment, if installed."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def _package(file: str) -> str:
    match = _PACKAGE.search(file)
    if match:
        return match.group("pkg")
    for package in _PROJECT_PACKAGES:
        if f"/{package}/" in file or file.startswith(f"{package}/"):
            return package
    return Path(file).stem or file


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = match.group("file")
    parts = Path(file).parts
    tail = "/".join(parts[-2:]) if len(parts) >= 2 else file
    return f"{match.group('func')} ({tail})"


def summarise_collapsed(text: str, top: int = TOP_N) -> dict[str, Any]:
    """Top functions (self and inclusive) and packages (self) of collapsed stacks."""
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    pkg_counts: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        leaf = frames[-1]
        self_counts[_short(leaf)] += count
        match = _FRAME.match(leaf)
        pkg_counts[_package(match.group("file")) if match else "?"] += count
        for name in {_short(f) for f in frames}:
            incl_counts[name] += count

    def share(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"name": name, "samples": n, "percent": round(100.0 * n / total, 1)}
            for name, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "top_self": share(self_counts),
        "top_inclusive": share(incl_counts),
        "packages_self": share(pkg_counts),
    }


class PySpy:
    """`py-spy record` on one process for as long as the block runs.

    Args:
        pid: The process to sample.
        out_dir: Where `profile-worker.txt` (collapsed stacks) is written.
    """

    def __init__(self, pid: int, out_dir: Path) -> None:
        self.pid = pid
        self.out_dir = out_dir
        self.path = out_dir / "profile-worker.collapsed.txt"
        self._process: asyncio.subprocess.Process | None = None
        self.error: str | None = None

    async def start(self) -> None:
        """Start sampling (a missing py-spy or a refused attach is recorded, not raised)."""
        exe = py_spy_path()
        if exe is None:
            self.error = "py-spy is not installed"
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._process = await asyncio.create_subprocess_exec(
            exe,
            "record",
            "--pid",
            str(self.pid),
            "--rate",
            str(SAMPLE_RATE_HZ),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(self.path),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )

    async def stop(self) -> None:
        """Stop sampling; py-spy writes its output on SIGINT."""
        if self._process is None:
            return
        if self._process.returncode is None:
            self._process.send_signal(signal.SIGINT)
        try:
            _, stderr = await asyncio.wait_for(self._process.communicate(), STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            self._process.kill()
            self.error = "py-spy did not stop"
            return
        if not self.path.exists():
            self.error = f"py-spy wrote nothing: {stderr.decode(errors='replace')[-500:]}"

    def summary(self) -> dict[str, Any]:
        """Top costs of the recorded profile."""
        if self.error is not None or not self.path.exists():
            return {"error": self.error or "no profile"}
        summary = summarise_collapsed(self.path.read_text())
        summary["file"] = str(self.path)
        return summary
