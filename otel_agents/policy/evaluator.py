"""Evaluating a policy for one tool call: pure, fast, and free of OpenTelemetry calls.

Speed comes from splitting each rule in two. The static part (agent, tool name, tags,
reversible, impact scope) depends only on which agent calls which tool, so it is worked
out once per (agent, tool) pair and cached as the list of rules that can apply. The
dynamic part (records touched, argument values) is checked per call, and only for those
candidate rules. Patterns are compiled to regular expressions when the policy loads.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from otel_agents import semconv as sc
from otel_agents.policy.model import (
    ApprovalSettings,
    Limit,
    Match,
    Mode,
    OnError,
    Policy,
    Rule,
    Verdict,
)
from otel_agents.summing_counter import AttributeKey, attribute_key

_MAX_CACHED_PAIRS = 4096
# Sums of float prices drift: $0.10 three times is 0.30000000000000004, not over $0.30.
_TOLERANCE_USD = 1e-9
RULE_INTERNAL_ERROR = "policy.internal_error"
RULE_DEFAULT = "defaults.verdict"
RULE_IRREVERSIBLE = "defaults.irreversible"
RULE_MAX_RECORDS = "defaults.max_records"
RULE_MAX_FAILURES = "limits.retries"
RULE_PER_REQUEST = "limits.spend.per_request"
RULE_PER_RUN = "limits.spend.per_run"


@dataclass(frozen=True)
class ToolProfile:
    """What is fixed about a tool call before its arguments are known."""

    agent: str | None
    tool: str
    tags: tuple[str, ...] = ()
    reversible: bool | None = None
    impact_scope: str | None = None
    qualified: str | None = None  # `{server}/{tool}` for a tool a named server serves


@dataclass
class CallFacts:
    """What the evaluator needs to know about one call."""

    profile: ToolProfile
    arguments: Mapping[str, Any] | None = None
    records: int | None = None
    cost_usd: float | None = None
    failures: int = 0  # earlier failures of this same call (tool + arguments) in the run
    run_spend_usd: float = 0.0  # what the run has spent so far


@dataclass(frozen=True)
class PolicyDecision:
    """The evaluator's answer: verdict, the rule that decided, why, and how to apply it.

    `attributes` (the four `otel_agents.policy.*` span attributes) and `metric_key`
    (verdict, rule, mode: what the verdicts metric counts by) are built with the decision.
    A rule's decision is made once, when the policy loads, and reused for every call the
    rule decides, so recording it costs no string or enum work per call.
    """

    verdict: Verdict
    rule: str
    reason: str
    mode: Mode
    approval: ApprovalSettings
    attributes: Mapping[str, str] = field(init=False, repr=False, compare=False)
    metric_key: AttributeKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        verdict, mode = self.verdict.value, self.mode.value
        attributes = {
            sc.POLICY_VERDICT: verdict,
            sc.POLICY_RULE: self.rule,
            sc.POLICY_REASON: self.reason,
            sc.POLICY_MODE: mode,
        }
        object.__setattr__(self, "attributes", attributes)
        metric_key = attribute_key({k: v for k, v in attributes.items() if k != sc.POLICY_REASON})
        object.__setattr__(self, "metric_key", metric_key)

    @property
    def enforced(self) -> bool:
        return self.mode is Mode.ENFORCE


class _Patterns:
    """Names or glob patterns, compiled once. Empty matches anything."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.any = not patterns
        self.exact = frozenset(p for p in patterns if not _is_glob(p))
        globs = [fnmatch.translate(p) for p in patterns if _is_glob(p)]
        self.regex = re.compile("|".join(globs)) if globs else None

    def matches(self, value: str | None) -> bool:
        if self.any:
            return True
        if value is None:
            return False
        return value in self.exact or (
            self.regex is not None and self.regex.match(value) is not None
        )

    def matches_any(self, values: tuple[str, ...]) -> bool:
        return self.any or any(self.matches(v) for v in values)


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


class _CompiledRule:
    """A rule with its patterns compiled and its decision made in advance."""

    def __init__(self, rule: Rule, decision: PolicyDecision) -> None:
        match: Match = rule.match
        self.rule = rule
        self.decision = decision
        self.agent = _Patterns(match.agent)
        self.tool = _Patterns(match.tool)
        self.tags = _Patterns(match.tags)
        self.scope = _Patterns(match.impact_scope)
        self.reversible = match.reversible
        self.min_records = match.min_records
        # A list (or tuple, in Python) of values means "one of these".
        self.arguments = {
            key: tuple(value) if isinstance(value, (list, tuple)) else (value,)
            for key, value in match.arguments.items()
        }
        self.dynamic = self.min_records is not None or bool(self.arguments)

    def matches_profile(self, profile: ToolProfile) -> bool:
        return (
            (self.tool.matches(profile.tool) or self._matches_qualified(profile))
            and self.agent.matches(profile.agent)
            and self.tags.matches_any(profile.tags)
            and (self.reversible is None or profile.reversible is self.reversible)
            and self.scope.matches(profile.impact_scope)
        )

    def _matches_qualified(self, profile: ToolProfile) -> bool:
        return profile.qualified is not None and self.tool.matches(profile.qualified)

    def matches_call(self, facts: CallFacts) -> bool:
        if self.min_records is not None and (
            facts.records is None or facts.records < self.min_records
        ):
            return False
        if self.arguments:
            arguments = facts.arguments
            if arguments is None:
                return False
            for key, accepted in self.arguments.items():
                if key not in arguments or arguments[key] not in accepted:
                    return False
        return True


class PolicyEvaluator:
    """Decides verdicts for one policy. Thread-safe; build once per policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._rules = tuple(
            _CompiledRule(rule, self._decide(rule.verdict, rule.id, _rule_reason(rule), rule))
            for rule in policy.rules
        )
        defaults = policy.defaults
        self._default = self._decide(defaults.verdict, RULE_DEFAULT, "no rule matched")
        self._irreversible = self._decide(
            defaults.irreversible, RULE_IRREVERSIBLE, "the tool is declared irreversible"
        )
        self._candidates: OrderedDict[ToolProfile, tuple[_CompiledRule, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def evaluate(self, facts: CallFacts) -> PolicyDecision:
        decision = self._rule_decision(facts)
        limits = self.policy.limits
        if limits.max_failures is not None:
            decision = self._max_failures(decision, limits.max_failures, facts)
        if limits.per_request_usd is not None and facts.cost_usd is not None:
            decision = self._per_request(decision, limits.per_request_usd, facts.cost_usd)
        if limits.per_run_usd is not None:
            decision = self._per_run(decision, limits.per_run_usd, facts)
        return decision

    def internal_error(self, exc: BaseException, what: str = "policy evaluation") -> PolicyDecision:
        """The decision when `what` failed before the verdict, per the policy's `on_error`."""
        closed = self.policy.on_error is OnError.FAIL_CLOSED
        verdict = Verdict.DENY if closed else Verdict.ALLOW
        setting = "fail_closed" if closed else "fail_open"
        reason = f"{what} failed ({type(exc).__name__}); on_error is {setting}"
        return self._decide(verdict, RULE_INTERNAL_ERROR, reason)

    # -- rules and defaults ------------------------------------------------------------

    def _rule_decision(self, facts: CallFacts) -> PolicyDecision:
        for compiled in self._candidates_for(facts.profile):
            if not compiled.dynamic or compiled.matches_call(facts):
                return compiled.decision
        defaults = self.policy.defaults
        if facts.profile.reversible is False and defaults.irreversible is not Verdict.ALLOW:
            return self._irreversible
        records = facts.records
        if (
            defaults.max_records is not None
            and records is not None
            and records > defaults.max_records
            and defaults.over_max_records is not Verdict.ALLOW
        ):
            return self._decide(
                defaults.over_max_records,
                RULE_MAX_RECORDS,
                f"the call touches {records} records (more than {defaults.max_records})",
            )
        return self._default

    def _candidates_for(self, profile: ToolProfile) -> tuple[_CompiledRule, ...]:
        candidates = self._candidates.get(profile)
        if candidates is not None:
            return candidates
        candidates = tuple(r for r in self._rules if r.matches_profile(profile))
        with self._lock:
            self._candidates[profile] = candidates
            while len(self._candidates) > _MAX_CACHED_PAIRS:
                self._candidates.popitem(last=False)
        return candidates

    # -- limits: a passed limit wins when its verdict is stricter ----------------------
    # Reasons are formatted only for a limit that is passed and wins: the common call
    # passes no limit and costs three comparisons.

    def _max_failures(
        self, decision: PolicyDecision, limit: Limit, facts: CallFacts
    ) -> PolicyDecision:
        if facts.failures < limit.max or not _stricter(limit, decision):
            return decision
        reason = (
            f"this call has already failed {facts.failures} times in this run; "
            f"the limit is {int(limit.max)}"
        )
        return self._decide(limit.verdict, RULE_MAX_FAILURES, reason)

    def _per_request(self, decision: PolicyDecision, limit: Limit, cost: float) -> PolicyDecision:
        if cost <= limit.max + _TOLERANCE_USD or not _stricter(limit, decision):
            return decision
        reason = f"the call costs ${cost:.2f}, over the per-request limit of ${limit.max:.2f}"
        return self._decide(limit.verdict, RULE_PER_REQUEST, reason)

    def _per_run(self, decision: PolicyDecision, limit: Limit, facts: CallFacts) -> PolicyDecision:
        total = facts.run_spend_usd + (facts.cost_usd or 0.0)
        if total <= limit.max + _TOLERANCE_USD or not _stricter(limit, decision):
            return decision
        reason = f"the run would spend ${total:.2f}, over the per-run limit of ${limit.max:.2f}"
        return self._decide(limit.verdict, RULE_PER_RUN, reason)

    def _decide(
        self, verdict: Verdict, rule_id: str, reason: str, rule: Rule | None = None
    ) -> PolicyDecision:
        mode = self.policy.mode
        if rule is not None and rule.mode is Mode.OBSERVE:
            mode = Mode.OBSERVE
        approval = rule.approval if rule is not None and rule.approval else self.policy.approval
        return PolicyDecision(verdict, rule_id, reason, mode, approval)


def _rule_reason(rule: Rule) -> str:
    return rule.reason or f"rule {rule.id!r} matched"


def _stricter(limit: Limit, decision: PolicyDecision) -> bool:
    return limit.verdict.severity > decision.verdict.severity
