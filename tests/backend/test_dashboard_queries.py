"""Every panel of the generated dashboard shows data for the demo's runs, on the live backend.

Uses the end-to-end harness's session fixtures (tests/backend/conftest.py): `live_prometheus_url`,
a Prometheus that has scraped the collector after the demo and the scripted runs (a retry loop,
a cost spike, a denied and an escalated call, an approval), and `live_jaeger_url`, the Jaeger
those runs' traces went to. Each query runs the way Grafana sends it: a range query over the
last hour, with the template variables substituted (all services, then the demo's service).
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="grafana-foundation-sdk needs Python 3.11"
)

if sys.version_info >= (3, 11):
    from dashboards.generate import (
        MAY_BE_ZERO,
        VARIABLE_QUERIES,
        PanelQuery,
        panel_queries,
        trace_searches,
    )

DEMO_SERVICE = "otel-agents-demo"  # the demo's OTEL_SERVICE_NAME (otel_agents/cli/demo.py)
WINDOW_SECONDS = 3600
STEP = "1m"  # Grafana's $__interval: one step per interval
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def get(base: str, path: str, **params: Any) -> Any:
    url = f"{base.rstrip('/')}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def substituted(expr: str, service: str) -> str:
    for name, value in (
        ("$service_name", service),
        ("$agent", ".*"),
        ("$__interval", STEP),
        ("$__range", "1h"),
    ):
        expr = expr.replace(name, value)
    return expr


def values_of(prometheus: str, expr: str) -> list[float]:
    end = time.time()
    answer = get(
        prometheus,
        "/api/v1/query_range",
        query=expr,
        start=end - WINDOW_SECONDS,
        end=end,
        step=STEP,
    )
    assert answer["status"] == "success", answer
    return [
        float(value)
        for series in answer["data"]["result"]
        for _, value in series["values"]
        if not math.isnan(float(value))
    ]


def problem(prometheus: str, query: PanelQuery, service: str) -> str | None:
    values = values_of(prometheus, substituted(query.expr, service))
    if not values:
        return f"{query.title}: no data for {query.expr}"
    if query.title not in MAY_BE_ZERO and not any(values):
        return f"{query.title}: only zeros for {query.expr}"
    return None


@pytest.mark.parametrize("service", [".*", DEMO_SERVICE], ids=["all services", "demo service"])
def test_every_panel_query_returns_data(live_prometheus_url: str, service: str) -> None:
    problems = [
        p for query in panel_queries() if (p := problem(live_prometheus_url, query, service))
    ]
    assert not problems, "\n".join(problems)


def test_variables_offer_the_demo(live_prometheus_url: str) -> None:
    for name, query in VARIABLE_QUERIES.items():
        match = re.fullmatch(r"label_values\((.*), (\w+)\)", substituted(query, ".*"))
        assert match, query
        selector, label = match.groups()
        answer = get(live_prometheus_url, f"/api/v1/label/{label}/values", **{"match[]": selector})
        assert answer["data"], name
        if name == "service_name":
            assert DEMO_SERVICE in answer["data"]


def test_exemplars_link_panels_to_traces_in_jaeger(
    live_prometheus_url: str, live_jaeger_url: str
) -> None:
    end = time.time()
    for query in (q for q in panel_queries() if q.exemplar):
        answer = get(
            live_prometheus_url,
            "/api/v1/query_exemplars",
            query=substituted(query.expr, DEMO_SERVICE),
            start=end - WINDOW_SECONDS,
            end=end,
        )
        trace_ids = {
            exemplar["labels"].get("trace_id", "")
            for series in answer["data"]
            for exemplar in series["exemplars"]
        }
        assert trace_ids and all(TRACE_ID.match(t) for t in trace_ids), query.title
        assert any(trace_in_jaeger(live_jaeger_url, t) for t in trace_ids), query.title


def trace_in_jaeger(jaeger: str, trace_id: str) -> bool:
    try:
        return bool(get(jaeger, f"/api/traces/{trace_id}")["data"])
    except urllib.error.HTTPError as error:
        if error.code == 404:  # sampled out: a clean run
            return False
        raise


def test_trace_tables_find_the_demos_runs(live_jaeger_url: str) -> None:
    """The Jaeger tables' searches, as Grafana's Jaeger data source sends them."""
    end = time.time()
    for search in trace_searches():
        tags = dict(
            pair.split("=", 1) for pair in search.tags.split()
        )  # logfmt, as Grafana reads it
        answer = get(
            live_jaeger_url,
            "/api/traces",
            service=search.service.replace("$service_name", DEMO_SERVICE),
            tags=json.dumps(tags),
            limit=search.limit,
            lookback="custom",
            start=int((end - WINDOW_SECONDS) * 1e6),
            end=int(end * 1e6),
        )
        assert answer["data"], search.title
