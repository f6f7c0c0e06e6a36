"""`otel_agents.handoff(...)`: the boundary where one agent passes work to another.

The handoff span records who passed what to whom, what the receiver checked and whether
it accepted. Start the receiving agent inside the block and its span nests under the
boundary, so a trace view shows exactly where responsibility changed hands:

    with otel_agents.handoff(to="provisioning", payload=summary) as h:
        with otel_agents.agent("provisioning"):
            h.check("has_tax_id", "tax_id" in summary)
            h.check("sanctions_screened", summary.get("screened") is True)
            if h.failed_checks:
                h.reject("vendor record incomplete")
                return
            h.accept()
            ...

Without an explicit `accept()` or `reject()`, the handoff counts as accepted when no check
failed and no exception escaped the block.

The receiver can also declare its checks up front; they run as the boundary opens:

    with otel_agents.handoff(to="provisioning", payload=summary, schema=VendorSummary,
                             checks={"screened": lambda p: p["screened"] is True},
                             strict=True) as h:
        ...   # with strict=True a failed check raises HandoffRejected instead
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from otel_agents import semconv as sc
from otel_agents.capture import summarize
from otel_agents.core.common import (
    capture_content,
    current_agent,
    record_error,
    run_id_attributes,
)
from otel_agents.core.invocation import Invocation
from otel_agents.core.ledger import RunLedger, current_ledger
from otel_agents.errors import HandoffRejected
from otel_agents.runtime import get_runtime, report_internal_error

_UNKNOWN_AGENT = "unknown"


class Handoff(Invocation):
    """A handoff boundary (`handoff {to}`): record checks, then accept or reject."""

    _token: object | None = None
    ledger: RunLedger | None = None  # the run's, found from the parent when it opens

    def __init__(self, source: str, target: str, payload: Any) -> None:
        super().__init__()
        self.source = source
        self.target = target
        self.payload = payload
        self.passed_checks: list[str] = []
        self.failed_checks: list[str] = []
        self.accepted: bool | None = None
        self.reason: str | None = None
        self._token: object | None = None

    @classmethod
    def unrecorded(cls, source: str | None, target: str, payload: Any) -> Handoff:
        """A boundary that records nothing, for when building one failed. Built without
        `__init__`, which may be what failed."""
        boundary = cls.__new__(cls)
        boundary.source, boundary.target, boundary.payload = (
            source or _UNKNOWN_AGENT,
            target,
            payload,
        )
        boundary.passed_checks, boundary.failed_checks = [], []
        boundary.accepted, boundary.reason = None, None
        boundary._finished = True
        return boundary

    def check(self, name: str, passed: bool, detail: str | None = None) -> bool:
        """Record one check the receiver made; returns `passed` for use in conditions."""
        label = f"{name}: {detail}" if detail and not passed else name
        (self.passed_checks if passed else self.failed_checks).append(label)
        return passed

    def accept(self, reason: str | None = None) -> None:
        self.accepted, self.reason = True, reason

    def reject(self, reason: str) -> None:
        self.accepted, self.reason = False, reason

    # -- lifecycle ---------------------------------------------------------------------

    def open(
        self,
        parent: Invocation | otel_context.Context | None = None,
        make_current: bool = True,
    ) -> None:
        """Start the boundary's span in `parent` (default: the current context)."""
        runtime = get_runtime()
        self.parent_context = ctx = Invocation.resolve_parent(parent)
        attributes: dict[str, AttributeValue] = {
            sc.HANDOFF_FROM: self.source,
            sc.HANDOFF_TO: self.target,
            sc.HANDOFF_PAYLOAD_SUMMARY: summarize(self.payload),
            **run_id_attributes(ctx),
        }
        span = self.start_span(runtime, f"handoff {self.target}", SpanKind.INTERNAL, attributes)
        if self.payload is not None:
            capture_content(span, runtime, {sc.HANDOFF_PAYLOAD: self.payload})
        if make_current:
            self._token = self.make_current()
        self.ledger = ledger = current_ledger(ctx)
        if ledger is not None:
            ledger.totals.add_handoff()
            ledger.handoffs.add(self.source, self.target)

    def close(self, exc: BaseException | None = None) -> None:
        """Record the outcome and end the span (once); leave the context if we entered it."""
        try:
            self.complete(exc)
        finally:
            self.stop_current(self._token)
            self._token = None

    def _record_end(self, exc: BaseException | None) -> None:
        runtime = get_runtime()
        if self.accepted is None:
            self.accepted = exc is None and not self.failed_checks
        attributes: dict[str, AttributeValue] = {sc.HANDOFF_ACCEPTED: self.accepted}
        if self.passed_checks:
            attributes[sc.HANDOFF_CHECKS_PASSED] = self.passed_checks
        if self.failed_checks:
            attributes[sc.HANDOFF_CHECKS_FAILED] = self.failed_checks
        if self.reason:
            attributes[sc.HANDOFF_REASON] = runtime.capturer.scrub(self.reason)
        self.span.set_attributes(attributes)
        if exc is not None:
            record_error(self.span, exc, runtime)
        runtime.deliver(runtime.hooks.handoff_end, self)
        runtime.instruments.handoffs.add(
            1,
            {
                sc.HANDOFF_FROM: self.source,
                sc.HANDOFF_TO: self.target,
                sc.HANDOFF_ACCEPTED: self.accepted,
            },
        )


class handoff:
    """Context manager (sync and async) for a handoff boundary; yields a `Handoff`.

    `source` defaults to the agent we are inside. `checks` (name -> function of the payload
    returning a bool or `(bool, detail)`) and `schema` (JSON Schema or a pydantic model for
    the payload) are the receiver's declared checks, run when the boundary opens; with
    `strict=True` a failed one rejects the handoff and raises `HandoffRejected` from the
    `with` statement, so the receiver never starts.
    """

    def __init__(
        self,
        to: str,
        *,
        payload: Any = None,
        source: str | None = None,
        checks: Mapping[str, Callable[[Any], Any]] | None = None,
        schema: Any = None,
        strict: bool = False,
    ) -> None:
        self._target = to
        self._payload = payload
        self._source = source
        self._checks = checks
        self._schema = None
        if schema is not None:
            from otel_agents.policy.contracts import compile_schema

            self._schema = compile_schema(schema)  # a bad schema is the caller's error
        self._strict = strict
        self._open: list[tuple[Handoff, otel_context.Context]] = []

    # `__enter__` and `__exit__` are boundaries: they guard every call into our code in
    # line and put back the context they found if ours failed to.

    def __enter__(self) -> Handoff:
        entry = otel_context.get_current()
        try:
            frame = current_agent()
            source = self._source or (frame.name if frame is not None else _UNKNOWN_AGENT)
            boundary = Handoff(source, self._target, self._payload)
        except Exception as exc:
            report_internal_error("handoff start", exc)
            boundary = Handoff.unrecorded(self._source, self._target, self._payload)
        try:
            boundary.open()
        except Exception as exc:
            report_internal_error("handoff start", exc)
            if otel_context.get_current() is not entry:
                otel_context.attach(entry)
        self._open.append((boundary, entry))
        if self._checks or self._schema is not None:
            try:
                rejected = self._run_declared_checks(boundary)
            except Exception as exc:
                report_internal_error("handoff checks", exc)
                rejected = None
            if rejected is not None:
                self.__exit__(None, None, None)
                raise rejected
        return boundary

    def _run_declared_checks(self, boundary: Handoff) -> HandoffRejected | None:
        """Run the receiver's declared checks; the rejection to raise when strict."""
        from otel_agents.policy.contracts import run_handoff_checks

        run_handoff_checks(boundary.check, self._payload, self._checks, self._schema)
        if self._strict and boundary.failed_checks:
            boundary.reject("failed checks: " + ", ".join(boundary.failed_checks))
            return HandoffRejected(boundary.source, boundary.target, boundary.failed_checks)
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._open:
            return
        boundary, entry = self._open.pop()
        try:
            boundary.close(exc)
        except Exception as internal:
            report_internal_error("handoff finish", internal)
        if otel_context.get_current() is not entry:
            otel_context.attach(entry)

    async def __aenter__(self) -> Handoff:
        try:
            return self.__enter__()
        except HandoffRejected:
            raise
        except Exception as internal:
            report_internal_error("handoff start", internal)
            return Handoff.unrecorded(self._source, self._target, self._payload)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.__exit__(exc_type, exc, tb)
        except Exception as internal:
            report_internal_error("handoff finish", internal)
            if self._open:
                _, entry = self._open.pop()
                otel_context.attach(entry)
