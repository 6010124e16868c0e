import socket
from collections.abc import Iterator

import pytest

from agent.stack.ports import BusyPortError, PortClaim, ensure_ports_free, free_port


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_busy_port_error_names_port_and_flag(listening_port: int) -> None:
    claims = [
        PortClaim(free_port(), "--api-port", "API"),
        PortClaim(listening_port, "--temporal-port", "Temporal"),
    ]

    with pytest.raises(BusyPortError) as busy:
        ensure_ports_free(claims)

    assert str(busy.value) == (
        f"port {listening_port} (Temporal) is already in use; "
        "free it or choose another with --temporal-port"
    )


def test_same_port_claimed_twice_is_refused() -> None:
    port = free_port()
    claims = [PortClaim(port, "--api-port", "API"), PortClaim(port, "--ui-port", "Temporal UI")]

    with pytest.raises(BusyPortError) as busy:
        ensure_ports_free(claims)

    assert str(busy.value) == (
        f"port {port} is given for both API and Temporal UI; choose another with --ui-port"
    )


def test_free_ports_pass() -> None:
    claims = [PortClaim(free_port(), "--api-port", "API")]

    ensure_ports_free(claims)
