"""The "Agent operations" Grafana dashboard, generated with grafana-foundation-sdk.

    python -m dashboards.generate           # write dashboards/json/agent-operations.json
    python -m dashboards.generate --check   # exit 1 if the committed JSON is stale

Every query reads the metrics the otel-agents collector derives from spans before sampling
(`otel_agents_fleet_*`, `traces_span_metrics_*`) or the SDK's `otel_agents_approvals_pending`
gauge. Counters are read as "what is new in the window" (`new_in`), not with `increase()`:
the collector creates a counter series at its first event with that event already counted,
and `increase()` never sees the step from "no series" to the first value, so a one-off
retry loop or denial would never show (collector-config/prometheus/rules/ does the same).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from grafana_foundation_sdk.builders import bargauge, dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders.common import (
    ReduceDataOptions,
    StackingConfig,
    VizLegendOptions,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.runtime import UnknownDataquery
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

DASHBOARD_UID = "otel-agents-operations"
DASHBOARD_TITLE = "Agent operations"
OUTPUT = Path(__file__).resolve().parent / "json" / "agent-operations.json"

# Data sources as provisioned in dashboards/provisioning/datasources/ (a test checks both
# files agree). The alert panels pick their data source by *name*, the rest by uid.
PROMETHEUS_UID = "otel-agents-prometheus"
PROMETHEUS_NAME = "Prometheus"
JAEGER_UID = "otel-agents-jaeger"
ALERTMANAGER_UID = "otel-agents-alertmanager"
ALERTMANAGER_NAME = "Alertmanager"
JAEGER_UI_DEFAULT = "http://localhost:16686"

PROM = DataSourceRef(type_val="prometheus", uid="${datasource}")
JAEGER = DataSourceRef(type_val="jaeger", uid=JAEGER_UID)

# Label matchers for the template variables. `agent` only filters the families that carry
# gen_ai_agent_name (LLM, tool, run and span metrics).
SERVICE = 'service_name=~"$service_name"'
AGENT = 'gen_ai_agent_name=~"$agent"'
INTERVAL = "$__interval"  # one bucket per graph point: each event is counted once
RANGE = "$__range"  # the dashboard's time range, for totals
MIN_INTERVAL = "1m"
# Stat and bar gauge panels show the one value of their instant query.
LAST_VALUE = ReduceDataOptions().calcs(["lastNotNull"]).values(False)

VARIABLE_QUERIES = {
    "service_name": "label_values(traces_span_metrics_calls_total, service_name)",
    "agent": (
        'label_values({__name__=~"otel_agents_fleet_runs_total|otel_agents_fleet_llm_calls_total'
        f'|otel_agents_fleet_tool_calls_total", {SERVICE}}}, gen_ai_agent_name)'
    ),
}

# Panels whose query may rightly be all zeros after the demo: the gauge of approvals
# waiting is back at 0 once the demo's approval was answered.
MAY_BE_ZERO = frozenset({"Approvals waiting now"})


class PanelQuery(NamedTuple):
    """One Prometheus query of one panel."""

    title: str
    expr: str
    exemplar: bool


class TraceSearch(NamedTuple):
    """One Jaeger search of one table panel (Grafana's Jaeger `search` query)."""

    title: str
    service: str
    tags: str
    limit: int


def sel(metric: str, *matchers: str) -> str:
    """A series selector."""
    return f"{metric}{{{', '.join(matchers)}}}"


def new_in(series: str, window: str) -> str:
    """What a counter gained within the window, per series, a series born in it counting whole.

    `clamp_min` keeps a counter reset (a restarted collector) from showing as negative.
    """
    return f"clamp_min({series} - ({series} offset {window} or {series} * 0), 0)"


def total(by: str, series: str, window: str) -> str:
    return f"sum by ({by}) ({new_in(series, window)})"


def quantile(q: float, by: str, bucket_series: str) -> str:
    return f"histogram_quantile({q}, sum by (le, {by}) ({new_in(bucket_series, INTERVAL)}))"


def jaeger_link(title: str, tags: str) -> cogbuilder.Builder[Any]:
    """A data link to the Jaeger UI search of the series' service; `tags` is URL-encoded JSON."""
    url = "${jaeger_url}/search?service=${__field.labels.service_name}&limit=20"
    if tags:
        url += f"&tags={tags}"
    return dashboard.DashboardLink(title).url(url).target_blank(True)


def jaeger_tags(**tags: str) -> str:
    """Jaeger's `tags` parameter, URL-encoded; values may hold Grafana field references."""
    pairs = ",".join(f"%22{key}%22%3A%22{value}%22" for key, value in tags.items())
    return "%7B" + pairs + "%7D"


def target(
    expr: str, legend: str, ref: str, *, exemplar: bool = False, instant: bool = False
) -> Any:
    query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)
    query = query.exemplar(exemplar)
    return query.instant() if instant else query.range()


def graph(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[tuple[str, str]],
    *,
    exemplar: bool = False,
    bars: bool = False,
    links: Iterable[cogbuilder.Builder[Any]] = (),
    width: int = 12,
) -> timeseries.Panel:
    """A time series panel; with `bars`, stacked bars of what happened in each interval."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(PROM)
        .unit(unit)
        .interval(MIN_INTERVAL)
        .height(8)
        .span(width)
        .legend(
            VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs(["sum", "max"] if bars else ["mean", "max"])
        )
        .data_links(list(links))
    )
    if bars:
        panel = (
            panel.draw_style(common.GraphDrawStyle.BARS)
            .fill_opacity(80)
            .stacking(StackingConfig().mode(common.StackingMode.NORMAL))
        )
    for index, (expr, legend) in enumerate(queries):
        # One query carries the exemplars: they are the same points for each quantile.
        panel = panel.with_target(
            target(expr, legend, chr(ord("A") + index), exemplar=exemplar and index == 0)
        )
    return panel


def ranking(
    title: str,
    description: str,
    unit: str,
    expr: str,
    legend: str,
    *,
    links: Iterable[cogbuilder.Builder[Any]] = (),
    width: int = 8,
) -> bargauge.Panel:
    """Totals over the dashboard's time range, largest first."""
    return (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(PROM)
        .unit(unit)
        .height(8)
        .span(width)
        .orientation(common.VizOrientation.HORIZONTAL)
        .reduce_options(LAST_VALUE)
        .display_mode(common.BarGaugeDisplayMode.BASIC)
        .data_links(list(links))
        .with_target(target(f"sort_desc({expr})", legend, "A", instant=True))
    )


def big_number(
    title: str, description: str, unit: str, expr: str, legend: str, width: int = 4
) -> stat.Panel:
    return (
        stat.Panel()
        .reduce_options(LAST_VALUE)
        .graph_mode(common.BigValueGraphMode.NONE)
        .title(title)
        .description(description)
        .datasource(PROM)
        .unit(unit)
        .height(4)
        .span(width)
        .with_target(target(expr, legend, "A", instant=True))
    )


class _JaegerQuery(cogbuilder.Builder[cogvariants.Dataquery]):
    """Grafana's Jaeger search query; the SDK has no Jaeger model, so the JSON is spelled out."""

    def __init__(self, search: TraceSearch) -> None:
        self._search = search

    def build(self) -> cogvariants.Dataquery:
        return UnknownDataquery(
            {
                "refId": "A",
                "datasource": {"type": "jaeger", "uid": JAEGER_UID},
                "queryType": "search",
                "service": self._search.service,
                "tags": self._search.tags,
                "limit": self._search.limit,
            }
        )


def trace_table(search: TraceSearch, description: str) -> table.Panel:
    """Recent traces of a Jaeger search; each trace id links to its trace. One table per service."""
    return (
        table.Panel()
        .title(search.title)
        .description(description)
        .datasource(JAEGER)
        .height(8)
        .span(12)
        .repeat("service_name")
        .repeat_direction("v")
        .with_target(_JaegerQuery(search))
    )


# ---------------------------------------------------------------------------------------
# The panels
# ---------------------------------------------------------------------------------------

LLM_COST = sel("otel_agents_fleet_llm_cost_total", SERVICE, AGENT)
LLM_CALLS = sel("otel_agents_fleet_llm_calls_total", SERVICE, AGENT)
TOKENS_IN = sel("otel_agents_fleet_llm_input_tokens_total", SERVICE, AGENT)
TOKENS_OUT = sel("otel_agents_fleet_llm_output_tokens_total", SERVICE, AGENT)
TOOL_CALLS = sel("otel_agents_fleet_tool_calls_total", SERVICE, AGENT)
TOOL_FAILURES = sel("otel_agents_fleet_tool_failures_total", SERVICE, AGENT)
TOOL_RETRIES = sel("otel_agents_fleet_tool_retries_total", SERVICE, AGENT)
VERDICTS = sel("otel_agents_fleet_policy_verdicts_total", SERVICE)
APPROVAL_WAIT = sel("otel_agents_fleet_approval_wait_seconds_bucket", SERVICE)
APPROVALS_ANSWERED = sel("otel_agents_fleet_approval_wait_seconds_count", SERVICE)
DENIED_OR_ESCALATED = sel(
    "otel_agents_fleet_policy_verdicts_total",
    SERVICE,
    'otel_agents_policy_verdict=~"deny|escalate"',
)
ANOMALIES = sel("otel_agents_fleet_anomalies_total", SERVICE)
RETRY_LOOPS = sel(
    "otel_agents_fleet_anomalies_total", SERVICE, 'otel_agents_detector_name="retry_loop"'
)
RUNS = sel("otel_agents_fleet_runs_total", SERVICE, AGENT)
RUN_COST = sel("otel_agents_fleet_run_cost_bucket", SERVICE, AGENT)
SPAN_DURATION = sel("traces_span_metrics_duration_milliseconds_bucket", SERVICE, AGENT)
ROOT_SPAN_DURATION = sel(
    "traces_span_metrics_duration_milliseconds_bucket",
    SERVICE,
    AGENT,
    'gen_ai_operation_name="invoke_agent"',
)
SPAN_ERRORS = sel(
    "traces_span_metrics_calls_total", SERVICE, AGENT, 'status_code="STATUS_CODE_ERROR"'
)

TOOL_ERRORS_IN_JAEGER = jaeger_link(
    "Failed calls of ${__field.labels.gen_ai_tool_name} in Jaeger",
    jaeger_tags(**{"gen_ai.tool.name": "${__field.labels.gen_ai_tool_name}", "error": "true"}),
)
TOOL_CALLS_IN_JAEGER = jaeger_link(
    "Calls of ${__field.labels.gen_ai_tool_name} in Jaeger",
    jaeger_tags(**{"gen_ai.tool.name": "${__field.labels.gen_ai_tool_name}"}),
)
FINDINGS_IN_JAEGER = jaeger_link(
    "${__field.labels.otel_agents_detector_name} findings in Jaeger",
    jaeger_tags(**{"otel_agents.detector.name": "${__field.labels.otel_agents_detector_name}"}),
)
VERDICTS_IN_JAEGER = jaeger_link(
    "${__field.labels.otel_agents_policy_verdict} verdicts in Jaeger",
    jaeger_tags(**{"otel_agents.policy.verdict": "${__field.labels.otel_agents_policy_verdict}"}),
)
MODEL_IN_JAEGER = jaeger_link(
    "Calls to ${__field.labels.gen_ai_request_model} in Jaeger",
    jaeger_tags(**{"gen_ai.request.model": "${__field.labels.gen_ai_request_model}"}),
)

EXPENSIVE_RUNS = TraceSearch(
    "Recent runs over budget: $service_name",
    "$service_name",
    "otel_agents.detector.name=budget_exceeded",
    20,
)
COSTLY_CALLS = TraceSearch(
    "Recent runs with a cost spike: $service_name",
    "$service_name",
    "otel_agents.detector.name=cost_spike",
    20,
)
RETRIED_RUNS = TraceSearch(
    "Recent runs with a retry loop: $service_name",
    "$service_name",
    "otel_agents.detector.name=retry_loop",
    20,
)


def alerts_row(d: dashboard.Dashboard) -> dashboard.Dashboard:
    alert_rules = (
        dashboard.Panel()
        .type("alertlist")
        .title("Alert rules firing or pending (Prometheus)")
        .description(
            "The otel-agents alert rules (collector-config/prometheus/rules/) that are firing or "
            "pending now. Each rule's `jaeger` annotation links to the matching trace search."
        )
        .height(8)
        .span(12)
        .options(
            {
                "viewMode": "list",
                "groupMode": "default",
                "groupBy": [],
                "maxItems": 50,
                "sortOrder": 3,  # importance
                "dashboardAlerts": False,
                "alertName": "",
                "alertInstanceLabelFilter": "",
                "datasource": PROMETHEUS_NAME,
                "showInstances": True,
                "stateFilter": {
                    "firing": True,
                    "pending": True,
                    "recovering": True,
                    "noData": False,
                    "normal": False,
                    "error": True,
                },
            }
        )
    )
    delivered = (
        dashboard.Panel()
        .type("alertGroups")
        .title("Alerts delivered (Alertmanager)")
        .description(
            "Alert groups in Alertmanager, as routed to the receivers in "
            "collector-config/alertmanager/alertmanager.yml."
        )
        .height(8)
        .span(12)
        .options({"alertmanager": ALERTMANAGER_NAME, "expandAll": False, "labels": ""})
    )
    return d.with_row(dashboard.Row("Alerts")).with_panel(alert_rules).with_panel(delivered)


def cost_row(d: dashboard.Dashboard) -> dashboard.Dashboard:
    return (
        d.with_row(dashboard.Row("Cost"))
        .with_panel(
            big_number(
                "LLM cost in the time range",
                "US dollars spent on LLM calls (from otel_agents.cost.usd on spans).",
                "currencyUSD",
                f"sum({new_in(LLM_COST, RANGE)})",
                "USD",
            )
        )
        .with_panel(
            big_number(
                "Runs in the time range",
                "Finished agent runs (root invoke_agent spans).",
                "short",
                f"sum({new_in(RUNS, RANGE)})",
                "runs",
            )
        )
        .with_panel(
            big_number(
                "Average run cost",
                "LLM cost per finished run in the time range.",
                "currencyUSD",
                f"sum({new_in(LLM_COST, RANGE)}) / sum({new_in(RUNS, RANGE)})",
                "USD per run",
            )
        )
        .with_panel(
            big_number(
                "Anomalies in the time range",
                "Detector findings, in-process and collector.",
                "short",
                f"sum({new_in(ANOMALIES, RANGE)})",
                "findings",
            )
        )
        .with_panel(
            big_number(
                "Denied or escalated calls",
                "Policy verdicts deny and escalate in the time range.",
                "short",
                f"sum({new_in(DENIED_OR_ESCALATED, RANGE)})",
                "calls",
            )
        )
        .with_panel(
            big_number(
                "Approvals waiting now",
                "Tool calls held for a human approval right now (otel_agents_approvals_pending).",
                "short",
                f"sum({sel('otel_agents_approvals_pending', SERVICE)})",
                "waiting",
            )
        )
        .with_panel(
            graph(
                "LLM cost by service",
                "US dollars spent in each interval, by service.",
                "currencyUSD",
                [(total("service_name", LLM_COST, INTERVAL), "{{service_name}}")],
                bars=True,
            )
        )
        .with_panel(
            graph(
                "LLM cost by agent and model",
                "US dollars spent in each interval, by agent and model.",
                "currencyUSD",
                [
                    (
                        total(
                            "service_name, gen_ai_agent_name, gen_ai_request_model",
                            LLM_COST,
                            INTERVAL,
                        ),
                        "{{gen_ai_agent_name}} / {{gen_ai_request_model}}",
                    )
                ],
                bars=True,
                links=[MODEL_IN_JAEGER],
            )
        )
        .with_panel(
            graph(
                "Run cost by agent (p50, p95)",
                "Cost of whole runs (otel_agents.run.cost.usd on the root span).",
                "currencyUSD",
                [
                    (quantile(0.5, "gen_ai_agent_name", RUN_COST), "p50 {{gen_ai_agent_name}}"),
                    (quantile(0.95, "gen_ai_agent_name", RUN_COST), "p95 {{gen_ai_agent_name}}"),
                ],
            )
        )
        .with_panel(
            ranking(
                "Most expensive agents and models in the time range",
                "LLM cost by agent and model.",
                "currencyUSD",
                total("service_name, gen_ai_agent_name, gen_ai_request_model", LLM_COST, RANGE),
                "{{gen_ai_agent_name}} / {{gen_ai_request_model}}",
                links=[MODEL_IN_JAEGER],
                width=12,
            )
        )
    )


def tokens_row(d: dashboard.Dashboard) -> dashboard.Dashboard:
    return (
        d.with_row(dashboard.Row("Tokens and LLM calls"))
        .with_panel(
            graph(
                "Tokens in and out by model",
                "Input and output tokens in each interval.",
                "short",
                [
                    (
                        total("gen_ai_request_model", TOKENS_IN, INTERVAL),
                        "in {{gen_ai_request_model}}",
                    ),
                    (
                        total("gen_ai_request_model", TOKENS_OUT, INTERVAL),
                        "out {{gen_ai_request_model}}",
                    ),
                ],
                bars=True,
            )
        )
        .with_panel(
            graph(
                "LLM calls by provider and model",
                "Model calls in each interval.",
                "short",
                [
                    (
                        total("gen_ai_provider_name, gen_ai_request_model", LLM_CALLS, INTERVAL),
                        "{{gen_ai_provider_name}} {{gen_ai_request_model}}",
                    )
                ],
                bars=True,
            )
        )
    )


def tools_row(d: dashboard.Dashboard) -> dashboard.Dashboard:
    return (
        d.with_row(dashboard.Row("Tools and retries"))
        .with_panel(
            graph(
                "Tool calls by tool",
                "Tool executions in each interval.",
                "short",
                [
                    (
                        total("service_name, gen_ai_tool_name", TOOL_CALLS, INTERVAL),
                        "{{gen_ai_tool_name}}",
                    )
                ],
                bars=True,
                links=[TOOL_CALLS_IN_JAEGER],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Tool failures by tool",
                "Tool executions that ended in an error, in each interval.",
                "short",
                [
                    (
                        total("service_name, gen_ai_tool_name", TOOL_FAILURES, INTERVAL),
                        "{{gen_ai_tool_name}}",
                    )
                ],
                bars=True,
                links=[TOOL_ERRORS_IN_JAEGER],
                width=8,
            )
        )
        .with_panel(
            ranking(
                "Tool failure ratio in the time range",
                "Failed calls / calls, by tool.",
                "percentunit",
                f"{total('service_name, gen_ai_tool_name', TOOL_FAILURES, RANGE)}"
                f" / {total('service_name, gen_ai_tool_name', TOOL_CALLS, RANGE)}",
                "{{gen_ai_tool_name}}",
                links=[TOOL_ERRORS_IN_JAEGER],
            )
        )
        .with_panel(
            graph(
                "Tool retries by tool",
                "Tool calls repeating an identical earlier call of the same run (attempt > 1).",
                "short",
                [
                    (
                        total("service_name, gen_ai_tool_name", TOOL_RETRIES, INTERVAL),
                        "{{gen_ai_tool_name}}",
                    )
                ],
                bars=True,
                links=[TOOL_CALLS_IN_JAEGER],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Retry-loop findings",
                "Retry loops found, by who found them (the process or the collector).",
                "short",
                [
                    (
                        total(
                            "service_name, otel_agents_detector_name, otel_agents_detector_source",
                            RETRY_LOOPS,
                            INTERVAL,
                        ),
                        "{{service_name}} ({{otel_agents_detector_source}})",
                    )
                ],
                bars=True,
                links=[FINDINGS_IN_JAEGER],
                width=8,
            )
        )
        .with_panel(
            ranking(
                "Most retried tools in the time range",
                "Retried tool calls by tool.",
                "short",
                total("service_name, gen_ai_tool_name", TOOL_RETRIES, RANGE),
                "{{gen_ai_tool_name}}",
                links=[TOOL_CALLS_IN_JAEGER],
            )
        )
    )


def governance_row(d: dashboard.Dashboard) -> dashboard.Dashboard:
    return (
        d.with_row(dashboard.Row("Policy and approvals"))
        .with_panel(
            graph(
                "Policy verdicts by verdict and rule",
                "Decision-rights verdicts on tool calls, in each interval.",
                "short",
                [
                    (
                        total(
                            "service_name, otel_agents_policy_verdict, otel_agents_policy_rule",
                            VERDICTS,
                            INTERVAL,
                        ),
                        "{{otel_agents_policy_verdict}} ({{otel_agents_policy_rule}})",
                    )
                ],
                bars=True,
                links=[VERDICTS_IN_JAEGER],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Approval wait by outcome (p50, p95)",
                "How long tool calls waited for a person, by outcome.",
                "s",
                [
                    (
                        quantile(0.5, "otel_agents_approval_status", APPROVAL_WAIT),
                        "p50 {{otel_agents_approval_status}}",
                    ),
                    (
                        quantile(0.95, "otel_agents_approval_status", APPROVAL_WAIT),
                        "p95 {{otel_agents_approval_status}}",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            ranking(
                "Approval outcomes in the time range",
                "Answered approval requests by outcome.",
                "short",
                total("service_name, otel_agents_approval_status", APPROVALS_ANSWERED, RANGE),
                "{{otel_agents_approval_status}}",
            )
        )
    )


def anomalies_row(d: dashboard.Dashboard) -> dashboard.Dashboard:
    return (
        d.with_row(dashboard.Row("Anomalies"))
        .with_panel(
            graph(
                "Anomalies by kind and source",
                "Detector findings in each interval, by kind and by who found them: process (the "
                "in-process detectors) or collector (the fleet detectors).",
                "short",
                [
                    (
                        total(
                            "service_name, otel_agents_detector_name, otel_agents_detector_source",
                            ANOMALIES,
                            INTERVAL,
                        ),
                        "{{otel_agents_detector_name}} ({{otel_agents_detector_source}})",
                    )
                ],
                bars=True,
                links=[FINDINGS_IN_JAEGER],
                width=16,
            )
        )
        .with_panel(
            ranking(
                "Anomalies in the time range by kind",
                "Detector findings by kind.",
                "short",
                total("service_name, otel_agents_detector_name", ANOMALIES, RANGE),
                "{{otel_agents_detector_name}}",
                links=[FINDINGS_IN_JAEGER],
            )
        )
    )


def latency_row(d: dashboard.Dashboard) -> dashboard.Dashboard:
    return (
        d.with_row(dashboard.Row("Latency (exemplars link to Jaeger)"))
        .with_panel(
            graph(
                "Latency by span name (p50, p95, p99)",
                "From the collector's span metrics. The dots are exemplars: click one to open "
                "its trace.",
                "ms",
                [
                    (
                        quantile(q, "span_name", SPAN_DURATION),
                        f"p{round(q * 100)} {{{{span_name}}}}",
                    )
                    for q in (0.5, 0.95, 0.99)
                ],
                exemplar=True,
                width=24,
            )
        )
        .with_panel(
            graph(
                "Run duration by agent (p95, max bucket)",
                "invoke_agent spans (runs and their sub-agents). Exemplars link to the runs' "
                "traces.",
                "ms",
                [
                    (quantile(0.95, "span_name", ROOT_SPAN_DURATION), "p95 {{span_name}}"),
                    (quantile(1.0, "span_name", ROOT_SPAN_DURATION), "max {{span_name}}"),
                ],
                exemplar=True,
            )
        )
        .with_panel(
            graph(
                "Failing spans by span name",
                "Spans that ended with an error. Exemplars link to the failing traces.",
                "short",
                [(total("span_name", SPAN_ERRORS, INTERVAL), "{{span_name}}")],
                exemplar=True,
                bars=True,
            )
        )
    )


def runs_row(d: dashboard.Dashboard) -> dashboard.Dashboard:
    return (
        d.with_row(dashboard.Row("Runs in Jaeger"))
        .with_panel(
            trace_table(
                EXPENSIVE_RUNS,
                "Runs the budget detector flagged (otel_agents.detector.name=budget_exceeded), "
                "newest first. "
                "Click a trace id to open the run.",
            )
        )
        .with_panel(
            trace_table(
                COSTLY_CALLS,
                "Runs with an LLM call far over its norm (otel_agents.detector.name=cost_spike).",
            )
        )
        .with_panel(
            trace_table(
                RETRIED_RUNS,
                "Runs that retried the same tool call in a loop "
                "(otel_agents.detector.name=retry_loop).",
            )
        )
    )


def variables(d: dashboard.Dashboard) -> dashboard.Dashboard:
    datasource = (
        dashboard.DatasourceVariable("datasource")
        .label("Prometheus")
        .type("prometheus")
        .current(VariableOption(selected=True, text=PROMETHEUS_NAME, value=PROMETHEUS_UID))
    )

    def label_values(name: str, label: str) -> dashboard.QueryVariable:
        return (
            dashboard.QueryVariable(name)
            .label(label)
            .datasource(PROM)
            .query(VARIABLE_QUERIES[name])
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .current(VariableOption(selected=True, text="All", value="$__all"))
        )

    jaeger_url = (
        dashboard.TextBoxVariable("jaeger_url")
        .label("Jaeger UI")
        .default_value(JAEGER_UI_DEFAULT)
        .current(VariableOption(selected=True, text=JAEGER_UI_DEFAULT, value=JAEGER_UI_DEFAULT))
    )
    return (
        d.with_variable(datasource)
        .with_variable(label_values("service_name", "Service"))
        .with_variable(label_values("agent", "Agent"))
        .with_variable(jaeger_url)
    )


def build() -> dashboard.Dashboard:
    d = (
        dashboard.Dashboard(DASHBOARD_TITLE)
        .uid(DASHBOARD_UID)
        .description(
            "What AI agents did across the fleet: cost, tokens, tools, retries, policy verdicts, "
            "approvals, anomalies and latency, with links into Jaeger. Generated by "
            "dashboards/generate.py; do not edit the JSON by hand."
        )
        .tags(["otel-agents", "agents", "llm"])
        .time("now-6h", "now")
        .refresh("30s")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .readonly()
        # Grafana's own annotations and alert state changes, as a new dashboard has them.
        .annotation(
            dashboard.AnnotationQuery()
            .name("Annotations & Alerts")
            .built_in(1)
            .type("dashboard")
            .datasource(DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .enable(True)
            .hide(True)
            .icon_color("rgba(0, 211, 255, 1)")
        )
        .link(
            dashboard.DashboardLink("Jaeger")
            .type(DashboardLinkType.LINK)
            .url("${jaeger_url}/search")
            .target_blank(True)
        )
    )
    for row in (
        variables,
        alerts_row,
        cost_row,
        tokens_row,
        tools_row,
        governance_row,
        anomalies_row,
        latency_row,
        runs_row,
    ):
        d = row(d)
    return d


def build_json() -> dict[str, Any]:
    """The dashboard as Grafana reads it, with panel ids numbered in order."""
    data: dict[str, Any] = json.loads(JSONEncoder().encode(build().build()))
    for number, panel in enumerate(data["panels"], start=1):
        panel["id"] = number
    return data


def render() -> str:
    return json.dumps(build_json(), indent=2, sort_keys=True) + "\n"


def prometheus_queries(dashboard_json: dict[str, Any]) -> list[PanelQuery]:
    """Every Prometheus query of a dashboard's panels, in panel order."""
    queries = []
    for panel in dashboard_json["panels"]:
        for query in panel.get("targets") or []:
            if "expr" in query:
                queries.append(
                    PanelQuery(panel["title"], query["expr"], bool(query.get("exemplar")))
                )
    return queries


def jaeger_searches(dashboard_json: dict[str, Any]) -> list[TraceSearch]:
    """Every Jaeger search of a dashboard's panels, in panel order."""
    return [
        TraceSearch(panel["title"], query["service"], query["tags"], query["limit"])
        for panel in dashboard_json["panels"]
        for query in panel.get("targets") or []
        if query.get("queryType") == "search"
    ]


def panel_queries() -> list[PanelQuery]:
    """The Prometheus queries of the generated dashboard: (title, expr, exemplar)."""
    return prometheus_queries(build_json())


def trace_searches() -> list[TraceSearch]:
    """The Jaeger searches of the generated dashboard."""
    return jaeger_searches(build_json())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT} is stale: run python -m dashboards.generate", file=sys.stderr)
            return 1
        print(f"{OUTPUT.name} is up to date")
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
