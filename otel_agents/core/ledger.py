"""The run ledger: what one agent run has asked for, done and spent so far.

A ledger lives in the OpenTelemetry context next to the run's root span (and on the root
`AgentRun` itself, for integrations that do not make it current), so it follows the run
wherever context goes (nested agents, asyncio tasks, threads with context propagation).
Code outside any agent run still gets a ledger per trace, so that an LLM call and the tool
it asked for are linked even in a plain script.

The ledger is a set of pieces, each with one job:

- `requests` (`RequestBoard`): the tool calls models asked for, until executed; inference
  calls post them, tool executions claim them;
- `attempts` (`Attempts`): attempt number and failures per call fingerprint; written by
  tool executions;
- `totals` (`RunTotals`): tokens, cost, calls, retries, failures, anomalies; each
  invocation kind adds its own;
- `handoffs` (`HandoffChain`): who handed work to whom, in order; written by handoffs.

The run's root agent span carries the totals when it ends; the store reads them from
there. Everything is in memory and bounded; each piece takes its own lock, because threads
of one run share the ledger.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace

from otel_agents.core.arguments import (
    ArgumentDigest as ArgumentDigest,
)
from otel_agents.core.arguments import (
    canonical_arguments as canonical_arguments,
)
from otel_agents.core.arguments import (
    fingerprint as fingerprint,
)
from otel_agents.core.requests import RequestBoard

_LEDGER_KEY = otel_context.create_key("otel_agents.core.ledger")
_MAX_FINGERPRINTS = 4096
_MAX_TRACE_LEDGERS = 1024
_MAX_HANDOFFS = 64
T = TypeVar("T")


class Attempts:
    """Attempts and failures per call fingerprint (tool name + arguments) within a run."""

    def __init__(self) -> None:
        self._attempts: OrderedDict[str, int] = OrderedDict()
        self._failures: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def next(self, fingerprint: str) -> int:
        """The attempt number of a new call with this fingerprint (1-based)."""
        with self._lock:
            return _bump(self._attempts, fingerprint)

    def note_failure(self, fingerprint: str) -> int:
        """Count a failed call with this fingerprint; returns its failures so far."""
        with self._lock:
            return _bump(self._failures, fingerprint)

    def failures(self, fingerprint: str) -> int:
        """How often a call with this fingerprint has failed in the run so far."""
        return self._failures.get(fingerprint, 0)


def _bump(counts: OrderedDict[str, int], key: str) -> int:
    count = counts.get(key, 0) + 1
    counts[key] = count
    counts.move_to_end(key)
    while len(counts) > _MAX_FINGERPRINTS:
        counts.popitem(last=False)
    return count


@dataclass
class RunTotals:
    """The run's running totals. Kept here only: the root span reports them at the end."""

    cost_usd: float = 0.0
    cost_known: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    llm_calls: int = 0
    tool_calls: int = 0
    handoffs: int = 0
    retries: int = 0
    tool_failures: int = 0
    anomalies: int = 0
    denials: int = 0  # decisions that stopped work: enforced deny/escalate, tripped guardrails
    tool_cost_usd: float = 0.0  # declared cost of the run's successful tool calls
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_llm_call(self, input_tokens: int, output_tokens: int, cost_usd: float | None) -> None:
        with self._lock:
            self.llm_calls += 1
            self.input_tokens += input_tokens
            self.output_tokens += output_tokens
            if cost_usd is not None:
                self.cost_usd += cost_usd
                self.cost_known = True

    def add_tool_call(self, attempt: int) -> None:
        with self._lock:
            self.tool_calls += 1
            if attempt > 1:
                self.retries += 1

    def add_tool_failure(self) -> None:
        """A tool call failed (a refusal by policy is not the tool failing: not counted)."""
        with self._lock:
            self.tool_failures += 1

    def add_tool_cost(self, cost_usd: float) -> None:
        """Book (or, negative, give back) the declared cost of a tool call."""
        with self._lock:
            self.tool_cost_usd += cost_usd

    def add_handoff(self) -> None:
        with self._lock:
            self.handoffs += 1

    def add_denial(self) -> None:
        """A decision stopped work: a policy refused a tool call, or a guardrail tripped."""
        with self._lock:
            self.denials += 1

    def add_anomalies(self, count: int = 1) -> None:
        with self._lock:
            self.anomalies += count

    @property
    def spent_usd(self) -> float:
        """What the run has spent so far: LLM calls plus declared tool costs."""
        return self.cost_usd + self.tool_cost_usd


class HandoffChain:
    """Who handed work to whom in the run, in order (the latest `_MAX_HANDOFFS`)."""

    def __init__(self) -> None:
        self._chain: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def add(self, source: str, target: str) -> None:
        with self._lock:
            self._chain.append((source, target))
            del self._chain[:-_MAX_HANDOFFS]

    def recent(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._chain)


@dataclass
class RunLedger:
    """One run's pieces (see the module's table), its id and the state observers keep."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    root_agent: str | None = None
    requests: RequestBoard = field(default_factory=RequestBoard)
    attempts: Attempts = field(default_factory=Attempts)
    totals: RunTotals = field(default_factory=RunTotals)
    handoffs: HandoffChain = field(default_factory=HandoffChain)
    started: float = field(default_factory=time.monotonic)
    _observer_state: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observer_state(self, key: str, factory: Callable[[], T]) -> T:
        """The per-run state an observer keeps under `key`, created by `factory` on first
        use. It lives and dies with the run, so concurrent runs never share it."""
        with self._lock:
            state = self._observer_state.get(key)
            if state is None:
                state = self._observer_state[key] = factory()
            return cast(T, state)


# -- finding the ledger ----------------------------------------------------------------

_trace_ledgers: OrderedDict[int, RunLedger] = OrderedDict()
_trace_ledgers_lock = threading.Lock()


def current_run_ledger(ctx: otel_context.Context | None = None) -> RunLedger | None:
    """The ledger of the agent run we are inside, if any."""
    value = otel_context.get_value(_LEDGER_KEY, ctx)
    return value if isinstance(value, RunLedger) else None


def current_ledger(ctx: otel_context.Context | None = None) -> RunLedger | None:
    """The run's ledger, or else one shared by the current trace (outside any agent run)."""
    ledger = current_run_ledger(ctx)
    if ledger is not None:
        return ledger
    span_context = trace.get_current_span(ctx).get_span_context()
    if not span_context.is_valid:
        return None
    with _trace_ledgers_lock:
        ledger = _trace_ledgers.get(span_context.trace_id)
        if ledger is None:
            ledger = RunLedger(run_id=format(span_context.trace_id, "032x"))
            _trace_ledgers[span_context.trace_id] = ledger
            while len(_trace_ledgers) > _MAX_TRACE_LEDGERS:
                _trace_ledgers.popitem(last=False)
        return ledger


def context_with_ledger(ledger: RunLedger, ctx: otel_context.Context) -> otel_context.Context:
    return otel_context.set_value(_LEDGER_KEY, ledger, ctx)
