"""A real terminal for CLI tests: a command in a detached tmux pane of a given size.

Each `TmuxPane` uses its own tmux server (a socket in the test's directory), so tests
never touch a person's tmux sessions; the server is killed when the block ends.
"""

from __future__ import annotations

import asyncio
import shlex
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

TMUX = shutil.which("tmux")
POLL_SECONDS = 0.1
WAIT_SECONDS = 90.0


@dataclass
class TmuxPane:
    """One pane running the command; read it as a person sees it."""

    socket: Path
    width: int
    height: int

    async def _tmux(self, *args: str) -> str:
        assert TMUX is not None
        process = await asyncio.create_subprocess_exec(
            TMUX,
            "-S",
            str(self.socket),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return out.decode()

    async def screen(self) -> list[str]:
        """The visible screen, one string per row (trailing blanks dropped)."""
        return (await self._tmux("capture-pane", "-p", "-t", "view")).rstrip("\n").split("\n")

    async def everything(self) -> list[str]:
        """The scrollback and the screen, oldest line first."""
        text = await self._tmux("capture-pane", "-p", "-S", "-", "-E", "-", "-t", "view")
        return text.rstrip("\n").split("\n")

    async def type(self, *keys: str) -> None:
        """Send keys as typed (`Enter` for the return key)."""
        await self._tmux("send-keys", "-t", "view", *keys)

    async def wait_for(
        self, check: Callable[[list[str]], bool], what: str, seconds: float = WAIT_SECONDS
    ) -> list[str]:
        """Poll the screen until `check` holds; return that screen.

        Raises:
            AssertionError: With the last screen, when it does not happen in time.
        """
        screen: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            screen = await self.screen()
            if check(screen):
                return screen
            await asyncio.sleep(POLL_SECONDS)
        raise AssertionError(f"never saw {what}; screen:\n" + "\n".join(screen))


@asynccontextmanager
async def tmux_pane(
    directory: Path, env: dict[str, str], command: list[str], width: int, height: int
) -> AsyncIterator[TmuxPane]:
    """Run `command` with `env` in a detached `width`x`height` tmux pane.

    The pane stays open after the command ends (its output stays readable).
    """
    script = directory / "run-in-pane.sh"
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
    script.write_text(f'{exports}{shlex.join(command)}\necho "[exit $?]"\nexec sleep 3600\n')
    pane = TmuxPane(directory / "tmux.sock", width, height)
    await pane._tmux(
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        "view",
        "-x",
        str(width),
        "-y",
        str(height),
        f"bash {shlex.quote(str(script))}",
    )
    await pane._tmux("set-option", "-t", "view", "history-limit", "100000")
    try:
        yield pane
    finally:
        await pane._tmux("kill-server")
