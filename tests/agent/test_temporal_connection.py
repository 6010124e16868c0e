"""Temporal connection settings: resolution, certificate checks, the SDK's variable names."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme
from pydantic import SecretStr
from temporalio.service import TLSConfig

from agent.config import DEFAULT_API_KEY_PEPPER, Settings
from agent.stack.ports import free_port
from agent.temporal import (
    TemporalConnectError,
    TemporalSettingError,
    connect_temporal,
    temporal_connect_options,
)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pem_files(tmp_path: Path, ca: trustme.CA) -> dict[str, Path]:
    leaf = ca.issue_cert("worker@agent")
    other = ca.issue_cert("other@agent")
    files = {
        "cert": tmp_path / "client.pem",
        "key": tmp_path / "client.key",
        "other_key": tmp_path / "other.key",
        "ca": tmp_path / "ca.pem",
        "junk": tmp_path / "junk.pem",
    }
    files["cert"].write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    files["key"].write_bytes(leaf.private_key_pem.bytes())
    files["other_key"].write_bytes(other.private_key_pem.bytes())
    files["ca"].write_bytes(ca.cert_pem.bytes())
    files["junk"].write_text("not a certificate\n")
    return files


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_plain_dev_server_needs_no_tls() -> None:
    options = temporal_connect_options(_settings(temporal_address="temporal:7233"))
    assert (options.address, options.tls, options.api_key) == ("temporal:7233", False, None)


def test_api_key_alone_turns_tls_on() -> None:
    options = temporal_connect_options(_settings(temporal_api_key=SecretStr("k")))
    assert options.tls is True
    assert options.api_key == "k"


def test_mtls_files_become_a_tls_config(pem_files: dict[str, Path]) -> None:
    options = temporal_connect_options(
        _settings(
            temporal_tls_client_cert_path=pem_files["cert"],
            temporal_tls_client_key_path=pem_files["key"],
            temporal_tls_server_ca_cert_path=pem_files["ca"],
            temporal_tls_server_name="temporal.test",
        )
    )
    assert isinstance(options.tls, TLSConfig)
    assert options.tls.domain == "temporal.test"
    assert options.tls.client_cert == pem_files["cert"].read_bytes()
    assert options.uses_client_certificate


def test_temporal_sdk_variable_names_are_read(
    monkeypatch: pytest.MonkeyPatch, pem_files: dict[str, Path]
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "ns.acct.tmprl.cloud:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "ns.acct")
    monkeypatch.setenv("TEMPORAL_API_KEY", "cloud-key")
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", str(pem_files["ca"]))
    monkeypatch.setenv("AGENT_TEMPORAL_NAMESPACE", "wins.acct")
    settings = Settings(_env_file=None)
    assert settings.temporal_address == "ns.acct.tmprl.cloud:7233"
    assert settings.temporal_namespace == "wins.acct"
    assert settings.temporal_api_key is not None
    assert "cloud-key" not in repr(settings)
    assert settings.temporal_tls_server_ca_cert_path == pem_files["ca"]


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"temporal_tls_client_cert_path": "cert"}, "AGENT_TEMPORAL_TLS_CLIENT_KEY_PATH"),
        ({"temporal_tls_client_key_path": "key"}, "AGENT_TEMPORAL_TLS_CLIENT_CERT_PATH"),
        (
            {"temporal_tls_client_cert_path": "junk", "temporal_tls_client_key_path": "key"},
            "AGENT_TEMPORAL_TLS_CLIENT_CERT_PATH",
        ),
        (
            {"temporal_tls_client_cert_path": "cert", "temporal_tls_client_key_path": "missing"},
            "AGENT_TEMPORAL_TLS_CLIENT_KEY_PATH",
        ),
        (
            {"temporal_tls_client_cert_path": "cert", "temporal_tls_client_key_path": "other_key"},
            "AGENT_TEMPORAL_TLS_CLIENT_KEY_PATH",
        ),
        ({"temporal_tls_server_ca_cert_path": "junk"}, "AGENT_TEMPORAL_TLS_SERVER_CA_CERT_PATH"),
        ({"temporal_tls": False, "temporal_tls_server_ca_cert_path": "ca"}, "AGENT_TEMPORAL_TLS"),
    ],
)
def test_unusable_tls_setting_is_named(
    pem_files: dict[str, Path], tmp_path: Path, values: dict[str, object], named: str
) -> None:
    resolved = {
        key: pem_files.get(str(value), tmp_path / str(value)) if key.endswith("_path") else value
        for key, value in values.items()
    }
    with pytest.raises(TemporalSettingError) as caught:
        temporal_connect_options(_settings(**resolved))
    assert str(caught.value).startswith(f"{named} (")


async def test_unreachable_server_is_named_after_retrying() -> None:
    port = free_port()
    settings = _settings(temporal_address=f"127.0.0.1:{port}")
    with pytest.raises(TemporalConnectError) as caught:
        await connect_temporal(settings, retry_seconds=0.5)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "unreachable for 0.5 s: check AGENT_TEMPORAL_ADDRESS (TEMPORAL_ADDRESS)" in message


def test_default_pepper_is_refused_outside_agent_up() -> None:
    problem = _settings().default_pepper_problem()
    assert problem is not None
    assert problem.startswith("AGENT_API_KEY_PEPPER: ")
    assert "\n" not in problem
    assert _settings(allow_default_pepper=True).default_pepper_problem() is None
    assert _settings(api_key_pepper=SecretStr("s3cret")).default_pepper_problem() is None
    assert DEFAULT_API_KEY_PEPPER not in problem
