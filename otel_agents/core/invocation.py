"""The invocation core: one base that owns a span's life, for every kind of work we trace.

An `Invocation` is one inference call, tool execution, agent run or handoff (the typed kinds
in `inference.py`, `tool.py`, `agent.py` and `handoff.py`, named as in the GenAI conventions
and `opentelemetry-util-genai`). The base does what all of them share, once:

- **start**: the span is started in a parent context: the current one, or one given
  explicitly (`parent=`: another invocation or a `Context`), so that an integration driven by
  callbacks can start work under a parent it only knows by id;
- **make current, or not**: `make_current()` attaches the context children start in (the
  span, and what the kind adds: the agent frame, the run ledger) and returns a token for
  `stop_current(token)`. Starting does not make current: a caller can start an invocation,
  hand its `id` to a callback API (`Invocations`), and finish it later from another context
  or thread;
- **finish exactly once**, from any thread: the kind records its outcome (`_record_end`:
  attributes, metrics, observer events), the span ends whatever failed on the way, and a
  failure of ours is reported, never raised;
- **abandon**: end the span recording nothing, when recording cannot go on.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind
from opentelemetry.util.types import AttributeValue

from otel_agents.runtime import Runtime, report_internal_error

# Guards every invocation's "finished" flag: held for a test-and-set only, so one lock for
# all is cheaper than one made per invocation.
_FINISH_LOCK = threading.Lock()
_EMPTY = otel_context.Context()


class Invocation:
    """Base of the typed invocation kinds. Subclasses implement `_record_end`."""

    # Class-level defaults, so that a failure path can use an instance made without
    # `__init__` (which may be what failed).
    span: Span = INVALID_SPAN
    started: float = 0.0
    parent_context: otel_context.Context | None = None
    _child_context: otel_context.Context | None = None
    _child_context_span: Span | None = None
    _finished: bool = False
    _lock: threading.Lock | None = None

    def __init__(self) -> None:
        self.span = INVALID_SPAN
        self.started = time.monotonic()
        self.parent_context = None
        self._finished = False
        self._lock = _FINISH_LOCK

    # -- start ---------------------------------------------------------------------------

    def start_span(
        self,
        runtime: Runtime,
        name: str,
        kind: SpanKind,
        attributes: Mapping[str, AttributeValue],
        links: Sequence[Link] = (),
    ) -> Span:
        """Start this invocation's span in its parent context."""
        self.span = runtime.tracer.start_span(
            name, context=self.parent_context, kind=kind, attributes=attributes, links=links
        )
        return self.span

    @staticmethod
    def resolve_parent(parent: Invocation | otel_context.Context | None) -> otel_context.Context:
        """The context to start in: a parent invocation's children's context, a context
        given as is, or the current one."""
        if isinstance(parent, Invocation):
            return parent.child_context()
        if parent is None:
            return otel_context.get_current()
        return parent

    @property
    def id(self) -> str:
        """A stable handle for callback APIs: the span id in hex ("" before the span)."""
        context = self.span.get_span_context()
        return format(context.span_id, "016x") if context.is_valid else ""

    # -- current or not --------------------------------------------------------------------

    def child_context(self) -> otel_context.Context:
        """The context work inside this invocation starts in: its span, plus what the kind
        adds (`_add_to_context`). Built once, after the span."""
        ctx = self._child_context
        if ctx is None or self._child_context_span is not self.span:
            base = self.parent_context
            ctx = trace.set_span_in_context(self.span, base if base is not None else _EMPTY)
            ctx = self._add_to_context(ctx)
            self._child_context, self._child_context_span = ctx, self.span
        return ctx

    def _add_to_context(self, ctx: otel_context.Context) -> otel_context.Context:
        return ctx

    def make_current(self) -> object:
        """Attach `child_context()`; returns the token for `stop_current`."""
        return otel_context.attach(self.child_context())

    @staticmethod
    def stop_current(token: object | None) -> None:
        if token is None:
            return
        try:
            otel_context.detach(token)  # type: ignore[arg-type]
        except Exception as exc:
            report_internal_error("invocation detach", exc)

    # -- finish --------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self._finished

    def claim_finish(self) -> bool:
        """True for the one caller that gets to finish this invocation."""
        lock = self._lock
        if lock is None:  # made without `__init__`, on a failure path: no lock to take
            finished, self._finished = self._finished, True
            return not finished
        with lock:
            if self._finished:
                return False
            self._finished = True
            return True

    def complete(self, exc: BaseException | None = None) -> None:
        """Record the outcome and end the span, exactly once. Never raises."""
        lock = self._lock
        if lock is not None:  # `claim_finish`, in line: this is every invocation's path
            with lock:
                if self._finished:
                    return
                self._finished = True
        elif not self.claim_finish():
            return
        try:
            if self.span is not INVALID_SPAN:
                self._record_end(exc)
        except Exception as internal:
            report_internal_error(f"{type(self).__name__} finish", internal)
        try:
            self.span.end()  # whatever failed above, the span is not left open
        except Exception as internal:
            report_internal_error(f"{type(self).__name__} end", internal)

    def _record_end(self, exc: BaseException | None) -> None:
        """What the kind records at its end (the span is still open)."""
        raise NotImplementedError

    def abandon(self) -> None:
        """End the span of an invocation whose recording cannot go on, recording nothing."""
        if self.claim_finish():
            with contextlib.suppress(Exception):
                self.span.end()


InvocationT = TypeVar("InvocationT", bound=Invocation)


class Invocations(Generic[InvocationT]):
    """Open invocations by id, for integrations whose callbacks refer to work by id (a
    framework's run id, a tracing processor's span id). Bounded: the oldest entries go
    first when a caller forgets to finish (their spans are then abandoned, not leaked)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._open: OrderedDict[Any, InvocationT] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def add(self, key: Any, invocation: InvocationT) -> None:
        evicted: list[InvocationT] = []
        with self._lock:
            self._open[key] = invocation
            while len(self._open) > self._limit:
                evicted.append(self._open.popitem(last=False)[1])
        for stale in evicted:
            stale.abandon()

    def get(self, key: Any) -> InvocationT | None:
        with self._lock:
            return self._open.get(key)

    def pop(self, key: Any) -> InvocationT | None:
        with self._lock:
            return self._open.pop(key, None)

    def __len__(self) -> int:
        return len(self._open)


__all__ = ["Invocation", "Invocations"]
