"""The OpenAI Agents SDK, run for real over the real `openai` client and a scripted
Responses API (tests/wire), traced by the real OpenTelemetry SDK."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("agents")

import agents
from agents import (
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    OpenAIResponsesModel,
    Runner,
    ToolGuardrailFunctionOutput,
    ToolInputGuardrailData,
    ToolInputGuardrailTripwireTriggered,
    ToolOutputGuardrailData,
    function_tool,
    input_guardrail,
    tool_input_guardrail,
    tool_output_guardrail,
)
from agents.extensions import handoff_filters
from agents.handoffs import HandoffInputData
from agents_testing import DENY_POLICY, Telemetry, instrumented, run_docs_example
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import StatusCode
from pydantic import BaseModel
from wire import AsyncScriptedTransport, ScriptedResponse, async_openai_client

import otel_agents
from otel_agents import semconv as sc
from otel_agents.integrations import openai_agents as integration
from otel_agents.store.exporter import StoreSpanProcessor
from otel_agents.store.reader import Store
from otel_agents.store.settings import StoreSettings

MODEL = "gpt-4o-mini"


@pytest.fixture
def telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    yield from _instrumented(monkeypatch)


def _instrumented(monkeypatch: pytest.MonkeyPatch, **options: object) -> Iterator[Telemetry]:
    for built in instrumented(monkeypatch, **options):
        ours = integration.processor()
        assert ours is not None
        # Ours only: the SDK's default processor would export to OpenAI.
        agents.set_trace_processors([ours])  # type: ignore[list-item]
        yield built


def _response(number: int, output: list[dict[str, Any]]) -> ScriptedResponse:
    return ScriptedResponse.json(
        {
            "id": f"resp_{number}",
            "object": "response",
            "created_at": 1755500000,
            "status": "completed",
            "model": MODEL,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": 20,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 5,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 25,
            },
        }
    )


def _streamed(number: int, output: list[dict[str, Any]]) -> ScriptedResponse:
    """The same response as a Responses API event stream (created, then completed)."""
    completed = json.loads(_response(number, output).body)
    created = {**completed, "status": "in_progress", "output": [], "usage": None}
    events = [
        (
            "response.created",
            {"type": "response.created", "sequence_number": 0, "response": created},
        ),
        (
            "response.completed",
            {"type": "response.completed", "sequence_number": 1, "response": completed},
        ),
    ]
    return ScriptedResponse.sse(
        "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
    )


def _call(name: str, arguments: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {
        "id": f"fc_{call_id}",
        "type": "function_call",
        "status": "completed",
        "name": name,
        "arguments": json.dumps(arguments),
        "call_id": call_id,
    }


def _reasoning(text: str) -> dict[str, Any]:
    return {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}


def _text(text: str) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def _model(transport: AsyncScriptedTransport) -> OpenAIResponsesModel:
    return OpenAIResponsesModel(model=MODEL, openai_client=async_openai_client(transport))


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


@function_tool
def delete_records(table: str) -> str:
    """Delete every record of a table."""
    raise AssertionError("a denied tool must not run")


FLAKY_CALLS: list[str] = []


@function_tool
def flaky_lookup(key: str) -> str:
    """A lookup that always fails."""
    FLAKY_CALLS.append(key)
    raise RuntimeError("backend unavailable")


def _parent(span: ReadableSpan, telemetry: Telemetry) -> ReadableSpan | None:
    if span.parent is None:
        return None
    found = [s for s in telemetry.spans() if s.context.span_id == span.parent.span_id]
    return found[0] if found else None


def _tree(telemetry: Telemetry) -> list[tuple[str, str | None]]:
    return sorted(
        (span.name, (parent.name if (parent := _parent(span, telemetry)) else None))
        for span in telemetry.spans()
    )


def test_tool_using_agent_span_tree_and_decision_path(telemetry: Telemetry) -> None:
    transport = AsyncScriptedTransport(
        [
            _response(
                1,
                [
                    _reasoning("The user asked about Paris: look the weather up."),
                    _call("get_weather", {"city": "Paris"}, "call_w1"),
                ],
            ),
            _response(2, [_text("It is sunny in Paris.")]),
        ]
    )
    agent = Agent(name="weather", tools=[get_weather], model=_model(transport))

    result = asyncio.run(Runner.run(agent, "Weather in Paris?"))

    assert result.final_output == "It is sunny in Paris."
    assert _tree(telemetry) == sorted(
        [
            ("invoke_agent Agent workflow", None),
            ("invoke_agent weather", "invoke_agent Agent workflow"),
            (f"chat {MODEL}", "invoke_agent weather"),
            (f"chat {MODEL}", "invoke_agent weather"),
            ("execute_tool get_weather", "invoke_agent weather"),
        ]
    )
    tool = telemetry.span("execute_tool get_weather")
    chats = [s for s in telemetry.spans() if s.name == f"chat {MODEL}"]
    requester = next(s for s in chats if s.attributes.get(sc.GEN_AI_RESPONSE_ID) == "resp_1")
    assert tool.attributes[sc.GEN_AI_TOOL_CALL_ID] == "call_w1"
    assert tool.attributes[sc.GEN_AI_AGENT_NAME] == "weather"
    assert [link.context.span_id for link in tool.links] == [requester.context.span_id]
    assert tool.attributes[sc.DECISION_REASONING_SOURCE] == "reasoning_summary"
    root = telemetry.span("invoke_agent Agent workflow")
    assert root.attributes[sc.RUN_LLM_CALLS] == 2
    assert root.attributes[sc.RUN_TOOL_CALLS] == 1
    assert len({s.context.trace_id for s in telemetry.spans()}) == 1


def test_streamed_run_has_the_same_tree(telemetry: Telemetry) -> None:
    transport = AsyncScriptedTransport(
        [
            _streamed(1, [_call("get_weather", {"city": "Oslo"}, "call_s1")]),
            _streamed(2, [_text("Sunny in Oslo.")]),
        ]
    )
    agent = Agent(name="weather", tools=[get_weather], model=_model(transport))

    async def consume() -> Any:
        result = Runner.run_streamed(agent, "Weather in Oslo?")
        async for _ in result.stream_events():
            pass
        return result

    result = asyncio.run(consume())

    assert result.final_output == "Sunny in Oslo."
    assert _tree(telemetry) == sorted(
        [
            ("invoke_agent Agent workflow", None),
            ("invoke_agent weather", "invoke_agent Agent workflow"),
            (f"chat {MODEL}", "invoke_agent weather"),
            (f"chat {MODEL}", "invoke_agent weather"),
            ("execute_tool get_weather", "invoke_agent weather"),
        ]
    )
    tool = telemetry.span("execute_tool get_weather")
    requester = next(
        s for s in telemetry.spans() if s.attributes.get(sc.GEN_AI_RESPONSE_ID) == "resp_1"
    )
    assert requester.attributes[sc.GEN_AI_REQUEST_STREAM] is True
    assert [link.context.span_id for link in tool.links] == [requester.context.span_id]


def test_two_agent_handoff_is_a_boundary_in_one_run(telemetry: Telemetry) -> None:
    transport = AsyncScriptedTransport(
        [
            _response(1, [_call("transfer_to_billing", {}, "call_h1")]),
            _response(2, [_text("Your invoice is paid.")]),
        ]
    )
    billing = Agent(name="billing", model=_model(transport))
    triage = Agent(name="triage", handoffs=[billing], model=_model(transport))

    result = asyncio.run(Runner.run(triage, "Is my invoice paid?"))

    assert result.final_output == "Your invoice is paid."
    handoff = telemetry.span("handoff billing")
    assert handoff.attributes[sc.HANDOFF_FROM] == "triage"
    assert handoff.attributes[sc.HANDOFF_TO] == "billing"
    assert handoff.attributes[sc.HANDOFF_ACCEPTED] is True
    tree = _tree(telemetry)
    assert ("invoke_agent triage", "invoke_agent Agent workflow") in tree
    assert ("invoke_agent billing", "invoke_agent Agent workflow") in tree
    assert tree.count((f"chat {MODEL}", "invoke_agent triage")) == 1
    assert tree.count((f"chat {MODEL}", "invoke_agent billing")) == 1
    root = telemetry.span("invoke_agent Agent workflow")
    assert root.attributes[sc.RUN_HANDOFFS] == 1
    run_ids = {s.attributes.get(sc.RUN_ID) for s in telemetry.spans() if "invoke_agent" in s.name}
    assert len(run_ids) == 1


class Escalation(BaseModel):
    reason: str


SECRET_KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


def _escalating_run(**handoff_options: Any) -> tuple[Any, AsyncScriptedTransport]:
    """triage looks the weather up, then hands over to billing with a reason that holds a
    secret; `handoff_options` go to the SDK's `handoff(...)`."""
    transport = AsyncScriptedTransport(
        [
            _response(1, [_call("get_weather", {"city": f"Paris {SECRET_KEY}"}, "call_t1")]),
            _response(2, [_call("transfer_to_billing", {"reason": f"refund {SECRET_KEY}"}, "c2")]),
            _response(3, [_text("Refund issued.")]),
        ]
    )

    def on_escalation(ctx: Any, data: Escalation) -> None:
        pass

    billing = Agent(name="billing", model=_model(transport))
    to_billing = agents.handoff(
        billing, on_handoff=on_escalation, input_type=Escalation, **handoff_options
    )
    triage = Agent(
        name="triage", tools=[get_weather], handoffs=[to_billing], model=_model(transport)
    )
    return asyncio.run(Runner.run(triage, "Refund me")), transport


def test_handoff_records_its_input_data_and_the_input_filter_as_the_receivers_check(
    telemetry: Telemetry,
) -> None:
    result, transport = _escalating_run(input_filter=handoff_filters.remove_all_tools)

    assert result.final_output == "Refund issued."
    handoff = telemetry.span("handoff billing")
    assert handoff.attributes[sc.HANDOFF_PAYLOAD_SUMMARY] == "dict with 1 key: reason"
    # On offer: the user's message, the tool call and its output, the transfer call and
    # its output; the filter drops both calls and both outputs.
    assert handoff.attributes[sc.HANDOFF_CHECKS_PASSED] == (
        "input_filter remove_all_tools: passed 1 of 5 items",
    )
    assert handoff.attributes[sc.HANDOFF_ACCEPTED] is True
    billing_input = transport.requests[2].json["input"]
    assert [item.get("type", "message") for item in billing_input] == ["message"]
    # Content capture is off: no payload, no arguments, only their shape.
    for span in telemetry.spans():
        assert sc.HANDOFF_PAYLOAD not in span.attributes
        assert sc.GEN_AI_TOOL_CALL_ARGUMENTS not in span.attributes


def test_handoff_without_a_filter_passes_everything_and_records_no_check(
    telemetry: Telemetry,
) -> None:
    _escalating_run()

    handoff = telemetry.span("handoff billing")
    assert sc.HANDOFF_CHECKS_PASSED not in handoff.attributes
    assert handoff.attributes[sc.HANDOFF_PAYLOAD_SUMMARY] == "dict with 1 key: reason"


def test_a_filter_that_rewrites_items_is_recorded_as_changing_them(telemetry: Telemetry) -> None:
    def redact_history(data: HandoffInputData) -> HandoffInputData:
        return data.clone(input_history="(history withheld)")

    _escalating_run(input_filter=redact_history)

    [check] = telemetry.span("handoff billing").attributes[sc.HANDOFF_CHECKS_PASSED]
    assert check == "input_filter " + redact_history.__qualname__ + ": changed items, passed 5"


def test_a_failing_input_filter_is_a_failed_check_and_a_rejected_handoff(
    telemetry: Telemetry,
) -> None:
    def broken_filter(data: HandoffInputData) -> HandoffInputData:
        raise ValueError("filter bug")

    with pytest.raises(ValueError, match="filter bug"):
        _escalating_run(input_filter=broken_filter)

    handoff = telemetry.span("handoff billing")
    assert handoff.attributes[sc.HANDOFF_ACCEPTED] is False
    [failed] = handoff.attributes[sc.HANDOFF_CHECKS_FAILED]
    assert failed == f"input_filter {broken_filter.__qualname__}: ValueError: filter bug"
    assert handoff.status.status_code is StatusCode.ERROR


def test_a_handoff_failing_before_its_filter_records_no_filter_check(
    telemetry: Telemetry,
) -> None:
    transport = AsyncScriptedTransport(
        [_response(1, [_call("transfer_to_billing", {"wrong": "shape"}, "c1")])]
    )

    def on_escalation(ctx: Any, data: Escalation) -> None:
        pass

    billing = Agent(name="billing", model=_model(transport))
    to_billing = agents.handoff(
        billing,
        on_handoff=on_escalation,
        input_type=Escalation,
        input_filter=handoff_filters.remove_all_tools,
    )
    triage = Agent(name="triage", handoffs=[to_billing], model=_model(transport))

    with pytest.raises(agents.ModelBehaviorError):
        asyncio.run(Runner.run(triage, "Refund me"))

    handoff = telemetry.span("handoff unknown")
    assert handoff.attributes[sc.HANDOFF_ACCEPTED] is False
    assert handoff.attributes[sc.HANDOFF_FROM] == "triage"
    assert sc.HANDOFF_CHECKS_PASSED not in handoff.attributes
    assert sc.HANDOFF_CHECKS_FAILED not in handoff.attributes


def test_captured_content_on_tool_and_handoff_spans_is_scrubbed_of_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for telemetry in _instrumented(monkeypatch, capture_content="SPAN_ONLY"):
        _escalating_run(input_filter=handoff_filters.remove_all_tools)

        handoff = telemetry.span("handoff billing")
        payload = str(handoff.attributes[sc.HANDOFF_PAYLOAD])
        assert "refund" in payload and SECRET_KEY not in payload
        tool = telemetry.span("execute_tool get_weather")
        arguments = str(tool.attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS])
        assert "Paris" in arguments and SECRET_KEY not in arguments
        assert "sunny in Paris" in str(tool.attributes[sc.GEN_AI_TOOL_CALL_RESULT])
        for span in telemetry.spans():
            assert SECRET_KEY not in json.dumps(dict(span.attributes), default=str)


def test_an_sdk_trace_grouping_two_runs_is_one_run_under_its_workflow(
    telemetry: Telemetry,
) -> None:
    transport = AsyncScriptedTransport(
        [_response(1, [_text("Hello.")]), _response(2, [_text("Still here.")])]
    )
    greeter = Agent(name="greeter", model=_model(transport))

    async def conversation() -> None:
        with agents.trace("Support chat", group_id="thread-7"):
            await Runner.run(greeter, "Hi")
            await Runner.run(greeter, "Are you there?")

    asyncio.run(conversation())

    root = telemetry.span("invoke_agent Support chat")
    assert root.parent is None
    assert root.attributes[sc.GEN_AI_WORKFLOW_NAME] == "Support chat"
    assert root.attributes[sc.GEN_AI_CONVERSATION_ID] == "thread-7"
    assert root.attributes[sc.RUN_LLM_CALLS] == 2
    greeters = [s for s in telemetry.spans() if s.name == "invoke_agent greeter"]
    assert len(greeters) == 2
    assert all(_parent(s, telemetry) is not None for s in greeters)
    assert {_parent(s, telemetry).name for s in greeters} == {"invoke_agent Support chat"}  # type: ignore[union-attr]
    assert {s.attributes[sc.RUN_ID] for s in greeters} == {root.attributes[sc.RUN_ID]}


def test_second_handoff_in_one_turn_is_a_rejected_boundary(telemetry: Telemetry) -> None:
    transport = AsyncScriptedTransport(
        [
            _response(
                1,
                [
                    _call("transfer_to_billing", {}, "call_h1"),
                    _call("transfer_to_support", {}, "call_h2"),
                ],
            ),
            _response(2, [_text("Billing here.")]),
        ]
    )
    billing = Agent(name="billing", model=_model(transport))
    support = Agent(name="support", model=_model(transport))
    triage = Agent(name="triage", handoffs=[billing, support], model=_model(transport))

    result = asyncio.run(Runner.run(triage, "Help"))

    assert result.final_output == "Billing here."
    taken = telemetry.span("handoff billing")
    ignored = telemetry.span("handoff support")
    assert taken.attributes[sc.HANDOFF_ACCEPTED] is True
    assert ignored.attributes[sc.HANDOFF_ACCEPTED] is False
    assert ignored.attributes[sc.HANDOFF_FROM] == "triage"
    assert "Multiple handoffs" in str(ignored.attributes[sc.HANDOFF_REASON])
    assert "invoke_agent support" not in [s.name for s in telemetry.spans()]


def test_tripped_input_guardrail_is_a_deny_verdict_on_the_agent(telemetry: Telemetry) -> None:
    @input_guardrail
    def no_secrets(ctx: Any, agent: Any, text: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered="password" in text)

    transport = AsyncScriptedTransport([_response(1, [_text("ok")])])
    agent = Agent(name="guarded", input_guardrails=[no_secrets], model=_model(transport))

    with pytest.raises(InputGuardrailTripwireTriggered):
        asyncio.run(Runner.run(agent, "my password is hunter2"))

    governed = telemetry.span("invoke_agent guarded")
    assert governed.attributes[sc.POLICY_VERDICT] == "deny"
    assert governed.attributes[sc.POLICY_RULE] == "no_secrets"
    assert governed.attributes[sc.GUARDRAIL_TRIPPED] is True
    [event] = [e for e in governed.events if e.name == sc.EVENT_GUARDRAIL]
    assert event.attributes is not None
    assert event.attributes[sc.GUARDRAIL_TRIPPED] is True
    # A tripwire is a deny in the run totals, the counter the policy gate's refusals use.
    assert telemetry.span("invoke_agent Agent workflow").attributes[sc.RUN_DENIALS] == 1


def test_passing_guardrail_leaves_an_allow_event_only(telemetry: Telemetry) -> None:
    @input_guardrail
    def no_secrets(ctx: Any, agent: Any, text: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered=False)

    transport = AsyncScriptedTransport([_response(1, [_text("ok")])])
    agent = Agent(name="guarded", input_guardrails=[no_secrets], model=_model(transport))

    asyncio.run(Runner.run(agent, "hello"))

    governed = telemetry.span("invoke_agent guarded")
    assert sc.POLICY_VERDICT not in governed.attributes
    [event] = [e for e in governed.events if e.name == sc.EVENT_GUARDRAIL]
    assert event.attributes is not None
    assert event.attributes[sc.POLICY_VERDICT] == "allow"
    assert telemetry.span("invoke_agent Agent workflow").attributes[sc.RUN_DENIALS] == 0


READS: list[str] = []


@tool_input_guardrail
def no_wildcards(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
    if "*" in json.loads(data.context.tool_arguments)["table"]:
        return ToolGuardrailFunctionOutput.reject_content("wildcards are not allowed")
    return ToolGuardrailFunctionOutput.allow()


@tool_output_guardrail
def no_leaks(data: ToolOutputGuardrailData) -> ToolGuardrailFunctionOutput:
    if "classified" in str(data.output):
        return ToolGuardrailFunctionOutput.reject_content("output withheld")
    return ToolGuardrailFunctionOutput.allow()


@tool_input_guardrail
def halt_on_drop(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
    if "drop" in data.context.tool_arguments:
        return ToolGuardrailFunctionOutput.raise_exception()
    return ToolGuardrailFunctionOutput.allow()


@function_tool(
    tool_input_guardrails=[halt_on_drop, no_wildcards], tool_output_guardrails=[no_leaks]
)
def read_table(table: str) -> str:
    """Read a table's rows."""
    READS.append(table)
    return f"classified rows of {table}" if table == "vault" else f"rows of {table}"


def _read_run(table: str) -> tuple[Any, AsyncScriptedTransport]:
    READS.clear()
    transport = AsyncScriptedTransport(
        [
            _response(1, [_call("read_table", {"table": table}, "call_g1")]),
            _response(2, [_text("done")]),
        ]
    )
    agent = Agent(name="reader", tools=[read_table], model=_model(transport))
    return asyncio.run(Runner.run(agent, f"Read {table}")), transport


def _guardrail_events(span: ReadableSpan) -> list[tuple[Any, Any, Any]]:
    return [
        (
            e.attributes[sc.POLICY_RULE],
            e.attributes[sc.POLICY_VERDICT],
            e.attributes[sc.GUARDRAIL_TRIPPED],
        )
        for e in span.events
        if e.name == sc.EVENT_GUARDRAIL and e.attributes is not None
    ]


def _tool_output_sent(transport: AsyncScriptedTransport) -> str:
    items = transport.requests[1].json["input"]
    [output] = [i for i in items if i.get("type") == "function_call_output"]
    return str(output["output"])


def test_tool_guardrails_that_pass_leave_allow_events_on_the_tool_span(
    telemetry: Telemetry,
) -> None:
    _read_run("users")

    tool = telemetry.span("execute_tool read_table")
    assert READS == ["users"]
    assert _guardrail_events(tool) == [
        ("halt_on_drop", "allow", False),
        ("no_wildcards", "allow", False),
        ("no_leaks", "allow", False),
    ]
    assert sc.POLICY_VERDICT not in tool.attributes
    assert tool.status.status_code is not StatusCode.ERROR
    assert telemetry.span("invoke_agent Agent workflow").attributes[sc.RUN_DENIALS] == 0


def test_tool_input_guardrail_rejection_is_a_deny_on_a_call_that_never_ran(
    telemetry: Telemetry,
) -> None:
    _, transport = _read_run("*")

    assert READS == []
    assert _tool_output_sent(transport) == "wildcards are not allowed"
    tool = telemetry.span("execute_tool read_table")
    assert tool.attributes[sc.GEN_AI_TOOL_CALL_ID] == "call_g1"
    assert tool.attributes[sc.POLICY_VERDICT] == "deny"
    assert tool.attributes[sc.POLICY_RULE] == "no_wildcards"
    assert tool.attributes[sc.GUARDRAIL_TRIPPED] is True
    assert "wildcards are not allowed" in str(tool.attributes[sc.POLICY_REASON])
    assert _guardrail_events(tool) == [
        ("halt_on_drop", "allow", False),
        ("no_wildcards", "deny", True),
    ]
    parent = _parent(tool, telemetry)
    assert parent is not None and parent.name == "invoke_agent reader"
    root = telemetry.span("invoke_agent Agent workflow").attributes
    assert (root[sc.RUN_DENIALS], root[sc.RUN_TOOL_CALLS], root[sc.RUN_TOOL_FAILURES]) == (1, 1, 0)


def test_tool_output_guardrail_rejection_is_a_deny_on_the_call_that_ran(
    telemetry: Telemetry,
) -> None:
    _, transport = _read_run("vault")

    assert READS == ["vault"]
    assert _tool_output_sent(transport) == "output withheld"
    tool = telemetry.span("execute_tool read_table")
    assert tool.attributes[sc.POLICY_VERDICT] == "deny"
    assert tool.attributes[sc.POLICY_RULE] == "no_leaks"
    assert _guardrail_events(tool)[-1] == ("no_leaks", "deny", True)
    assert tool.status.status_code is StatusCode.ERROR
    root = telemetry.span("invoke_agent Agent workflow").attributes
    assert (root[sc.RUN_DENIALS], root[sc.RUN_TOOL_FAILURES]) == (1, 0)


def test_parallel_calls_in_one_turn_keep_their_own_guardrail_verdicts(
    telemetry: Telemetry,
) -> None:
    READS.clear()
    calls = [
        _call("read_table", {"table": "*"}, "call_p1"),
        _call("read_table", {"table": "users"}, "call_p2"),
        _call("read_table", {"table": "vault"}, "call_p3"),
    ]
    transport = AsyncScriptedTransport([_response(1, calls), _response(2, [_text("done")])])
    agent = Agent(name="reader", tools=[read_table], model=_model(transport))

    asyncio.run(Runner.run(agent, "Read three"))

    assert sorted(READS) == ["users", "vault"]
    tools = {
        s.attributes[sc.GEN_AI_TOOL_CALL_ID]: s
        for s in telemetry.spans()
        if s.name == "execute_tool read_table"
    }
    assert [r for r, _, _ in _guardrail_events(tools["call_p1"])] == [
        "halt_on_drop",
        "no_wildcards",
    ]
    assert _guardrail_events(tools["call_p2"]) == [
        ("halt_on_drop", "allow", False),
        ("no_wildcards", "allow", False),
        ("no_leaks", "allow", False),
    ]
    assert _guardrail_events(tools["call_p3"])[-1] == ("no_leaks", "deny", True)
    assert sc.POLICY_VERDICT not in tools["call_p2"].attributes
    assert telemetry.span("invoke_agent Agent workflow").attributes[sc.RUN_DENIALS] == 2


def test_tool_guardrails_in_a_streamed_run(telemetry: Telemetry) -> None:
    READS.clear()
    transport = AsyncScriptedTransport(
        [
            _streamed(1, [_call("read_table", {"table": "*"}, "call_v1")]),
            _streamed(2, [_call("read_table", {"table": "vault"}, "call_v2")]),
            _streamed(3, [_text("done")]),
        ]
    )
    agent = Agent(name="reader", tools=[read_table], model=_model(transport))

    async def consume() -> None:
        result = Runner.run_streamed(agent, "Read")
        async for _ in result.stream_events():
            pass

    asyncio.run(consume())

    assert READS == ["vault"]
    tools = {
        s.attributes[sc.GEN_AI_TOOL_CALL_ID]: s
        for s in telemetry.spans()
        if s.name == "execute_tool read_table"
    }
    assert tools["call_v1"].attributes[sc.POLICY_RULE] == "no_wildcards"
    assert tools["call_v2"].attributes[sc.POLICY_RULE] == "no_leaks"
    assert telemetry.span("invoke_agent Agent workflow").attributes[sc.RUN_DENIALS] == 2


def test_tool_guardrail_tripwire_stops_the_run_and_is_recorded(telemetry: Telemetry) -> None:
    READS.clear()
    transport = AsyncScriptedTransport(
        [_response(1, [_call("read_table", {"table": "drop users"}, "call_x1")])]
    )
    agent = Agent(name="reader", tools=[read_table], model=_model(transport))

    with pytest.raises(ToolInputGuardrailTripwireTriggered):
        asyncio.run(Runner.run(agent, "Drop users"))

    assert READS == []
    tool = telemetry.span("execute_tool read_table")
    assert tool.attributes[sc.POLICY_RULE] == "halt_on_drop"
    assert tool.attributes[sc.GUARDRAIL_TRIPPED] is True
    assert telemetry.span("invoke_agent Agent workflow").attributes[sc.RUN_DENIALS] == 1


def test_a_tool_guardrail_that_crashes_is_not_recorded_as_a_verdict(telemetry: Telemetry) -> None:
    @tool_input_guardrail
    def broken(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
        raise RuntimeError("guardrail bug")

    @function_tool(tool_input_guardrails=[halt_on_drop, broken])  # one passes, then a crash
    def guarded_lookup(key: str) -> str:
        """A lookup behind a broken guardrail."""
        READS.append(key)
        return key

    READS.clear()
    transport = AsyncScriptedTransport(
        [
            _response(1, [_call("guarded_lookup", {"key": "k"}, "call_b1")]),
            _response(2, [_text("done")]),
        ]
    )
    agent = Agent(name="reader", tools=[guarded_lookup], model=_model(transport))
    with pytest.raises(Exception, match="guardrail bug"):
        asyncio.run(Runner.run(agent, "Look k up"))

    assert READS == []
    assert [s for s in telemetry.spans() if s.name.startswith("execute_tool")] == []
    assert telemetry.span("invoke_agent Agent workflow").attributes[sc.RUN_DENIALS] == 0


def test_a_run_in_the_store_and_in_otel_agents_show(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The store's run row carries the ledger's totals (denials too) and `otel-agents
    show` draws the run: agents, the tool that ran, the refused one, the handoff."""
    path = tmp_path / "traces.db"
    provider = TracerProvider()
    provider.add_span_processor(StoreSpanProcessor(StoreSettings(path=path)))
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    otel_agents.instrument(tracer_provider=provider, configure_sdk=False, detectors=False)
    try:
        agents.set_trace_processors([integration.processor()])  # type: ignore[list-item]
        READS.clear()
        transport = AsyncScriptedTransport(
            [
                _response(1, [_call("read_table", {"table": "users"}, "call_s1")]),
                _response(2, [_call("read_table", {"table": "*"}, "call_s2")]),
                _response(3, [_call("transfer_to_billing", {}, "call_s3")]),
                _response(4, [_text("Billing done.")]),
            ]
        )
        billing = Agent(name="billing", model=_model(transport))
        reader = Agent(
            name="reader", tools=[read_table], handoffs=[billing], model=_model(transport)
        )
        assert asyncio.run(Runner.run(reader, "Read users")).final_output == "Billing done."
    finally:
        otel_agents.uninstrument()
        provider.shutdown()

    with Store.open(path) as store:
        [run] = store.runs()
    assert run.agent == "Agent workflow" and run.status == "ok"
    assert (run.llm_calls, run.tool_calls, run.handoffs, run.denials) == (4, 2, 1, 1)
    env = {**os.environ, "OTEL_AGENTS_STORE_PATH": str(path), "NO_COLOR": "1"}
    shown = subprocess.run(
        [sys.executable, "-m", "otel_agents.cli", "show", run.run_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr
    assert "1 denial" in shown.stdout
    lines = [line.strip(" │├└─") for line in shown.stdout.splitlines()]
    for expected in ("agent    reader", "agent    billing", "tool     read_table ✓"):
        assert any(line.startswith(expected) for line in lines), shown.stdout
    assert any(line.startswith("tool     read_table ✗") for line in lines), shown.stdout
    assert any("handoff" in line and "billing" in line for line in lines), shown.stdout


class _OtlpReceiver:
    """An OTLP/HTTP trace receiver on a local port: every span it was sent, as protobuf."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        received = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        received.extend(scope_spans.spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}/v1/traces"


def _otlp_attributes(span: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for attribute in span.attributes:
        value = attribute.value
        kind = value.WhichOneof("value")
        if kind == "array_value":
            values[attribute.key] = [
                getattr(v, v.WhichOneof("value")) for v in value.array_value.values
            ]
        else:
            values[attribute.key] = getattr(value, kind)
    return values


def test_the_same_spans_arrive_over_otlp(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run with a tool, a refused tool, a handoff and a guardrail, exported by the real
    OTLP/HTTP exporter (synchronously: each span is received before the next one ends)."""
    receiver = _OtlpReceiver()
    serving = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    serving.start()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.endpoint)))
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    otel_agents.instrument(tracer_provider=provider, configure_sdk=False)
    try:
        agents.set_trace_processors([integration.processor()])  # type: ignore[list-item]
        transport = AsyncScriptedTransport(
            [
                _response(1, [_reasoning("Read it."), _call("read_table", {"table": "a"}, "o1")]),
                _response(2, [_call("read_table", {"table": "*"}, "o2")]),
                _response(3, [_call("transfer_to_billing", {}, "o3")]),
                _response(4, [_text("Done.")]),
            ]
        )
        billing = Agent(name="billing", model=_model(transport))
        reader = Agent(
            name="reader", tools=[read_table], handoffs=[billing], model=_model(transport)
        )
        assert asyncio.run(Runner.run(reader, "Read a")).final_output == "Done."
    finally:
        otel_agents.uninstrument()
        provider.shutdown()
        receiver.server.shutdown()

    by_id = {span.span_id: span for span in receiver.spans}

    def parent_name(span: Any) -> str | None:
        parent = by_id.get(span.parent_span_id)
        return parent.name if parent is not None else None

    assert sorted((s.name, parent_name(s)) for s in receiver.spans) == sorted(
        [
            ("invoke_agent Agent workflow", None),
            ("invoke_agent reader", "invoke_agent Agent workflow"),
            ("invoke_agent billing", "invoke_agent Agent workflow"),
            *[(f"chat {MODEL}", "invoke_agent reader")] * 3,
            (f"chat {MODEL}", "invoke_agent billing"),
            ("execute_tool read_table", "invoke_agent reader"),
            ("execute_tool read_table", "invoke_agent reader"),
            ("handoff billing", "invoke_agent reader"),
        ]
    )
    assert len({span.trace_id for span in receiver.spans}) == 1
    tools = {
        _otlp_attributes(s)[sc.GEN_AI_TOOL_CALL_ID]: s
        for s in receiver.spans
        if s.name == "execute_tool read_table"
    }
    ran, refused = tools["o1"], tools["o2"]
    requester = next(
        s for s in receiver.spans if _otlp_attributes(s).get(sc.GEN_AI_RESPONSE_ID) == "resp_1"
    )
    assert [link.span_id for link in ran.links] == [requester.span_id]
    assert _otlp_attributes(ran)[sc.DECISION_REASONING_SOURCE] == "reasoning_summary"
    assert _otlp_attributes(refused)[sc.POLICY_VERDICT] == "deny"
    assert _otlp_attributes(refused)[sc.GUARDRAIL_TRIPPED] is True
    assert [e.name for e in refused.events].count(sc.EVENT_GUARDRAIL) == 2
    handoff = _otlp_attributes(next(s for s in receiver.spans if s.name == "handoff billing"))
    assert handoff[sc.HANDOFF_ACCEPTED] is True and handoff[sc.HANDOFF_FROM] == "reader"
    root = _otlp_attributes(next(s for s in receiver.spans if parent_name(s) is None))
    assert (root[sc.RUN_TOOL_CALLS], root[sc.RUN_HANDOFFS], root[sc.RUN_DENIALS]) == (2, 1, 1)
    assert root[sc.RUN_LLM_CALLS] == 4



def test_tool_denied_by_policy_never_runs_and_the_model_sees_a_tool_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for telemetry in _instrumented(monkeypatch, policy=DENY_POLICY):
        transport = AsyncScriptedTransport(
            [
                _response(1, [_call("delete_records", {"table": "users"}, "call_d1")]),
                _response(2, [_text("I may not delete records.")]),
            ]
        )
        agent = Agent(name="janitor", tools=[delete_records], model=_model(transport))

        result = asyncio.run(Runner.run(agent, "Clean the users table"))

        assert result.final_output == "I may not delete records."
        tool = telemetry.span("execute_tool delete_records")
        assert tool.attributes[sc.POLICY_VERDICT] == "deny"
        assert tool.attributes[sc.GEN_AI_TOOL_CALL_ID] == "call_d1"
        second_request = transport.requests[1].json
        [output] = [i for i in second_request["input"] if i.get("type") == "function_call_output"]
        assert output["call_id"] == "call_d1"
        assert "denied" in output["output"] and "no-deletes" in output["output"]
        root = telemetry.span("invoke_agent Agent workflow")
        assert root.attributes[sc.RUN_DENIALS] == 1


def test_agent_retrying_a_failing_tool_trips_the_retry_detector(telemetry: Telemetry) -> None:
    FLAKY_CALLS.clear()
    script = [
        _response(n, [_call("flaky_lookup", {"key": "acct-7"}, f"call_r{n}")]) for n in range(4)
    ]
    transport = AsyncScriptedTransport([*script, _response(9, [_text("Giving up.")])])
    agent = Agent(name="stubborn", tools=[flaky_lookup], model=_model(transport))

    result = asyncio.run(Runner.run(agent, "Look acct-7 up"))

    assert result.final_output == "Giving up."
    assert FLAKY_CALLS == ["acct-7"] * 4
    tools = [s for s in telemetry.spans() if s.name == "execute_tool flaky_lookup"]
    assert sorted(s.attributes[sc.TOOL_CALL_ATTEMPT] for s in tools) == [1, 2, 3, 4]
    flagged = [s for s in tools if "retry_loop" in (s.attributes.get(sc.ANOMALY) or ())]
    assert flagged, [dict(s.attributes) for s in tools]
    assert telemetry.span("invoke_agent Agent workflow").attributes[sc.RUN_ANOMALIES] >= 1


def test_agents_handing_work_back_and_forth_trip_the_ping_pong_detector(
    telemetry: Telemetry,
) -> None:
    transport = AsyncScriptedTransport(
        [
            _response(1, [_call("transfer_to_billing", {}, "call_p1")]),
            _response(2, [_call("transfer_to_triage", {}, "call_p2")]),
            _response(3, [_call("transfer_to_billing", {}, "call_p3")]),
            _response(4, [_call("transfer_to_triage", {}, "call_p4")]),
            _response(5, [_text("Nobody owns this.")]),
        ]
    )
    billing = Agent(name="billing", model=_model(transport))
    triage = Agent(name="triage", handoffs=[billing], model=_model(transport))
    billing.handoffs = [triage]

    result = asyncio.run(Runner.run(triage, "Who owns my refund?"))

    assert result.final_output == "Nobody owns this."
    handoffs = sorted(
        (s for s in telemetry.spans() if s.name.startswith("handoff ")),
        key=lambda s: s.start_time or 0,
    )
    assert [s.name for s in handoffs] == ["handoff billing", "handoff triage"] * 2
    flagged = [s for s in handoffs if "handoff_ping_pong" in (s.attributes.get(sc.ANOMALY) or ())]
    assert flagged == [handoffs[-1]], [dict(s.attributes) for s in handoffs]
    root = telemetry.span("invoke_agent Agent workflow")
    assert root.attributes[sc.RUN_HANDOFFS] == 4
    assert root.attributes[sc.RUN_ANOMALIES] == 1


def test_concurrent_async_runs_do_not_cross_talk(telemetry: Telemetry) -> None:
    async def one(city: str) -> Any:
        transport = AsyncScriptedTransport(
            [
                _response(1, [_call("get_weather", {"city": city}, f"call_{city}")]),
                _response(2, [_text(f"done {city}")]),
            ]
        )
        agent = Agent(name=f"agent_{city}", tools=[get_weather], model=_model(transport))
        return await Runner.run(agent, city)

    async def both() -> list[Any]:
        return list(await asyncio.gather(one("Paris"), one("Oslo")))

    results = asyncio.run(both())

    assert [r.final_output for r in results] == ["done Paris", "done Oslo"]
    for city in ("Paris", "Oslo"):
        agent_span = telemetry.span(f"invoke_agent agent_{city}")
        children = [
            s
            for s in telemetry.spans()
            if s.parent and s.parent.span_id == agent_span.context.span_id
        ]
        assert sorted(s.name for s in children) == sorted(
            [f"chat {MODEL}", f"chat {MODEL}", "execute_tool get_weather"]
        )
        tool = next(s for s in children if s.name == "execute_tool get_weather")
        assert tool.attributes[sc.GEN_AI_TOOL_CALL_ID] == f"call_{city}"


def test_disabled_by_the_standard_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "otel_agents_openai_agents")
    for telemetry in instrumented(monkeypatch):
        processor = integration.processor()
        if processor is not None:
            agents.set_trace_processors([processor])  # type: ignore[list-item]
        transport = AsyncScriptedTransport([_response(1, [_text("hi")])])
        agent = Agent(name="plain", model=_model(transport))
        asyncio.run(Runner.run(agent, "hello"))
        assert [s.name for s in telemetry.spans()] == [f"chat {MODEL}"]


def test_the_docs_example_runs_as_written(tmp_path: Any) -> None:
    said, lines = run_docs_example(
        "frameworks.md",
        "### Example",  # the first one: this section's
        tmp_path=tmp_path,
        env={"OPENAI_AGENTS_DISABLE_TRACING": "0"},
    )
    assert said.strip() == "Sunny in Paris."
    assert any(line.startswith("agent    weather") for line in lines), lines
    assert any(line.startswith("tool     get_weather ✓") for line in lines), lines


def test_uninstrument_restores_the_tool_invoker_and_stops_recording(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agents.run_internal import tool_execution, turn_resolution

    before = tool_execution._invoke_function_tool_with_metadata
    handoffs_before = turn_resolution.execute_handoffs
    assert not hasattr(before, "__otel_agents_original__")
    session = _instrumented(monkeypatch)
    telemetry = next(session)
    patched = tool_execution._invoke_function_tool_with_metadata
    assert hasattr(patched, "__otel_agents_original__")
    assert turn_resolution.execute_handoffs is not handoffs_before
    with pytest.raises(StopIteration):
        next(session)  # uninstrument()
    assert tool_execution._invoke_function_tool_with_metadata is before
    assert turn_resolution.execute_handoffs is handoffs_before
    transport = AsyncScriptedTransport(
        [
            _response(1, [_call("get_weather", {"city": "Rome"}, "call_u1")]),
            _response(2, [_text("done")]),
        ]
    )
    agent = Agent(name="weather", tools=[get_weather], model=_model(transport))
    assert asyncio.run(Runner.run(agent, "Rome?")).final_output == "done"
    assert telemetry.spans() == []


def agents_names_run() -> None:
    """For tests/test_emitted_names.py (already instrumented): one run with a tool, a
    handoff and a tripped guardrail, so every name this integration emits is checked."""

    @input_guardrail
    def no_secrets(ctx: Any, agent: Any, text: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered="password" in text)

    ours = integration.processor()
    assert ours is not None
    agents.set_trace_processors([ours])  # type: ignore[list-item]
    transport = AsyncScriptedTransport(
        [
            _response(1, [_reasoning("Look it up."), _call("get_weather", {"city": "Rome"}, "c1")]),
            _response(2, [_call("transfer_to_billing", {}, "c2")]),
            _response(3, [_text("done")]),
        ]
    )
    billing = Agent(name="billing", model=_model(transport))
    triage = Agent(name="triage", tools=[get_weather], handoffs=[billing], model=_model(transport))
    asyncio.run(Runner.run(triage, "Weather in Rome?"))
    guarded = Agent(name="guarded", input_guardrails=[no_secrets], model=_model(transport))
    with pytest.raises(InputGuardrailTripwireTriggered):
        asyncio.run(Runner.run(guarded, "my password"))
    _read_run("*")  # a tool input guardrail refusing a call
    _read_run("vault")  # a tool output guardrail rejecting a result
