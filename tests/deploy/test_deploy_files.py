"""The deployment files agree with the code and with the deployment rules.

Compose and the Kubernetes manifests are parsed as data; the Kubernetes overlays are
rendered with kustomize (`kubectl kustomize`, or `kustomize build`) and validated against
the Kubernetes schemas with `kubernetes-validate`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import validate  # type: ignore[import-untyped]

from agent.worker import WORKER_GRACEFUL_SHUTDOWN

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = sorted((ROOT / "deploy" / "k8s" / "overlays").iterdir())
KUBERNETES_VERSION = "1.32.0"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _seconds(duration: str) -> int:
    assert duration.endswith("s"), duration
    return int(duration[:-1])


def _kustomize_command() -> list[str] | None:
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    return None


def _render(overlay: Path) -> list[dict[str, Any]]:
    command = _kustomize_command()
    if command is None:
        pytest.skip("neither kubectl nor kustomize is installed")
    rendered = subprocess.run(
        [*command, str(overlay)], capture_output=True, text=True, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def _by_kind(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for resource in resources:
        if resource["kind"] == kind and resource["metadata"]["name"] == name:
            return resource
    raise AssertionError(f"no {kind}/{name}")


def _ports(container: dict[str, Any]) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container["ports"]}


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", [])}


def _scrape_jobs(path: Path) -> dict[str, dict[str, Any]]:
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    return {job["job_name"]: job for job in config["scrape_configs"]}


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[path.name for path in OVERLAYS])
def test_kubernetes_pods_serve_the_metrics_prometheus_scrapes(overlay: Path) -> None:
    # Arrange
    resources = _render(overlay)
    worker_pod = _by_kind(resources, "Deployment", "agent-worker")["spec"]["template"]
    api_pod = _by_kind(resources, "Deployment", "agent-api")["spec"]["template"]
    config = _by_kind(resources, "ConfigMap", "agent-config")["data"]
    worker = worker_pod["spec"]["containers"][0]
    api = api_pod["spec"]["containers"][0]

    # Act
    worker_env = {**config, **_env(worker)}
    api_env = {**config, **_env(api)}

    # Assert: the worker serves /metrics on all interfaces, on the port it exposes and the
    # pod's scrape annotation names.
    metrics_port = int(worker_env["AGENT_WORKER_METRICS_PORT"])
    assert _ports(worker)["metrics"] == metrics_port
    assert worker_env["AGENT_WORKER_METRICS_HOST"] == "0.0.0.0"
    # The SDK core's own address would bind a second server (on this very port, here).
    assert "AGENT_WORKER_METRICS_ADDRESS" not in worker_env
    for pod, port in ((worker_pod, metrics_port), (api_pod, int(api_env["AGENT_API_PORT"]))):
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == port
        assert annotations["prometheus.io/path"] == "/metrics"
    assert _ports(api)["http"] == int(api_env["AGENT_API_PORT"])


def test_kubernetes_scrape_config_has_the_compose_jobs_and_keeps_their_pods() -> None:
    # Arrange
    observability = ROOT / "deploy" / "observability"
    compose_jobs = _scrape_jobs(observability / "prometheus.yml")
    kubernetes_jobs = _scrape_jobs(observability / "prometheus-kubernetes.yml")
    deployments = {
        doc["metadata"]["name"]: doc
        for name in ("api.yaml", "worker.yaml")
        for doc in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "base" / name).read_text())
        if doc and doc["kind"] == "Deployment"
    }

    # Assert: same job names (dashboards and queries work on either), each keeping the pods
    # of the Deployment of its name that ask to be scraped.
    assert set(kubernetes_jobs) == set(compose_jobs) == {"agent-api", "agent-worker"}
    for job_name, job in kubernetes_jobs.items():
        keeps = {
            tuple(rule["source_labels"]): rule["regex"]
            for rule in job["relabel_configs"]
            if rule.get("action") == "keep"
        }
        app = deployments[job_name]["spec"]["template"]["metadata"]["labels"]
        assert (
            keeps[("__meta_kubernetes_pod_label_app_kubernetes_io_name",)]
            == (app["app.kubernetes.io/name"])
        )
        assert keeps[("__meta_kubernetes_pod_annotation_prometheus_io_scrape",)] == "true"
    # Compose scrapes the port compose's workers serve on.
    compose_port = int(_compose()["x-agent-environment"]["AGENT_WORKER_METRICS_PORT"])
    worker_sd = compose_jobs["agent-worker"]["dns_sd_configs"][0]
    assert worker_sd["port"] == compose_port


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
@pytest.mark.parametrize("name", ["prometheus.yml", "prometheus-kubernetes.yml"])
def test_scrape_configs_pass_promtool(name: str) -> None:
    path = ROOT / "deploy" / "observability" / name
    checked = subprocess.run(
        ["promtool", "check", "config", "--syntax-only", str(path)],
        capture_output=True,
        text=True,
    )
    output = checked.stdout + checked.stderr
    if "field kubernetes_sd_configs not found" in output:
        # Debian builds Prometheus without Kubernetes service discovery; the job structure
        # of this file is checked against the manifests above.
        pytest.skip("this promtool build has no Kubernetes service discovery")
    assert checked.returncode == 0, output


def test_compose_worker_outlives_its_graceful_shutdown_and_has_no_http_check() -> None:
    worker = _compose()["services"]["worker"]
    assert _seconds(worker["stop_grace_period"]) > WORKER_GRACEFUL_SHUTDOWN.total_seconds()
    assert "healthcheck" not in worker


def test_compose_hygiene() -> None:
    services = _compose()["services"]
    assert services["temporal-ui"]["ports"] == [
        "${TEMPORAL_UI_BIND:-127.0.0.1}:${TEMPORAL_UI_PORT:-8080}:8080"
    ]
    assert not any(port.startswith("8000:") for port in services["api"]["ports"])
    assert services["simulator"]["profiles"] == ["simulator"]
    assert "env_file" not in str(services)
    for name in ("postgres", "redis", "temporal", "temporal-ui", "api", "worker"):
        assert services[name]["restart"] == "unless-stopped", name
    for job in ("temporal-schema", "temporal-init", "migrate"):
        assert services[job]["restart"] == "no", job
    for needs_init in ("api", "worker"):
        condition = services[needs_init]["depends_on"]["temporal-init"]["condition"]
        assert condition == "service_completed_successfully"
    assert "auto-setup" not in (ROOT / "docker-compose.yml").read_text()


def test_compose_secrets_are_required_and_only_postgres_sees_the_superuser_password() -> None:
    services = _compose()["services"]
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in (
        "POSTGRES_PASSWORD",
        "AGENT_DB_PASSWORD",
        "TEMPORAL_DB_PASSWORD",
        "AGENT_API_KEY_PEPPER",
    ):
        assert f"${{{secret}:?" in text
        assert f"${{{secret}:-" not in text
    holders = [name for name, svc in services.items() if "POSTGRES_PASSWORD" in str(svc)]
    assert holders == ["postgres"]
    assert "agent_app:${AGENT_DB_PASSWORD" in services["api"]["environment"]["AGENT_DATABASE_URL"]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[path.name for path in OVERLAYS])
def test_kubernetes_overlay_renders_and_validates(overlay: Path) -> None:
    resources = _render(overlay)
    for resource in resources:
        validate(resource, KUBERNETES_VERSION, strict=True)
    api = _by_kind(resources, "Deployment", "agent-api")["spec"]["template"]["spec"]
    container = api["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    worker = _by_kind(resources, "Deployment", "agent-worker")["spec"]["template"]["spec"]
    grace = worker["terminationGracePeriodSeconds"]
    assert grace > WORKER_GRACEFUL_SHUTDOWN.total_seconds()
    assert {"name": "metrics", "containerPort": 9464} in worker["containers"][0]["ports"]
    _by_kind(resources, "ConfigMap", "agent-config")
    migrate = _by_kind(resources, "Job", "agent-migrate")["spec"]["template"]["spec"]
    assert migrate["containers"][0]["command"] == ["agent", "db", "upgrade"]
    _by_kind(resources, "Job", "temporal-init")
