"""`otel-agents demo`, run as a user runs it, and its whole story read back from the store."""

from __future__ import annotations

import gzip
import importlib.util
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from clitools import Result, cli

pytest.importorskip("openai")
MCP = importlib.util.find_spec("mcp") is not None


def _nodes(tree: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield tree
    for child in tree.get("children", ()):
        yield from _nodes(child)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result, dict[str, Any]]:
    store = tmp_path_factory.mktemp("demo") / "traces.db"
    result = cli(store, "--store", str(store), "demo", script=True)
    assert result.code == 0, result.err
    [run_id] = {w for w in result.out.split() if len(w) == 8 and f"show {w} " in result.out}
    shown = cli(store, "show", run_id, "--json")
    assert shown.code == 0, shown.err
    return store, result, shown.json()


def test_the_demo_prints_the_story_and_the_commands_to_look_at_it(demo: Any) -> None:
    store, result, shown = demo
    out = result.out
    assert "handoff       intake -> provisioning: rejected" in out
    assert out.count("verify_bank_account: failed (TimeoutError)") == 3
    assert "verify_bank_account: stopped by policy (ToolCallEscalated)" in out
    assert "create_account: approval requested (new-accounts-need-finance)" in out
    assert "grant_permission: stopped by policy (ToolCallDenied)" in out
    assert "1 denied, 1 escalated, 1 held for approval" in out
    assert "approved by finance-oncall (demo auto-approval)" in out
    assert "detector findings: budget_exceeded, cost_spike, retry_loop" in out
    short = shown["run"]["run_id"][:8]
    assert f"otel-agents --store {store} show {short}" in out
    assert "Jaeger" not in out  # no OTLP endpoint: nothing to look at there
    assert result.err == ""


def test_the_whole_story_is_in_the_stored_spans(demo: Any) -> None:
    _, _, shown = demo
    run = shown["run"]
    assert run["agent"] == "vendor-onboarding" and run["status"] == "ok"
    assert (run["llm_calls"], run["tool_calls"], run["handoffs"]) == (12, 9, 2)
    assert run["retries"] == 3 and run["anomalies"] == 3
    nodes = list(_nodes(shown["path"][0]))

    handoffs = [n for n in nodes if n["kind"] == "handoff"]
    assert [h["accepted"] for h in handoffs] == [False, True]
    assert handoffs[0]["checks_failed"] == ["has_tax_id: tax_id missing"]
    assert (handoffs[0]["from"], handoffs[0]["to"]) == ("intake", "provisioning")

    tools = [n for n in nodes if n["kind"] == "tool"]
    bank = [t for t in tools if t["tool"] == "verify_bank_account"]
    assert [t["attempt"] for t in bank] == [1, 2, 3, 4]
    assert [t["error"]["type"] for t in bank[:3]] == ["TimeoutError"] * 3
    assert bank[3]["policy"]["verdict"] == "escalate"
    assert bank[3]["policy"]["rule"] == "limits.retries"
    assert bank[3]["error"]["type"] == "otel_agents.errors.ToolCallEscalated"
    assert [f["detector"] for f in bank[2]["findings"]] == ["retry_loop"]

    [create] = [t for t in tools if t["tool"] == "create_account"]
    assert create["status"] != "error"
    assert create["policy"]["verdict"] == "require_approval"
    [approval] = [n for n in _nodes(create) if n["kind"] == "approval"]
    assert approval["approval_status"] == "approved"
    assert approval["approver"] == "finance-oncall (demo auto-approval)"

    admin, billing = [t for t in tools if t["tool"] == "grant_permission"]
    assert admin["policy"] == {
        "verdict": "deny",
        "rule": "no-admin-for-vendors",
        "reason": "Vendor accounts never get the admin or owner role.",
        "mode": "enforce",
    }
    assert admin["error"]["type"] == "otel_agents.errors.ToolCallDenied"
    assert billing["policy"]["verdict"] == "allow" and billing["status"] != "error"

    [expensive] = [n for n in nodes if n["kind"] == "llm" and n.get("findings")]
    assert expensive["input_tokens"] == 180_000
    assert {f["detector"] for f in expensive["findings"]} == {"cost_spike", "budget_exceeded"}
    assert expensive["requested_tools"] == ["create_account"]


def test_every_tool_call_is_linked_to_the_model_decision_that_asked_for_it(demo: Any) -> None:
    _, _, shown = demo
    nodes = list(_nodes(shown["path"][0]))
    llm_ids = {n["span_id"]: n for n in nodes if n["kind"] == "llm"}
    for tool in (n for n in nodes if n["kind"] == "tool"):
        assert tool["match"] == "call_id"
        decision = llm_ids[tool["requested_by"]]
        assert tool["tool"] in decision["requested_tools"]
        assert tool["reasoning"] == decision["text"]  # content capture is on in the demo


def test_the_audit_log_of_the_demo_verifies(demo: Any) -> None:
    store, _, shown = demo
    audit = cli(store, "audit", "--run", shown["run"]["run_id"][:8])
    assert audit.code == 0, audit.err
    assert len(audit.out.splitlines()) == 9
    verify = cli(store, "audit", "verify")
    assert verify.code == 0, verify.out + verify.err


class _OtlpSink:
    """A loopback OTLP/HTTP endpoint that keeps the trace payloads it receives."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/traces":
                    sink.bodies.append(body)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def test_with_an_otlp_endpoint_the_run_goes_there_too_and_the_demo_says_where_to_look(
    tmp_path: Path,
) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    sink = _OtlpSink()
    store = tmp_path / "traces.db"
    try:
        result = cli(
            store,
            "demo",
            OTEL_EXPORTER_OTLP_ENDPOINT=sink.url,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_METRICS_EXPORTER="none",
        )
    finally:
        sink.server.shutdown()
    assert result.code == 0, result.err
    exported: set[str] = set()
    trace_ids: set[str] = set()
    for body in sink.bodies:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    exported.add(span.name)
                    trace_ids.add(span.trace_id.hex())
    assert {"invoke_agent vendor-onboarding", "execute_tool create_account"} <= exported
    [trace_id] = trace_ids
    assert f"Also sent over OTLP to {sink.url} ({len(exported_ids(sink))} spans):" in result.out
    assert f"Jaeger   http://localhost:16686/trace/{trace_id}" in result.out
    # ... and the local copy is kept, so that the printed `show` command works.
    assert cli(store, "runs", "--json").json()[0]["trace_id"] == trace_id


def exported_ids(sink: _OtlpSink) -> set[bytes]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    ids: set[bytes] = set()
    for body in sink.bodies:
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
            for scope_spans in resource_spans.scope_spans:
                ids.update(span.span_id for span in scope_spans.spans)
    return ids


def test_when_nothing_reaches_the_otlp_endpoint_the_demo_says_so(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    store = tmp_path / "traces.db"
    result = cli(
        store,
        "demo",
        OTEL_EXPORTER_OTLP_ENDPOINT=closed,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_METRICS_EXPORTER="none",
    )
    assert result.code == 0, result.err
    assert f"Nothing reached the OTLP endpoint {closed}:" in result.out
    assert "failed to export" in result.out or "not sent within the flush timeout" in result.out
    assert "sent over OTLP" not in result.out and "Jaeger" not in result.out
    assert cli(store, "runs", "--json").json()[0]["status"] == "ok"  # the local copy is whole


def test_show_without_a_run_shows_the_newest(demo: Any) -> None:
    store, _, shown = demo
    for args in (("show",), ("show", "latest")):
        result = cli(store, *args)
        assert result.code == 0, result.err
        assert result.out.startswith(f"run {shown['run']['run_id']}")


def test_without_the_openai_sdk_the_demo_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    from otel_agents.cli import main

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "openai" else real_find_spec(name, *a),
    )
    assert main(["--store", str(tmp_path / "traces.db"), "demo"]) == 1
    assert "the demo needs openai: pip install 'otel-agents[demo]'" in capsys.readouterr().err
    assert not (tmp_path / "traces.db").exists()


@pytest.fixture(scope="module")
def mcp_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result, dict[str, Any]]:
    if not MCP:
        pytest.skip("the MCP step needs the mcp SDK")
    store = tmp_path_factory.mktemp("mcp-demo") / "traces.db"
    result = cli(store, "--store", str(store), "demo", "--mcp")
    assert result.code == 0, result.err
    shown = cli(store, "show", "--json")
    assert shown.code == 0, shown.err
    return store, result, shown.json()


def test_with_mcp_the_story_ends_with_one_call_over_mcp(mcp_demo: Any) -> None:
    store, result, shown = mcp_demo
    assert result.err == ""
    assert "set_up_billing: approval requested (defaults.irreversible)" in result.out
    # One more decision, one more tool call (the server's side of it is the same call),
    # one more approval.
    assert "1 denied, 1 escalated, 2 held for approval" in result.out
    run = shown["run"]
    assert (run["llm_calls"], run["tool_calls"], run["handoffs"]) == (13, 10, 2)
    audit = cli(store, "audit", "--run", run["run_id"][:8])
    assert len(audit.out.splitlines()) == 11  # both sides of the MCP call, one call id


def test_the_mcp_call_shows_its_server_and_its_servers_side(mcp_demo: Any) -> None:
    store, _, shown = mcp_demo
    nodes = list(_nodes(shown["path"][0]))
    called, served = [n for n in nodes if n["kind"] == "tool" and n["tool"] == "set_up_billing"]
    assert called["mcp"] == {
        "side": "client",
        "server": "billing-server",
        "protocol_version": "2026-07-28",
    }
    assert served["mcp"]["side"] == "server" and served["mcp"]["server"] == "billing-server"
    # One call: the server's span is under the client's, with its call id and attempt,
    # and the approval was asked for once.
    assert served in list(_nodes(called))
    assert called["match"] == "call_id" and called["requested_by"]  # the model asked for it
    assert (served["call_id"], served["attempt"]) == (called["call_id"], called["attempt"])
    assert [n["kind"] for n in _nodes(called)].count("approval") == 1
    assert called["policy"]["verdict"] == "require_approval"
    text = cli(store, "show", shown["run"]["run_id"][:8], COLUMNS="200").out
    assert "set_up_billing ✓  require_approval  via mcp billing-server" in text
    assert "served by mcp billing-server" in text
