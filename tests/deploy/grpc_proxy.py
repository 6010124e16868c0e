"""A TLS-terminating gRPC proxy that checks an API key, in front of a Temporal dev server.

It stands in for Temporal Cloud or a secured cluster: clients must present a certificate
signed by the test CA (mTLS) and `authorization: Bearer <key>` metadata; every call is
forwarded as raw bytes to the plain-text dev server behind it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc

# Connection-level headers gRPC sets itself; forwarding them would confuse the backend.
_NOT_FORWARDED = frozenset({"authorization", "user-agent", "te", "content-type", "grpc-timeout"})

Behavior = Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], Awaitable[bytes]]


@dataclass
class ProxyStats:
    """What the proxy saw: forwarded calls and calls refused for a bad key."""

    forwarded: int = 0
    refused: int = 0
    methods: set[str] = field(default_factory=set)


class _Forwarder(grpc.GenericRpcHandler):
    def __init__(self, backend: grpc.aio.Channel, api_key: str, stats: ProxyStats) -> None:
        self._backend = backend
        self._expected = f"Bearer {api_key}"
        self._stats = stats

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[bytes, bytes]:
        method: str = handler_call_details.method
        metadata: tuple[tuple[str, str | bytes], ...] = handler_call_details.invocation_metadata
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = self._backend.unary_unary(method)

        async def forward(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            if dict(metadata).get("authorization") != self._expected:
                self._stats.refused += 1
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid API key")
            self._stats.forwarded += 1
            self._stats.methods.add(method)
            headers = [(k, v) for k, v in metadata if k not in _NOT_FORWARDED]
            try:
                response: bytes = await call(
                    request, metadata=headers, timeout=context.time_remaining()
                )
            except grpc.aio.AioRpcError as exc:
                await context.abort(exc.code(), exc.details() or "", exc.trailing_metadata())
            return response

        return grpc.unary_unary_rpc_method_handler(forward)


class TemporalTLSProxy:
    """mTLS + API-key front for a plain-text Temporal frontend; `async with` runs it."""

    def __init__(
        self,
        backend_address: str,
        *,
        server_cert_chain: bytes,
        server_key: bytes,
        client_ca: bytes,
        api_key: str,
    ) -> None:
        """Describe the proxy; it listens on a free 127.0.0.1 port once started.

        Args:
            backend_address: `host:port` of the dev server.
            server_cert_chain: PEM chain the proxy presents.
            server_key: PEM private key of that certificate.
            client_ca: PEM CA that must have signed client certificates.
            api_key: The key clients must send as `authorization: Bearer <key>`.
        """
        self.stats = ProxyStats()
        self._backend_address = backend_address
        self._credentials = grpc.ssl_server_credentials(
            [(server_key, server_cert_chain)],
            root_certificates=client_ca,
            require_client_auth=True,
        )
        self._api_key = api_key
        self._server: grpc.aio.Server | None = None
        self._backend: grpc.aio.Channel | None = None
        self.port = 0

    @property
    def address(self) -> str:
        """`127.0.0.1:<port>` of the proxy."""
        return f"127.0.0.1:{self.port}"

    async def __aenter__(self) -> TemporalTLSProxy:
        self._backend = grpc.aio.insecure_channel(self._backend_address)
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers(
            [_Forwarder(self._backend, self._api_key, self.stats)]
        )
        self.port = self._server.add_secure_port("127.0.0.1:0", self._credentials)
        await self._server.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            await self._server.stop(grace=None)
        if self._backend is not None:
            await self._backend.close()
