"""The policy gate cannot be skipped: a hostile argument or any failure while a tool call is
opened still reaches a verdict. Enforce + fail_closed refuses the call (on a span, in the
audit log); observe lets it run and records the failure on the span."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from agents_testing import Hostile
from opentelemetry.sdk.trace import TracerProvider
from policy_helpers import attrs, reinstrument, spans_named

import otel_agents
from otel_agents import semconv as sc
from otel_agents.core import tool as tool_module
from otel_agents.policy import Match, Mode, OnError, Policy, Rule, ToolCallDenied, Verdict
from otel_agents.policy.evaluator import RULE_INTERNAL_ERROR
from otel_agents.runtime import Runtime
from otel_agents.store.exporter import StoreSpanProcessor
from otel_agents.store.reader import Store
from otel_agents.store.settings import StoreSettings

ran: list[Any] = []


@otel_agents.tool
def grant_role(account: Any, role: Any = "viewer") -> str:
    ran.append(role)
    return "granted"


@pytest.fixture(autouse=True)
def _clear() -> None:
    ran.clear()


def policy(mode: Mode, on_error: OnError = OnError.FAIL_CLOSED) -> Policy:
    no_admin = Rule(
        "no-admin", Verdict.DENY, Match(tool=("grant_role",), arguments={"role": "admin"})
    )
    return Policy(rules=(no_admin,), mode=mode, on_error=on_error)


def broken(*args: Any, **kwargs: Any) -> Any:
    raise KeyError("injected")


def the_span(telemetry: Any) -> Any:
    (span,) = spans_named(telemetry, "execute_tool grant_role")
    return span


def test_a_hostile_argument_is_fingerprinted_and_gated(telemetry: Any) -> None:
    reinstrument(telemetry, policy=policy(Mode.ENFORCE))
    with otel_agents.agent("ops"):
        assert grant_role(Hostile()) == "granted"
        with pytest.raises(ToolCallDenied):
            grant_role(Hostile(), role="admin")
    spans = spans_named(telemetry, "execute_tool grant_role")
    assert [attrs(s)[sc.POLICY_VERDICT] for s in spans] == ["allow", "deny"]
    assert all(sc.TOOL_CALL_FINGERPRINT in attrs(s) for s in spans)
    assert ran == ["viewer"]


@pytest.mark.parametrize("mode", [Mode.ENFORCE, Mode.OBSERVE])
def test_an_argument_that_breaks_rule_matching_follows_on_error(telemetry: Any, mode: Mode) -> None:
    reinstrument(telemetry, policy=policy(mode))
    if mode is Mode.ENFORCE:
        with pytest.raises(ToolCallDenied, match="policy evaluation failed"):
            grant_role("acct", role=Hostile())  # `"admin" == role` raises
        assert ran == []
    else:
        assert grant_role("acct", role=Hostile()) == "granted"
    span = the_span(telemetry)
    assert attrs(span)[sc.POLICY_RULE] == RULE_INTERNAL_ERROR
    assert attrs(span)[sc.POLICY_VERDICT] == "deny"


# Faults at every stage of opening a call, before the verdict: each must reach the gate.
OPENING_FAULTS = {
    "fingerprint": (tool_module, "fingerprint"),
    "argument key": (tool_module, "canonical_arguments"),
    "agent lookup": (tool_module, "current_agent"),
    "content capture": (tool_module, "capture_content"),
    "the whole opening": (tool_module.ToolInvocation, "_open"),
    "observer notification": (Runtime, "check_tool"),
    "the invocation itself": (tool_module.ToolInvocation, "__init__"),
    "argument binding": (tool_module._ArgumentBinder, "bind"),
}


@pytest.mark.parametrize("fault", OPENING_FAULTS)
def test_a_failure_before_the_verdict_refuses_the_call_under_fail_closed(
    telemetry: Any, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    reinstrument(telemetry, policy=policy(Mode.ENFORCE), capture_content="SPAN_ONLY")
    owner, name = OPENING_FAULTS[fault]
    monkeypatch.setattr(owner, name, broken)
    with otel_agents.agent("ops"), pytest.raises(ToolCallDenied) as refused:
        grant_role("acct")
    assert refused.value.rule == RULE_INTERNAL_ERROR
    assert ran == []
    span = the_span(telemetry)
    assert attrs(span)[sc.POLICY_VERDICT] == "deny"
    assert attrs(span)[sc.POLICY_RULE] == RULE_INTERNAL_ERROR
    assert attrs(span)[sc.ERROR_TYPE] == "otel_agents.errors.ToolCallDenied"


@pytest.mark.parametrize("fault", OPENING_FAULTS)
def test_a_failure_before_the_verdict_is_recorded_and_the_call_runs_in_observe_mode(
    telemetry: Any, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    reinstrument(telemetry, policy=policy(Mode.OBSERVE), capture_content="SPAN_ONLY")
    owner, name = OPENING_FAULTS[fault]
    monkeypatch.setattr(owner, name, broken)
    with otel_agents.agent("ops"):
        assert grant_role("acct") == "granted"
    assert ran == ["viewer"]
    spans = spans_named(telemetry, "execute_tool grant_role")
    if fault in ("observer notification", "the invocation itself"):
        return  # the gate was never reached, or there is no call to record it on
    assert attrs(spans[0])[sc.POLICY_RULE] == RULE_INTERNAL_ERROR
    assert "KeyError" in attrs(spans[0])[sc.POLICY_REASON]


def test_fail_open_lets_the_call_run_and_names_the_failure(
    telemetry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    reinstrument(telemetry, policy=policy(Mode.ENFORCE, OnError.FAIL_OPEN))
    monkeypatch.setattr(tool_module, "fingerprint", broken)
    with otel_agents.agent("ops"):
        assert grant_role("acct") == "granted"
    span = the_span(telemetry)
    assert attrs(span)[sc.POLICY_VERDICT] == "allow"
    assert attrs(span)[sc.POLICY_RULE] == RULE_INTERNAL_ERROR
    assert "opening the tool call failed (KeyError)" in attrs(span)[sc.POLICY_REASON]


def test_the_refusal_is_in_the_audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "store.db"
    provider = TracerProvider()
    provider.add_span_processor(StoreSpanProcessor(StoreSettings(path=path)))
    otel_agents.instrument(
        tracer_provider=provider, configure_sdk=False, detectors=False, policy=policy(Mode.ENFORCE)
    )
    try:
        monkeypatch.setattr(tool_module, "fingerprint", broken)
        with otel_agents.agent("ops"), pytest.raises(ToolCallDenied):
            grant_role("acct")
    finally:
        otel_agents.uninstrument()
        provider.shutdown()
    with Store.open(path) as store:
        (record,) = list(store.audit_records())
    assert (record.tool, record.status, record.verdict, record.policy_rule) == (
        "grant_role",
        "error",
        "deny",
        RULE_INTERNAL_ERROR,
    )
    assert ran == []
