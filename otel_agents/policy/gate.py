"""The policy gate: every tool call passes through it before it runs.

`PolicyGate` is an `Observer`. On `on_tool_start` it gathers what the policy looks at (the
agent, the tool's tags and declared properties, its contract, how many records the call
touches, what it costs, how often it already failed, what the run has spent), asks the
evaluator for a verdict and puts verdict, rule, reason and mode on the `execute_tool` span
and on the `otel_agents.policy.verdicts` metric. It checks the arguments against the tool's
contract. In enforce mode it then stops the call (`ToolCallDenied`, `ToolCallEscalated`,
`ContractViolation`) or pauses it for a human (`await_approval` span; `ApprovalRejected`
when the answer is no). On `on_tool_end` it checks the result against the contract and
books the call's declared cost to the run.

Internal errors never reach the application: evaluation errors follow the policy's
`on_error` (fail open: allow; fail closed: deny), anything else is logged and ignored.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.metrics import Meter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from otel_agents import semconv as sc
from otel_agents.errors import (
    ApprovalRejected,
    ContractViolation,
    Intervention,
    ToolCallDenied,
    ToolCallEscalated,
)
from otel_agents.ledger import RunLedger
from otel_agents.policy.approval import ApprovalDecision, ApprovalRequest, Approver, new_request_id
from otel_agents.policy.contracts import ToolContract, declared_cost, declared_records
from otel_agents.policy.evaluator import (
    RULE_INTERNAL_ERROR,
    CallFacts,
    PolicyDecision,
    PolicyEvaluator,
    ToolProfile,
)
from otel_agents.policy.model import Mode, OnError, Outcome, Policy, Verdict
from otel_agents.recorders.common import error_type
from otel_agents.runtime import Observer, get_runtime, report_internal_error

_SPEND_LOCK_KEY = "policy-gate:spend-lock"


@dataclass
class _CallState:
    """What the gate remembers between a call's start and its end."""

    contract: ToolContract | None = None
    contract_status: str | None = None
    reserved_usd: float = 0.0


class NoApprover(RuntimeError):
    """A call needs approval but no approver is configured (an `error` approval)."""


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
        self.evaluator = PolicyEvaluator(policy) if policy is not None else None
        self.approver = approver
        self._owns_approver = owns_approver  # built from the policy file: ours to close
        meter = meter if meter is not None else get_runtime().meter
        self._verdicts = meter.create_counter(
            sc.METRIC_POLICY_VERDICTS,
            sc.METRIC_UNITS.get(sc.METRIC_POLICY_VERDICTS, ""),
            "Policy verdicts on tool calls.",
        )
        self._approval_duration = meter.create_histogram(
            sc.METRIC_APPROVAL_DURATION,
            sc.METRIC_UNITS.get(sc.METRIC_APPROVAL_DURATION, "s"),
            "Time spent waiting for human approval.",
        )
        self._calls: weakref.WeakKeyDictionary[Any, _CallState] = weakref.WeakKeyDictionary()
        self._calls_lock = threading.Lock()

    def close(self) -> None:
        """Stop an approver the gate built itself (an approver you passed is yours)."""
        if self.approver is not None and self._owns_approver:
            self.approver.close()

    # -- before the call ---------------------------------------------------------------

    def on_tool_start(self, invocation: Any) -> None:
        spec = invocation.spec
        contract = _contract_of(spec.options)
        if self.evaluator is None and contract is None and not _declares_facts(spec.options):
            return  # nothing to decide or check: the common, fast case
        try:
            self._gate(invocation, contract)
        except Intervention:
            raise
        except Exception as exc:
            # A bug of ours. It must not crash the host, but fail-closed means what it says.
            report_internal_error("policy gate", exc)
            policy = self.policy
            if (
                policy is not None
                and policy.on_error is OnError.FAIL_CLOSED
                and policy.mode is Mode.ENFORCE
            ):
                reason = f"the policy gate failed ({type(exc).__name__}); on_error is fail_closed"
                raise ToolCallDenied(spec.name, RULE_INTERNAL_ERROR, reason) from None

    def _gate(self, invocation: Any, contract: ToolContract | None) -> None:
        spec = invocation.spec
        span: Span = invocation.span
        arguments = invocation.arguments if isinstance(invocation.arguments, Mapping) else None
        state = _CallState(contract=contract)
        decision, facts = self._evaluate(invocation, contract, arguments, state)
        if facts is not None:
            _record_facts(span, facts, contract)
        if decision is not None:
            self._record_decision(span, decision, spec.name)
        violation = self._check_input(span, contract, arguments, state)
        self._remember(invocation, state)
        self._enforce(invocation, decision, violation, facts)

    def _enforce(
        self,
        invocation: Any,
        decision: PolicyDecision | None,
        violation: str | None,
        facts: CallFacts | None,
    ) -> None:
        """Stop or pause the call as the verdict (in enforce mode) and contract demand."""
        name = invocation.spec.name
        if decision is not None and decision.mode is Mode.ENFORCE:
            if decision.verdict is Verdict.DENY:
                raise ToolCallDenied(name, decision.rule, decision.reason)
            if decision.verdict is Verdict.ESCALATE:
                raise ToolCallEscalated(name, decision.rule, decision.reason)
        if violation is not None and self.mode is Mode.ENFORCE:
            self._refund(invocation)  # checked before approval: no human sees a malformed call
            raise ContractViolation(name, "input", violation)
        if (
            decision is not None
            and decision.mode is Mode.ENFORCE
            and decision.verdict is Verdict.REQUIRE_APPROVAL
        ):
            answer, status = self._await_approval(invocation, decision, facts)
            if not answer.approved:
                self._refund(invocation)
                raise ApprovalRejected(
                    name, decision.rule, decision.reason, status, answer.approver
                )

    def _evaluate(
        self,
        invocation: Any,
        contract: ToolContract | None,
        arguments: Mapping[str, Any] | None,
        state: _CallState,
    ) -> tuple[PolicyDecision | None, CallFacts | None]:
        """Gather the facts, decide, and book the call's cost (atomically per run)."""
        ledger: RunLedger | None = invocation.ledger
        try:
            facts = _gather_facts(invocation, contract, arguments)
        except Exception as exc:
            report_internal_error("policy facts", exc)
            return (self.evaluator.internal_error(exc) if self.evaluator else None), None
        if ledger is None or facts.cost_usd is None:
            return self._decide(facts), facts
        # Decide and reserve together, so concurrent calls of one run cannot all slip
        # under the per-run limit.
        lock = ledger.observer_state(_SPEND_LOCK_KEY, threading.Lock)
        with lock:
            facts.run_spend_usd = ledger.spent_usd
            decision = self._decide(facts)
            if _may_run(decision):
                ledger.add_tool_cost(facts.cost_usd)
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

    def _record_decision(self, span: Span, decision: PolicyDecision, tool: str) -> None:
        attributes: dict[str, AttributeValue] = {
            sc.POLICY_VERDICT: decision.verdict.value,
            sc.POLICY_RULE: decision.rule,
            sc.POLICY_REASON: decision.reason,
            sc.POLICY_MODE: decision.mode.value,
        }
        span.set_attributes(attributes)
        del attributes[sc.POLICY_REASON]  # free text: not a metric attribute
        attributes[sc.GEN_AI_TOOL_NAME] = tool
        self._verdicts.add(1, attributes)

    def _check_input(
        self,
        span: Span,
        contract: ToolContract | None,
        arguments: Mapping[str, Any] | None,
        state: _CallState,
    ) -> str | None:
        if contract is None or contract.input_check is None or arguments is None:
            return None
        try:
            violation = contract.input_check.violation(arguments)
        except Exception as exc:
            report_internal_error("contract input check", exc)
            return None
        if violation is None:
            state.contract_status = sc.ContractStatusValues.PASSED
        else:
            state.contract_status = sc.ContractStatusValues.INPUT_VIOLATION
            span.set_attribute(sc.CONTRACT_VIOLATION, f"input (agent's fault): {violation}")
        span.set_attribute(sc.CONTRACT_STATUS, state.contract_status)
        return violation

    # -- approval ----------------------------------------------------------------------

    def _await_approval(
        self, invocation: Any, decision: PolicyDecision, facts: CallFacts | None
    ) -> tuple[ApprovalDecision, str]:
        """Ask the approver and trace the wait as an `await_approval` child span.

        Returns the effective answer (after applying the timeout and error defaults) and
        the approval status.
        """
        runtime = get_runtime()
        settings = decision.approval
        approver = self.approver
        ledger: RunLedger | None = invocation.ledger
        request = ApprovalRequest(
            id=new_request_id(),
            tool=invocation.spec.name,
            agent=invocation.agent_name,
            arguments=(
                runtime.capturer.text(invocation.arguments)
                if invocation.arguments is not None
                else None
            ),
            rule=decision.rule,
            reason=decision.reason,
            run_id=ledger.run_id if ledger is not None else None,
            call_id=invocation.call_id,
            records=facts.records if facts else None,
            cost_usd=facts.cost_usd if facts else None,
        )
        attributes: dict[str, AttributeValue] = {
            sc.GEN_AI_TOOL_NAME: request.tool,
            sc.POLICY_RULE: decision.rule,
            sc.APPROVAL_CHANNEL: approver.channel if approver is not None else "none",
        }
        if request.run_id:
            attributes[sc.RUN_ID] = request.run_id
        if request.call_id:
            attributes[sc.GEN_AI_TOOL_CALL_ID] = request.call_id
        span = runtime.tracer.start_span(
            f"await_approval {request.tool}", kind=SpanKind.INTERNAL, attributes=attributes
        )
        started = time.monotonic()
        failure: BaseException | None = None
        try:
            if approver is None:
                raise NoApprover("no approver is configured (instrument(approver=...))")
            answer = approver.request(request, settings.timeout_seconds)
        except Exception as exc:
            failure, answer = exc, None
        waited = time.monotonic() - started
        if failure is not None:
            status = sc.ApprovalStatusValues.ERROR
            answer = ApprovalDecision(
                settings.on_error is Outcome.APPROVE,
                reason=f"approver failed; default outcome: {settings.on_error.value}",
            )
            span.set_attribute(sc.ERROR_TYPE, error_type(failure))
            span.set_status(Status(StatusCode.ERROR, runtime.capturer.scrub(str(failure))))
        elif answer is None:
            status = sc.ApprovalStatusValues.TIMED_OUT
            answer = ApprovalDecision(
                settings.on_timeout is Outcome.APPROVE,
                reason=(
                    f"no answer within {settings.timeout_seconds:g} s; "
                    f"default outcome: {settings.on_timeout.value}"
                ),
            )
        else:
            status = (
                sc.ApprovalStatusValues.APPROVED
                if answer.approved
                else sc.ApprovalStatusValues.REJECTED
            )
        span.set_attribute(sc.APPROVAL_STATUS, status)
        span.set_attribute(sc.APPROVAL_WAIT_DURATION, waited)
        if answer.approver:
            span.set_attribute(sc.APPROVAL_APPROVER, answer.approver)
        if answer.reason:
            span.set_attribute(sc.APPROVAL_REASON, runtime.capturer.scrub(answer.reason))
        span.end()
        self._approval_duration.record(waited, {sc.APPROVAL_STATUS: status})
        return answer, status

    # -- after the call ----------------------------------------------------------------

    def on_tool_end(self, invocation: Any) -> None:
        state = self._forget(invocation)
        if state is None:
            return
        if invocation.exception is not None:
            self._refund(invocation, state)
            return
        contract = state.contract
        if contract is None or contract.output_check is None:
            return
        if state.contract_status == sc.ContractStatusValues.INPUT_VIOLATION:
            return  # the input side already broke the contract; that is what to report
        span: Span = invocation.span
        violation = contract.output_check.violation(invocation.result)
        if violation is None:
            span.set_attribute(sc.CONTRACT_STATUS, sc.ContractStatusValues.PASSED)
            return
        span.set_attribute(sc.CONTRACT_STATUS, sc.ContractStatusValues.OUTPUT_VIOLATION)
        span.set_attribute(sc.CONTRACT_VIOLATION, f"output (tool's fault): {violation}")

    # -- per-call state ----------------------------------------------------------------

    def _remember(self, invocation: Any, state: _CallState) -> None:
        if state.contract is None and not state.reserved_usd:
            return
        with self._calls_lock:
            self._calls[invocation] = state

    def _forget(self, invocation: Any) -> _CallState | None:
        if not self._calls:
            return None
        with self._calls_lock:
            return self._calls.pop(invocation, None)

    def _refund(self, invocation: Any, state: _CallState | None = None) -> None:
        """Give back a cost booked for a call that did not run or failed."""
        if state is None:
            with self._calls_lock:
                state = self._calls.get(invocation)
        ledger: RunLedger | None = invocation.ledger
        if state is not None and state.reserved_usd and ledger is not None:
            ledger.add_tool_cost(-state.reserved_usd)
            state.reserved_usd = 0.0


# -- helpers ---------------------------------------------------------------------------


def _may_run(decision: PolicyDecision | None) -> bool:
    """Whether the call may go ahead (at once or after approval), so its cost is booked."""
    return (
        decision is None
        or decision.mode is Mode.OBSERVE
        or decision.verdict in (Verdict.ALLOW, Verdict.REQUIRE_APPROVAL)
    )


def _contract_of(options: Mapping[str, Any]) -> ToolContract | None:
    contract = options.get("contract") if options else None
    return contract if isinstance(contract, ToolContract) else None


def _declares_facts(options: Mapping[str, Any]) -> bool:
    return bool(options) and ("records" in options or "cost_usd" in options)


def _gather_facts(
    invocation: Any, contract: ToolContract | None, arguments: Mapping[str, Any] | None
) -> CallFacts:
    spec = invocation.spec
    options = spec.options
    reversible = spec.reversible
    impact_scope = spec.impact_scope
    records_option = options.get("records")
    cost_option = options.get("cost_usd")
    if contract is not None:
        reversible = contract.reversible if reversible is None else reversible
        impact_scope = impact_scope or contract.impact_scope
        records_option = contract.records if records_option is None else records_option
        cost_option = contract.cost_usd if cost_option is None else cost_option
    ledger: RunLedger | None = invocation.ledger
    failures = 0
    if ledger is not None and invocation.fingerprint:
        failures = ledger.failures(invocation.fingerprint)
    return CallFacts(
        profile=ToolProfile(invocation.agent_name, spec.name, spec.tags, reversible, impact_scope),
        arguments=arguments,
        records=declared_records(records_option, arguments),
        cost_usd=declared_cost(cost_option, arguments),
        failures=failures,
        run_spend_usd=ledger.spent_usd if ledger is not None else 0.0,
    )


def _record_facts(span: Span, facts: CallFacts, contract: ToolContract | None) -> None:
    attributes: dict[str, AttributeValue] = {}
    if facts.records is not None:
        attributes[sc.TOOL_CALL_RECORDS] = facts.records
    if facts.cost_usd is not None:
        attributes[sc.TOOL_CALL_COST_USD] = facts.cost_usd
    if contract is not None:
        profile = facts.profile  # the tool's own declaration, completed by the contract
        if profile.reversible is not None:
            attributes[sc.TOOL_REVERSIBLE] = profile.reversible
        if profile.impact_scope:
            attributes[sc.TOOL_IMPACT_SCOPE] = profile.impact_scope
        if contract.rollback:
            attributes[sc.CONTRACT_ROLLBACK] = contract.rollback
        if contract.failure_modes:
            attributes[sc.CONTRACT_FAILURE_MODES] = list(contract.failure_modes)
    if attributes:
        span.set_attributes(attributes)
