"""Turning `instrument(policy=..., policy_mode=..., approver=...)` and the environment into
a `PolicyGate`. Everything is read and checked when `instrument()` runs, so a malformed
policy fails at start-up, not on the first tool call."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.metrics import Meter

from otel_agents.config import ConfigError
from otel_agents.policy.approval import (
    ApprovalDecision,
    ApprovalRequest,
    Approver,
    CallbackApprover,
    FileApprover,
    HttpApprover,
    TerminalApprover,
)
from otel_agents.policy.gate import PolicyGate
from otel_agents.policy.loader import POLICY_FILE_ENV, POLICY_MODE_ENV, PolicySource, load_policy
from otel_agents.policy.model import ApprovalSettings, Mode, Policy
from otel_agents.runtime import Observer

ApproverLike = Approver | Callable[[ApprovalRequest], bool | ApprovalDecision]


@dataclass(frozen=True)
class PolicySetup:
    """The checked configuration of the gate, before anything is started."""

    policy: Policy | None
    mode: Mode | None
    approver: ApproverLike | None

    @classmethod
    def load(
        cls,
        policy: PolicySource | None = None,
        policy_mode: Mode | str | None = None,
        approver: ApproverLike | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> PolicySetup:
        env = os.environ if environ is None else environ
        if policy is None and env.get(POLICY_FILE_ENV, "").strip():
            policy = Path(env[POLICY_FILE_ENV].strip())
        loaded = load_policy(policy) if policy is not None else None
        raw_mode = policy_mode if policy_mode is not None else env.get(POLICY_MODE_ENV, "").strip()
        mode = _mode(raw_mode) if raw_mode else None
        if approver is not None and not (isinstance(approver, Approver) or callable(approver)):
            raise ConfigError(f"approver must be an Approver or a function, got {approver!r}")
        return cls(loaded, mode, approver)

    def build(self, meter: Meter) -> PolicyGate:
        settings = self.policy.approval if self.policy is not None else None
        approver = _approver(self.approver, settings)
        return PolicyGate(
            self.policy,
            mode=self.mode,
            approver=approver,
            meter=meter,
            owns_approver=approver is not None and self.approver is None,
        )

    def checks(self) -> list[Observer]:
        """Observers that warn about a policy that cannot work as written."""
        if self.policy is None:
            return []
        from otel_agents.policy.tool_check import UnknownToolCheck

        return [UnknownToolCheck(self.policy)]


def _mode(value: Mode | str) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise ConfigError(
            f"{POLICY_MODE_ENV} / policy_mode={value!r} is not one of observe, enforce"
        ) from None


def _approver(given: ApproverLike | None, settings: ApprovalSettings | None) -> Approver | None:
    if isinstance(given, Approver):
        return given
    if given is not None:
        return CallbackApprover(given)
    if settings is None or settings.channel is None:
        return None
    if settings.channel == "terminal":
        return TerminalApprover()
    if settings.channel == "file":
        assert settings.directory is not None  # the model checks this
        return FileApprover(settings.directory)
    return HttpApprover(settings.host, settings.port)
