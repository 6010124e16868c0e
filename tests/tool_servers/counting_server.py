"""A small MCP server for tests: tools that are slow, fail, or have a counted side effect.

Run as a subprocess, over streamable HTTP (the default) or stdio:

    python -m tests.tool_servers.counting_server --state FILE [--port 0] [--transport stdio]

`--port 0` picks a free loopback port; over HTTP the server prints one line
`listening http://127.0.0.1:<port>/mcp` once it accepts connections, so a test (or a chaos
scenario) knows where to point the tool layer and when. Restart it with the same `--port`
to bring the same URL back.

`side_effect(key)` increments a counter persisted in the `--state` file (also read from
`COUNTING_SERVER_STATE`), written atomically, so a count survives the server's restarts and
tells a test how many times a call really ran; `count(key)` reads it without changing it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
from pathlib import Path

import uvicorn
from mcp.server.mcpserver import MCPServer

STATE_ENV = "COUNTING_SERVER_STATE"
MCP_PATH = "/mcp"


class CounterFile:
    """Counters by key in one JSON file, replaced atomically on every write."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def read(self) -> dict[str, int]:
        if not self._path.exists():
            return {}
        data: dict[str, int] = json.loads(self._path.read_text(encoding="utf-8") or "{}")
        return data

    def increment(self, key: str) -> int:
        # No await between read and write: one server process increments atomically.
        counters = self.read()
        counters[key] = counters.get(key, 0) + 1
        temporary = self._path.with_suffix(self._path.suffix + ".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            json.dump(counters, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self._path)
        return counters[key]


def build_server(counters: CounterFile) -> MCPServer:
    """The server and its four tools."""
    server = MCPServer("counting", log_level="WARNING")

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleep for `seconds`, then answer."""
        await asyncio.sleep(seconds)
        return f"slept {seconds} seconds"

    @server.tool()
    async def fail() -> str:
        """Always fail (an error result, not a protocol error)."""
        raise RuntimeError("fail() always fails")

    @server.tool()
    async def side_effect(key: str, delay_seconds: float = 0.0) -> int:
        """Increment the counter `key` at once, then wait `delay_seconds` before answering.

        The delay comes after the effect, so a caller lost during it has had its effect.
        """
        value = counters.increment(key)
        if delay_seconds > 0:
            await asyncio.sleep(delay_seconds)
        return value

    @server.tool()
    async def count(key: str) -> int:
        """How many times `side_effect(key)` ran."""
        return counters.read().get(key, 0)

    return server


async def serve_http(server: MCPServer, port: int) -> None:
    """Serve streamable HTTP on loopback; announce the URL once the socket listens."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.setblocking(False)
    bound_port = sock.getsockname()[1]
    app = server.streamable_http_app(streamable_http_path=MCP_PATH, host="127.0.0.1")
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    uvicorn_server = uvicorn.Server(config)
    serving = asyncio.create_task(uvicorn_server.serve(sockets=[sock]))
    while not uvicorn_server.started and not serving.done():
        await asyncio.sleep(0.01)
    print(f"listening http://127.0.0.1:{bound_port}{MCP_PATH}", flush=True)
    await serving


def main() -> None:
    """Parse the arguments and serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state", default=os.environ.get(STATE_ENV))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--transport", choices=["http", "stdio"], default="http")
    args = parser.parse_args()
    if not args.state:
        parser.error(f"--state or {STATE_ENV} is required")
    server = build_server(CounterFile(Path(args.state)))
    if args.transport == "stdio":
        server.run("stdio")
    else:
        asyncio.run(serve_http(server, args.port))


if __name__ == "__main__":
    main()
