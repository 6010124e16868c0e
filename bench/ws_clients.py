"""WebSocket clients in a process of their own: `python -m bench.ws_clients SPEC OUT`.

Kept out of the benchmark's main process so that receiving (and parsing) thousands of
messages per second never delays the producer whose commit times are compared with the
receipt times. Both sides read the same host clock (`time.time_ns()`).

SPEC (JSON): `{"api_url", "api_key", "task_ids": [...], "clients_per_task": N,
"ready_file", "stop_file", "until_terminal": bool}`. Each socket connects to
`/v1/tasks/{id}/events/ws?after_seq=0`; once every socket got `caught_up`, `ready_file` is
created. Sockets stop at the task's terminal event (`until_terminal`) or when `stop_file`
appears. OUT (JSON): per socket, every message as a compact row:
`["e", seq, type, agent, recv_ns]` for stored events, `["c", chunk, agent, activity_id,
recv_ns]` for chunks, `["u", cursor, recv_ns]` when the backfill ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

TERMINAL_TYPES = frozenset({"TASK_COMPLETED", "TASK_FAILED", "TASK_CANCELLED"})
STOP_POLL_SECONDS = 0.05
CONNECT_TIMEOUT_SECONDS = 60.0
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


async def _socket(
    spec: dict[str, Any], task_id: str, caught_up: asyncio.Event, rows: list[list[Any]]
) -> None:
    ws_url = spec["api_url"].replace("http://", "ws://", 1)
    url = f"{ws_url}/v1/tasks/{task_id}/events/ws?after_seq=0"
    headers = {"Authorization": f"Bearer {spec['api_key']}"}
    async with connect(
        url,
        additional_headers=headers,
        open_timeout=CONNECT_TIMEOUT_SECONDS,
        max_size=MAX_MESSAGE_BYTES,
        max_queue=None,
        ping_interval=None,
    ) as ws:
        async for raw in ws:
            recv_ns = time.time_ns()
            message = json.loads(raw)
            kind = message["kind"]
            if kind == "event":
                event = message["event"]
                rows.append(["e", event["sequence_number"], event["type"], event["agent"], recv_ns])
                if spec.get("until_terminal") and event["type"] in TERMINAL_TYPES:
                    return
            elif kind == "ephemeral":
                event = message["event"]
                details = event.get("details") or {}
                rows.append(
                    ["c", details.get("chunk"), event["agent"], details.get("activity_id"), recv_ns]
                )
            elif kind == "caught_up":
                rows.append(["u", message.get("cursor"), recv_ns])
                caught_up.set()


async def run(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Connect every socket, signal readiness, collect until told to stop."""
    sockets: list[dict[str, Any]] = []
    tasks: list[asyncio.Task[None]] = []
    ready_events: list[asyncio.Event] = []
    for task_id in spec["task_ids"]:
        for client in range(spec.get("clients_per_task", 1)):
            rows: list[list[Any]] = []
            caught_up = asyncio.Event()
            sockets.append({"task_id": task_id, "client": client, "rows": rows})
            ready_events.append(caught_up)
            tasks.append(asyncio.create_task(_socket(spec, task_id, caught_up, rows)))
    waiting: asyncio.Future[Any] = asyncio.gather(*(e.wait() for e in ready_events))
    done_or_failed: asyncio.Future[Any] = asyncio.gather(*tasks)
    finished, _ = await asyncio.wait(
        {waiting, done_or_failed}, timeout=CONNECT_TIMEOUT_SECONDS, return_when="FIRST_COMPLETED"
    )
    if done_or_failed in finished and (error := done_or_failed.exception()) is not None:
        raise error
    _touch(Path(spec["ready_file"]))
    stop_file = Path(spec["stop_file"])
    while not _exists(stop_file) and not all(t.done() for t in tasks):
        await asyncio.sleep(STOP_POLL_SECONDS)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    return sockets


def _exists(path: Path) -> bool:
    # A stat of a local scratch file: too quick to be worth a thread.
    return path.exists()


def _touch(path: Path) -> None:
    path.touch()


def main() -> None:
    """Read SPEC, run the clients, write OUT."""
    spec_path, out_path = Path(sys.argv[1]), Path(sys.argv[2])
    spec = json.loads(spec_path.read_text())
    try:
        import uvloop

        sockets = uvloop.run(run(spec))
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        sockets = asyncio.run(run(spec))
    out_path.write_text(json.dumps({"sockets": sockets}))


if __name__ == "__main__":
    main()
