"""Measure how much load the LLM simulator holds, so it is never a benchmark's bottleneck.

Starts `agent sim` in its own process (as `agent up` does) and drives it with a minimal
raw-asyncio HTTP/1.1 client (so the load generator, not the simulator, is the cheap side):

1. N concurrent SSE streams at a realistic pace (default 500 streams x 250 tokens at
   50 tokens/s, TTFT 100 ms): completion, client-side TTFT, stream duration against the
   ideal, the simulator's CPU.
2. Non-streaming requests per second (no simulated latency, 50-token answers).
3. Unthrottled streaming requests per second (no simulated latency, 50-token answers).

Run: `.venv/bin/python bench/simulator_capacity.py [--streams 500] [--seconds 10]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

from agent.stack.ports import free_port, wait_for_port

HOST = "127.0.0.1"
PATH = "/v1/chat/completions"
STARTUP_TIMEOUT_SECONDS = 60.0


def request_bytes(body: dict[str, object], *, keep_alive: bool) -> bytes:
    """Serialise one POST request."""
    payload = json.dumps(body).encode()
    connection = "keep-alive" if keep_alive else "close"
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"X-Agent-Role: worker\r\nConnection: {connection}\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def chat_body(text: str, *, stream: bool) -> dict[str, object]:
    """A chat completion body with a unique goal."""
    body: dict[str, object] = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": f"Goal: bench {uuid.uuid4().hex} {text}"}],
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


@dataclass
class StreamResult:
    """What one client saw of one stream."""

    ok: bool
    ttft: float
    duration: float
    events: int


async def one_stream(port: int, text: str) -> StreamResult:
    """Open a connection, stream one completion to its end, time it."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(request_bytes(chat_body(text, stream=True), keep_alive=False))
    await writer.drain()
    first_body: float | None = None
    buffer = bytearray()
    while True:
        data = await reader.read(65536)
        if not data:
            break
        if first_body is None and b"data: " in data:
            first_body = time.perf_counter()
        buffer += data
    writer.close()
    ended = time.perf_counter()
    ok = b"data: [DONE]" in buffer and b'"usage":{' in buffer
    return StreamResult(
        ok=ok,
        ttft=(first_body or ended) - started,
        duration=ended - started,
        events=buffer.count(b"data: "),
    )


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one Content-Length response; return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length")
    )
    await reader.readexactly(length)
    return status


async def json_worker(port: int, deadline: float, text: str) -> int:
    """Send non-streaming requests on one keep-alive connection until the deadline."""
    reader, writer = await asyncio.open_connection(HOST, port)
    done = 0
    while time.perf_counter() < deadline:
        writer.write(request_bytes(chat_body(text, stream=False), keep_alive=True))
        await writer.drain()
        if await read_response(reader) == 200:
            done += 1
    writer.close()
    return done


async def stream_worker(port: int, deadline: float, text: str) -> int:
    """Run unthrottled streams back to back until the deadline."""
    done = 0
    while time.perf_counter() < deadline:
        if (await one_stream(port, text)).ok:
            done += 1
    return done


def pct(values: list[float], q: float) -> float:
    """The q-quantile of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(args: argparse.Namespace, port: int, server: psutil.Process) -> None:
    """Run the three measurements and print them."""
    # 1. Concurrent paced streams.
    text = f"[output_tokens={args.tokens}] [tps={args.tps}] [ttft_ms={args.ttft_ms}]"
    ideal = args.ttft_ms / 1000 + (args.tokens - 1) / args.tps
    server.cpu_percent()
    started = time.perf_counter()
    results = await asyncio.gather(*(one_stream(port, text) for _ in range(args.streams)))
    wall = time.perf_counter() - started
    cpu = server.cpu_percent()
    ok = [r for r in results if r.ok]
    print(
        f"\n1. {args.streams} concurrent streams, {args.tokens} tokens at {args.tps} tok/s, "
        f"TTFT {args.ttft_ms} ms (ideal stream {ideal:.2f} s)"
    )
    print(f"   completed        : {len(ok)}/{len(results)} in {wall:.2f} s wall")
    print(
        f"   TTFT  p50/p99    : {pct([r.ttft for r in ok], 0.5) * 1000:.0f} / "
        f"{pct([r.ttft for r in ok], 0.99) * 1000:.0f} ms"
    )
    print(
        f"   stream p50/p99   : {pct([r.duration for r in ok], 0.5):.2f} / "
        f"{pct([r.duration for r in ok], 0.99):.2f} s "
        f"(+{(pct([r.duration for r in ok], 0.99) / ideal - 1) * 100:.1f}% over ideal at p99)"
    )
    print(f"   SSE events/stream: {statistics.mean(r.events for r in ok):.1f}")
    print(f"   simulator CPU    : {cpu:.0f}% of one core")

    # 2. Non-streaming requests per second.
    fast = "[output_tokens=50] [tps=0] [ttft_ms=0]"
    server.cpu_percent()
    deadline = time.perf_counter() + args.seconds
    counts = await asyncio.gather(
        *(json_worker(port, deadline, fast) for _ in range(args.connections))
    )
    cpu = server.cpu_percent()
    print(f"\n2. non-streaming, {args.connections} keep-alive connections, {args.seconds} s")
    print(f"   requests/s       : {sum(counts) / args.seconds:.0f} (simulator CPU {cpu:.0f}%)")

    # 3. Unthrottled streaming requests per second.
    server.cpu_percent()
    deadline = time.perf_counter() + args.seconds
    counts = await asyncio.gather(
        *(stream_worker(port, deadline, fast) for _ in range(args.connections))
    )
    cpu = server.cpu_percent()
    print(f"\n3. streaming (unthrottled), {args.connections} concurrent clients, {args.seconds} s")
    print(f"   streams/s        : {sum(counts) / args.seconds:.0f} (simulator CPU {cpu:.0f}%)")


def main() -> None:
    """Start the simulator, measure, stop it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--tokens", type=int, default=250)
    parser.add_argument("--tps", type=float, default=50.0)
    parser.add_argument("--ttft-ms", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    port = free_port()
    agent = shutil.which("agent", path=str(Path(sys.executable).parent)) or "agent"
    env = {**os.environ, "AGENT_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [agent, "sim", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        if not wait_for_port(port, timeout=STARTUP_TIMEOUT_SECONDS):
            raise SystemExit("agent sim did not start")
        print(f"simulator pid {process.pid} on port {port}; {os.cpu_count()} CPU cores")
        try:
            import uvloop

            uvloop.run(measure(args, port, psutil.Process(process.pid)))
        except ImportError:
            asyncio.run(measure(args, port, psutil.Process(process.pid)))
    finally:
        process.terminate()
        process.wait(timeout=15)


if __name__ == "__main__":
    main()
