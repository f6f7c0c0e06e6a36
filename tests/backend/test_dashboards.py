"""The generated Grafana dashboard and the provisioning files, checked offline.

Grafana cannot run here: the dashboard is loaded back with grafana-foundation-sdk, its
queries are parsed by promtool, and the provisioning files are checked against the
structure Grafana documents and against each other (uids, names, URLs, mount paths).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from backend_files import (
    ALERTING,
    COMPOSE,
    DASHBOARD_PROVIDERS,
    DATASOURCES,
    PROMETHEUS_CONFIG,
    ROOT,
    host_of,
    load,
    port_of,
)

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="grafana-foundation-sdk needs Python 3.11"
)

if sys.version_info >= (3, 11):
    from dashboards import generate

# The metric families the dashboard may read (collector-config/otel-agents.yaml and the SDK's
# approvals gauge); anything else is a typo or a dependency on names that are still moving.
ALLOWED_METRICS = {
    *(
        f"otel_agents_fleet_{name}_total"
        for name in (
            "llm_calls",
            "llm_cost",
            "llm_input_tokens",
            "llm_output_tokens",
            "tool_calls",
            "tool_failures",
            "tool_retries",
            "policy_verdicts",
            "runs",
            "run_failed_tool_calls",
            "anomalies",
        )
    ),
    *(
        f"otel_agents_fleet_{name}_{part}"
        for name in ("approval_wait_seconds", "run_cost")
        for part in ("bucket", "sum", "count")
    ),
    "traces_span_metrics_calls_total",
    *(f"traces_span_metrics_duration_milliseconds_{part}" for part in ("bucket", "sum", "count")),
    "otel_agents_approvals_pending",
}
GRAFANA_VARIABLES = {"__interval", "__range", "__all"}


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    return json.loads(generate.OUTPUT.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def datasources() -> dict[str, dict[str, Any]]:
    provisioned = load(DATASOURCES)
    return {source["type"]: source for source in provisioned["datasources"]}


def substituted(expr: str) -> str:
    """A query as Grafana sends it with "All" selected."""
    for name, value in (
        ("$service_name", ".*"),
        ("$agent", ".*"),
        ("$__interval", "1m"),
        ("$__range", "6h"),
    ):
        expr = expr.replace(name, value)
    return expr


def test_committed_json_is_what_the_generator_writes() -> None:
    assert generate.main(["--check"]) == 0


def test_check_mode_fails_on_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "agent-operations.json"
    stale.write_text(generate.render().replace("Agent operations", "Agent ops"), encoding="utf-8")
    monkeypatch.setattr(generate, "OUTPUT", stale)
    assert generate.main(["--check"]) == 1
    monkeypatch.setattr(generate, "OUTPUT", tmp_path / "missing.json")
    assert generate.main(["--check"]) == 1


def test_committed_queries_are_the_generators(committed: dict[str, Any]) -> None:
    assert generate.prometheus_queries(committed) == generate.panel_queries()
    assert generate.jaeger_searches(committed) == generate.trace_searches()
    assert len(generate.panel_queries()) >= 20


def test_dashboard_loads_back_with_the_sdk(committed: dict[str, Any]) -> None:
    from grafana_foundation_sdk.cog import plugins
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import dashboard, prometheus

    plugins.register_default_plugins()
    loaded = dashboard.Dashboard.from_json(committed)
    assert loaded.uid == generate.DASHBOARD_UID
    assert loaded.title == generate.DASHBOARD_TITLE
    exprs = [
        target.expr
        for panel in loaded.panels or []
        if isinstance(panel, dashboard.Panel)
        for target in panel.targets or []
        if isinstance(target, prometheus.Dataquery)
    ]
    assert exprs == [query.expr for query in generate.panel_queries()]
    # Everything the file says survives the SDK's model (which only adds empty defaults).
    assert_contained(committed, json.loads(JSONEncoder().encode(loaded)))


def assert_contained(original: Any, reloaded: Any, path: str = "") -> None:
    if isinstance(original, dict):
        assert isinstance(reloaded, dict), path
        for key, value in original.items():
            assert key in reloaded, f"{path}/{key} lost by the SDK"
            assert_contained(value, reloaded[key], f"{path}/{key}")
    elif isinstance(original, list):
        assert isinstance(reloaded, list) and len(reloaded) == len(original), path
        for index, (a, b) in enumerate(zip(original, reloaded, strict=True)):
            assert_contained(a, b, f"{path}[{index}]")
    else:
        assert original == reloaded, path


def test_panels_have_unique_ids_and_sound_layout(committed: dict[str, Any]) -> None:
    panels = committed["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(set(ids)) == len(ids)
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["type"] == "row" or panel.get("description"), panel["title"]


def test_queries_read_only_the_collectors_metric_families() -> None:
    for query in generate.panel_queries():
        names = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", query.expr))
        assert names, query
        assert names <= ALLOWED_METRICS, (query.title, names - ALLOWED_METRICS)
    for expr in generate.VARIABLE_QUERIES.values():
        names = set(re.findall(r"[a-z_]+_total|[a-z_]+_bucket", expr))
        assert names <= ALLOWED_METRICS, expr


def test_every_variable_a_query_uses_is_defined(committed: dict[str, Any]) -> None:
    defined = {variable["name"] for variable in committed["templating"]["list"]}
    assert {"datasource", "service_name", "agent", "jaeger_url"} <= defined
    used: set[str] = set()
    for text in [query.expr for query in generate.panel_queries()] + [
        json.dumps(panel) for panel in committed["panels"]
    ]:
        used |= set(re.findall(r"\$\{?([a-zA-Z_]+)", text))
    links = {name for name in used if name.startswith("__field") or name.startswith("__value")}
    assert used - links - GRAFANA_VARIABLES <= defined


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query (variables as Grafana substitutes them) as a recording rule."""
    queries = [substituted(query.expr) for query in generate.panel_queries()]
    queries += [
        f"count by ({label}) ({selector})"
        for selector, label in (
            re.fullmatch(r"label_values\((.*), (\w+)\)", substituted(expr)).groups()  # type: ignore[union-attr]
            for expr in generate.VARIABLE_QUERIES.values()
        )
    ]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{index}", "expr": expr}
                    for index, expr in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    checked = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The check can fail: a broken query is refused.
    path.write_text(
        yaml.safe_dump(
            {"groups": [{"name": "x", "rules": [{"record": "x:y", "expr": queries[0] + ")"}]}]}
        ),
        encoding="utf-8",
    )
    assert (
        subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True).returncode
        != 0
    )


def test_exemplar_panels_read_span_metrics() -> None:
    """Only the collector's span metrics carry exemplars (trace ids)."""
    with_exemplars = [query for query in generate.panel_queries() if query.exemplar]
    assert with_exemplars
    assert all("traces_span_metrics_" in query.expr for query in with_exemplars)


def test_datasources_follow_grafanas_provisioning_format(
    datasources: dict[str, dict[str, Any]],
) -> None:
    provisioned = load(DATASOURCES)
    assert provisioned["apiVersion"] == 1
    assert set(datasources) == {"prometheus", "jaeger", "alertmanager"}
    uids = [source["uid"] for source in provisioned["datasources"]]
    assert len(set(uids)) == len(uids)
    for source in provisioned["datasources"]:
        assert set(source) <= {
            "name",
            "type",
            "uid",
            "access",
            "url",
            "isDefault",
            "editable",
            "jsonData",
            "secureJsonData",
            "orgId",
            "version",
            "basicAuth",
            "basicAuthUser",
        }, source["name"]
        assert isinstance(source["name"], str) and isinstance(source["uid"], str)
        assert source["access"] == "proxy"
        assert isinstance(source.get("jsonData", {}), dict)
    assert [s["name"] for s in provisioned["datasources"] if s.get("isDefault")] == ["Prometheus"]


def test_datasources_link_to_each_other_and_to_the_dashboard(
    datasources: dict[str, dict[str, Any]], committed: dict[str, Any]
) -> None:
    prometheus, jaeger, alertmanager = (
        datasources[t] for t in ("prometheus", "jaeger", "alertmanager")
    )
    assert (prometheus["uid"], prometheus["name"]) == (
        generate.PROMETHEUS_UID,
        generate.PROMETHEUS_NAME,
    )
    assert jaeger["uid"] == generate.JAEGER_UID
    assert (alertmanager["uid"], alertmanager["name"]) == (
        generate.ALERTMANAGER_UID,
        generate.ALERTMANAGER_NAME,
    )

    # Metrics -> traces: the exemplar label the collector's span metrics carry is trace_id.
    (destination,) = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert destination == {**destination, "name": "trace_id", "datasourceUid": jaeger["uid"]}
    # Traces -> metrics: queries on the span metrics, with the tags Grafana interpolates.
    to_metrics = jaeger["jsonData"]["tracesToMetrics"]
    assert to_metrics["datasourceUid"] == prometheus["uid"]
    assert {tag["value"] for tag in to_metrics["tags"]} <= {"service_name", "gen_ai_agent_name"}
    for query in to_metrics["queries"]:
        assert "{$$__tags" in query["query"] and "traces_span_metrics_" in query["query"]
    assert alertmanager["jsonData"]["implementation"] == "prometheus"

    # The dashboard's panels name these data sources.
    variable = next(v for v in committed["templating"]["list"] if v["name"] == "datasource")
    assert variable["query"] == "prometheus" and variable["current"]["value"] == prometheus["uid"]
    by_type = {panel["type"]: panel for panel in committed["panels"]}
    assert by_type["alertlist"]["options"]["datasource"] == prometheus["name"]
    assert by_type["alertGroups"]["options"]["alertmanager"] == alertmanager["name"]
    for panel in committed["panels"]:
        if panel.get("datasource", {}).get("type") == "jaeger":
            assert panel["datasource"]["uid"] == jaeger["uid"]


def test_no_unescaped_dollar_in_provisioning() -> None:
    """Grafana expands $NAME in provisioning files: Grafana's own variables must be $$-escaped."""
    for path in (DATASOURCES, DASHBOARD_PROVIDERS, ALERTING):
        text = re.sub(r"(?m)#.*$", "", path.read_text(encoding="utf-8"))
        assert re.findall(r"(?<!\$)\$(?!\$)", text.replace("$$", "")) == [], path.name


def test_datasource_urls_reach_the_compose_services(datasources: dict[str, dict[str, Any]]) -> None:
    compose = load(COMPOSE)["services"]
    jaeger_http = port_of(compose_env_default("JAEGER_QUERY_HTTP_ENDPOINT"))
    expected = {
        "prometheus": ("prometheus", 9090),
        "jaeger": ("jaeger", jaeger_http),
        "alertmanager": ("alertmanager", 9093),
    }
    for kind, (service, port) in expected.items():
        url = datasources[kind]["url"]
        assert (host_of(url), port_of(url)) == (service, port), kind
        assert service in compose
    scrape = load(PROMETHEUS_CONFIG)["global"]["scrape_interval"]
    assert datasources["prometheus"]["jsonData"]["timeInterval"] == scrape


def compose_env_default(variable: str) -> str:
    from backend_files import JAEGER_CONFIG, env_default

    return env_default(JAEGER_CONFIG, variable)


def test_dashboard_provider_points_at_the_mounted_json() -> None:
    providers = load(DASHBOARD_PROVIDERS)
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert set(provider) <= {
        "name",
        "orgId",
        "folder",
        "folderUid",
        "type",
        "disableDeletion",
        "updateIntervalSeconds",
        "allowUiUpdates",
        "options",
    }
    assert set(provider["options"]) <= {"path", "foldersFromFilesStructure"}
    assert provider["type"] == "file" and isinstance(provider["name"], str)
    assert isinstance(provider["updateIntervalSeconds"], int)
    grafana = load(COMPOSE)["services"]["grafana"]
    mounts = dict(
        volume.rsplit(":", 1)[0].split(":", 1)
        for volume in grafana["volumes"]
        if volume.startswith("./")
    )
    target = provider["options"]["path"]
    source = next(src for src, dst in mounts.items() if dst == target)
    assert (ROOT / source / generate.OUTPUT.name).resolve() == generate.OUTPUT
    assert mounts["./dashboards/provisioning"] == "/etc/grafana/provisioning"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{target}/{generate.OUTPUT.name}"


def test_alerting_provisioning_routes_to_the_compose_webhook() -> None:
    alerting = load(ALERTING)
    assert alerting["apiVersion"] == 1
    names = {point["name"] for point in alerting["contactPoints"]}
    assert set(alerting) <= {"apiVersion", "contactPoints", "policies"}
    for point in alerting["contactPoints"]:
        assert set(point) <= {"orgId", "name", "receivers"}
        assert point["orgId"] == 1 and point["receivers"]
        for receiver in point["receivers"]:
            assert set(receiver) <= {"uid", "type", "settings", "disableResolveMessage"}
            assert receiver["type"] == "webhook" and isinstance(receiver["uid"], str)
            url = receiver["settings"]["url"]
            webhook = load(COMPOSE)["services"][host_of(url)]
            assert port_of(url) == int(webhook["environment"]["HTTP_PORT"])
    for policy in alerting["policies"]:
        assert set(policy) <= {
            "orgId",
            "receiver",
            "group_by",
            "matchers",
            "object_matchers",
            "mute_time_intervals",
            "group_wait",
            "group_interval",
            "repeat_interval",
            "routes",
            "continue",
        }
        assert policy["receiver"] in names
        assert isinstance(policy["group_by"], list)
