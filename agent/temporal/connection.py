"""Connecting to Temporal: a dev server, a self-hosted cluster or Temporal Cloud.

The settings say where (`temporal_address`, `temporal_namespace`) and how: an API key
(Temporal Cloud, or a cluster behind an authorising proxy), mTLS client certificate and
key, the server's CA and name. Each also reads the variable Temporal's own CLI and SDKs use
(`TEMPORAL_ADDRESS`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS_CLIENT_CERT_PATH`, ...).

Certificate files are checked before connecting (readable, PEM, key matches certificate),
so a wrong file is reported by setting name instead of as a failed handshake. An
unreachable server is retried with backoff when the caller asks for it (the API and the
worker do, for `temporal_connect_timeout_seconds`: Temporal may still be starting); a
refused key or an untrusted certificate is never retried, since retrying cannot fix it.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode, TLSConfig
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from agent.config import Settings
from agent.temporal.converter import data_converter
from agent.temporal.errors import TemporalConnectError, TemporalSettingError

logger = structlog.get_logger(__name__)

DEFAULT_TEMPORAL_ADDRESS = "localhost:7233"
RETRY_FIRST_WAIT_SECONDS = 0.2
RETRY_MAX_WAIT_SECONDS = 5.0

CLIENT_CERT = "AGENT_TEMPORAL_TLS_CLIENT_CERT_PATH"
CLIENT_KEY = "AGENT_TEMPORAL_TLS_CLIENT_KEY_PATH"
SERVER_CA = "AGENT_TEMPORAL_TLS_SERVER_CA_CERT_PATH"
SERVER_NAME = "AGENT_TEMPORAL_TLS_SERVER_NAME"
API_KEY = "AGENT_TEMPORAL_API_KEY"
TLS = "AGENT_TEMPORAL_TLS"

# Markers in the core SDK's connect errors (it raises RuntimeError with the Rust error text).
_AUTH_STATUSES = (RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED)
_AUTH_MARKERS = ("code: Unauthenticated", "code: PermissionDenied")
_NAME_MARKER = "NotValidForName"
_CERT_MARKER = "InvalidCertificate"
_CLOSED_MARKERS = (
    "connection closed",
    "peer closed connection",
    "broken pipe",
    "UnexpectedEof",
)
"""Each text means the server dropped the TLS connection it had accepted; which one the
core reports depends on whether the handshake, a write or the first call noticed it."""


def _setting(name: str) -> str:
    """The variable and its Temporal-SDK twin, e.g. `AGENT_TEMPORAL_API_KEY (TEMPORAL_API_KEY)`."""
    return f"{name} ({name.removeprefix('AGENT_')})"


@dataclass(frozen=True)
class TemporalConnectOptions:
    """Where and how to connect, resolved from the settings and their files."""

    address: str
    namespace: str
    api_key: str | None
    tls: bool | TLSConfig

    @property
    def uses_client_certificate(self) -> bool:
        """Whether mTLS is configured."""
        return isinstance(self.tls, TLSConfig) and self.tls.client_cert is not None


def _read_pem(path: Path | None, setting: str, kind: str) -> bytes | None:
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TemporalSettingError(
            f"{_setting(setting)}: cannot read {path}: {exc.strerror}"
        ) from exc
    if b"-----BEGIN " not in data or kind.encode() not in data:
        raise TemporalSettingError(f"{_setting(setting)}: {path} is not a PEM {kind}")
    return data


def _check_key_pair(cert: Path, key: Path) -> None:
    try:
        ssl.create_default_context().load_cert_chain(certfile=cert, keyfile=key)
    except ssl.SSLError as exc:
        raise TemporalSettingError(
            f"{_setting(CLIENT_KEY)}: {key} is not the private key of the certificate in "
            f"{_setting(CLIENT_CERT)} ({exc.reason or exc})"
        ) from exc


def _check_ca(path: Path) -> None:
    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError as exc:
        raise TemporalSettingError(
            f"{_setting(SERVER_CA)}: {path} holds no usable CA certificate ({exc.reason or exc})"
        ) from exc


def temporal_connect_options(settings: Settings) -> TemporalConnectOptions:
    """Resolve the connection settings and check their certificate files.

    TLS is on when `temporal_tls` says so, or, when it is unset, as soon as an API key, a
    certificate, a CA or a server name is configured (Temporal Cloud needs TLS for both).

    Args:
        settings: The process's settings.

    Returns:
        The options for `Client.connect`.

    Raises:
        TemporalSettingError: A file is missing, not PEM, or the key does not match the
            certificate; or the combination of settings cannot work.
    """
    cert_path = settings.temporal_tls_client_cert_path
    key_path = settings.temporal_tls_client_key_path
    ca_path = settings.temporal_tls_server_ca_cert_path
    if (cert_path is None) != (key_path is None):
        missing, given = (
            (CLIENT_KEY, CLIENT_CERT) if key_path is None else (CLIENT_CERT, CLIENT_KEY)
        )
        raise TemporalSettingError(f"{_setting(missing)}: is required with {given}")
    cert = _read_pem(cert_path, CLIENT_CERT, "CERTIFICATE")
    key = _read_pem(key_path, CLIENT_KEY, "PRIVATE KEY")
    ca = _read_pem(ca_path, SERVER_CA, "CERTIFICATE")
    if cert_path is not None and key_path is not None:
        _check_key_pair(cert_path, key_path)
    if ca_path is not None:
        _check_ca(ca_path)
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    tls_details = cert is not None or ca is not None or settings.temporal_tls_server_name
    if settings.temporal_tls is False and tls_details:
        raise TemporalSettingError(
            f"{_setting(TLS)}: is false, but TLS certificates or a server name are configured"
        )
    tls: bool | TLSConfig = (
        settings.temporal_tls if settings.temporal_tls is not None else bool(api_key or tls_details)
    )
    if tls and tls_details:
        tls = TLSConfig(
            server_root_ca_cert=ca,
            domain=settings.temporal_tls_server_name,
            client_cert=cert,
            client_private_key=key,
        )
    return TemporalConnectOptions(
        address=settings.temporal_address or DEFAULT_TEMPORAL_ADDRESS,
        namespace=settings.temporal_namespace,
        api_key=api_key,
        tls=tls,
    )


def _refusal(exc: BaseException, options: TemporalConnectOptions) -> str | None:
    """What to fix when the server refused this client; None when retrying may help."""
    text = str(exc)
    refused = isinstance(exc, RPCError) and exc.status in _AUTH_STATUSES
    if refused or any(marker in text for marker in _AUTH_MARKERS):
        names = [_setting(API_KEY)] + (
            [_setting(CLIENT_CERT)] if options.uses_client_certificate else []
        )
        return f"the server refused the credentials: check {' and '.join(names)}"
    if _NAME_MARKER in text:
        return (
            f"the server's certificate does not name the host: set {_setting(SERVER_NAME)} "
            "to a name in it"
        )
    if _CERT_MARKER in text:
        return f"the server's certificate is not trusted: check {_setting(SERVER_CA)}"
    if options.tls and any(marker in text for marker in _CLOSED_MARKERS):
        # Reached and then dropped during the handshake: the usual answer of an mTLS
        # server to a certificate it does not trust, or of a plain-text server to TLS.
        return (
            f"the server closed the TLS connection: check {_setting(CLIENT_CERT)} and "
            f"{_setting(CLIENT_KEY)} (signed by a CA the server trusts?) and {_setting(TLS)}"
        )
    return None


def _log_retry(state: RetryCallState) -> None:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    logger.warning("temporal_connect_retry", attempt=state.attempt_number, error=str(error))


async def connect_temporal(
    settings: Settings, *, retry_seconds: float = 0.0, **kwargs: Any
) -> Client:
    """Connect to the configured Temporal with the Pydantic data converter.

    Args:
        settings: Address, namespace and credentials.
        retry_seconds: How long to keep retrying an unreachable server. Long-running
            services pass `settings.temporal_connect_timeout_seconds` (Temporal may still be
            starting); one-shot commands keep the default and fail at once.
        **kwargs: Extra arguments for `Client.connect`.

    Returns:
        A connected client.

    Raises:
        TemporalSettingError: A credential setting is unusable (checked before connecting).
        TemporalConnectError: The server refused the credentials, or stayed unreachable for
            `retry_seconds`; the message names what to check.
    """
    options = temporal_connect_options(settings)
    retrying = AsyncRetrying(
        retry=retry_if_exception(
            lambda exc: isinstance(exc, RuntimeError | RPCError) and _refusal(exc, options) is None
        ),
        stop=stop_after_delay(retry_seconds),
        wait=wait_exponential(multiplier=RETRY_FIRST_WAIT_SECONDS, max=RETRY_MAX_WAIT_SECONDS),
        before_sleep=_log_retry,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                client = await Client.connect(
                    options.address,
                    namespace=options.namespace,
                    api_key=options.api_key,
                    tls=options.tls,
                    data_converter=data_converter,
                    **kwargs,
                )
    except (RuntimeError, RPCError) as exc:
        waited = f" for {retry_seconds:g} s" if retry_seconds else ""
        hint = _refusal(exc, options) or (
            f"unreachable{waited}: check {_setting('AGENT_TEMPORAL_ADDRESS')}"
        )
        raise TemporalConnectError(
            f"cannot connect to Temporal at {options.address}: {hint} ({exc})"
        ) from exc
    logger.info(
        "temporal_connected",
        address=options.address,
        namespace=options.namespace,
        tls=bool(options.tls),
        api_key=options.api_key is not None,
    )
    return client
