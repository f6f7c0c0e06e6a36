"""Decision rights, tool contracts and human approval.

    import otel_agents
    otel_agents.instrument(policy="policies/vendor-onboarding.yaml", approver=my_approver)

See docs/policy.md for the policy format, the modes, the approvers and the contracts.
"""

from __future__ import annotations

from otel_agents.errors import (
    ApprovalRejected,
    ContractViolation,
    HandoffRejected,
    PolicyError,
    PolicyViolation,
    ToolCallDenied,
    ToolCallEscalated,
)
from otel_agents.policy.approval import (
    ApprovalDecision,
    ApprovalRequest,
    Approver,
    CallbackApprover,
    FileApprover,
    HttpApprover,
    TerminalApprover,
)
from otel_agents.policy.contracts import SchemaCheck, ToolContract, compile_schema
from otel_agents.policy.evaluator import CallFacts, PolicyDecision, PolicyEvaluator, ToolProfile
from otel_agents.policy.gate import PolicyGate
from otel_agents.policy.loader import load_policy, parse_policy
from otel_agents.policy.model import (
    ApprovalSettings,
    Defaults,
    Limit,
    Limits,
    Match,
    Mode,
    OnError,
    Outcome,
    Policy,
    Rule,
    Verdict,
)

__all__ = [
    "ApprovalDecision",
    "ApprovalRejected",
    "ApprovalRequest",
    "ApprovalSettings",
    "Approver",
    "CallFacts",
    "CallbackApprover",
    "ContractViolation",
    "Defaults",
    "FileApprover",
    "HandoffRejected",
    "HttpApprover",
    "Limit",
    "Limits",
    "Match",
    "Mode",
    "OnError",
    "Outcome",
    "Policy",
    "PolicyDecision",
    "PolicyError",
    "PolicyEvaluator",
    "PolicyGate",
    "PolicyViolation",
    "Rule",
    "SchemaCheck",
    "TerminalApprover",
    "ToolCallDenied",
    "ToolCallEscalated",
    "ToolContract",
    "ToolProfile",
    "Verdict",
    "compile_schema",
    "load_policy",
    "parse_policy",
]
