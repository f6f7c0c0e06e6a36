"""agent(), tool(), decision() and tool_call_id() on the real OpenTelemetry SDK."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from typing import Any

import pytest
from agents_testing import Telemetry
from opentelemetry.trace import SpanKind, StatusCode

import otel_agents
import otel_agents.errors
from otel_agents import semconv as sc


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


# -- agents ------------------------------------------------------------------------------


def test_agent_context_manager_makes_an_invoke_agent_span(telemetry: Telemetry) -> None:
    with otel_agents.agent("intake", id="ag-1", description="Summarizes vendors", version="2"):
        pass
    span = telemetry.span("invoke_agent intake")
    assert span.kind is SpanKind.INTERNAL
    a = attrs(span)
    assert a[sc.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert a[sc.GEN_AI_AGENT_NAME] == "intake"
    assert a[sc.GEN_AI_AGENT_DESCRIPTION] == "Summarizes vendors"
    # An in-process agent's id and version are ours: upstream removed `gen_ai.agent.id` and
    # `gen_ai.agent.version` from this span (they describe hosted agents).
    assert a[sc.AGENT_ID] == "ag-1"
    assert a[sc.AGENT_VERSION] == "2"
    assert sc.GEN_AI_AGENT_ID not in a and sc.GEN_AI_AGENT_VERSION not in a
    assert len(a[sc.RUN_ID]) == 32
    # run totals on the root span
    assert a[sc.RUN_TOOL_CALLS] == 0 and a[sc.RUN_LLM_CALLS] == 0
    assert sc.RUN_COST_USD not in a  # unknown cost is absent, never zero by guess


def test_nested_agents_share_the_run_and_only_the_root_has_totals(telemetry: Telemetry) -> None:
    @otel_agents.tool
    def lookup(vendor: str) -> str:
        return vendor.upper()

    with otel_agents.agent("orchestrator") as root:
        with otel_agents.agent("researcher") as child:
            lookup("acme")
        assert child.run_id == root.run_id
    outer, inner = (
        telemetry.span("invoke_agent orchestrator"),
        telemetry.span("invoke_agent researcher"),
    )
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id
    assert attrs(inner)[sc.RUN_ID] == attrs(outer)[sc.RUN_ID]
    assert sc.RUN_TOOL_CALLS not in attrs(inner)
    assert attrs(outer)[sc.RUN_TOOL_CALLS] == 1
    tool_span = telemetry.span("execute_tool lookup")
    assert tool_span.parent is not None and tool_span.parent.span_id == inner.context.span_id
    # The tool span names the agent that ran it, as the conventions expect.
    assert attrs(tool_span)[sc.GEN_AI_AGENT_NAME] == "researcher"


def test_agent_metrics_count_the_calls_of_each_invocation(telemetry: Telemetry) -> None:
    @otel_agents.tool
    def lookup(vendor: str) -> str:
        return vendor.upper()

    with otel_agents.agent("orchestrator"):
        lookup("a")
        with otel_agents.agent("researcher"):
            lookup("b")
            lookup("c")

    def by_agent(name: str) -> dict[str, Any]:
        return {p.attributes[sc.GEN_AI_AGENT_NAME]: p for p in telemetry.metric_points(name)}

    tool_calls = by_agent(sc.METRIC_GEN_AI_INVOKE_AGENT_TOOL_CALLS)
    # An invocation counts the calls made while it ran, its nested agents' included.
    assert (tool_calls["orchestrator"].sum, tool_calls["researcher"].sum) == (3, 2)
    assert tuple(tool_calls["researcher"].explicit_bounds) == (1, 2, 4, 8, 16, 32, 64, 128)
    inference_calls = by_agent(sc.METRIC_GEN_AI_INVOKE_AGENT_INFERENCE_CALLS)
    assert inference_calls["orchestrator"].sum == 0 and inference_calls["researcher"].count == 1
    durations = by_agent(sc.METRIC_GEN_AI_INVOKE_AGENT_DURATION)
    name = sc.METRIC_GEN_AI_INVOKE_AGENT_DURATION
    assert tuple(durations["orchestrator"].explicit_bounds) == sc.METRIC_BUCKETS[name]
    tool_durations = by_agent(sc.METRIC_GEN_AI_EXECUTE_TOOL_DURATION)
    assert (tool_durations["orchestrator"].count, tool_durations["researcher"].count) == (1, 2)
    name = sc.METRIC_GEN_AI_EXECUTE_TOOL_DURATION
    for point in tool_durations.values():
        assert point.attributes[sc.GEN_AI_TOOL_TYPE] == "function"
        assert tuple(point.explicit_bounds) == sc.METRIC_BUCKETS[name]


def test_agent_decorator_keeps_the_function_intact(telemetry: Telemetry) -> None:
    def plain(a: int, b: int = 2) -> int:
        """Adds."""
        return a + b

    async def plain_async(a: int) -> int:
        return a * 2

    traced = otel_agents.agent("adder")(plain)
    traced_async = otel_agents.agent("doubler")(plain_async)
    assert traced.__name__ == "plain" and traced.__doc__ == "Adds."
    assert inspect.signature(traced) == inspect.signature(plain)
    assert inspect.iscoroutinefunction(traced_async)
    assert not inspect.iscoroutinefunction(traced)
    assert traced(1) == 3
    assert asyncio.run(traced_async(4)) == 8
    assert {s.name for s in telemetry.spans()} == {"invoke_agent adder", "invoke_agent doubler"}


def test_agent_exception_passes_through_unchanged_and_marks_the_span(
    telemetry: Telemetry,
) -> None:
    class VendorError(Exception):
        pass

    error = VendorError("vendor not found")
    with pytest.raises(VendorError) as caught, otel_agents.agent("intake"):
        raise error
    assert caught.value is error
    span = telemetry.span("invoke_agent intake")
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)[sc.ERROR_TYPE].endswith("VendorError")
    assert span.events[0].name == "exception"


async def test_async_agent_context_manager(telemetry: Telemetry) -> None:
    async with otel_agents.agent("async-agent") as run:
        await asyncio.sleep(0)
        assert run.run_id is not None
    assert telemetry.span("invoke_agent async-agent")


# -- tools -------------------------------------------------------------------------------


def test_tool_bare_and_with_options(telemetry: Telemetry) -> None:
    @otel_agents.tool
    def create_account(vendor_id: str, plan: str = "basic") -> dict[str, str]:
        """Create a vendor account."""
        return {"account": f"acct-{vendor_id}", "plan": plan}

    @otel_agents.tool(
        name="grant_permission",
        description="Grant a role",
        tags=["writes:iam"],
        reversible=False,
        impact_scope="single_account",
    )
    def grant(account: str, role: str) -> bool:
        return True

    with otel_agents.agent("provisioning"):
        assert create_account("v1") == {"account": "acct-v1", "plan": "basic"}
        assert grant("acct-v1", role="admin") is True
    first = attrs(telemetry.span("execute_tool create_account"))
    assert first[sc.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert first[sc.GEN_AI_TOOL_NAME] == "create_account"
    assert first[sc.GEN_AI_TOOL_TYPE] == "function"
    assert first[sc.GEN_AI_TOOL_DESCRIPTION] == "Create a vendor account."
    assert first[sc.TOOL_CALL_ATTEMPT] == 1
    assert len(first[sc.TOOL_CALL_FINGERPRINT]) == 16
    # content is off by default: no arguments, no result
    assert sc.GEN_AI_TOOL_CALL_ARGUMENTS not in first
    assert sc.GEN_AI_TOOL_CALL_RESULT not in first
    second = attrs(telemetry.span("execute_tool grant_permission"))
    assert second[sc.GEN_AI_TOOL_DESCRIPTION] == "Grant a role"
    assert second[sc.TOOL_TAGS] == ("writes:iam",)
    assert second[sc.TOOL_REVERSIBLE] is False
    assert second[sc.TOOL_IMPACT_SCOPE] == "single_account"


def test_tool_captures_arguments_and_result_when_content_is_on(
    content_telemetry: Telemetry,
) -> None:
    class Registry:
        @otel_agents.tool
        def lookup(self, vendor: str, *, strict: bool = True) -> dict[str, Any]:
            return {"vendor": vendor, "found": True}

    assert Registry().lookup("acme", strict=False) == {"vendor": "acme", "found": True}
    a = attrs(content_telemetry.span("execute_tool lookup"))
    assert json.loads(a[sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"vendor": "acme", "strict": False}
    assert json.loads(a[sc.GEN_AI_TOOL_CALL_RESULT]) == {"vendor": "acme", "found": True}


async def test_async_tool_and_signature(content_telemetry: Telemetry) -> None:
    async def fetch(url: str) -> str:
        await asyncio.sleep(0)
        return "ok"

    traced = otel_agents.tool(fetch)
    assert inspect.iscoroutinefunction(traced)
    assert inspect.signature(traced) == inspect.signature(fetch)
    assert await traced("https://example.test") == "ok"
    a = attrs(content_telemetry.span("execute_tool fetch"))
    assert a[sc.GEN_AI_TOOL_CALL_RESULT] == "ok"


def test_tool_error_is_reraised_as_is(telemetry: Telemetry) -> None:
    @otel_agents.tool
    def fails() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError) as caught:
        fails()
    assert caught.value.args == ("missing",)
    span = telemetry.span("execute_tool fails")
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)[sc.ERROR_TYPE] == "KeyError"


def test_same_call_again_is_a_retry(telemetry: Telemetry) -> None:
    @otel_agents.tool
    def charge(amount: int) -> int:
        return amount

    with otel_agents.agent("billing"):
        charge(5)
        charge(5)
        charge(6)
    attempts = sorted(
        (attrs(s)[sc.TOOL_CALL_ATTEMPT], attrs(s)[sc.TOOL_CALL_FINGERPRINT])
        for s in telemetry.spans()
        if s.name == "execute_tool charge"
    )
    assert [a for a, _ in attempts] == [1, 1, 2]
    root = attrs(telemetry.span("invoke_agent billing"))
    assert root[sc.RUN_RETRIES] == 1 and root[sc.RUN_TOOL_CALLS] == 3
    assert root[sc.RUN_TOOL_FAILURES] == 0


def test_the_run_counts_its_failed_tool_calls_but_not_refusals(telemetry: Telemetry) -> None:
    @otel_agents.tool
    def flaky(attempt: int) -> int:
        raise TimeoutError("upstream timed out")

    @otel_agents.tool
    def refused() -> None:
        raise otel_agents.errors.ToolCallDenied("refused", "rule", "a policy said no")

    with otel_agents.agent("billing"):
        for attempt in range(2):
            with contextlib.suppress(TimeoutError):
                flaky(attempt)
        with contextlib.suppress(otel_agents.errors.ToolCallDenied):
            refused()
    root = attrs(telemetry.span("invoke_agent billing"))
    assert root[sc.RUN_TOOL_FAILURES] == 2 and root[sc.RUN_TOOL_CALLS] == 3


# -- the decision path --------------------------------------------------------------------


def test_decision_links_the_tool_span_to_the_reasoning(content_telemetry: Telemetry) -> None:
    tracer = content_telemetry.tracer_provider.get_tracer("test")

    @otel_agents.tool
    def create_account(vendor_id: str) -> str:
        return "acct-1"

    with otel_agents.agent("provisioning"):
        with tracer.start_as_current_span("chat gpt-test") as llm_span:
            otel_agents.decision(
                "Vendor v1 passed checks; creating its account.",
                tool_name="create_account",
                tool_call_id="call_123",
            )
        create_account("v1")
    span = content_telemetry.span("execute_tool create_account")
    a = attrs(span)
    assert a[sc.GEN_AI_TOOL_CALL_ID] == "call_123"
    assert a[sc.DECISION_MATCH] == "name"
    assert a[sc.DECISION_REASONING] == "Vendor v1 passed checks; creating its account."
    assert a[sc.DECISION_REASONING_SOURCE] == "application"
    assert [link.context.span_id for link in span.links] == [llm_span.get_span_context().span_id]


def test_match_by_call_id_and_by_arguments(content_telemetry: Telemetry) -> None:
    from otel_agents.core.decision import note_tool_requests
    from otel_agents.core.requests import ToolCallRequest

    tracer = content_telemetry.tracer_provider.get_tracer("test")

    @otel_agents.tool
    def grant(account: str, role: str) -> bool:
        return True

    with otel_agents.agent("provisioning"):
        with tracer.start_as_current_span("chat model") as llm:
            note_tool_requests(
                [
                    ToolCallRequest("call_a", "grant", '{"role": "viewer", "account": "a1"}', "A"),
                    ToolCallRequest("call_b", "grant", '{"account": "a2", "role": "admin"}', "B"),
                ],
                llm.get_span_context(),
            )
        grant("a2", "admin")  # matched by name and (canonical) arguments
        with otel_agents.tool_call_id("call_a"):
            grant(account="a1", role="viewer")  # matched by call id
    spans = [s for s in content_telemetry.spans() if s.name == "execute_tool grant"]
    by_call = {attrs(s)[sc.GEN_AI_TOOL_CALL_ID]: attrs(s) for s in spans}
    assert by_call["call_b"][sc.DECISION_MATCH] == "name_and_arguments"
    assert by_call["call_b"][sc.DECISION_REASONING] == "B"
    assert by_call["call_a"][sc.DECISION_MATCH] == "call_id"
    assert by_call["call_a"][sc.DECISION_REASONING] == "A"
    assert all(len(s.links) == 1 for s in spans)


def test_reasoning_is_not_captured_when_content_is_off(telemetry: Telemetry) -> None:
    @otel_agents.tool
    def act() -> None:
        return None

    with otel_agents.agent("a"):
        otel_agents.decision("secret plan")
        act()
    a = attrs(telemetry.span("execute_tool act"))
    assert sc.DECISION_REASONING not in a
    assert a[sc.DECISION_REASONING_SOURCE] == "application"  # metadata stays


def test_tool_call_id_does_not_leak_into_nested_tools(telemetry: Telemetry) -> None:
    @otel_agents.tool
    def inner() -> int:
        return 1

    @otel_agents.tool
    def outer() -> int:
        return inner()

    with otel_agents.tool_call_id("call_outer"):
        outer()
    assert attrs(telemetry.span("execute_tool outer"))[sc.GEN_AI_TOOL_CALL_ID] == "call_outer"
    assert sc.GEN_AI_TOOL_CALL_ID not in attrs(telemetry.span("execute_tool inner"))


def test_metrics_are_recorded(telemetry: Telemetry) -> None:
    @otel_agents.tool
    def ping() -> str:
        return "pong"

    with otel_agents.agent("pinger"):
        ping()
    calls = telemetry.metric_points(sc.METRIC_TOOL_CALLS)
    assert sum(p.value for p in calls) == 1  # type: ignore[attr-defined]
    durations = telemetry.metric_points(sc.METRIC_GEN_AI_EXECUTE_TOOL_DURATION)
    assert durations and durations[0].count == 1  # type: ignore[attr-defined]
    runs = telemetry.metric_points(sc.METRIC_RUNS)
    assert sum(p.value for p in runs) == 1  # type: ignore[attr-defined]
