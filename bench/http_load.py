"""HTTP load in a process of its own: `python -m bench.http_load SPEC OUT`.

A minimal keep-alive HTTP/1.1 client on uvloop (the same approach as
`bench/simulator_capacity.py`), so the load generator is the cheap side and the server's
capacity, not the client's, is what is measured. SPEC (JSON): `{"host", "port", "method",
"path", "headers": {...}, "body": str | null, "connections", "seconds", "warmup_seconds"}`.
OUT (JSON): requests completed in the measured window, statuses, latencies in ms.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

HEADER_END = b"\r\n\r\n"


def _request_bytes(spec: dict[str, Any]) -> bytes:
    body = (spec.get("body") or "").encode()
    lines = [f"{spec['method']} {spec['path']} HTTP/1.1", f"Host: {spec['host']}:{spec['port']}"]
    lines += [f"{name}: {value}" for name, value in spec.get("headers", {}).items()]
    lines.append("Connection: keep-alive")
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(HEADER_END)
    status = int(head.split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value.strip())
        elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _connection(
    spec: dict[str, Any], payload: bytes, start: float, end: float, out: dict[str, Any]
) -> None:
    reader, writer = await asyncio.open_connection(spec["host"], spec["port"])
    try:
        while True:
            sent = time.perf_counter()
            if sent >= end:
                return
            writer.write(payload)
            status = await _read_response(reader)
            done = time.perf_counter()
            if sent >= start:
                out["statuses"][str(status)] = out["statuses"].get(str(status), 0) + 1
                out["latencies_ms"].append((done - sent) * 1000.0)
    finally:
        writer.close()


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Drive the server with `connections` keep-alive connections for `seconds`."""
    payload = _request_bytes(spec)
    now = time.perf_counter()
    start = now + float(spec.get("warmup_seconds", 0.5))
    end = start + float(spec["seconds"])
    out: dict[str, Any] = {"statuses": {}, "latencies_ms": [], "errors": 0}
    results = await asyncio.gather(
        *(_connection(spec, payload, start, end, out) for _ in range(spec["connections"])),
        return_exceptions=True,
    )
    out["errors"] = sum(1 for r in results if isinstance(r, BaseException))
    out["error_samples"] = [repr(r) for r in results if isinstance(r, BaseException)][:3]
    out["seconds"] = float(spec["seconds"])
    out["requests"] = len(out["latencies_ms"])
    return out


def main() -> None:
    """Read SPEC, run, write OUT."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    try:
        import uvloop

        result = uvloop.run(run(spec))
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        result = asyncio.run(run(spec))
    Path(sys.argv[2]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
