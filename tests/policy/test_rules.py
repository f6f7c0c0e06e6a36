"""The gate on real tool calls: every verdict in both modes, matching, defaults fed by tool
properties, retry and spend limits, metrics, and fail-open / fail-closed."""

from __future__ import annotations

from typing import Any

import pytest
from policy_helpers import attrs, point_values, reinstrument, spans_named

import otel_agents
from otel_agents import semconv as sc
from otel_agents.policy import (
    ApprovalDecision,
    ApprovalRejected,
    CallFacts,
    Limit,
    Limits,
    Match,
    Mode,
    OnError,
    Policy,
    PolicyEvaluator,
    Rule,
    ToolCallDenied,
    ToolCallEscalated,
    ToolProfile,
    Verdict,
)
from otel_agents.policy.evaluator import (
    RULE_DEFAULT,
    RULE_INTERNAL_ERROR,
    RULE_IRREVERSIBLE,
    RULE_MAX_FAILURES,
    RULE_MAX_RECORDS,
    RULE_PER_REQUEST,
    RULE_PER_RUN,
)

calls: list[str] = []


@otel_agents.tool(tags=["writes:customer_db"])
def create_account(vendor_id: str) -> dict[str, str]:
    calls.append(vendor_id)
    return {"account_id": f"acct-{vendor_id}"}


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    calls.clear()


def one_rule(verdict: str, mode: str, **match: Any) -> Policy:
    return Policy(
        rules=(Rule("the-rule", Verdict(verdict), Match(**match), reason=f"it is {verdict}"),),
        mode=Mode(mode),
    )


def approve_all(request: Any) -> ApprovalDecision:
    return ApprovalDecision(True, "alice", "looks fine")


# -- each verdict in each mode ---------------------------------------------------------

EXPECTED_STOP: dict[str, type[Exception] | None] = {
    "allow": None,
    "deny": ToolCallDenied,
    "escalate": ToolCallEscalated,
    "require_approval": None,  # approve_all approves: the call pauses, then runs
}


@pytest.mark.parametrize("mode", ["observe", "enforce"])
@pytest.mark.parametrize("verdict", ["allow", "deny", "escalate", "require_approval"])
def test_each_verdict_in_each_mode(telemetry: Any, verdict: str, mode: str) -> None:
    reinstrument(
        telemetry, policy=one_rule(verdict, mode, tool="create_account"), approver=approve_all
    )
    stop = EXPECTED_STOP[verdict] if mode == "enforce" else None
    if stop is None:
        assert create_account("v-1") == {"account_id": "acct-v-1"}
        assert calls == ["v-1"]
    else:
        with pytest.raises(stop) as caught:
            create_account("v-1")
        assert calls == []  # the tool was not called
        message = str(caught.value)
        assert "'create_account'" in message and "'the-rule'" in message
        assert f"it is {verdict}" in message
    span = telemetry.span("execute_tool create_account")
    assert attrs(span)[sc.POLICY_VERDICT] == verdict
    assert attrs(span)[sc.POLICY_RULE] == "the-rule"
    assert attrs(span)[sc.POLICY_REASON] == f"it is {verdict}"
    assert attrs(span)[sc.POLICY_MODE] == mode
    if stop is not None:
        assert attrs(span)[sc.ERROR_TYPE] == f"otel_agents.errors.{stop.__name__}"
    # The wait for a human happens only when the verdict is enforced.
    approvals = spans_named(telemetry, "await_approval create_account")
    assert len(approvals) == (1 if (verdict, mode) == ("require_approval", "enforce") else 0)
    # The verdict is on the verdicts metric and on the tool-calls metric.
    (point,) = point_values(telemetry, sc.METRIC_POLICY_VERDICTS)
    assert point == (
        {
            sc.POLICY_VERDICT: verdict,
            sc.POLICY_RULE: "the-rule",
            sc.POLICY_MODE: mode,
            sc.GEN_AI_TOOL_NAME: "create_account",
        },
        1,
    )
    (tool_point,) = point_values(telemetry, sc.METRIC_TOOL_CALLS)
    assert tool_point[0][sc.POLICY_VERDICT] == verdict


def test_verdict_counts_add_up_across_calls_and_a_new_gate(telemetry: Any) -> None:
    reinstrument(telemetry, policy=one_rule("deny", "observe", tool="create_account"))
    for index in range(3):
        create_account(f"v-{index}")
    assert [value for _, value in point_values(telemetry, sc.METRIC_POLICY_VERDICTS)] == [3]
    # instrument() again on the same meter: the counter keeps counting, it does not restart.
    reinstrument(telemetry, policy=one_rule("deny", "observe", tool="create_account"))
    create_account("v-9")
    assert [value for _, value in point_values(telemetry, sc.METRIC_POLICY_VERDICTS)] == [4]


def test_require_approval_in_enforce_mode_stops_when_rejected(telemetry: Any) -> None:
    policy = one_rule("require_approval", "enforce", tool="create_account")
    reinstrument(telemetry, policy=policy, approver=lambda request: False)
    with pytest.raises(ApprovalRejected) as caught:
        create_account("v-1")
    assert calls == []
    assert caught.value.status == "rejected"
    assert "was not approved" in str(caught.value)


def test_without_a_policy_spans_carry_no_verdict(telemetry: Any) -> None:
    reinstrument(telemetry)
    create_account("v-1")
    assert sc.POLICY_VERDICT not in attrs(telemetry.span("execute_tool create_account"))
    assert point_values(telemetry, sc.METRIC_POLICY_VERDICTS) == []


def test_a_rule_in_observe_mode_inside_an_enforced_policy(telemetry: Any) -> None:
    policy = Policy(
        rules=(Rule("trial", Verdict.DENY, Match(tool="create_account"), mode=Mode.OBSERVE),),
        mode=Mode.ENFORCE,
    )
    reinstrument(telemetry, policy=policy)
    assert create_account("v-1") == {"account_id": "acct-v-1"}
    span = telemetry.span("execute_tool create_account")
    assert (attrs(span)[sc.POLICY_VERDICT], attrs(span)[sc.POLICY_MODE]) == ("deny", "observe")


def test_policy_mode_argument_overrides_the_file(telemetry: Any) -> None:
    reinstrument(
        telemetry, policy=one_rule("deny", "enforce", tool="create_account"), policy_mode="observe"
    )
    create_account("v-1")
    assert calls == ["v-1"]


# -- matching --------------------------------------------------------------------------


def test_agent_and_tag_patterns(telemetry: Any) -> None:
    policy = Policy(
        rules=(Rule("intake-read-only", Verdict.DENY, Match(agent="intake*", tags="writes:*")),),
        mode=Mode.ENFORCE,
    )
    reinstrument(telemetry, policy=policy)
    with otel_agents.agent("intake-eu"), pytest.raises(ToolCallDenied):
        create_account("v-1")
    with otel_agents.agent("provisioning"):
        create_account("v-2")
    assert calls == ["v-2"]


def test_first_matching_rule_wins(telemetry: Any) -> None:
    policy = Policy(
        rules=(
            Rule(
                "allow-v1",
                Verdict.ALLOW,
                Match(tool="create_account", arguments={"vendor_id": "v-1"}),
            ),
            Rule("deny-rest", Verdict.DENY, Match(tool="create_*")),
        ),
        mode=Mode.ENFORCE,
    )
    reinstrument(telemetry, policy=policy)
    create_account("v-1")
    with pytest.raises(ToolCallDenied, match="deny-rest"):
        create_account("v-2")
    rules = [
        attrs(s)[sc.POLICY_RULE] for s in spans_named(telemetry, "execute_tool create_account")
    ]
    assert rules == ["allow-v1", "deny-rest"]


def evaluate(policy: Policy, **facts: Any) -> tuple[str, str]:
    profile = ToolProfile(
        agent=facts.pop("agent", None),
        tool=facts.pop("tool", "t"),
        tags=tuple(facts.pop("tags", ())),
        reversible=facts.pop("reversible", None),
        impact_scope=facts.pop("impact_scope", None),
        qualified=facts.pop("qualified", None),
    )
    decision = PolicyEvaluator(policy).evaluate(CallFacts(profile, **facts))
    return decision.verdict.value, decision.rule


def test_a_tool_name_pattern_matches_the_server_qualified_name_too() -> None:
    policy = Policy(rules=(Rule("billing", Verdict.DENY, Match(tool="billing-server/*")),))
    assert evaluate(policy, tool="refund", qualified="billing-server/refund")[1] == "billing"
    assert evaluate(policy, tool="refund", qualified="crm/refund")[1] == RULE_DEFAULT
    assert evaluate(policy, tool="refund")[1] == RULE_DEFAULT  # a local tool: no server
    bare = Policy(rules=(Rule("refunds", Verdict.DENY, Match(tool="refund")),))
    assert evaluate(bare, tool="refund", qualified="crm/refund")[1] == "refunds"


def test_a_spec_with_a_namespace_is_matched_by_its_qualified_name(telemetry: Any) -> None:
    from otel_agents.core import handler
    from otel_agents.core.tool import ToolSpec

    deny = Rule("crm", Verdict.DENY, Match(tool="crm/*"))
    reinstrument(telemetry, policy=Policy(rules=(deny,), mode=Mode.ENFORCE))
    with pytest.raises(ToolCallDenied):
        handler.start_tool(ToolSpec("refund", namespace="crm"), {})
    handler.stop_tool(handler.start_tool(ToolSpec("refund"), {}))


def test_match_conditions_and_their_near_misses() -> None:
    policy = Policy(
        rules=(
            Rule("scope", Verdict.ESCALATE, Match(tags="grants:*", impact_scope="prod*")),
            Rule("bulk", Verdict.REQUIRE_APPROVAL, Match(min_records=10)),
            Rule("irreversible", Verdict.DENY, Match(reversible=False)),
            Rule("role", Verdict.DENY, Match(arguments={"role": ["admin", "owner"]})),
        )
    )
    assert evaluate(policy, tags=["grants:iam"], impact_scope="production") == ("escalate", "scope")
    assert evaluate(policy, tags=["grants:iam"], impact_scope="staging")[1] == RULE_DEFAULT
    assert evaluate(policy, records=10) == ("require_approval", "bulk")
    assert evaluate(policy, records=9)[1] == RULE_MAX_RECORDS  # > 1 record: the default
    assert evaluate(policy, reversible=False) == ("deny", "irreversible")
    assert evaluate(policy, reversible=True)[1] == RULE_DEFAULT
    assert evaluate(policy, arguments={"role": "owner"}) == ("deny", "role")
    assert evaluate(policy, arguments={"role": "viewer"})[1] == RULE_DEFAULT
    assert evaluate(policy, arguments=None)[1] == RULE_DEFAULT


# -- defaults fed by tool properties ---------------------------------------------------


@otel_agents.tool(reversible=False)
def delete_vendor(vendor_id: str) -> bool:
    calls.append(f"delete {vendor_id}")
    return True


@otel_agents.tool(records="account_ids")
def grant_many(account_ids: list[str], role: str) -> int:
    calls.append(f"grant {len(account_ids)}")
    return len(account_ids)


def test_irreversible_and_multi_record_calls_need_approval_by_default(telemetry: Any) -> None:
    asked: list[str] = []

    def approver(request: Any) -> bool:
        asked.append(f"{request.tool}:{request.rule}:{request.records}")
        return True

    reinstrument(telemetry, policy=Policy(mode=Mode.ENFORCE), approver=approver)
    delete_vendor("v-1")
    grant_many(["a"], "viewer")  # one record: no approval
    grant_many(["a", "b", "c"], "viewer")
    assert asked == [f"delete_vendor:{RULE_IRREVERSIBLE}:None", f"grant_many:{RULE_MAX_RECORDS}:3"]
    records = [
        attrs(s).get(sc.TOOL_CALL_RECORDS)
        for s in spans_named(telemetry, "execute_tool grant_many")
    ]
    assert records == [1, 3]


def test_an_explicit_rule_overrides_the_defaults(telemetry: Any) -> None:
    policy = Policy(
        rules=(Rule("ok", Verdict.ALLOW, Match(tool="delete_vendor")),), mode=Mode.ENFORCE
    )
    reinstrument(telemetry, policy=policy)  # no approver: an approval would be rejected
    delete_vendor("v-1")
    assert calls == ["delete v-1"]


# -- limits ----------------------------------------------------------------------------


@otel_agents.tool
def flaky_lookup(vendor_id: str) -> str:
    calls.append(vendor_id)
    raise TimeoutError("registry did not answer")


def test_the_same_call_escalates_after_its_third_failure(telemetry: Any) -> None:
    policy = Policy(limits=Limits(max_failures=Limit(3, Verdict.ESCALATE)), mode=Mode.ENFORCE)
    reinstrument(telemetry, policy=policy)
    with otel_agents.agent("intake"):
        for _ in range(3):
            with pytest.raises(TimeoutError):
                flaky_lookup("v-1")
        with pytest.raises(ToolCallEscalated, match="already failed 3 times") as caught:
            flaky_lookup("v-1")
        flaky_lookup_other = pytest.raises(TimeoutError)
        with flaky_lookup_other:
            flaky_lookup("v-2")  # other arguments: another call, its own count
    assert caught.value.rule == RULE_MAX_FAILURES
    assert calls == ["v-1", "v-1", "v-1", "v-2"]
    spans = spans_named(telemetry, "execute_tool flaky_lookup")
    assert [attrs(s)[sc.TOOL_CALL_ATTEMPT] for s in spans] == [1, 2, 3, 4, 1]
    assert [attrs(s)[sc.POLICY_VERDICT] for s in spans] == ["allow"] * 3 + ["escalate", "allow"]


def test_a_deny_rule_stays_deny_when_a_milder_limit_applies(telemetry: Any) -> None:
    policy = Policy(
        rules=(Rule("never", Verdict.DENY, Match(tool="flaky_lookup")),),
        limits=Limits(max_failures=Limit(1, Verdict.ESCALATE)),
        mode=Mode.ENFORCE,
    )
    reinstrument(telemetry, policy=policy)
    with otel_agents.agent("intake"):
        for _ in range(3):
            with pytest.raises(ToolCallDenied):
                flaky_lookup("v-1")


@otel_agents.tool(cost_usd="amount")
def buy_licences(seats: int, amount: float) -> str:
    calls.append(f"buy {seats}")
    return "ok"


def test_spend_per_request_waits_for_approval(telemetry: Any) -> None:
    asked: list[float] = []

    def approver(request: Any) -> bool:
        asked.append(request.cost_usd)
        return True

    policy = Policy(
        limits=Limits(per_request_usd=Limit(5.0, Verdict.REQUIRE_APPROVAL)), mode=Mode.ENFORCE
    )
    reinstrument(telemetry, policy=policy, approver=approver)
    with otel_agents.agent("provisioning"):
        buy_licences(1, amount=5.0)  # at the limit: fine
        buy_licences(2, amount=5.01)
    assert asked == [5.01]
    spans = spans_named(telemetry, "execute_tool buy_licences")
    assert [attrs(s)[sc.POLICY_RULE] for s in spans] == [RULE_DEFAULT, RULE_PER_REQUEST]
    assert attrs(spans[1])[sc.TOOL_CALL_COST_USD] == 5.01
    assert "over the per-request limit of $5.00" in attrs(spans[1])[sc.POLICY_REASON]


def test_spend_per_run_denies_the_call_that_would_pass_it(telemetry: Any) -> None:
    policy = Policy(limits=Limits(per_run_usd=Limit(10.0, Verdict.DENY)), mode=Mode.ENFORCE)
    reinstrument(telemetry, policy=policy)
    with otel_agents.agent("provisioning") as run:
        buy_licences(1, amount=4.0)
        buy_licences(2, amount=6.0)  # exactly 10: allowed
        with pytest.raises(ToolCallDenied, match=r"would spend \$10.50"):
            buy_licences(3, amount=0.5)
        assert run.ledger is not None and run.ledger.totals.tool_cost_usd == 10.0
    with otel_agents.agent("provisioning"):  # a new run has its own budget
        buy_licences(4, amount=9.0)
    assert calls == ["buy 1", "buy 2", "buy 4"]
    denied = spans_named(telemetry, "execute_tool buy_licences")[2]
    assert attrs(denied)[sc.POLICY_RULE] == RULE_PER_RUN


def test_failed_and_rejected_calls_are_not_booked_as_spend(telemetry: Any) -> None:
    @otel_agents.tool(cost_usd=3.0)
    def charge(ok: bool) -> str:
        if not ok:
            raise RuntimeError("card declined")
        return "charged"

    policy = Policy(
        rules=(Rule("ask", Verdict.REQUIRE_APPROVAL, Match(arguments={"ok": "ask"})),),
        limits=Limits(per_run_usd=Limit(100.0, Verdict.DENY)),
        mode=Mode.ENFORCE,
    )
    reinstrument(telemetry, policy=policy, approver=lambda request: False)
    with otel_agents.agent("billing") as run:
        charge(True)
        with pytest.raises(RuntimeError):
            charge(False)
        with pytest.raises(ApprovalRejected):
            charge("ask")  # type: ignore[arg-type]
        assert run.ledger is not None and run.ledger.totals.spent_usd == 3.0


# -- internal errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on_error", "stopped"), [(OnError.FAIL_OPEN, False), (OnError.FAIL_CLOSED, True)]
)
def test_an_internal_error_follows_on_error(
    telemetry: Any, monkeypatch: pytest.MonkeyPatch, on_error: OnError, stopped: bool
) -> None:
    policy = Policy(rules=(Rule("r", Verdict.ALLOW),), mode=Mode.ENFORCE, on_error=on_error)
    reinstrument(telemetry, policy=policy)

    def broken(self: PolicyEvaluator, facts: CallFacts) -> Any:
        raise ZeroDivisionError("injected")

    monkeypatch.setattr(PolicyEvaluator, "evaluate", broken)
    if stopped:
        with pytest.raises(ToolCallDenied, match="policy evaluation failed"):
            create_account("v-1")
        assert calls == []
    else:
        assert create_account("v-1") == {"account_id": "acct-v-1"}
    span = telemetry.span("execute_tool create_account")
    assert attrs(span)[sc.POLICY_RULE] == RULE_INTERNAL_ERROR
    assert attrs(span)[sc.POLICY_VERDICT] == ("deny" if stopped else "allow")
    assert "ZeroDivisionError" in attrs(span)[sc.POLICY_REASON]


def test_a_failing_records_function_is_an_internal_error_too(telemetry: Any) -> None:
    @otel_agents.tool(records=lambda arguments: arguments["missing"])
    def touch(item: str) -> str:
        return item

    policy = Policy(mode=Mode.ENFORCE, on_error=OnError.FAIL_CLOSED)
    reinstrument(telemetry, policy=policy)
    with pytest.raises(ToolCallDenied):
        touch("a")
    with pytest.raises(ToolCallDenied):  # fail closed is the default
        reinstrument(telemetry, policy=Policy(mode=Mode.ENFORCE))
        touch("b")
    reinstrument(telemetry, policy=Policy(mode=Mode.ENFORCE, on_error=OnError.FAIL_OPEN))
    assert touch("c") == "c"


@pytest.mark.parametrize(
    ("on_error", "stopped"), [(OnError.FAIL_OPEN, False), (OnError.FAIL_CLOSED, True)]
)
def test_a_bug_in_the_gate_itself_follows_on_error(
    telemetry: Any, monkeypatch: pytest.MonkeyPatch, on_error: OnError, stopped: bool
) -> None:
    from otel_agents.policy import gate

    def broken(*args: Any) -> None:
        raise KeyError("injected")

    policy = Policy(rules=(Rule("r", Verdict.ALLOW),), mode=Mode.ENFORCE, on_error=on_error)
    reinstrument(telemetry, policy=policy)
    monkeypatch.setattr(gate.PolicyGate, "_record", broken)
    if stopped:
        with pytest.raises(ToolCallDenied, match="the policy gate failed"):
            create_account("v-1")
        assert calls == []
    else:
        assert create_account("v-1") == {"account_id": "acct-v-1"}
