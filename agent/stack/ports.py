"""Port helpers for the embedded services."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free right now on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on `host:port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> bool:
    """Block until something accepts connections on `host:port`.

    Args:
        port: TCP port.
        host: Host to connect to.
        timeout: Seconds to wait at most.

    Returns:
        True when the port accepted a connection in time.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass(frozen=True)
class PortClaim:
    """A port `agent up` wants, and the command-line flag that changes it."""

    port: int
    flag: str
    purpose: str


class BusyPortError(RuntimeError):
    """A port the stack needs is taken."""

    def __init__(self, claim: PortClaim, also_claimed_by: PortClaim | None = None) -> None:
        if also_claimed_by is not None:
            message = (
                f"port {claim.port} is given for both {also_claimed_by.purpose} and "
                f"{claim.purpose}; choose another with {claim.flag}"
            )
        else:
            message = (
                f"port {claim.port} ({claim.purpose}) is already in use; "
                f"free it or choose another with {claim.flag}"
            )
        super().__init__(message)
        self.claim = claim


def ensure_ports_free(claims: Sequence[PortClaim], host: str = "127.0.0.1") -> None:
    """Check, before anything starts, that every claimed port is free and claimed once.

    Args:
        claims: The ports wanted.
        host: Interface they will be bound on.

    Raises:
        BusyPortError: For the first port that is taken (or claimed twice).
    """
    seen: dict[int, PortClaim] = {}
    for claim in claims:
        if claim.port in seen:
            raise BusyPortError(claim, also_claimed_by=seen[claim.port])
        if not port_is_free(claim.port, host):
            raise BusyPortError(claim)
        seen[claim.port] = claim
