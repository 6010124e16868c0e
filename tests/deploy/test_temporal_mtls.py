"""Temporal behind TLS, mTLS and an API key, as on Temporal Cloud or a secured cluster.

A gRPC proxy (`grpc_proxy`) terminates TLS with `trustme` certificates in front of the
session's dev server, requires a client certificate from the test CA and checks the API
key in the call metadata. The real worker and the real API start through it; wrong
credentials stop them with an error naming the setting to fix.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
from pydantic import SecretStr
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from agent.config import Settings
from agent.stack.ports import free_port
from agent.temporal import TemporalConnectError, connect_temporal
from agent.worker import run_worker
from api.main import create_app
from tests.deploy.grpc_proxy import TemporalTLSProxy

API_KEY = "test-cloud-key"
SERVER_NAME = "temporal.test"
PEPPER = SecretStr("mtls-test-pepper")
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Credentials:
    """PEM files a client of the proxy uses."""

    client_cert: Path
    client_key: Path
    server_ca: Path
    foreign_cert: Path
    foreign_key: Path


def _chain(cert: trustme.LeafCert) -> bytes:
    return b"".join(blob.bytes() for blob in cert.cert_chain_pems)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def credentials(tmp_path: Path, ca: trustme.CA) -> Credentials:
    client = ca.issue_cert("worker@durable-agent")
    foreign = trustme.CA().issue_cert("worker@durable-agent")
    files = Credentials(
        *(tmp_path / name for name in ("c.pem", "c.key", "ca.pem", "f.pem", "f.key"))
    )
    files.client_cert.write_bytes(_chain(client))
    files.client_key.write_bytes(client.private_key_pem.bytes())
    files.server_ca.write_bytes(ca.cert_pem.bytes())
    files.foreign_cert.write_bytes(_chain(foreign))
    files.foreign_key.write_bytes(foreign.private_key_pem.bytes())
    return files


@pytest.fixture
async def proxy(
    temporal_dev_env: WorkflowEnvironment, ca: trustme.CA
) -> AsyncIterator[TemporalTLSProxy]:
    server = ca.issue_cert(SERVER_NAME)
    async with TemporalTLSProxy(
        temporal_dev_env.client.service_client.config.target_host,
        server_cert_chain=_chain(server),
        server_key=server.private_key_pem.bytes(),
        client_ca=ca.cert_pem.bytes(),
        api_key=API_KEY,
    ) as running:
        yield running


@pytest.fixture
def secured_settings(
    proxy: TemporalTLSProxy, credentials: Credentials, database_url: str
) -> Settings:
    return Settings(
        _env_file=None,
        database_url=SecretStr(database_url),
        temporal_address=proxy.address,
        temporal_api_key=SecretStr(API_KEY),
        temporal_tls_client_cert_path=credentials.client_cert,
        temporal_tls_client_key_path=credentials.client_key,
        temporal_tls_server_ca_cert_path=credentials.server_ca,
        temporal_tls_server_name=SERVER_NAME,
        task_queue=f"mtls-{uuid.uuid4().hex[:12]}",
        api_key_pepper=PEPPER,
        llm_base_url="http://127.0.0.1:9/v1",
        llm_api_key=SecretStr("unused"),
        worker_metrics_address=f"127.0.0.1:{free_port()}",
    )


async def _worker_polls(client: Client, task_queue: str) -> bool:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return bool(response.pollers)


async def test_worker_and_api_start_through_mtls_and_api_key(
    secured_settings: Settings, proxy: TemporalTLSProxy, temporal_dev_env: WorkflowEnvironment
) -> None:
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(secured_settings, stop=stop))
    try:
        while not await _worker_polls(temporal_dev_env.client, secured_settings.task_queue):
            assert not worker.done(), worker.exception()
            await asyncio.sleep(POLL_SECONDS)
        async with httpx.AsyncClient() as http:
            metrics = await http.get(f"http://{secured_settings.worker_metrics_address}/metrics")
        assert metrics.status_code == httpx.codes.OK
        assert "temporal_" in metrics.text
    finally:
        stop.set()
        await worker

    app = create_app(secured_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http,
    ):
        response = await http.get("/readyz")
    assert response.status_code == httpx.codes.OK, response.text
    assert response.json()["components"]["temporal"]["ok"] is True

    service = "/temporal.api.workflowservice.v1.WorkflowService/"
    assert {
        f"{service}PollWorkflowTaskQueue",
        "/temporal.api.operatorservice.v1.OperatorService/ListSearchAttributes",
    } <= proxy.stats.methods
    assert proxy.stats.refused == 0


async def test_wrong_api_key_is_named(secured_settings: Settings, proxy: TemporalTLSProxy) -> None:
    settings = secured_settings.model_copy(update={"temporal_api_key": SecretStr("wrong")})
    with pytest.raises(TemporalConnectError, match="AGENT_TEMPORAL_API_KEY") as caught:
        await connect_temporal(settings)
    assert "wrong" not in str(caught.value)
    assert proxy.stats.refused == 1


async def test_untrusted_client_certificate_is_named(
    secured_settings: Settings, credentials: Credentials
) -> None:
    settings = secured_settings.model_copy(
        update={
            "temporal_tls_client_cert_path": credentials.foreign_cert,
            "temporal_tls_client_key_path": credentials.foreign_key,
        }
    )
    with pytest.raises(TemporalConnectError, match="AGENT_TEMPORAL_TLS_CLIENT_CERT_PATH"):
        await connect_temporal(settings)


async def test_untrusted_server_certificate_is_named(
    secured_settings: Settings, credentials: Credentials
) -> None:
    # The client's own certificate is no CA of the server's certificate.
    settings = secured_settings.model_copy(
        update={"temporal_tls_server_ca_cert_path": credentials.foreign_cert}
    )
    with pytest.raises(TemporalConnectError, match="AGENT_TEMPORAL_TLS_SERVER_CA_CERT_PATH"):
        await connect_temporal(settings)


def test_agent_worker_with_mismatched_key_exits_with_one_line(
    secured_settings: Settings, credentials: Credentials
) -> None:
    """Set through the Temporal SDK's own variable names, as in a Temporal Cloud setup."""
    assert secured_settings.database_url is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_", "TEMPORAL_"))}
    env |= {
        "AGENT_DATABASE_URL": secured_settings.database_url.get_secret_value(),
        "TEMPORAL_ADDRESS": str(secured_settings.temporal_address),
        "TEMPORAL_API_KEY": API_KEY,
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(credentials.client_cert),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(credentials.foreign_key),
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(credentials.server_ca),
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "agent"), "worker"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, done.stderr
    assert "AGENT_TEMPORAL_TLS_CLIENT_KEY_PATH (TEMPORAL_TLS_CLIENT_KEY_PATH)" in error_lines[0]
