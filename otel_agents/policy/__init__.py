"""Decision rights, tool contracts and human approval.

    import otel_agents
    otel_agents.instrument(policy="policies/vendor-onboarding.yaml", approver=my_approver)

See docs/policy.md for the policy format, the modes, the approvers and the contracts.
The names are loaded on first use: `instrument()` without a policy imports none of the
policy machinery (see `otel_agents.policy.idle`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otel_agents.errors import ApprovalRejected as ApprovalRejected
    from otel_agents.errors import ContractViolation as ContractViolation
    from otel_agents.errors import HandoffRejected as HandoffRejected
    from otel_agents.errors import PolicyError as PolicyError
    from otel_agents.errors import PolicyViolation as PolicyViolation
    from otel_agents.errors import ToolCallDenied as ToolCallDenied
    from otel_agents.errors import ToolCallEscalated as ToolCallEscalated
    from otel_agents.policy.approval import ApprovalDecision as ApprovalDecision
    from otel_agents.policy.approval import ApprovalRequest as ApprovalRequest
    from otel_agents.policy.approval import Approver as Approver
    from otel_agents.policy.approval import CallbackApprover as CallbackApprover
    from otel_agents.policy.approval import FileApprover as FileApprover
    from otel_agents.policy.approval import HttpApprover as HttpApprover
    from otel_agents.policy.approval import TerminalApprover as TerminalApprover
    from otel_agents.policy.contracts import SchemaCheck as SchemaCheck
    from otel_agents.policy.contracts import ToolContract as ToolContract
    from otel_agents.policy.contracts import compile_schema as compile_schema
    from otel_agents.policy.evaluator import CallFacts as CallFacts
    from otel_agents.policy.evaluator import PolicyDecision as PolicyDecision
    from otel_agents.policy.evaluator import PolicyEvaluator as PolicyEvaluator
    from otel_agents.policy.evaluator import ToolProfile as ToolProfile
    from otel_agents.policy.gate import PolicyGate as PolicyGate
    from otel_agents.policy.loader import load_policy as load_policy
    from otel_agents.policy.loader import parse_policy as parse_policy
    from otel_agents.policy.model import ApprovalSettings as ApprovalSettings
    from otel_agents.policy.model import Defaults as Defaults
    from otel_agents.policy.model import Limit as Limit
    from otel_agents.policy.model import Limits as Limits
    from otel_agents.policy.model import Match as Match
    from otel_agents.policy.model import Mode as Mode
    from otel_agents.policy.model import OnError as OnError
    from otel_agents.policy.model import Outcome as Outcome
    from otel_agents.policy.model import Policy as Policy
    from otel_agents.policy.model import Rule as Rule
    from otel_agents.policy.model import Verdict as Verdict

_EXPORTS = {
    "ApprovalRejected": "otel_agents.errors",
    "ContractViolation": "otel_agents.errors",
    "HandoffRejected": "otel_agents.errors",
    "PolicyError": "otel_agents.errors",
    "PolicyViolation": "otel_agents.errors",
    "ToolCallDenied": "otel_agents.errors",
    "ToolCallEscalated": "otel_agents.errors",
    "ApprovalDecision": "otel_agents.policy.approval",
    "ApprovalRequest": "otel_agents.policy.approval",
    "Approver": "otel_agents.policy.approval",
    "CallbackApprover": "otel_agents.policy.approval",
    "FileApprover": "otel_agents.policy.approval",
    "HttpApprover": "otel_agents.policy.approval",
    "TerminalApprover": "otel_agents.policy.approval",
    "SchemaCheck": "otel_agents.policy.contracts",
    "ToolContract": "otel_agents.policy.contracts",
    "compile_schema": "otel_agents.policy.contracts",
    "CallFacts": "otel_agents.policy.evaluator",
    "PolicyDecision": "otel_agents.policy.evaluator",
    "PolicyEvaluator": "otel_agents.policy.evaluator",
    "ToolProfile": "otel_agents.policy.evaluator",
    "PolicyGate": "otel_agents.policy.gate",
    "load_policy": "otel_agents.policy.loader",
    "parse_policy": "otel_agents.policy.loader",
    "ApprovalSettings": "otel_agents.policy.model",
    "Defaults": "otel_agents.policy.model",
    "Limit": "otel_agents.policy.model",
    "Limits": "otel_agents.policy.model",
    "Match": "otel_agents.policy.model",
    "Mode": "otel_agents.policy.model",
    "OnError": "otel_agents.policy.model",
    "Outcome": "otel_agents.policy.model",
    "Policy": "otel_agents.policy.model",
    "Rule": "otel_agents.policy.model",
    "Verdict": "otel_agents.policy.model",
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_agents.policy' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
