"""The demo and scripted fleet runs through the real collector into Jaeger, Prometheus,
the alert rules and Alertmanager: what a user of `docker compose up` sees, checked."""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from typing import Any

from backend_stack import (
    CONFIG,
    REPO,
    http_get,
    iter_links,
    parent_id,
    span_tags,
    spans_by_id,
    wait_for,
)
from conftest import CLEAN_RUNS, Fleet

DEMO = "otel-agents-demo"
CLEAN = "fleet-clean"
ANOMALOUS = "fleet-anomalous"


def whole_trace(fleet: Fleet, service: str, trace_id: str) -> dict[str, Any]:
    """The trace from Jaeger once it holds every span the program's own store holds."""
    with fleet.workload.store(service) as store:
        run_id = next(r.run_id for r in fleet.workload.runs[service] if r.trace_id == trace_id)
        expected = len(store.run_spans(run_id))

    def complete() -> dict[str, Any] | None:
        trace = fleet.stack.jaeger_trace(trace_id)
        return trace if trace is not None and len(trace["spans"]) >= expected else None

    trace = wait_for(f"trace {trace_id} of {service} in Jaeger", complete, timeout=180)
    assert len(trace["spans"]) == expected
    return trace


def by_name(trace: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [s for s in trace["spans"] if s["operationName"] == name]


def event_values(span: dict[str, Any], key: str) -> list[Any]:
    return [f["value"] for log in span.get("logs", []) for f in log["fields"] if f["key"] == key]


def test_the_demo_decision_path_is_in_jaeger(fleet: Fleet) -> None:
    (run,) = fleet.workload.runs[DEMO]
    trace = whole_trace(fleet, DEMO, run.trace_id)
    spans = spans_by_id(trace)
    names = Counter(s["operationName"] for s in trace["spans"])
    assert names["invoke_agent vendor-onboarding"] == 1
    assert names["invoke_agent provisioning"] == 1
    assert names["handoff provisioning"] == 2  # rejected once, then accepted
    assert names["execute_tool verify_bank_account"] == 4
    assert names["chat gpt-4.1-mini"] == 13  # the last turn asks for billing, over MCP

    (root,) = by_name(trace, "invoke_agent vendor-onboarding")
    root_tags = span_tags(root)
    assert parent_id(root) is None
    assert root_tags["otel_agents.run.id"] == run.run_id
    assert math.isclose(root_tags["otel_agents.run.cost.usd"], run.cost_usd or 0, rel_tol=1e-9)
    # Three timeouts; the escalated and the denied calls are refusals, not tool failures.
    assert root_tags["otel_agents.run.tool_failures"] == 3

    (provisioning,) = by_name(trace, "invoke_agent provisioning")
    for tool in (s for s in trace["spans"] if is_callers_tool_span(s)):
        # Each tool call nests in its agent and links to the LLM call that asked for it.
        assert spans[parent_id(tool) or ""]["operationName"].startswith("invoke_agent")
        (requester,) = list(iter_links(tool))
        assert spans[requester]["operationName"] == "chat gpt-4.1-mini"
        assert span_tags(tool)["otel_agents.decision.match"] == "call_id"
    verify = sorted(
        by_name(trace, "execute_tool verify_bank_account"), key=lambda s: s["startTime"]
    )
    assert [span_tags(s)["otel_agents.tool.call.attempt"] for s in verify] == [1, 2, 3, 4]
    assert "retry_loop" in event_values(verify[2], "otel_agents.detector.name")
    assert span_tags(verify[3])["otel_agents.policy.verdict"] == "escalate"
    assert all(parent_id(s) == provisioning["spanID"] for s in verify)

    handoffs = sorted(by_name(trace, "handoff provisioning"), key=lambda s: s["startTime"])
    assert [span_tags(h)["otel_agents.handoff.accepted"] for h in handoffs] == [False, True]
    assert span_tags(handoffs[0])["otel_agents.handoff.from"] == "intake"
    assert span_tags(handoffs[0])["otel_agents.handoff.checks.failed"]

    (approval,) = by_name(trace, "await_approval create_account")
    assert spans[parent_id(approval) or ""]["operationName"] == "execute_tool create_account"
    assert span_tags(approval)["otel_agents.approval.status"] == "approved"
    denied = [s for s in by_name(trace, "execute_tool grant_permission")
              if span_tags(s).get("otel_agents.policy.verdict") == "deny"]  # fmt: skip
    assert len(denied) == 1


def is_callers_tool_span(span: dict[str, Any]) -> bool:
    """A tool call as its caller made it: not the MCP SDK's request spans (CLIENT/SERVER,
    named by the MCP method), nor the MCP server's span of the call it served."""
    tags = span_tags(span)
    served = "mcp.method.name" in tags and tags.get("gen_ai.tool.type") == "function"
    internal = tags.get("span.kind", "internal") == "internal"  # Jaeger's tag for the kind
    return span["operationName"].startswith("execute_tool") and internal and not served


def test_an_mcp_tool_call_is_one_trace_and_counted_once(fleet: Fleet) -> None:
    """The demo's billing call over MCP: the caller's span (server name, method, governed:
    the tool is destructive, so it needs approval), the server's span of it in the same
    trace, beneath it; the fleet counts it once (the store-to-Prometheus match checks it)."""
    (run,) = fleet.workload.runs[DEMO]
    trace = whole_trace(fleet, DEMO, run.trace_id)
    spans = spans_by_id(trace)
    calls = by_name(trace, "execute_tool set_up_billing")
    (client,) = [s for s in calls if span_tags(s).get("gen_ai.tool.type") == "extension"]
    (served,) = [s for s in calls if span_tags(s).get("gen_ai.tool.type") == "function"]
    tags = span_tags(client)
    assert tags["mcp.method.name"] == "tools/call"
    assert tags["otel_agents.mcp.server.name"] == "billing-server"
    assert tags["otel_agents.policy.verdict"] == "require_approval"
    attempt = "otel_agents.tool.call.attempt"
    assert span_tags(served)[attempt] == tags[attempt]
    ancestor = parent_id(served)
    while ancestor is not None and ancestor != client["spanID"]:
        ancestor = parent_id(spans[ancestor])
    assert ancestor == client["spanID"]  # the served call is inside the call that made it


def test_jaeger_finds_runs_by_their_tags(fleet: Fleet) -> None:
    (demo,) = fleet.workload.runs[DEMO]
    whole_trace(fleet, DEMO, demo.trace_id)
    searches = {
        # in-process findings are span events; Jaeger searches their fields too
        (DEMO, "otel_agents.detector.name", "retry_loop"): demo.trace_id,
        (DEMO, "otel_agents.policy.verdict", "deny"): demo.trace_id,
        (DEMO, "otel_agents.run.id", demo.run_id): demo.trace_id,
        (DEMO, "gen_ai.tool.name", "grant_permission"): demo.trace_id,
    }
    anomalous = {r.agent: r for r in fleet.workload.runs[ANOMALOUS]}
    for run in anomalous.values():
        whole_trace(fleet, ANOMALOUS, run.trace_id)
    # collector findings are on the span itself
    searches[(ANOMALOUS, "otel_agents.detector.name", "cost_spike")] = anomalous[
        "research"
    ].trace_id
    searches[(ANOMALOUS, "otel_agents.detector.name", "swallowed_tool_failure")] = anomalous[
        "billing"
    ].trace_id
    searches[(ANOMALOUS, "otel_agents.detector.source", "collector")] = anomalous[
        "research"
    ].trace_id
    for (service, key, value), trace_id in searches.items():
        found = {t["traceID"] for t in fleet.stack.jaeger_search(service, {key: value})}
        assert trace_id in found, (service, key, value, found)
    # a denied call is not the tool failing: the cleanup run is not flagged as swallowing one
    found = {
        t["traceID"]
        for t in fleet.stack.jaeger_search(
            ANOMALOUS, {"otel_agents.detector.name": "swallowed_tool_failure"}
        )
    }
    assert anomalous["cleanup"].trace_id not in found


def test_anomalous_runs_are_kept_whole_and_clean_runs_sampled_out(fleet: Fleet) -> None:
    anomalous = fleet.workload.runs[ANOMALOUS] + fleet.workload.runs[DEMO]
    assert len(anomalous) == 6
    for run in fleet.workload.runs[ANOMALOUS]:
        whole_trace(fleet, ANOMALOUS, run.trace_id)  # every span, or it times out
    clean = fleet.workload.runs[CLEAN]
    assert len(clean) == CLEAN_RUNS and all(r.status == "ok" and r.anomalies == 0 for r in clean)
    # The clean runs reached the collector (their metrics are counted) ...
    counted = fleet.stack.promql(f'sum(otel_agents_fleet_runs_total{{service_name="{CLEAN}"}})')
    assert counted and float(counted[0]["value"][1]) == CLEAN_RUNS
    # ... and, at a sampling rate of 0 %, none of them was kept, though their decisions were
    # made long before the anomalous runs (sent after them) arrived whole.
    kept = [r for r in clean if fleet.stack.jaeger_trace(r.trace_id) is not None]
    assert kept == []


def test_prometheus_metrics_match_the_local_stores(live_prometheus_url: str, fleet: Fleet) -> None:
    def total(metric: str, service: str) -> float:
        result = fleet.stack.promql(f'sum({metric}{{service_name="{service}"}})')
        return sum(float(r["value"][1]) for r in result)

    for service, runs in fleet.workload.runs.items():
        cost = total("otel_agents_fleet_llm_cost_total", service)
        assert math.isclose(cost, sum(r.cost_usd or 0.0 for r in runs), rel_tol=1e-6), service
        assert total("otel_agents_fleet_llm_calls_total", service) == sum(r.llm_calls for r in runs)
        assert total("otel_agents_fleet_tool_calls_total", service) == sum(
            r.tool_calls for r in runs
        )
        tokens = total("otel_agents_fleet_llm_input_tokens_total", service)
        assert tokens == sum(r.input_tokens for r in runs)
        assert total("otel_agents_fleet_runs_total", service) == len(runs)
        # Span metrics count every span, the sampled-out ones too.
        assert total("traces_span_metrics_calls_total", service) == fleet.workload.spans[service]
    verdict = "otel_agents_policy_verdict"
    query = f'sum by ({verdict}) (otel_agents_fleet_policy_verdicts_total{{service_name="{DEMO}"}})'
    verdicts = {r["metric"][verdict]: float(r["value"][1]) for r in fleet.stack.promql(query)}
    # Approvals: create_account, and the billing call over MCP, on the caller's span and on
    # the server's (its own policy's verdict: one human approval let both through).
    assert verdicts["deny"] == 1 and verdicts["escalate"] == 1 and verdicts["require_approval"] == 3
    # The demo's three timeouts; its refused calls are verdicts, not tool failures.
    assert total("otel_agents_fleet_tool_failures_total", DEMO) == 3


def test_every_metric_the_rules_use_exists_in_prometheus(
    live_prometheus_url: str, fleet: Fleet
) -> None:
    rules = (CONFIG / "prometheus" / "rules" / "otel-agents.rules.yml").read_text()
    used = set(
        re.findall(r"\b((?:otel_agents|traces_span_metrics|gen_ai)_[a-z_]+)(?=[{\[ )])", rules)
    )
    present = set(http_get(f"{live_prometheus_url}/api/v1/label/__name__/values")["data"])
    used -= set(http_get(f"{live_prometheus_url}/api/v1/labels")["data"])  # label names
    # Emitted only when something goes wrong that this workload does not provoke.
    not_provoked = {"otel_agents_spans_dropped_total"}
    assert used - present == not_provoked


def test_alerts_fire_and_reach_the_webhook(live_prometheus_url: str, fleet: Fleet) -> None:
    webhook = fleet.stack.webhook
    assert webhook is not None
    expected = {
        ("AgentRetryLoop", ANOMALOUS),
        ("AgentCostSpike", DEMO), ("AgentCostSpike", ANOMALOUS),
        ("AgentSilentToolFailure", ANOMALOUS),
        ("AgentRunaway", ANOMALOUS),
        ("AgentPolicyDenials", DEMO), ("AgentPolicyDenials", ANOMALOUS),
        ("AgentPolicyEscalations", DEMO),
    }  # fmt: skip

    def delivered() -> set[tuple[str, str]]:
        return {
            (a["labels"]["alertname"], a["labels"].get("service_name", ""))
            for a in webhook.received()
        }

    try:
        got = wait_for(
            "Alertmanager to deliver the alerts",
            lambda: expected <= delivered() and delivered(),
            240,
        )
    except AssertionError as timeout:
        firing = {
            (a["labels"]["alertname"], a["labels"].get("service_name"))
            for a in fleet.stack.firing_alerts()
        }
        raise AssertionError(
            f"{timeout}; missing {expected - delivered()}; firing in Prometheus: {firing}"
        ) from None
    elapsed = time.monotonic() - fleet.workload.finished
    print(f"alerts delivered {elapsed:.1f}s after the last run finished: {sorted(got)}")
    # The demo's retry loop was escalated by its policy: Alertmanager's inhibit rule keeps
    # that one page (the escalation) and holds back the retry-loop alert it explains.
    held = http_get(f"{fleet.stack.alertmanager_url}/api/v2/alerts?inhibited=true&active=false")
    (demo_loop,) = [
        a
        for a in held
        if a["labels"]["alertname"] == "AgentRetryLoop" and a["labels"]["service_name"] == DEMO
    ]
    assert demo_loop["status"]["state"] == "suppressed" and demo_loop["status"]["inhibitedBy"]
    assert ("AgentRetryLoop", DEMO) not in got
    for alert in webhook.received():
        annotations = alert["annotations"]
        assert annotations["summary"] and annotations["runbook"]
        assert annotations["jaeger"].startswith("http://localhost:16686/search")
    # A clean run fires nothing.
    assert not [a for a in webhook.received() if a["labels"].get("service_name") == CLEAN]
    assert not [a for a in fleet.stack.firing_alerts() if a["labels"].get("service_name") == CLEAN]


def test_the_demo_says_what_reached_the_backend_and_where_to_look(fleet: Fleet) -> None:
    said = fleet.workload.demo_output
    (demo,) = fleet.workload.runs[DEMO]
    spans = fleet.workload.spans[DEMO]
    assert f"Also sent over OTLP to {fleet.stack.otlp_http_endpoint} ({spans} spans):" in said
    assert f"Jaeger   http://localhost:16686/trace/{demo.trace_id}" in said
    dashboard = json.loads((REPO / "dashboards" / "json" / "agent-operations.json").read_text())
    assert f"http://localhost:3000/d/{dashboard['uid']}/" in said


def test_the_collector_masks_secrets_other_instrumentations_left_on_spans(fleet: Fleet) -> None:
    (crash,) = [r for r in fleet.workload.runs[ANOMALOUS] if r.agent == "ops"]
    trace = whole_trace(fleet, ANOMALOUS, crash.trace_id)
    (leaky,) = by_name(trace, "POST /v1/completions")
    tags = span_tags(leaky)
    assert tags["http.request.header.authorization"] == "****"  # by its key
    assert "hunter2" not in tags["url.full"] and "sk-proj-" not in tags["app.note"]  # by value
    # ... while token counts, which a careless `.*token.*` key pattern would mask, survive.
    assert tags["gen_ai.usage.input_tokens"] == 1234 and tags["gen_ai.usage.output_tokens"] == 56
    assert tags["redaction.masked.count"] >= 3
