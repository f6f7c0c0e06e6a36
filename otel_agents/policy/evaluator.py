"""Evaluating a policy for one tool call: pure, fast, and free of OpenTelemetry.

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
from dataclasses import dataclass
from typing import Any

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
    """The evaluator's answer: verdict, the rule that decided, why, and how to apply it."""

    verdict: Verdict
    rule: str
    reason: str
    mode: Mode
    approval: ApprovalSettings


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
    def __init__(self, rule: Rule) -> None:
        match: Match = rule.match
        self.rule = rule
        self.agent = _Patterns(match.agent)
        self.tool = _Patterns(match.tool)
        self.tags = _Patterns(match.tags)
        self.scope = _Patterns(match.impact_scope)
        self.reversible = match.reversible
        self.min_records = match.min_records
        self.arguments = {
            key: tuple(value) if isinstance(value, list) else (value,)
            for key, value in match.arguments.items()
        }
        self.dynamic = self.min_records is not None or bool(self.arguments)

    def matches_profile(self, profile: ToolProfile) -> bool:
        return (
            self.tool.matches(profile.tool)
            and self.agent.matches(profile.agent)
            and self.tags.matches_any(profile.tags)
            and (self.reversible is None or profile.reversible is self.reversible)
            and self.scope.matches(profile.impact_scope)
        )

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
        self._rules = tuple(_CompiledRule(rule) for rule in policy.rules)
        self._candidates: OrderedDict[ToolProfile, tuple[_CompiledRule, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def evaluate(self, facts: CallFacts) -> PolicyDecision:
        decision = self._rule_decision(facts)
        for limit, rule_id, exceeded in self._limit_checks(facts):
            if exceeded is not None and limit.verdict.severity > decision.verdict.severity:
                decision = self._decide(limit.verdict, rule_id, exceeded)
        return decision

    def internal_error(self, exc: BaseException) -> PolicyDecision:
        """The decision when evaluation itself failed, per the policy's `on_error`."""
        closed = self.policy.on_error is OnError.FAIL_CLOSED
        verdict = Verdict.DENY if closed else Verdict.ALLOW
        setting = "fail_closed" if closed else "fail_open"
        reason = f"policy evaluation failed ({type(exc).__name__}); on_error is {setting}"
        return self._decide(verdict, RULE_INTERNAL_ERROR, reason)

    # -- rules and defaults ------------------------------------------------------------

    def _rule_decision(self, facts: CallFacts) -> PolicyDecision:
        for compiled in self._candidates_for(facts.profile):
            if not compiled.dynamic or compiled.matches_call(facts):
                rule = compiled.rule
                reason = rule.reason or f"rule {rule.id!r} matched"
                return self._decide(rule.verdict, rule.id, reason, rule)
        defaults = self.policy.defaults
        profile = facts.profile
        if profile.reversible is False and defaults.irreversible is not Verdict.ALLOW:
            return self._decide(
                defaults.irreversible, RULE_IRREVERSIBLE, "the tool is declared irreversible"
            )
        if (
            defaults.max_records is not None
            and facts.records is not None
            and facts.records > defaults.max_records
            and defaults.over_max_records is not Verdict.ALLOW
        ):
            return self._decide(
                defaults.over_max_records,
                RULE_MAX_RECORDS,
                f"the call touches {facts.records} records (more than {defaults.max_records})",
            )
        return self._decide(defaults.verdict, RULE_DEFAULT, "no rule matched")

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

    # -- limits ------------------------------------------------------------------------

    def _limit_checks(self, facts: CallFacts) -> list[tuple[Limit, str, str | None]]:
        limits = self.policy.limits
        checks: list[tuple[Limit, str, str | None]] = []
        if limits.max_failures is not None:
            limit = limits.max_failures
            exceeded = (
                f"this call has already failed {facts.failures} times in this run; "
                f"the limit is {int(limit.max)}"
                if facts.failures >= limit.max
                else None
            )
            checks.append((limit, RULE_MAX_FAILURES, exceeded))
        cost = facts.cost_usd
        if limits.per_request_usd is not None and cost is not None:
            limit = limits.per_request_usd
            exceeded = (
                f"the call costs ${cost:.2f}, over the per-request limit of ${limit.max:.2f}"
                if cost > limit.max + _TOLERANCE_USD
                else None
            )
            checks.append((limit, RULE_PER_REQUEST, exceeded))
        if limits.per_run_usd is not None:
            limit = limits.per_run_usd
            total = facts.run_spend_usd + (cost or 0.0)
            exceeded = (
                f"the run would spend ${total:.2f}, over the per-run limit of ${limit.max:.2f}"
                if total > limit.max + _TOLERANCE_USD
                else None
            )
            checks.append((limit, RULE_PER_RUN, exceeded))
        return checks

    def _decide(
        self, verdict: Verdict, rule_id: str, reason: str, rule: Rule | None = None
    ) -> PolicyDecision:
        mode = self.policy.mode
        if rule is not None and rule.mode is Mode.OBSERVE:
            mode = Mode.OBSERVE
        approval = rule.approval if rule is not None and rule.approval else self.policy.approval
        return PolicyDecision(verdict, rule_id, reason, mode, approval)
