"""Exceptions that otel-agents raises into application code on purpose.

Only decisions reach the application (a denied tool call in enforce mode, say); internal
errors never do. Agent frameworks surface these to the model as tool errors.
"""

from __future__ import annotations

from typing import Any

from otel_agents.config import ConfigError


class OtelAgentsError(Exception):
    """Base of every exception otel-agents raises on purpose."""


class Intervention(OtelAgentsError):
    """A deliberate stop of an action (policy deny, rejected approval, ...).

    Raised by observers before a tool runs; the tool span records it and the exception
    reaches the caller unchanged. `decision` is what the stopping observer decided (a
    `core.tool.ToolDecision`), for the tool call's record.
    """

    decision: Any = None


class PolicyViolation(Intervention):
    """A policy stopped a tool call. Base of the policy gate's deliberate stops.

    `tool`, `rule` and `reason` say which call was stopped, by which rule and why; the
    message says the same in words, so an agent framework that shows it to the model as a
    tool error gives the model something to act on.
    """

    verdict = "deny"

    def __init__(self, tool: str, rule: str | None, reason: str | None, detail: str = "") -> None:
        self.tool, self.rule, self.reason = tool, rule, reason
        words = f"tool call {tool!r} {self.describe()}"
        if reason:
            words += f": {reason}"
        notes = [f"policy rule {rule!r}"] if rule else []
        if detail:
            notes.append(detail)
        if notes:
            words += f" ({'; '.join(notes)})"
        super().__init__(words)

    def describe(self) -> str:
        return "was denied"


class ToolCallDenied(PolicyViolation):
    """Enforce mode, verdict `deny`: the tool was not called."""


class ToolCallEscalated(PolicyViolation):
    """Enforce mode, verdict `escalate`: the call needs someone with more authority.

    The tool was not called. Catch this to page a person or hand the task to a supervisor;
    the `otel_agents.policy.verdicts` metric with `verdict="escalate"` is there to alert on.
    """

    verdict = "escalate"

    def describe(self) -> str:
        return "was escalated instead of run"


class ApprovalRejected(PolicyViolation):
    """Enforce mode, verdict `require_approval`, and the approval did not come.

    `status` is `rejected` (a person said no), `timed_out` or `error` (the approver failed)
    when the configured default outcome for those is to reject; `approver` names who
    answered, if anyone did.
    """

    verdict = "require_approval"

    def __init__(
        self,
        tool: str,
        rule: str | None,
        reason: str | None,
        status: str,
        approver: str | None = None,
    ) -> None:
        self.status, self.approver = status, approver
        detail = f"approval {status}" + (f" by {approver}" if approver else "")
        super().__init__(tool, rule, reason, detail)

    def describe(self) -> str:
        return "was not approved"


class ContractViolation(Intervention):
    """Enforce mode: the agent called a tool with arguments that break its input contract.

    `side` is `input` (the agent's fault: fix the arguments and call again). The tool was
    not called. Output violations are recorded on the span, never raised: the tool has
    already run by then.
    """

    def __init__(self, tool: str, side: str, violation: str) -> None:
        self.tool, self.side, self.violation = tool, side, violation
        who = (
            "the agent sent arguments that do not match its input schema"
            if side == "input"
            else "the tool returned a result that does not match its output schema"
        )
        super().__init__(f"tool call {tool!r} broke its contract: {who}: {violation}")


class HandoffRejected(Intervention):
    """A handoff declared as strict failed one of the receiver's checks; the receiver did
    not start. `failed_checks` lists which checks failed."""

    def __init__(self, source: str, target: str, failed_checks: list[str]) -> None:
        self.source, self.target, self.failed_checks = source, target, list(failed_checks)
        super().__init__(
            f"handoff from {source!r} to {target!r} was rejected: failed checks: "
            + ", ".join(failed_checks)
        )


class PolicyError(ConfigError):
    """A policy file (or a policy built in Python) is malformed. Raised at start-up.

    The message starts with `file:line:column:` and says what is wrong; the parts are also
    available as `file`, `line` (1-based), `column` (1-based) and `problem`.
    """

    def __init__(
        self,
        problem: str,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.problem, self.file, self.line, self.column = problem, file, line, column
        where = file or "<policy>"
        if line is not None:
            where += f":{line}" + (f":{column}" if column is not None else "")
        super().__init__(f"{where}: {problem}")
