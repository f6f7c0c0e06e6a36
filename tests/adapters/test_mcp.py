"""The MCP adapter against the real `mcp` SDK: a real server and client over in-memory
streams, the real OpenTelemetry SDK with in-memory exporters."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from agents_testing import run_docs_example
from opentelemetry.trace import SpanKind, StatusCode

import otel_agents
from otel_agents import semconv as sc
from otel_agents.errors import ContractViolation, ToolCallDenied
from otel_agents.policy import ApprovalDecision, Match, Mode, Policy, Rule, Verdict

mcp = pytest.importorskip("mcp")
from mcp import Client, StdioServerParameters  # noqa: E402
from mcp.server import Server  # noqa: E402
from mcp.server.mcpserver import MCPServer  # noqa: E402
from mcp.shared import _otel as mcp_otel  # noqa: E402
from mcp.shared.exceptions import MCPError  # noqa: E402
from mcp_http import serving  # noqa: E402
from mcp_types import (  # noqa: E402
    INVALID_PARAMS,
    REQUEST_TIMEOUT,
    CallToolResult,
    ListToolsResult,
    TextContent,
    Tool,
    ToolAnnotations,
)

reached: list[str] = []


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def spans_named(telemetry: Any, name: str) -> list[Any]:
    return [span for span in telemetry.spans() if span.name == name]


def client_spans(telemetry: Any, tool: str) -> list[Any]:
    """Our client-side `execute_tool` spans (an MCP tool is an `extension` to the agent)."""
    spans = spans_named(telemetry, f"execute_tool {tool}")
    return [span for span in spans if attrs(span)[sc.GEN_AI_TOOL_TYPE] == "extension"]


def server_spans(telemetry: Any, tool: str) -> list[Any]:
    """Our server-side `execute_tool` spans (the server runs a function of its own)."""
    spans = spans_named(telemetry, f"execute_tool {tool}")
    return [span for span in spans if attrs(span)[sc.GEN_AI_TOOL_TYPE] == "function"]


def make_server() -> MCPServer:
    server = MCPServer("vendors")

    @server.tool()
    def lookup_vendor(vendor_id: str) -> str:
        """Find a vendor by id."""
        reached.append(vendor_id)
        return f"vendor {vendor_id}"

    @server.tool()
    def broken(vendor_id: str) -> str:
        raise ValueError("no such vendor")

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
    def close_vendor(vendor_id: str) -> str:
        reached.append(vendor_id)
        return f"closed {vendor_id}"

    @server.tool()
    def refuse(vendor_id: str) -> str:
        raise MCPError(code=INVALID_PARAMS, message="unknown vendor")

    return server


@pytest.fixture(autouse=True)
def _sdk_spans_to_our_exporter(telemetry: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK traces through the global provider: point it at the test's provider."""
    reached.clear()
    tracer = telemetry.tracer_provider.get_tracer("mcp-python-sdk")
    monkeypatch.setattr(mcp_otel, "_tracer", tracer)


async def test_a_tool_call_is_one_trace_client_tool_span_over_sdk_and_server_spans(
    telemetry: Any,
) -> None:
    async with Client(make_server()) as client:
        result = await client.call_tool("lookup_vendor", {"vendor_id": "v-1"})

    assert result.is_error is False
    assert result.content[0].text == "vendor v-1"  # type: ignore[union-attr]
    (ours,) = client_spans(telemetry, "lookup_vendor")
    (served,) = spans_named(telemetry, "tools/call lookup_vendor")
    assert attrs(ours)[sc.GEN_AI_TOOL_TYPE] == "extension"
    assert attrs(ours)[sc.MCP_METHOD_NAME] == "tools/call"
    assert isinstance(attrs(ours)[sc.MCP_PROTOCOL_VERSION], str)
    assert ours.status.status_code is not StatusCode.ERROR
    # The server's own span (the SDK's middleware) joins our trace, under our span.
    assert served.kind is SpanKind.SERVER
    assert served.parent is not None and served.parent.span_id == ours.context.span_id
    assert served.context.trace_id == ours.context.trace_id


async def test_a_tool_error_result_is_returned_unchanged_and_marks_the_span(
    telemetry: Any,
) -> None:
    async with Client(make_server()) as client:
        result = await client.call_tool("broken", {"vendor_id": "v-2"})

    assert result.is_error is True
    (ours,) = client_spans(telemetry, "broken")
    assert ours.status.status_code is StatusCode.ERROR
    assert attrs(ours)[sc.ERROR_TYPE] == "tool_error"


async def test_a_json_rpc_error_reaches_the_caller_unchanged(telemetry: Any) -> None:
    async with Client(make_server()) as client:
        session = client.session
        with pytest.raises(MCPError) as raised:
            await session.call_tool("refuse", {"vendor_id": "v-4"})

    assert raised.value.error.code == INVALID_PARAMS
    (ours,) = client_spans(telemetry, "refuse")
    assert ours.status.status_code is StatusCode.ERROR
    # The MCP conventions: the JSON-RPC error code is the error type and the status code.
    assert attrs(ours)[sc.ERROR_TYPE] == str(INVALID_PARAMS)
    assert attrs(ours)[sc.RPC_RESPONSE_STATUS_CODE] == str(INVALID_PARAMS)


async def test_a_denied_call_never_reaches_the_server(telemetry: Any) -> None:
    policy = Policy(
        rules=(Rule("no-lookups", Verdict("deny"), Match(tool="lookup_vendor"), reason="no"),),
        mode=Mode("enforce"),
    )
    otel_agents.instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        configure_sdk=False,
        detectors=False,
        policy=policy,
    )
    async with Client(make_server()) as client:
        with pytest.raises(ToolCallDenied):
            await client.call_tool("lookup_vendor", {"vendor_id": "v-3"})

    assert reached == []
    assert spans_named(telemetry, "tools/call lookup_vendor") == []
    (ours,) = client_spans(telemetry, "lookup_vendor")
    assert attrs(ours)[sc.POLICY_VERDICT] == "deny"


async def test_concurrent_calls_on_one_session_keep_their_own_spans(telemetry: Any) -> None:
    ids = [f"v-{n}" for n in range(8)]
    async with Client(make_server()) as client:
        results = await asyncio.gather(
            *(client.call_tool("lookup_vendor", {"vendor_id": i}) for i in ids)
        )

    assert [r.content[0].text for r in results] == [f"vendor {i}" for i in ids]  # type: ignore[union-attr]
    ours = {s.context.span_id: s for s in client_spans(telemetry, "lookup_vendor")}
    served = spans_named(telemetry, "tools/call lookup_vendor")
    assert len(ours) == len(served) == len(ids)
    # Each server span under its own call's span: no cross-talk between the calls.
    assert {s.parent.span_id for s in served} == set(ours)
    for span in served:
        arguments = ours[span.parent.span_id]
        assert arguments.context.trace_id == span.context.trace_id


async def test_uninstrumented_calls_record_nothing(telemetry: Any) -> None:
    otel_agents.uninstrument()
    async with Client(make_server()) as client:
        result = await client.call_tool("lookup_vendor", {"vendor_id": "v-9"})

    assert result.content[0].text == "vendor v-9"  # type: ignore[union-attr]
    assert client_spans(telemetry, "lookup_vendor") == []


def reinstrument(telemetry: Any, **options: Any) -> None:
    otel_agents.instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        configure_sdk=False,
        detectors=False,
        **options,
    )


async def test_listed_hints_feed_the_policy(telemetry: Any) -> None:
    irreversible = Rule("no-irreversible", Verdict("deny"), Match(reversible=False), reason="no")
    reinstrument(telemetry, policy=Policy(rules=(irreversible,), mode=Mode("enforce")))
    async with Client(make_server()) as client:
        await client.list_tools()
        with pytest.raises(ToolCallDenied):
            await client.call_tool("close_vendor", {"vendor_id": "v-5"})
        await client.call_tool("lookup_vendor", {"vendor_id": "v-6"})  # no hint: allowed

    assert reached == ["v-6"]
    (denied,) = client_spans(telemetry, "close_vendor")
    assert attrs(denied)[sc.TOOL_REVERSIBLE] is False
    assert attrs(denied)[sc.TOOL_TAGS] == ("mcp:destructive",)


async def test_the_listed_input_schema_is_the_contract(telemetry: Any) -> None:
    reinstrument(telemetry, policy_mode="enforce")
    async with Client(make_server()) as client:
        await client.list_tools()
        with pytest.raises(ContractViolation):
            await client.call_tool("lookup_vendor", {"vendor_id": 7})
        result = await client.call_tool("lookup_vendor", {"vendor_id": "v-7"})

    assert result.content[0].text == "vendor v-7"  # type: ignore[union-attr]
    assert reached == ["v-7"]  # the bad call never reached the server
    bad, good = client_spans(telemetry, "lookup_vendor")
    assert attrs(bad)[sc.CONTRACT_STATUS] == "input_violation"
    assert attrs(bad)[sc.GEN_AI_TOOL_DESCRIPTION] == "Find a vendor by id."
    assert attrs(good)[sc.CONTRACT_STATUS] == "passed"


async def test_without_a_listing_the_call_has_no_contract(telemetry: Any) -> None:
    reinstrument(telemetry, policy_mode="enforce")
    async with Client(make_server()) as client:
        await client.call_tool("lookup_vendor", {"vendor_id": "v-8"})

    (span,) = client_spans(telemetry, "lookup_vendor")
    assert sc.CONTRACT_STATUS not in attrs(span)


async def test_over_stdio_the_server_in_another_process_joins_our_trace(telemetry: Any) -> None:
    script = Path(__file__).with_name("mcp_stdio_server.py")
    params = StdioServerParameters(command=sys.executable, args=[str(script)])
    async with Client(params) as client:
        result = await client.call_tool("where_am_i", {})

    trace_id, parent_id = result.content[0].text.split()  # type: ignore[union-attr]
    (ours,) = client_spans(telemetry, "where_am_i")
    (sent,) = spans_named(telemetry, "MCP send tools/call where_am_i")
    # The SDK's client span nests under ours; the server's span under the SDK's.
    assert sent.parent is not None and sent.parent.span_id == ours.context.span_id
    assert trace_id == f"{ours.context.trace_id:032x}"
    assert parent_id == f"{sent.context.span_id:016x}"
    assert len([s for s in telemetry.spans() if s.name.startswith("execute_tool")]) == 1


async def test_the_server_records_its_own_tool_span_under_its_sdk_span(telemetry: Any) -> None:
    async with Client(make_server()) as client:
        await client.call_tool("lookup_vendor", {"vendor_id": "v-10"})

    (ours,) = client_spans(telemetry, "lookup_vendor")
    (served,) = spans_named(telemetry, "tools/call lookup_vendor")
    (ran,) = server_spans(telemetry, "lookup_vendor")
    assert served.parent.span_id == ours.context.span_id
    assert ran.parent is not None and ran.parent.span_id == served.context.span_id
    assert ran.context.trace_id == ours.context.trace_id
    assert attrs(ran)[sc.GEN_AI_TOOL_DESCRIPTION] == "Find a vendor by id."


async def test_the_servers_policy_stops_a_call_the_client_let_through(telemetry: Any) -> None:
    # The client never listed the tools, so it knows no hints; the server knows its own.
    destructive = Rule("no-destructive", Verdict("deny"), Match(tags=("mcp:destructive",)))
    reinstrument(telemetry, policy=Policy(rules=(destructive,), mode=Mode("enforce")))
    async with Client(make_server()) as client:
        result = await client.call_tool("close_vendor", {"vendor_id": "v-11"})

    assert result.is_error is True
    assert reached == []
    (ours,) = client_spans(telemetry, "close_vendor")
    (ran,) = server_spans(telemetry, "close_vendor")
    assert attrs(ours)[sc.POLICY_VERDICT] == "allow"
    assert attrs(ran)[sc.POLICY_VERDICT] == "deny"
    assert attrs(ran)[sc.TOOL_REVERSIBLE] is False
    assert attrs(ours)[sc.ERROR_TYPE] == "tool_error"


# -- the MCP conventions' attributes on our span ---------------------------------------------


async def test_over_stdio_our_span_has_the_request_id_transport_and_server_name(
    telemetry: Any,
) -> None:
    script = Path(__file__).with_name("mcp_stdio_server.py")
    params = StdioServerParameters(command=sys.executable, args=[str(script)])
    async with Client(params) as client:
        await client.call_tool("where_am_i", {})

    (ours,) = client_spans(telemetry, "where_am_i")
    (sent,) = spans_named(telemetry, "MCP send tools/call where_am_i")
    # The request id our span names is the one the SDK sent (and put on its own span).
    assert attrs(ours)[sc.JSONRPC_REQUEST_ID] == attrs(sent)["jsonrpc.request.id"]
    assert attrs(ours)[sc.NETWORK_TRANSPORT] == "pipe"
    assert attrs(ours)[sc.MCP_SERVER_NAME] == "probe"
    assert sc.MCP_SESSION_ID not in attrs(ours)  # stdio has no session id
    requests = [s for s in telemetry.spans() if s.name.startswith("MCP send")]
    assert len(requests) > 1  # the session's set-up and listing, and the call
    assert {attrs(s).get(sc.NETWORK_TRANSPORT) for s in requests} == {"pipe"}


async def test_in_memory_there_is_no_network_transport(telemetry: Any) -> None:
    async with Client(make_server()) as client:
        await client.call_tool("lookup_vendor", {"vendor_id": "v-12"})

    (ours,) = client_spans(telemetry, "lookup_vendor")
    assert attrs(ours)[sc.MCP_SERVER_NAME] == "vendors"
    assert sc.NETWORK_TRANSPORT not in attrs(ours)
    # The direct in-process connection sends no JSON-RPC request: no request id.
    assert sc.JSONRPC_REQUEST_ID not in attrs(ours)


async def test_the_legacy_in_memory_transport_has_json_rpc_request_ids(telemetry: Any) -> None:
    async with Client(make_server(), mode="legacy") as client:
        await client.call_tool("lookup_vendor", {"vendor_id": "v-13"})
        await client.call_tool("lookup_vendor", {"vendor_id": "v-14"})

    first, second = client_spans(telemetry, "lookup_vendor")
    ran_first, ran_second = server_spans(telemetry, "lookup_vendor")
    assert attrs(first)[sc.JSONRPC_REQUEST_ID] != attrs(second)[sc.JSONRPC_REQUEST_ID]
    # Both sides name the same request.
    assert attrs(ran_first)[sc.JSONRPC_REQUEST_ID] == attrs(first)[sc.JSONRPC_REQUEST_ID]
    assert attrs(ran_second)[sc.JSONRPC_REQUEST_ID] == attrs(second)[sc.JSONRPC_REQUEST_ID]
    assert attrs(first)[sc.MCP_PROTOCOL_VERSION] == attrs(ran_first)[sc.MCP_PROTOCOL_VERSION]


async def test_a_timeout_is_a_timeout_not_a_json_rpc_error_code(telemetry: Any) -> None:
    server = MCPServer("slow")
    release = asyncio.Event()

    @server.tool()
    async def wait_forever() -> str:
        await release.wait()
        return "late"

    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError) as raised:
            await client.session.call_tool("wait_forever", {}, read_timeout_seconds=0.05)
        release.set()

    (ours,) = client_spans(telemetry, "wait_forever")
    assert raised.value.error.code == REQUEST_TIMEOUT
    assert attrs(ours)[sc.ERROR_TYPE] == "timeout"
    assert sc.RPC_RESPONSE_STATUS_CODE not in attrs(ours)


# -- server names in policy ---------------------------------------------------------------


async def test_a_policy_file_matches_the_server_qualified_tool_name(
    telemetry: Any, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(BILLING_POLICY)
    reinstrument(telemetry, policy=policy)
    billing, vendors = MCPServer("billing-server"), make_server()

    @billing.tool()
    def lookup_vendor(vendor_id: str) -> str:  # the same tool name, another server
        reached.append(f"billing {vendor_id}")
        return "billed"

    async with Client(billing) as billing_client, Client(vendors) as vendors_client:
        with pytest.raises(ToolCallDenied) as denied:
            await billing_client.call_tool("lookup_vendor", {"vendor_id": "v-15"})
        await vendors_client.call_tool("lookup_vendor", {"vendor_id": "v-16"})

    assert denied.value.rule == "no-billing"
    assert reached == ["v-16"]
    stopped, allowed = client_spans(telemetry, "lookup_vendor")
    assert attrs(stopped)[sc.MCP_SERVER_NAME] == "billing-server"
    assert attrs(stopped)[sc.POLICY_RULE] == "no-billing"
    assert attrs(allowed)[sc.MCP_SERVER_NAME] == "vendors"
    assert attrs(allowed)[sc.POLICY_VERDICT] == "allow"


BILLING_POLICY = """\
mode: enforce
rules:
  - id: no-billing
    match:
      tool: billing-server/*
    verdict: deny
    reason: billing is off limits
"""


# -- the low-level server -------------------------------------------------------------------


def make_lowlevel_server() -> Server:
    async def list_tools(ctx: Any, params: Any) -> ListToolsResult:
        hints = ToolAnnotations(read_only_hint=False, destructive_hint=True)
        schema = {"type": "object", "properties": {"invoice": {"type": "string"}}}
        return ListToolsResult(
            tools=[
                Tool(name="refund", input_schema=schema, annotations=hints),
                Tool(name="balance", input_schema=schema),
            ]
        )

    async def call_tool(ctx: Any, params: Any) -> CallToolResult:
        reached.append(params.name)
        if params.name == "balance" and params.arguments.get("invoice") == "bad":
            return CallToolResult(content=[TextContent(type="text", text="no")], is_error=True)
        return CallToolResult(content=[TextContent(type="text", text=f"{params.name} ok")])

    return Server("ledger", on_list_tools=list_tools, on_call_tool=call_tool)


async def test_the_lowlevel_server_records_its_own_tool_span(telemetry: Any) -> None:
    async with Client(make_lowlevel_server()) as client:
        result = await client.call_tool("balance", {"invoice": "i-1"})
        failed = await client.call_tool("balance", {"invoice": "bad"})

    assert result.content[0].text == "balance ok"  # type: ignore[union-attr]
    assert failed.is_error is True
    ours, ours_failed = client_spans(telemetry, "balance")
    ran, ran_failed = server_spans(telemetry, "balance")
    (served, _) = spans_named(telemetry, "tools/call balance")
    assert served.parent.span_id == ours.context.span_id
    assert ran.parent is not None and ran.parent.span_id == served.context.span_id
    assert attrs(ran)[sc.MCP_SERVER_NAME] == "ledger"
    assert attrs(ran)[sc.MCP_METHOD_NAME] == "tools/call"
    assert attrs(ran_failed)[sc.ERROR_TYPE] == "tool_error"
    assert attrs(ours_failed)[sc.ERROR_TYPE] == "tool_error"


async def test_the_lowlevel_servers_policy_uses_its_own_listing(telemetry: Any) -> None:
    destructive = Rule("no-destructive", Verdict("deny"), Match(tags=("mcp:destructive",)))
    reinstrument(telemetry, policy=Policy(rules=(destructive,), mode=Mode("enforce")))
    server = make_lowlevel_server()
    async with Client(server) as lister:
        await lister.list_tools()  # the server learns its tools' hints from its answer
    async with Client(server) as client:  # a client that never listed
        result = await client.call_tool("refund", {"invoice": "i-2"})

    assert result.is_error is True
    assert "no-destructive" in result.content[0].text  # type: ignore[union-attr]
    assert reached == []
    (ran,) = server_spans(telemetry, "refund")
    assert attrs(ran)[sc.POLICY_VERDICT] == "deny"
    assert attrs(ran)[sc.TOOL_TAGS] == ("mcp:destructive",)


# -- one call, counted once ------------------------------------------------------------------


async def test_a_call_served_in_process_counts_once_in_the_run(telemetry: Any) -> None:
    async with otel_agents.agent("caller"), Client(make_server()) as client:
        await client.call_tool("lookup_vendor", {"vendor_id": "v-17"})
        await client.call_tool("lookup_vendor", {"vendor_id": "v-17"})
        await client.call_tool("broken", {"vendor_id": "v-18"})

    (run,) = spans_named(telemetry, "invoke_agent caller")
    assert attrs(run)[sc.RUN_TOOL_CALLS] == 3
    assert attrs(run)[sc.RUN_RETRIES] == 1
    assert attrs(run)[sc.RUN_TOOL_FAILURES] == 1  # the error result, counted once
    first, second = client_spans(telemetry, "lookup_vendor")
    ran_first, ran_second = server_spans(telemetry, "lookup_vendor")
    # The server's span is the same call: the caller's attempt, not one of its own.
    assert [attrs(s)[sc.TOOL_CALL_ATTEMPT] for s in (first, ran_first)] == [1, 1]
    assert [attrs(s)[sc.TOOL_CALL_ATTEMPT] for s in (second, ran_second)] == [2, 2]
    assert attrs(ran_first)[sc.RUN_ID] == attrs(first)[sc.RUN_ID]


async def test_outside_a_run_the_served_call_is_not_a_second_attempt(telemetry: Any) -> None:
    # In a trace but in no agent run: the calls count in the trace's shared ledger.
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("request"):
        async with Client(make_server()) as client:
            await client.call_tool("lookup_vendor", {"vendor_id": "v-19"})
            await client.call_tool("lookup_vendor", {"vendor_id": "v-19"})

    first, second = client_spans(telemetry, "lookup_vendor")
    ran_first, ran_second = server_spans(telemetry, "lookup_vendor")
    assert [attrs(s)[sc.TOOL_CALL_ATTEMPT] for s in (first, ran_first)] == [1, 1]
    assert [attrs(s)[sc.TOOL_CALL_ATTEMPT] for s in (second, ran_second)] == [2, 2]


# -- streamable HTTP: a real server app on 127.0.0.1 ----------------------------------------


async def test_over_streamable_http_one_trace_with_the_session_id_on_both_sides(
    telemetry: Any,
) -> None:
    with serving(make_server().streamable_http_app()) as base:
        # A pre-2026-07-28 session: the server assigns an `Mcp-Session-Id`.
        async with Client(f"{base}/mcp", mode="legacy") as client:
            result = await client.call_tool("lookup_vendor", {"vendor_id": "v-20"})
            await client.list_tools()

    assert result.content[0].text == "vendor v-20"  # type: ignore[union-attr]
    (ours,) = client_spans(telemetry, "lookup_vendor")
    (sent,) = spans_named(telemetry, "MCP send tools/call lookup_vendor")
    (served,) = spans_named(telemetry, "tools/call lookup_vendor")
    (ran,) = server_spans(telemetry, "lookup_vendor")
    # One trace: ours -> the SDK's client span -> the server's SDK span -> the server's tool.
    assert sent.parent.span_id == ours.context.span_id
    assert served.parent.span_id == sent.context.span_id
    assert ran.parent.span_id == served.context.span_id
    assert len({s.context.trace_id for s in (ours, sent, served, ran)}) == 1
    session_id = attrs(ours)[sc.MCP_SESSION_ID]
    assert isinstance(session_id, str) and session_id
    assert attrs(ran)[sc.MCP_SESSION_ID] == session_id
    assert attrs(ours)[sc.NETWORK_TRANSPORT] == attrs(ran)[sc.NETWORK_TRANSPORT] == "tcp"
    assert attrs(ours)[sc.JSONRPC_REQUEST_ID] == attrs(ran)[sc.JSONRPC_REQUEST_ID]
    assert attrs(ours)[sc.MCP_SERVER_NAME] == attrs(ran)[sc.MCP_SERVER_NAME] == "vendors"
    # The SDK's own spans of the other requests carry the transport and session too.
    listed = spans_named(telemetry, "MCP send tools/list")
    assert listed and all(attrs(s)[sc.MCP_SESSION_ID] == session_id for s in listed)
    assert all(attrs(s)[sc.NETWORK_TRANSPORT] == "tcp" for s in listed)
    assert attrs(sent)[sc.MCP_SESSION_ID] == session_id


async def test_over_streamable_http_a_modern_session_has_no_session_id(telemetry: Any) -> None:
    with serving(make_server().streamable_http_app()) as base:
        async with Client(f"{base}/mcp") as client:
            await client.call_tool("lookup_vendor", {"vendor_id": "v-21"})

    (ours,) = client_spans(telemetry, "lookup_vendor")
    (ran,) = server_spans(telemetry, "lookup_vendor")
    assert attrs(ours)[sc.MCP_PROTOCOL_VERSION] == "2026-07-28"
    # The conventions: no `mcp.session.id` for a 2026-07-28 session (there is none).
    assert sc.MCP_SESSION_ID not in attrs(ours) and sc.MCP_SESSION_ID not in attrs(ran)
    assert attrs(ours)[sc.NETWORK_TRANSPORT] == "tcp"
    assert ran.context.trace_id == ours.context.trace_id


async def test_a_call_served_in_process_is_approved_once(telemetry: Any) -> None:
    asked: list[str] = []

    def approve(request: Any) -> ApprovalDecision:
        asked.append(request.tool)
        return ApprovalDecision(True, approver="alice")

    needs_approval = Rule(
        "approve-destructive", Verdict("require_approval"), Match(tags=("mcp:destructive",))
    )
    reinstrument(
        telemetry,
        policy=Policy(rules=(needs_approval,), mode=Mode("enforce")),
        approver=approve,
    )
    async with Client(make_server()) as client:
        await client.list_tools()  # the client knows the hint too: both gates require approval
        result = await client.call_tool("close_vendor", {"vendor_id": "v-22"})

    assert result.is_error is False
    assert asked == ["close_vendor"]  # one call, one approval
    assert reached == ["v-22"]
    (ours,) = client_spans(telemetry, "close_vendor")
    (ran,) = server_spans(telemetry, "close_vendor")
    assert attrs(ours)[sc.POLICY_VERDICT] == attrs(ran)[sc.POLICY_VERDICT] == "require_approval"
    (waited,) = spans_named(telemetry, "await_approval close_vendor")
    # The wait is under the call it held, though the adapter never made that span current.
    assert waited.parent is not None and waited.parent.span_id == ours.context.span_id


async def test_a_call_served_in_process_has_its_callers_call_id(telemetry: Any) -> None:
    async with Client(make_server()) as client:
        with otel_agents.tool_call_id("call_7"):
            await client.call_tool("lookup_vendor", {"vendor_id": "v-23"})

    (ours,) = client_spans(telemetry, "lookup_vendor")
    (ran,) = server_spans(telemetry, "lookup_vendor")
    assert attrs(ours)[sc.GEN_AI_TOOL_CALL_ID] == attrs(ran)[sc.GEN_AI_TOOL_CALL_ID] == "call_7"


async def test_our_own_failures_never_reach_the_caller_or_the_server(
    telemetry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otel_agents.adapters import mcp as adapter

    def broken(*args: Any) -> Any:
        raise RuntimeError("injected")

    monkeypatch.setattr(adapter, "_session_attributes", broken)
    monkeypatch.setattr(adapter, "_served_spec", broken)
    monkeypatch.setattr(adapter, "_server_attributes", broken)
    async with Client(make_server(), mode="legacy") as client:
        result = await client.call_tool("lookup_vendor", {"vendor_id": "v-24"})

    assert result.content[0].text == "vendor v-24"  # type: ignore[union-attr]
    assert reached == ["v-24"]
    (ours,) = client_spans(telemetry, "lookup_vendor")  # recorded without the MCP extras
    assert sc.MCP_SERVER_NAME not in attrs(ours)
    assert server_spans(telemetry, "lookup_vendor") == []  # the server ran it untraced


async def test_concurrent_calls_served_in_process_each_find_their_own_caller(
    telemetry: Any,
) -> None:
    ids = [f"v-{n}" for n in range(6)]

    async def call(client: Client, vendor_id: str) -> None:
        with otel_agents.tool_call_id(f"call-{vendor_id}"):
            await client.call_tool("lookup_vendor", {"vendor_id": vendor_id})

    # JSON-RPC over streams: the server reads the requests while all of them are in flight.
    async with otel_agents.agent("caller"), Client(make_server(), mode="legacy") as client:
        await asyncio.gather(*(call(client, i) for i in ids))

    (run,) = spans_named(telemetry, "invoke_agent caller")
    assert attrs(run)[sc.RUN_TOOL_CALLS] == len(ids)
    ours = {s.context.span_id: s for s in client_spans(telemetry, "lookup_vendor")}
    sdk = {
        s.context.span_id: s
        for name in ("tools/call lookup_vendor", "MCP send tools/call lookup_vendor")
        for s in spans_named(telemetry, name)
    }
    ran_spans = server_spans(telemetry, "lookup_vendor")
    assert len(ran_spans) == len(ids)
    for ran in ran_spans:
        # ours <- the SDK's client span <- the SDK's server span <- the server's span
        caller = ours[sdk[sdk[ran.parent.span_id].parent.span_id].parent.span_id]
        # Its own caller's call: the caller's call id, none of the others'.
        assert attrs(ran)[sc.GEN_AI_TOOL_CALL_ID] == attrs(caller)[sc.GEN_AI_TOOL_CALL_ID]


async def test_a_call_the_model_asked_for_is_on_its_decision_path(telemetry: Any) -> None:
    """The model (the real openai client on a recorded response) asks for `get_weather`;
    the agent makes that call over MCP: our span names the model's tool call id, links to
    the chat span and is the run's first attempt, as a local `@tool` would be."""
    from wire import ScriptedResponse, ScriptedTransport, async_openai_client

    server = MCPServer("weather-server")

    @server.tool()
    def get_weather(city: str, unit: str) -> str:
        return f"18 {unit} in {city}"

    model = async_openai_client(
        ScriptedTransport([ScriptedResponse.fixture("openai/chat_tool_calls.json")])
    )
    with otel_agents.agent("forecaster"):
        answer = await model.chat.completions.create(
            model="gpt-4.1-mini", messages=[{"role": "user", "content": "Paris?"}]
        )
        (asked, _) = answer.choices[0].message.tool_calls or []
        async with Client(server) as client:
            result = await client.call_tool("get_weather", json.loads(asked.function.arguments))
    assert result.content[0].text == "18 celsius in Paris"  # type: ignore[union-attr]

    (chat,) = [s for s in telemetry.spans() if s.name.startswith("chat ")]
    (ours,) = client_spans(telemetry, "get_weather")
    assert attrs(ours)[sc.GEN_AI_TOOL_CALL_ID] == asked.id
    assert attrs(ours)[sc.DECISION_MATCH] == "name_and_arguments"
    assert attrs(ours)[sc.TOOL_CALL_ATTEMPT] == 1
    assert [link.context.span_id for link in ours.links] == [chat.context.span_id]


async def test_a_structured_result_outside_the_output_schema_is_the_servers_contract_breach(
    telemetry: Any,
) -> None:
    """The SDK checks `structuredContent` against the listed `outputSchema` and raises; our
    span says the output side of the contract broke, on the server's side, and the caller
    gets the SDK's exception unchanged."""
    output = {
        "type": "object",
        "properties": {"total": {"type": "number"}},
        "required": ["total"],
    }

    async def list_tools(ctx: Any, params: Any) -> ListToolsResult:
        return ListToolsResult(
            tools=[Tool(name="total", input_schema={"type": "object"}, output_schema=output)]
        )

    async def call_tool(ctx: Any, params: Any) -> CallToolResult:
        structured = {"total": "a lot"} if params.arguments.get("bad") else {"total": 3.5}
        return CallToolResult(content=[], structured_content=structured)

    server = Server("ledger", on_list_tools=list_tools, on_call_tool=call_tool)
    async with Client(server) as client:
        await client.list_tools()
        good = await client.call_tool("total", {})
        with pytest.raises(RuntimeError, match="Invalid structured content") as raised:
            await client.call_tool("total", {"bad": True})

    assert good.structured_content == {"total": 3.5}
    fine, broken = client_spans(telemetry, "total")
    assert sc.CONTRACT_STATUS not in attrs(fine) or attrs(fine)[sc.CONTRACT_STATUS] == "passed"
    assert attrs(broken)[sc.CONTRACT_STATUS] == "output_violation"
    assert attrs(broken)[sc.CONTRACT_VIOLATION].startswith("output (the server's fault): ")
    assert "is not of type 'number'" in attrs(broken)[sc.CONTRACT_VIOLATION]
    assert broken.status.status_code is StatusCode.ERROR
    assert raised.value.__cause__ is not None


def test_the_docs_example_runs_as_written(tmp_path: Path) -> None:
    """docs/mcp.md's example, as a user copies it: it prints the tool's answer, and the
    local store has the call (the client's span, the server's beneath it)."""
    said, lines = run_docs_example("mcp.md", "## Example", tmp_path=tmp_path)
    assert said.strip() == "vendor v-1"
    assert any(line.startswith("tool     lookup_vendor ✓  via mcp vendors") for line in lines)
    assert any(line.startswith("tool     lookup_vendor ✓  served by mcp vendors") for line in lines)
