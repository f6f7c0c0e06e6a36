"""The policy gate: every tool call passes through it before it runs.

`PolicyGate` is an `Observer`. On `on_tool_start` it gathers what the policy looks at (the
agent, the tool's tags and declared properties, its contract, how many records the call
touches, what it costs, how often it already failed, what the run has spent), asks the
evaluator for a verdict and puts verdict, rule, reason and mode on the `execute_tool` span
and on the `otel_agents.policy.verdicts` metric. It checks the arguments against the tool's
contract. In enforce mode it then stops the call (`ToolCallDenied`, `ToolCallEscalated`,
`ContractViolation`) or pauses it for a human (`await_approval` span; `ApprovalRejected`
when the answer is no). On `on_tool_end` it checks the result (or the exception) against
the contract and gives back the declared cost of a call that did not succeed.

It sits in front of every tool call, so it is built to cost little: what depends only on
the tool (its contract, declared properties, the span attributes those give) is worked out
once per tool; the span attributes of a call are set in one call; verdicts are counted in
a dict and reported to the metric when it is collected.

Internal errors never reach the application: evaluation errors follow the policy's
`on_error` (fail open: allow; fail closed: deny), anything else is logged and ignored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import Meter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from otel_agents import semconv as sc
from otel_agents.core.common import error_type
from otel_agents.core.ledger import RunLedger
from otel_agents.core.tool import ToolDecision
from otel_agents.errors import (
    ApprovalRejected,
    ContractViolation,
    Intervention,
    ToolCallDenied,
    ToolCallEscalated,
)
from otel_agents.identity_cache import IdentityCache
from otel_agents.policy.approval import ApprovalDecision, ApprovalRequest, Approver, new_request_id
from otel_agents.policy.contracts import (
    Declared,
    ToolContract,
    declared_cost,
    declared_records,
    undeclared_failure,
)
from otel_agents.policy.evaluator import (
    RULE_INTERNAL_ERROR,
    CallFacts,
    PolicyDecision,
    PolicyEvaluator,
    ToolProfile,
)
from otel_agents.policy.model import Mode, OnError, Outcome, Policy, Verdict
from otel_agents.runtime import Observer, get_runtime, report_internal_error
from otel_agents.summing_counter import AttributeKey, SummingCounter, attribute_key

if TYPE_CHECKING:
    from otel_agents.core.tool import ToolInvocation

_SPEND_LOCK_KEY = "policy-gate:spend-lock"
_PASSED = sc.ContractStatusValues.PASSED
_INPUT_VIOLATION = sc.ContractStatusValues.INPUT_VIOLATION
_OUTPUT_VIOLATION = sc.ContractStatusValues.OUTPUT_VIOLATION
_STOPS: dict[Verdict, type[ToolCallDenied | ToolCallEscalated]] = {
    Verdict.DENY: ToolCallDenied,
    Verdict.ESCALATE: ToolCallEscalated,
}


class NoApprover(RuntimeError):
    """A call needs approval but no approver is configured (an `error` approval)."""


@dataclass
class _ToolPlan:
    """What the gate knows about a tool before any call: worked out once per tool spec.

    The tool's own declaration wins; its contract fills in what the tool left open.
    `attributes` are the span attributes the contract adds to every call of the tool.
    """

    name: str
    tags: tuple[str, ...]
    contract: ToolContract | None
    reversible: bool | None
    impact_scope: str | None
    records: Declared
    cost_usd: Declared
    attributes: dict[str, AttributeValue]
    qualified: str | None = None  # `{server}/{tool}`: what a rule may match besides the name
    profiles: dict[str | None, ToolProfile] = field(default_factory=dict)
    metric_key: AttributeKey = ()  # the tool's part of the verdicts metric's attributes

    def __post_init__(self) -> None:
        self.metric_key = attribute_key({sc.GEN_AI_TOOL_NAME: self.name})

    @classmethod
    def of(cls, spec: Any) -> _ToolPlan:
        options: Mapping[str, Any] = spec.options or {}
        contract = options.get("contract")
        if not isinstance(contract, ToolContract):
            contract = None
        reversible, impact_scope = spec.reversible, spec.impact_scope
        records, cost = options.get("records"), options.get("cost_usd")
        if contract is not None:
            reversible = contract.reversible if reversible is None else reversible
            impact_scope = impact_scope or contract.impact_scope
            records = contract.records if records is None else records
            cost = contract.cost_usd if cost is None else cost
        plan = cls(spec.name, spec.tags, contract, reversible, impact_scope, records, cost, {})
        plan.qualified = getattr(spec, "qualified_name", None)
        if contract is not None:
            plan.attributes = _contract_attributes(contract, reversible, impact_scope)
        return plan

    @property
    def declares_facts(self) -> bool:
        return self.records is not None or self.cost_usd is not None

    def profile(self, agent: str | None) -> ToolProfile:
        """The evaluator's view of the tool for `agent`, made once per agent."""
        profile = self.profiles.get(agent)
        if profile is None:
            profile = ToolProfile(
                agent, self.name, self.tags, self.reversible, self.impact_scope, self.qualified
            )
            self.profiles[agent] = profile
        return profile


def _under(invocation: Any) -> Context | None:
    """The wait's parent: the call's span, also when the call is not current (an
    integration that opens it without making it current, as the client adapters do)."""
    span = getattr(invocation, "span", None)
    if span is None or not span.get_span_context().is_valid:
        return None
    child_context = getattr(invocation, "child_context", None)
    if child_context is not None:  # the span in the call's own context: its run, its agent
        context: Context = child_context()
        return context
    return trace.set_span_in_context(span)


def _approved_by_caller(invocation: Any) -> bool:
    """A call served in the process that made it (an MCP server under its client) whose
    caller was approved already: one approval for one call."""
    caller = getattr(invocation, "caller", None)
    decision = getattr(caller, "decision", None)
    return getattr(decision, "approved", False) is True


def _contract_attributes(
    contract: ToolContract, reversible: bool | None, impact_scope: str | None
) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {}
    if reversible is not None:
        attributes[sc.TOOL_REVERSIBLE] = reversible
    if impact_scope:
        attributes[sc.TOOL_IMPACT_SCOPE] = impact_scope
    if contract.rollback:
        attributes[sc.CONTRACT_ROLLBACK] = contract.rollback
    if contract.failure_modes:
        attributes[sc.CONTRACT_FAILURE_MODES] = list(contract.failure_modes)
    return attributes


@dataclass
class _CallState:
    """What the gate remembers between a call's start and its end."""

    contract: ToolContract | None
    reserved_usd: float = 0.0


class PolicyGate(Observer):
    """Evaluates the policy and checks contracts for every tool call.

    With no policy it still checks contracts and records declared records and costs.
    `mode` overrides the policy's own mode (and is the contract mode without a policy).
    """

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        mode: Mode | str | None = None,
        approver: Approver | None = None,
        meter: Meter | None = None,
        owns_approver: bool = False,
    ) -> None:
        if policy is not None and mode is not None:
            policy = policy.with_mode(mode)
        self.policy = policy
        self.mode = policy.mode if policy is not None else Mode(mode or Mode.OBSERVE)
        # A plain flag, read on failure paths that must not depend on anything that failed.
        self.fails_closed = (
            policy is not None
            and policy.on_error is OnError.FAIL_CLOSED
            and policy.mode is Mode.ENFORCE
        )
        self.evaluator = PolicyEvaluator(policy) if policy is not None else None
        self.approver = approver
        self._owns_approver = owns_approver  # built from the policy file: ours to close
        meter = meter if meter is not None else get_runtime().meter
        # Counted in process, reported on collection: see `SummingCounter`.
        self._verdicts = SummingCounter.on(
            meter,
            sc.METRIC_POLICY_VERDICTS,
            sc.METRIC_UNITS.get(sc.METRIC_POLICY_VERDICTS, ""),
            "Policy verdicts on tool calls.",
        )
        self._approvals_pending = meter.create_up_down_counter(
            sc.METRIC_APPROVALS_PENDING,
            sc.METRIC_UNITS.get(sc.METRIC_APPROVALS_PENDING, ""),
            "Tool calls waiting for a human approval now.",
        )
        self._approval_duration = meter.create_histogram(
            sc.METRIC_APPROVAL_DURATION,
            sc.METRIC_UNITS.get(sc.METRIC_APPROVAL_DURATION, "s"),
            "Time spent waiting for human approval.",
        )
        # Per tool spec (by identity; the spec is kept so that its id cannot be reused).
        # Tools made per call (framework adapters) come and go: the cache starts over then.
        self._plans: IdentityCache[Any, _ToolPlan | None] = IdentityCache(self._new_plan, 4096)

    def close(self) -> None:
        """Stop an approver the gate built itself (an approver you passed is yours)."""
        if self.approver is not None and self._owns_approver:
            self.approver.close()

    # -- before the call ---------------------------------------------------------------

    def on_tool_start(self, invocation: ToolInvocation) -> ToolDecision | None:
        try:
            plan = self._plan(invocation.spec)
            if plan is None:
                return None  # nothing to decide or check: the common, fast case
            return self._gate(invocation, plan)
        except Intervention:
            raise
        except Exception as exc:
            # A bug of ours. It must not crash the host, but fail-closed means what it says.
            report_internal_error("policy gate", exc)
            stop = self.refusal(invocation, exc)
            if stop is not None:
                raise stop from None
        return None

    def refusal(self, invocation: ToolInvocation, exc: BaseException) -> Intervention | None:
        """Fail closed: the call could not be checked, so it is denied (and the denial put
        on its span, for the audit log). None when the policy fails open."""
        if not self.fails_closed:
            return None
        name = getattr(getattr(invocation, "spec", None), "name", "?")
        reason = f"the policy gate failed ({type(exc).__name__}); on_error is fail_closed"
        outcome = ToolDecision()
        try:
            ensure_span = getattr(invocation, "ensure_span", None)
            if callable(ensure_span):
                ensure_span()  # the call may have failed before its span was made
            if self.evaluator is not None:
                decision = self.evaluator.internal_error(exc, "the policy gate")
                reason = decision.reason
                outcome.verdict = decision.verdict.value
                invocation.span.set_attributes(decision.attributes)
        except Exception as internal:
            report_internal_error("policy gate refusal", internal)
        stop = ToolCallDenied(name, RULE_INTERNAL_ERROR, reason)
        stop.decision = outcome
        return stop

    def _plan(self, spec: Any) -> _ToolPlan | None:
        """The tool's plan, or None when the gate has nothing to do for this tool."""
        return self._plans.get(spec)

    def _new_plan(self, spec: Any) -> _ToolPlan | None:
        plan = _ToolPlan.of(spec)
        idle = self.evaluator is None and plan.contract is None and not plan.declares_facts
        return None if idle else plan

    def _gate(self, invocation: Any, plan: _ToolPlan) -> ToolDecision:
        """Decide, check, record; stop the call if the verdict says so. Returns the
        decision (or hands it over on the stop it raises)."""
        raw = invocation.arguments
        arguments = raw if type(raw) is dict or isinstance(raw, Mapping) else None
        state = _CallState(plan.contract)
        outcome = ToolDecision()
        decision, facts = self._evaluate(invocation, plan, arguments, state)
        violation = self._check_input(outcome, plan.contract, arguments)
        failures: list[BaseException] | None = getattr(invocation, "open_failures", None)
        if failures and self.evaluator is not None:
            decision = _with_failure(decision, self.evaluator.internal_error(failures[0], _OPENING))
            if not _may_run(decision):
                _refund(invocation, state)
        self._record(invocation, outcome, plan, decision, facts, violation)
        if plan.contract is not None or state.reserved_usd:
            outcome.gate_state = state  # for on_tool_end
        try:
            outcome.approved = self._enforce(invocation, decision, violation, facts, state)
        except Intervention as stop:
            stop.decision = outcome
            raise
        return outcome

    def _evaluate(
        self,
        invocation: Any,
        plan: _ToolPlan,
        arguments: Mapping[str, Any] | None,
        state: _CallState,
    ) -> tuple[PolicyDecision | None, CallFacts | None]:
        """Gather the facts, decide, and book the call's cost (atomically per run)."""
        ledger: RunLedger | None = invocation.ledger
        try:
            facts = _gather_facts(invocation, plan, arguments)
        except Exception as exc:
            report_internal_error("policy facts", exc)
            return (self.evaluator.internal_error(exc) if self.evaluator else None), None
        if ledger is None or facts.cost_usd is None:
            return self._decide(facts), facts
        # Decide and reserve together, so concurrent calls of one run cannot all slip
        # under the per-run limit.
        with ledger.observer_state(_SPEND_LOCK_KEY, threading.Lock):
            facts.run_spend_usd = ledger.totals.spent_usd
            decision = self._decide(facts)
            if _may_run(decision):
                ledger.totals.add_tool_cost(facts.cost_usd)
                state.reserved_usd = facts.cost_usd
        return decision, facts

    def _decide(self, facts: CallFacts) -> PolicyDecision | None:
        evaluator = self.evaluator
        if evaluator is None:
            return None
        try:
            return evaluator.evaluate(facts)
        except Exception as exc:
            report_internal_error("policy evaluation", exc)
            return evaluator.internal_error(exc)

    def _check_input(
        self,
        outcome: ToolDecision,
        contract: ToolContract | None,
        arguments: Mapping[str, Any] | None,
    ) -> str | None:
        """The input contract's verdict on the arguments; sets the call's contract status."""
        if contract is None or contract.input_check is None or arguments is None:
            return None
        try:
            violation = contract.input_check.violation(arguments)
        except Exception as exc:
            report_internal_error("contract input check", exc)
            return None
        outcome.contract_status = _PASSED if violation is None else _INPUT_VIOLATION
        return violation

    def _record(
        self,
        invocation: Any,
        outcome: ToolDecision,
        plan: _ToolPlan,
        decision: PolicyDecision | None,
        facts: CallFacts | None,
        violation: str | None,
    ) -> None:
        """Everything the gate found, on the span in one call, and the verdict counted."""
        attributes = dict(plan.attributes)
        if facts is not None:
            if facts.records is not None:
                attributes[sc.TOOL_CALL_RECORDS] = facts.records
            if facts.cost_usd is not None:
                attributes[sc.TOOL_CALL_COST_USD] = facts.cost_usd
        if outcome.contract_status is not None:
            attributes[sc.CONTRACT_STATUS] = outcome.contract_status
        if violation is not None:
            attributes[sc.CONTRACT_VIOLATION] = f"input (agent's fault): {violation}"
        if decision is not None:
            attributes.update(decision.attributes)
            outcome.verdict = decision.verdict.value
            self._verdicts.add(1, decision.metric_key + plan.metric_key)
        if attributes:
            invocation.span.set_attributes(attributes)

    def _enforce(
        self,
        invocation: Any,
        decision: PolicyDecision | None,
        violation: str | None,
        facts: CallFacts | None,
        state: _CallState,
    ) -> bool:
        """Stop or pause the call as the verdict (in enforce mode) and contract demand.
        True when the call goes ahead with a human's approval."""
        name = invocation.spec.name
        enforced = decision if decision is not None and decision.enforced else None
        stop = _STOPS.get(enforced.verdict) if enforced is not None else None
        if enforced is not None and stop is not None:
            if invocation.ledger is not None:
                invocation.ledger.totals.add_denial()
            raise stop(name, enforced.rule, enforced.reason)
        if violation is not None and self.mode is Mode.ENFORCE:
            _refund(invocation, state)  # checked before approval: no human sees a malformed call
            raise ContractViolation(name, "input", violation)
        if enforced is None or enforced.verdict is not Verdict.REQUIRE_APPROVAL:
            return False
        if _approved_by_caller(invocation):
            return True  # the same call, served in the process that made it: asked once
        answer, status = self._await_approval(invocation, enforced, facts)
        if not answer.approved:
            _refund(invocation, state)
            raise ApprovalRejected(name, enforced.rule, enforced.reason, status, answer.approver)
        return True

    # -- approval ----------------------------------------------------------------------

    def _await_approval(
        self, invocation: Any, decision: PolicyDecision, facts: CallFacts | None
    ) -> tuple[ApprovalDecision, str]:
        """Ask the approver and trace the wait as an `await_approval` child span.

        Returns the effective answer (after applying the timeout and error defaults) and
        the approval status.
        """
        runtime = get_runtime()
        request = _approval_request(invocation, decision, facts)
        span = runtime.tracer.start_span(
            f"await_approval {request.tool}",
            context=_under(invocation),
            kind=SpanKind.INTERNAL,
            attributes=_approval_attributes(request, self.approver),
        )
        started = time.monotonic()
        failure: BaseException | None = None
        answer: ApprovalDecision | None = None
        pending = {sc.GEN_AI_TOOL_NAME: request.tool}
        self._approvals_pending.add(1, pending)
        try:
            if self.approver is None:
                raise NoApprover("no approver is configured (instrument(approver=...))")
            answer = self.approver.request(request, decision.approval.timeout_seconds)
        except Exception as exc:
            failure = exc
        finally:
            self._approvals_pending.add(-1, pending)
        waited = time.monotonic() - started
        answer, status = _settle(answer, failure, decision)
        attributes: dict[str, AttributeValue] = {
            sc.APPROVAL_STATUS: status,
            sc.APPROVAL_WAIT_DURATION: waited,
        }
        if answer.approver:
            attributes[sc.APPROVAL_APPROVER] = answer.approver
        if answer.reason:
            attributes[sc.APPROVAL_REASON] = runtime.capturer.scrub(answer.reason)
        if failure is not None:
            attributes[sc.ERROR_TYPE] = error_type(failure)
            span.set_status(Status(StatusCode.ERROR, runtime.capturer.scrub(str(failure))))
        span.set_attributes(attributes)
        span.end()
        self._approval_duration.record(waited, {sc.APPROVAL_STATUS: status})
        return answer, status

    # -- after the call ----------------------------------------------------------------

    def on_tool_end(self, invocation: ToolInvocation) -> None:
        outcome: ToolDecision | None = invocation.decision
        state: _CallState | None = outcome.gate_state if outcome is not None else None
        if outcome is None or state is None:
            return
        outcome.gate_state = None
        exc = invocation.exception
        if exc is not None:
            _refund(invocation, state)
        if state.contract is None or outcome.contract_status == _INPUT_VIOLATION:
            return  # no contract, or the input side already broke it: that is what to report
        violation = _output_violation(state.contract, invocation)
        if violation is not None:
            outcome.contract_status = _OUTPUT_VIOLATION
            invocation.span.set_attributes(
                {
                    sc.CONTRACT_STATUS: _OUTPUT_VIOLATION,
                    sc.CONTRACT_VIOLATION: f"output (tool's fault): {violation}",
                }
            )
        elif outcome.contract_status is None and exc is None and state.contract.output_check:
            outcome.contract_status = _PASSED
            invocation.span.set_attribute(sc.CONTRACT_STATUS, _PASSED)


# -- helpers ---------------------------------------------------------------------------


_OPENING = "opening the tool call"


def _with_failure(decision: PolicyDecision | None, failed: PolicyDecision) -> PolicyDecision:
    """The verdict when something failed before it: the failure's (`on_error`) unless the
    rules were stricter; an allow names the failure, so the span records it."""
    if decision is None or decision.verdict is Verdict.ALLOW:
        return failed
    return failed if failed.verdict.severity > decision.verdict.severity else decision


def _may_run(decision: PolicyDecision | None) -> bool:
    """Whether the call may go ahead (at once or after approval), so its cost is booked."""
    return (
        decision is None
        or decision.mode is Mode.OBSERVE
        or decision.verdict in (Verdict.ALLOW, Verdict.REQUIRE_APPROVAL)
    )


def _refund(invocation: Any, state: _CallState) -> None:
    """Give back a cost booked for a call that did not run or failed (once)."""
    ledger: RunLedger | None = invocation.ledger
    if state.reserved_usd and ledger is not None:
        ledger.totals.add_tool_cost(-state.reserved_usd)
        state.reserved_usd = 0.0


def _gather_facts(
    invocation: Any, plan: _ToolPlan, arguments: Mapping[str, Any] | None
) -> CallFacts:
    ledger: RunLedger | None = invocation.ledger
    failures = 0
    if ledger is not None and invocation.fingerprint:
        failures = ledger.attempts.failures(invocation.fingerprint)
    return CallFacts(
        profile=plan.profile(invocation.agent_name),
        arguments=arguments,
        records=declared_records(plan.records, arguments),
        cost_usd=declared_cost(plan.cost_usd, arguments),
        failures=failures,
        run_spend_usd=ledger.totals.spent_usd if ledger is not None else 0.0,
    )


def _output_violation(contract: ToolContract, invocation: Any) -> str | None:
    """How the call broke the output side of its contract: an undeclared failure, or a
    result that does not fit the output schema. None if it did not."""
    exc = invocation.exception
    if exc is not None:
        if isinstance(exc, Intervention):
            return None  # the tool never ran
        return undeclared_failure(contract, exc)
    if contract.output_check is None:
        return None
    return contract.output_check.violation(invocation.result)


def _approval_request(
    invocation: Any, decision: PolicyDecision, facts: CallFacts | None
) -> ApprovalRequest:
    ledger: RunLedger | None = invocation.ledger
    arguments = invocation.arguments
    return ApprovalRequest(
        id=new_request_id(),
        tool=invocation.spec.name,
        agent=invocation.agent_name,
        arguments=get_runtime().capturer.text(arguments) if arguments is not None else None,
        rule=decision.rule,
        reason=decision.reason,
        run_id=ledger.run_id if ledger is not None else None,
        call_id=invocation.call_id,
        records=facts.records if facts else None,
        cost_usd=facts.cost_usd if facts else None,
    )


def _approval_attributes(
    request: ApprovalRequest, approver: Approver | None
) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        sc.GEN_AI_TOOL_NAME: request.tool,
        sc.POLICY_RULE: request.rule,
        sc.APPROVAL_CHANNEL: approver.channel if approver is not None else "none",
    }
    if request.run_id:
        attributes[sc.RUN_ID] = request.run_id
    if request.call_id:
        attributes[sc.GEN_AI_TOOL_CALL_ID] = request.call_id
    return attributes


def _settle(
    answer: ApprovalDecision | None, failure: BaseException | None, decision: PolicyDecision
) -> tuple[ApprovalDecision, str]:
    """The effective answer and the approval status. A failed approver gets the default
    outcome `on_error`, silence gets `on_timeout`; a person's answer stands."""
    settings = decision.approval
    if failure is not None:
        status, outcome = sc.ApprovalStatusValues.ERROR, settings.on_error
        reason = f"approver failed; default outcome: {outcome.value}"
    elif answer is None:
        status, outcome = sc.ApprovalStatusValues.TIMED_OUT, settings.on_timeout
        reason = (
            f"no answer within {settings.timeout_seconds:g} s; default outcome: {outcome.value}"
        )
    elif answer.approved:
        return answer, sc.ApprovalStatusValues.APPROVED
    else:
        return answer, sc.ApprovalStatusValues.REJECTED
    return ApprovalDecision(outcome is Outcome.APPROVE, reason=reason), status
