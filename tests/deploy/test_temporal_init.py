"""`deploy/temporal/init.sh`, the compose and Kubernetes temporal-init job, on a dev server.

Run with the real `temporal` CLI: it creates the namespace, registers the six search
attributes so that the API's and the worker's start-up check passes, tolerates a second
job racing it, and fails loudly naming what it could not fix.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.testing import WorkflowEnvironment

from agent.stack.temporal_server import temporal_binary
from agent.temporal import CLI_TYPE_NAMES, SEARCH_ATTRIBUTES, check_search_attributes

ROOT = Path(__file__).resolve().parents[2]
INIT_SCRIPT = ROOT / "deploy" / "temporal" / "init.sh"


def _run_init(address: str, namespace: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env |= {
        "PATH": f"{temporal_binary().parent}{os.pathsep}{env.get('PATH', '')}",
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_NAMESPACE": namespace,
        "TEMPORAL_INIT_ATTEMPTS": "30",
        "TEMPORAL_INIT_DELAY_SECONDS": "0.5",
    }
    return subprocess.Popen(
        ["sh", str(INIT_SCRIPT)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def _finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = await asyncio.to_thread(process.communicate)
    return process.returncode, out + err


def test_the_script_registers_the_same_attributes_as_the_code() -> None:
    text = INIT_SCRIPT.read_text()
    expected = " ".join(f"{n}={CLI_TYPE_NAMES[t]}" for n, t in SEARCH_ATTRIBUTES.items())
    assert f'ATTRIBUTES="{expected}"' in text


async def test_two_racing_init_jobs_leave_a_ready_namespace(
    temporal_dev_env: WorkflowEnvironment,
) -> None:
    address = temporal_dev_env.client.service_client.config.target_host
    namespace = f"init-{uuid.uuid4().hex[:8]}"
    results = await asyncio.gather(*(_finish(_run_init(address, namespace)) for _ in range(2)))
    for code, output in results:
        assert code == 0, output
        assert f"namespace {namespace} has all search attributes" in output
    await check_search_attributes(temporal_dev_env.client, namespace)
    code, output = await _finish(_run_init(address, namespace))
    assert code == 0, output
    assert "registering" not in output


async def test_a_mistyped_attribute_fails_the_job_by_name(
    temporal_dev_env: WorkflowEnvironment,
) -> None:
    client = temporal_dev_env.client
    broken = f"init-{uuid.uuid4().hex[:8]}"
    retention = Duration()
    retention.FromTimedelta(timedelta(days=1))
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=broken, workflow_execution_retention_period=retention)
    )
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=broken,
            search_attributes={"UserId": IndexedValueType.INDEXED_VALUE_TYPE_INT},
        )
    )
    code, output = await _finish(_run_init(client.service_client.config.target_host, broken))
    assert code == 1, output
    assert (
        f"namespace {broken} has search attributes of another type; needed: UserId=Keyword"
        in output
    )
