"""The run ledger: what one agent run has asked for, done and spent so far.

A ledger lives in the OpenTelemetry context next to the run's root span, so it follows the
run wherever context goes (nested agents, asyncio tasks, threads with context propagation).
Code outside any agent run still gets a ledger per trace, so that an LLM call and the tool
it asked for are linked even in a plain script.

Everything here is in memory and bounded; methods take a lock because threads of one run
share the ledger.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanContext

_LEDGER_KEY = otel_context.create_key("otel_agents.ledger")
_MAX_REQUESTED_CALLS = 512
_MAX_FINGERPRINTS = 4096
_MAX_TRACE_LEDGERS = 1024
T = TypeVar("T")


@dataclass
class RequestedToolCall:
    """A tool call a model asked for (or the application declared), waiting to be executed."""

    name: str | None
    call_id: str | None = None
    arguments_key: str | None = None
    reasoning: str | None = None
    reasoning_source: str | None = None
    requested_by: SpanContext | None = None


@dataclass
class RunTotals:
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
    tool_cost_usd: float = 0.0  # declared cost of the run's successful tool calls


@dataclass
class RunLedger:
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    root_agent: str | None = None
    totals: RunTotals = field(default_factory=RunTotals)
    handoff_chain: list[tuple[str, str]] = field(default_factory=list)
    _requested: OrderedDict[int, RequestedToolCall] = field(default_factory=OrderedDict)
    _next_key: int = 0
    _attempts: OrderedDict[str, int] = field(default_factory=OrderedDict)
    _failures: OrderedDict[str, int] = field(default_factory=OrderedDict)
    _observer_state: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the decision path -------------------------------------------------------------

    def note_requested_call(self, call: RequestedToolCall) -> None:
        """Remember a tool call that a model (or the application) asked for."""
        with self._lock:
            self._requested[self._next_key] = call
            self._next_key += 1
            while len(self._requested) > _MAX_REQUESTED_CALLS:
                self._requested.popitem(last=False)

    def claim_requested_call(
        self, call_id: str | None, name: str, arguments_key: str | None
    ) -> tuple[RequestedToolCall | None, str | None]:
        """Find (and consume) the request behind a tool execution.

        Returns the request and how it matched: by call id, by name and arguments, by name
        alone (oldest first), or an unnamed request the application attached to "the next
        action". Returns (None, None) when nothing matches.
        """

        def by_id(call: RequestedToolCall) -> bool:
            return call_id is not None and call.call_id == call_id

        def by_arguments(call: RequestedToolCall) -> bool:
            return (
                call.name == name
                and arguments_key is not None
                and call.arguments_key == arguments_key
            )

        def by_name(call: RequestedToolCall) -> bool:
            return call.name == name and call_id is None

        def next_action(call: RequestedToolCall) -> bool:
            return call.name is None and call.call_id is None

        matchers: tuple[tuple[str, Callable[[RequestedToolCall], bool]], ...] = (
            ("call_id", by_id),
            ("name_and_arguments", by_arguments),
            ("name", by_name),
            ("name", next_action),
        )
        with self._lock:
            for match, test in matchers:
                for key, call in self._requested.items():
                    if test(call):
                        del self._requested[key]
                        return call, match
        return None, None

    # -- retries -----------------------------------------------------------------------

    def next_attempt(self, fingerprint: str) -> int:
        """The attempt number of a call with this fingerprint within the run (1-based)."""
        with self._lock:
            attempt = self._attempts.get(fingerprint, 0) + 1
            self._attempts[fingerprint] = attempt
            self._attempts.move_to_end(fingerprint)
            while len(self._attempts) > _MAX_FINGERPRINTS:
                self._attempts.popitem(last=False)
            self.totals.tool_calls += 1
            if attempt > 1:
                self.totals.retries += 1
            return attempt

    def note_failure(self, fingerprint: str, refused: bool = False) -> int:
        """Count a failed call with this fingerprint; returns its failures so far in the run.

        `refused`: the call was stopped on purpose (a policy), so the run's total of tool
        failures (`otel_agents.run.tool_failures`) leaves it out."""
        with self._lock:
            if not refused:
                self.totals.tool_failures += 1
            failures = self._failures.get(fingerprint, 0) + 1
            self._failures[fingerprint] = failures
            self._failures.move_to_end(fingerprint)
            while len(self._failures) > _MAX_FINGERPRINTS:
                self._failures.popitem(last=False)
            return failures

    def failures(self, fingerprint: str) -> int:
        """How often a call with this fingerprint has failed in the run so far."""
        return self._failures.get(fingerprint, 0)

    # -- state that observers keep per run ---------------------------------------------

    def observer_state(self, key: str, factory: Callable[[], T]) -> T:
        """The per-run state an observer keeps under `key`, created by `factory` on first
        use. It lives and dies with the run, so concurrent runs never share it."""
        with self._lock:
            state = self._observer_state.get(key)
            if state is None:
                state = self._observer_state[key] = factory()
            return cast(T, state)

    # -- money and tokens --------------------------------------------------------------

    def add_llm_call(self, input_tokens: int, output_tokens: int, cost_usd: float | None) -> None:
        with self._lock:
            totals = self.totals
            totals.llm_calls += 1
            totals.input_tokens += input_tokens
            totals.output_tokens += output_tokens
            if cost_usd is not None:
                totals.cost_usd += cost_usd
                totals.cost_known = True

    def add_tool_cost(self, cost_usd: float) -> None:
        """Book (or, negative, give back) the declared cost of a tool call."""
        with self._lock:
            self.totals.tool_cost_usd += cost_usd

    @property
    def spent_usd(self) -> float:
        """What the run has spent so far: LLM calls plus declared tool costs."""
        return self.totals.cost_usd + self.totals.tool_cost_usd

    def add_handoff(self, source: str, target: str) -> None:
        with self._lock:
            self.totals.handoffs += 1
            self.handoff_chain.append((source, target))
            del self.handoff_chain[:-64]

    def add_anomalies(self, count: int = 1) -> None:
        with self._lock:
            self.totals.anomalies += count


def fingerprint(name: str, arguments_key: str | None) -> str:
    """A short, stable hash of a tool name and its canonical arguments."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(name.encode("utf-8", "replace"))
    digest.update(b"\x00")
    digest.update((arguments_key or "").encode("utf-8", "replace"))
    return digest.hexdigest()


def canonical_arguments(arguments: Any) -> str | None:
    """Arguments as canonical JSON (sorted keys), for matching and fingerprints.

    A JSON string (as models send tool arguments) is parsed first, so that the model's
    `'{"b": 1, "a": 2}'` and the application's `{"a": 2, "b": 1}` give the same key.
    """
    if arguments is None:
        return None
    if isinstance(arguments, (str, bytes)):
        try:
            arguments = json.loads(arguments)
        except (ValueError, TypeError):
            return arguments if isinstance(arguments, str) else repr(arguments)
    try:
        return json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=repr)
    except (TypeError, ValueError, RecursionError):
        return None


# -- finding the ledger ----------------------------------------------------------------

_trace_ledgers: OrderedDict[int, RunLedger] = OrderedDict()
_trace_ledgers_lock = threading.Lock()


def current_run_ledger() -> RunLedger | None:
    """The ledger of the agent run we are inside, if any."""
    value = otel_context.get_value(_LEDGER_KEY)
    return value if isinstance(value, RunLedger) else None


def current_ledger() -> RunLedger | None:
    """The run's ledger, or else one shared by the current trace (outside any agent run)."""
    ledger = current_run_ledger()
    if ledger is not None:
        return ledger
    span_context = trace.get_current_span().get_span_context()
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
