"""The backend's files as the tests read them: compose file, provisioning, collector configs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
COLLECTOR_CONFIG = ROOT / "collector-config" / "otel-agents.yaml"
JAEGER_CONFIG = ROOT / "collector-config" / "jaeger" / "jaeger.yaml"
PROMETHEUS_CONFIG = ROOT / "collector-config" / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = ROOT / "collector-config" / "alertmanager" / "alertmanager.yml"
PROVISIONING = ROOT / "dashboards" / "provisioning"
DATASOURCES = PROVISIONING / "datasources" / "otel-agents.yaml"
DASHBOARD_PROVIDERS = PROVISIONING / "dashboards" / "otel-agents.yaml"
ALERTING = PROVISIONING / "alerting" / "otel-agents.yaml"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def env_default(path: Path, variable: str) -> str:
    """The default of `${env:VARIABLE:-default}` in a collector or Jaeger config."""
    found = re.findall(
        r"\$\{env:" + re.escape(variable) + r":-([^}]*)\}", path.read_text(encoding="utf-8")
    )
    assert len(set(found)) == 1, f"{variable} has no single default in {path.name}: {found}"
    return str(found[0])


def port_of(address: str) -> int:
    """The port of `host:port` or of a URL."""
    if "://" in address:
        port = urlsplit(address).port
        assert port is not None, address
        return port
    return int(address.rsplit(":", 1)[1])


def host_of(address: str) -> str:
    if "://" in address:
        return str(urlsplit(address).hostname)
    return address.rsplit(":", 1)[0]
