"""The gate `instrument()` puts in front of tool calls when no policy is configured.

Without a policy the gate only has work for tools that declare a contract, a record count
or a cost (see `PolicyGate`); most runs have none. `IdleGate` answers the common case with
three dict look-ups and builds the real `PolicyGate` (importing the policy machinery:
rules, loader, approvers) the first time a tool declares something, so that
`instrument()` imports none of it. This module imports nothing from the policy package.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import Meter

from otel_agents.errors import Intervention

if TYPE_CHECKING:
    from otel_agents.core.tool import ToolDecision, ToolInvocation
from otel_agents.runtime import Observer

# The tool options `PolicyGate` acts on without a policy.
_DECLARED_OPTIONS = ("contract", "records", "cost_usd")


def declares_something(spec: Any) -> bool:
    options = getattr(spec, "options", None)
    if not options:
        return False
    return any(options.get(key) is not None for key in _DECLARED_OPTIONS)


class IdleGate(Observer):
    """A `PolicyGate` without a policy, built on the first tool that needs it."""

    def __init__(self, meter: Meter, mode: Any = None) -> None:
        self._meter = meter
        self._mode = mode
        self._gate: Observer | None = None
        self._lock = threading.Lock()

    @property
    def gate(self) -> Observer | None:
        """The real gate, once a tool needed it."""
        return self._gate

    def on_tool_start(self, invocation: ToolInvocation) -> ToolDecision | None:
        gate = self._gate
        if gate is None:
            if not declares_something(getattr(invocation, "spec", None)):
                return None
            gate = self._build()
        return gate.on_tool_start(invocation)

    def on_tool_end(self, invocation: ToolInvocation) -> None:
        gate = self._gate
        if gate is not None:
            gate.on_tool_end(invocation)

    def refusal(self, invocation: ToolInvocation, exc: BaseException) -> Intervention | None:
        return None  # without a policy nothing fails closed

    def _build(self) -> Observer:
        with self._lock:
            if self._gate is None:
                from otel_agents.policy.gate import PolicyGate

                self._gate = PolicyGate(None, mode=self._mode, meter=self._meter)
            return self._gate
