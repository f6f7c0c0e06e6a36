"""The backend's configuration files, checked by the programs that will read them, and
against our attribute registry: the collector, Prometheus, the rules and Alertmanager must
name exactly what the Python package emits (semconv/)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from backend_stack import CONFIG

from otel_agents import semconv as sc

RULES = CONFIG / "prometheus" / "rules" / "otel-agents.rules.yml"


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_the_collector_accepts_its_config(programs: dict[str, str]) -> None:
    result = run([programs["OTELCOL"], "validate", "--config", str(CONFIG / "otel-agents.yaml")])
    assert result.returncode == 0, result.stderr


def test_the_collector_rejects_a_broken_detector(programs: dict[str, str], tmp_path: Path) -> None:
    # `validate` really parses the OTTL: a typo in a detector fails before start-up.
    broken = (CONFIG / "otel-agents.yaml").read_text().replace("ContainsValue(", "ContainsValu(", 1)
    (tmp_path / "broken.yaml").write_text(broken)
    result = run([programs["OTELCOL"], "validate", "--config", str(tmp_path / "broken.yaml")])
    assert result.returncode != 0 and "ContainsValu" in result.stderr


def test_the_build_manifest_has_exactly_the_components_the_configs_use() -> None:
    manifest = yaml.safe_load((CONFIG / "builder.yaml").read_text())
    built = {
        kind: {_component_name(entry["gomod"]) for entry in manifest.get(kind, [])}
        for kind in ("receivers", "processors", "connectors", "exporters", "extensions")
    }
    used: dict[str, set[str]] = {kind: set() for kind in built}
    for path in [CONFIG / "otel-agents.yaml", *sorted((CONFIG / "scale-out").glob("tier*.yaml"))]:
        config = yaml.safe_load(path.read_text())
        for kind in used:
            used[kind] |= {name.split("/")[0] for name in config.get(kind) or {}}
    assert used == built


def _component_name(gomod: str) -> str:
    """`.../processor/tailsamplingprocessor v0.161.0` -> `tail_sampling` (the v0.161 name)."""
    module = gomod.split()[0].rsplit("/", 1)[1]
    if module == "otlpexporter":
        return "otlp_grpc"
    base = re.sub(r"(receiver|processor|connector|exporter|extension)$", "", module)
    return _SNAKE_NAMES.get(base, base)


_SNAKE_NAMES = {
    "otlp": "otlp",
    "memorylimiter": "memory_limiter",
    "tailsampling": "tail_sampling",
    "deltatocumulative": "delta_to_cumulative",
    "spanmetrics": "span_metrics",
    "signaltometrics": "signal_to_metrics",
    "healthcheck": "health_check",
    "loadbalancing": "load_balancing",
}


def test_exporter_names_match_the_built_components() -> None:
    # The otlp exporter module provides `otlp_grpc`; otlphttp provides `otlp_http`.
    config = yaml.safe_load((CONFIG / "otel-agents.yaml").read_text())
    assert {name.split("/")[0] for name in config["exporters"]} <= {
        "otlp_grpc",
        "otlp_http",
        "prometheus",
        "debug",
    }


def test_prometheus_accepts_its_config_and_rules(programs: dict[str, str]) -> None:
    result = run(
        [programs["PROMTOOL"], "check", "config", "prometheus.yml"], cwd=CONFIG / "prometheus"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    result = run([programs["PROMTOOL"], "check", "rules", str(RULES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_when_it_should_and_not_on_near_misses(programs: dict[str, str]) -> None:
    tests = sorted((CONFIG / "prometheus" / "tests").glob("*.test.yml"))
    assert tests
    result = run(
        [programs["PROMTOOL"], "test", "rules", *map(str, tests)], cwd=CONFIG / "prometheus"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alertmanager_accepts_its_config(programs: dict[str, str]) -> None:
    result = run(
        [programs["AMTOOL"], "check-config", str(CONFIG / "alertmanager" / "alertmanager.yml")]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_summary_a_runbook_and_a_jaeger_link() -> None:
    alerts = [rule for group in _rule_groups() for rule in group["rules"] if "alert" in rule]
    assert len(alerts) >= 15
    for alert in alerts:
        annotations = alert.get("annotations", {})
        assert set(annotations) == {"summary", "runbook", "jaeger"}, alert["alert"]
        assert annotations["jaeger"].startswith("http://localhost:16686/search"), alert["alert"]
        assert alert["labels"]["severity"] in {"info", "warning", "critical"}


def _rule_groups() -> list[dict[str, Any]]:
    return list(yaml.safe_load(RULES.read_text())["groups"])


# -- the same names everywhere ---------------------------------------------------------------


def _declared_attributes() -> set[str]:
    return {value for name, value in vars(sc).items() if name.isupper() and isinstance(value, str)}


def test_the_collector_config_uses_only_declared_attribute_names() -> None:
    text = (CONFIG / "otel-agents.yaml").read_text()
    named = set(re.findall(r'attributes\["([a-z_.]+)"\]', text))
    named |= set(re.findall(r"\{key: ([a-z_.]+)", text))
    named |= {
        m
        for m in re.findall(r"- name: ([a-z_.]+)$", text, re.M)
        if "." in m and not m.startswith("otel_agents.fleet")
    }
    resource = {"service.name", "service.namespace", "deployment.environment.name"}
    undeclared = sorted(n for n in named - resource if n not in _declared_attributes())
    assert undeclared == []


def test_the_fleet_metrics_are_the_declared_ones() -> None:
    config = yaml.safe_load((CONFIG / "otel-agents.yaml").read_text())
    made = {m["name"] for m in config["connectors"]["signal_to_metrics/fleet"]["spans"]}
    made |= set(config["connectors"]["count/anomalies"]["spans"])
    declared = {v for k, v in vars(sc).items() if k.startswith("METRIC_FLEET_")}
    assert made == declared
