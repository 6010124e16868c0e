"""Run the simulator inside the current event loop (tests, benchmarks, `agent up`)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from types import TracebackType
from typing import Self

import uvicorn

from agent.llm.simulator.app import Simulator, create_simulator_app
from agent.llm.simulator.config import SimulatorConfig

STARTUP_POLL_SECONDS = 0.01
STARTUP_TIMEOUT_SECONDS = 30.0
SHUTDOWN_TIMEOUT_SECONDS = 5
KEEP_ALIVE_SECONDS = 30
BACKLOG = 2048


def uvicorn_config(
    app: object, host: str, port: int, *, log_level: str = "warning"
) -> uvicorn.Config:
    """The uvicorn configuration the simulator runs with (uvloop + httptools, big backlog).

    Args:
        app: The ASGI app.
        host: Interface.
        port: TCP port.
        log_level: uvicorn's log level.

    Returns:
        The configuration.
    """
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        loop="auto",
        http="auto",
        lifespan="off",
        log_level=log_level,
        access_log=False,
        backlog=BACKLOG,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=SHUTDOWN_TIMEOUT_SECONDS,
    )


class SimulatorServer:
    """The simulator on a real loopback socket, served by uvicorn in this event loop.

    Example:
        >>> async with SimulatorServer(SimulatorConfig(port=0)) as sim:
        ...     client = LLMClient(settings, base_url=sim.base_url)
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig(port=0)
        self.app = create_simulator_app(self.config)
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def simulator(self) -> Simulator:
        """The running simulator (e.g. to reset its fault counters)."""
        simulator: Simulator = self.app.state.simulator
        return simulator

    @property
    def port(self) -> int:
        """The bound TCP port.

        Raises:
            RuntimeError: When the server is not started.
        """
        if self._socket is None:
            raise RuntimeError("simulator not started")
        return int(self._socket.getsockname()[1])

    @property
    def base_url(self) -> str:
        """OpenAI base URL of the running simulator (`http://host:port/v1`)."""
        return f"http://{self.config.host}:{self.port}/v1"

    async def start(self) -> None:
        """Bind the socket and start serving.

        Raises:
            RuntimeError: When uvicorn does not come up.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self.config.port))
        self._socket = sock
        self._server = uvicorn.Server(uvicorn_config(self.app, self.config.host, self.port))
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT_SECONDS
        while not self._server.started:
            if self._task.done() or asyncio.get_running_loop().time() > deadline:
                await self.stop()
                raise RuntimeError("the simulator did not start")
            await asyncio.sleep(STARTUP_POLL_SECONDS)

    async def stop(self) -> None:
        """Stop serving; open streams are dropped after a short grace period."""
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), SHUTDOWN_TIMEOUT_SECONDS * 2)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        if self._socket is not None:
            self._socket.close()
        self._server, self._task, self._socket = None, None, None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
