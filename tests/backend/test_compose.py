"""docker-compose.yml: valid against the compose specification, and wired to the configs.

There is no Docker engine here: the file is checked against the compose-spec JSON schema
(check-jsonschema's vendored copy), and every file it mounts, port it publishes and address
it wires is compared with the configs that use them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from backend_files import (
    ALERTMANAGER_CONFIG,
    COLLECTOR_CONFIG,
    COMPOSE,
    JAEGER_CONFIG,
    PROMETHEUS_CONFIG,
    ROOT,
    env_default,
    host_of,
    load,
    port_of,
)

CHECK_JSONSCHEMA = shutil.which(
    "check-jsonschema", path=str(Path(sys.executable).parent)
) or shutil.which("check-jsonschema")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return dict(load(COMPOSE)["services"])


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    assert CHECK_JSONSCHEMA, "check-jsonschema is not installed (pip install -e '.[dev]')"
    return subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
    )


def test_compose_file_matches_the_compose_specification(tmp_path: Path) -> None:
    checked = validate(COMPOSE)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The validator does refuse a wrong file: an unknown depends_on condition.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE.read_text(encoding="utf-8").replace("service_healthy", "service_ready", 1)
    )
    assert validate(broken).returncode != 0


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Host path (relative to the repository) -> container path, for ./ bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[source] = target
    return mounts


def test_every_mounted_file_exists(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for source in bind_mounts(service):
            assert (ROOT / source).exists(), (
                f"{name} mounts {source}, which is not in the repository"
            )


def test_images_are_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), name
        assert any(char.isdigit() for char in image.rsplit(":", 1)[1]), name
    assert services["otel-collector"]["image"] == "otel/opentelemetry-collector-contrib:0.161.0"


def test_no_host_port_is_published_twice(services: dict[str, Any]) -> None:
    published = [str(port).split(":")[0] for s in services.values() for port in s.get("ports", [])]
    assert len(published) == len(set(published))


def published(service: dict[str, Any]) -> set[int]:
    return {int(str(port).split(":")[-1]) for port in service.get("ports", [])}


def test_collector_runs_our_config_and_publishes_its_ports(services: dict[str, Any]) -> None:
    collector = services["otel-collector"]
    (argument,) = collector["command"]
    assert argument.startswith("--config=")
    assert bind_mounts(collector)["./collector-config/otel-agents.yaml"] == argument.removeprefix(
        "--config="
    )
    defaults = {
        variable: port_of(env_default(COLLECTOR_CONFIG, variable))
        for variable in (
            "OTELCOL_OTLP_GRPC_ENDPOINT",
            "OTELCOL_OTLP_HTTP_ENDPOINT",
            "OTELCOL_PROMETHEUS_ENDPOINT",
            "OTELCOL_HEALTH_ENDPOINT",
        )
    }
    assert set(defaults.values()) == {4317, 4318, 8889, 13133}
    assert published(collector) == set(defaults.values())
    # Traces leave for Jaeger's OTLP gRPC receiver.
    jaeger_endpoint = collector["environment"]["JAEGER_OTLP_GRPC_ENDPOINT"]
    assert jaeger_endpoint == env_default(COLLECTOR_CONFIG, "JAEGER_OTLP_GRPC_ENDPOINT")
    assert host_of(jaeger_endpoint) in services
    assert port_of(jaeger_endpoint) == port_of(
        env_default(JAEGER_CONFIG, "JAEGER_OTLP_GRPC_ENDPOINT")
    )


def test_prometheus_scrapes_the_collector_and_alerts_alertmanager(services: dict[str, Any]) -> None:
    config = load(PROMETHEUS_CONFIG)
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    (metrics,) = targets["otel-collector"]
    assert host_of(metrics) == "otel-collector" and host_of(metrics) in services
    assert port_of(metrics) == port_of(env_default(COLLECTOR_CONFIG, "OTELCOL_PROMETHEUS_ENDPOINT"))
    (self_metrics,) = targets["otel-collector-self"]
    assert port_of(self_metrics) == int(env_default(COLLECTOR_CONFIG, "OTELCOL_TELEMETRY_PORT"))
    (alertmanager,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert host_of(alertmanager) in services and port_of(alertmanager) in published(
        services[host_of(alertmanager)]
    )

    prometheus = services["prometheus"]
    assert "--enable-feature=exemplar-storage" in prometheus["command"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert bind_mounts(prometheus)["./collector-config/prometheus"] == "/etc/prometheus"


def test_jaeger_reads_prometheus_and_publishes_only_its_ui(services: dict[str, Any]) -> None:
    jaeger = services["jaeger"]
    assert jaeger["command"] == [
        "--config",
        bind_mounts(jaeger)["./collector-config/jaeger/jaeger.yaml"],
    ]
    url = jaeger["environment"]["JAEGER_PROMETHEUS_URL"]
    assert url == env_default(JAEGER_CONFIG, "JAEGER_PROMETHEUS_URL")
    assert host_of(url) == "prometheus" and port_of(url) in published(services["prometheus"])
    assert published(jaeger) == {port_of(env_default(JAEGER_CONFIG, "JAEGER_QUERY_HTTP_ENDPOINT"))}


def test_alertmanager_delivers_to_the_webhook_service(services: dict[str, Any]) -> None:
    alertmanager = services["alertmanager"]
    assert bind_mounts(alertmanager)[
        "./collector-config/alertmanager/alertmanager.yml"
    ] in " ".join(alertmanager["command"])
    for receiver in load(ALERTMANAGER_CONFIG)["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            service = services[host_of(webhook["url"])]
            assert port_of(webhook["url"]) == int(service["environment"]["HTTP_PORT"])


def test_health_checks_probe_the_configured_ports(services: dict[str, Any]) -> None:
    expected = {
        "jaeger": port_of(env_default(JAEGER_CONFIG, "JAEGER_HEALTH_ENDPOINT")),
        "prometheus": 9090,
        "alertmanager": 9093,
        "alert-webhook": int(services["alert-webhook"]["environment"]["HTTP_PORT"]),
        "grafana": 3000,
    }
    for name, port in expected.items():
        test = services[name]["healthcheck"]["test"]
        assert test[:2] == ["CMD", "wget"], name  # exec form: these images have busybox wget
        assert port_of(test[-1]) == port and host_of(test[-1]) == "127.0.0.1", name
    # The collector image has no shell or HTTP client: no health check, dependents wait for start.
    assert "healthcheck" not in services["otel-collector"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            wanted = (
                "service_started"
                if "healthcheck" not in services[dependency]
                else "service_healthy"
            )
            assert condition["condition"] == wanted, (name, dependency)


def test_state_lives_in_named_volumes(services: dict[str, Any]) -> None:
    volumes = load(COMPOSE)["volumes"]
    for name, path in (
        ("prometheus", "/prometheus"),
        ("alertmanager", "/alertmanager"),
        ("grafana", "/var/lib/grafana"),
    ):
        named = [v.split(":")[0] for v in services[name]["volumes"] if v.split(":")[1] == path]
        assert named and named[0] in volumes, name
    assert all(service.get("restart") == "unless-stopped" for service in services.values())
