"""Tool executions: the `@otel_agents.tool` decorator and the generic tool recorder.

Every tool execution, whoever runs it (our decorator today, framework and MCP adapters
later), goes through `ToolInvocation.start(...)`. It finds the LLM call that requested the
tool (by call id, else by name and arguments) so the `execute_tool` span carries the call
id, a link to the requesting LLM span and the reasoning behind the call; it numbers retries
of the same call within the run; and it lets observers (the policy gate, the detectors)
look at the call before and after it runs.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Link, SpanKind
from opentelemetry.util.types import AttributeValue

from otel_agents import semconv as sc
from otel_agents.capture import summarize
from otel_agents.core.arguments import canonical_arguments, fingerprint
from otel_agents.core.common import (
    capture_content,
    current_agent,
    error_type,
    record_error,
    run_id_attributes,
    wrap_callable,
)
from otel_agents.core.invocation import Invocation
from otel_agents.core.ledger import RunLedger, current_ledger
from otel_agents.core.requests import ToolCallRequest
from otel_agents.errors import Intervention
from otel_agents.runtime import (
    built_runtime,
    get_runtime,
    opening_failures,
    report_internal_error,
)
from otel_agents.summing_counter import attribute_key

F = TypeVar("F", bound=Callable[..., Any])

# The model tool call the next tool executed in this context answers (`tool_call_id`), with
# the span current when it was given: a tool nested in that tool sees another current span,
# so it answers no call id. Kept in the OpenTelemetry context, like everything we set.
_CALL_ID_KEY = otel_context.create_key("otel_agents.tool_call_id")


@contextlib.contextmanager
def tool_call_id(call_id: str | None) -> Iterator[None]:
    """Tell the next tool executed in this block which model tool call it answers.

    >>> with otel_agents.tool_call_id(call.id):
    ...     result = lookup_vendor(**json.loads(call.function.arguments))
    """
    given = (call_id, trace.get_current_span())
    token = otel_context.attach(otel_context.set_value(_CALL_ID_KEY, given))
    try:
        yield
    finally:
        otel_context.detach(token)


def _explicit_call_id(ctx: otel_context.Context) -> str | None:
    given = ctx.get(_CALL_ID_KEY)
    if type(given) is tuple and given[1] is trace.get_current_span(ctx):
        call_id: str | None = given[0]
        return call_id
    return None


_registered_names: set[str] = set()  # every name @tool was given, for policy checks
_MAX_REGISTERED = 10_000


def registered_tool_names() -> frozenset[str]:
    """The names of the tools defined with `@otel_agents.tool` so far in this process."""
    return frozenset(_registered_names)


@dataclass(frozen=True)
class ToolSpec:
    """What a tool is: name, description and the properties policies look at."""

    name: str
    description: str | None = None
    tool_type: str = "function"
    tags: tuple[str, ...] = ()
    reversible: bool | None = None
    impact_scope: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    # What serves the tool (an MCP server's name): a policy matches `{namespace}/{name}` too.
    namespace: str | None = None
    # The span attributes every call of the tool starts with, built once.
    attributes: Mapping[str, AttributeValue] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", self.static_attributes())

    @property
    def qualified_name(self) -> str | None:
        return f"{self.namespace}/{self.name}" if self.namespace else None

    def static_attributes(self) -> dict[str, AttributeValue]:
        attributes: dict[str, AttributeValue] = {
            sc.GEN_AI_OPERATION_NAME: sc.GenAiOperationNameValues.EXECUTE_TOOL,
            sc.GEN_AI_TOOL_NAME: self.name,
            sc.GEN_AI_TOOL_TYPE: self.tool_type,
        }
        if self.description:
            attributes[sc.GEN_AI_TOOL_DESCRIPTION] = self.description
        if self.tags:
            attributes[sc.TOOL_TAGS] = list(self.tags)
        if self.reversible is not None:
            attributes[sc.TOOL_REVERSIBLE] = self.reversible
        if self.impact_scope:
            attributes[sc.TOOL_IMPACT_SCOPE] = self.impact_scope
        return attributes


@dataclass
class ToolDecision:
    """What the policy gate decided about one tool call, returned by its `on_tool_start`
    (or carried by the `Intervention` that stopped the call). The invocation keeps it for
    the end of the call: the verdict labels the tool-calls metric, the detectors read the
    contract status, and the gate gets its own per-call state back in `on_tool_end`."""

    verdict: str | None = None
    contract_status: str | None = None  # passed, input_violation, output_violation
    gate_state: Any = None
    approved: bool = False  # a human approved the call (its verdict was require_approval)


class ToolInvocation(Invocation):
    """One execution of a tool (`execute_tool`): arguments, decision path and outcome."""

    # Defaults at class level too, so that a failure path can make a usable instance
    # without `__init__` (which may be what failed).
    call_id: str | None = None
    ledger: RunLedger | None = None
    request: ToolCallRequest | None = None
    match: str | None = None
    fingerprint: str | None = None
    attempt = 1
    agent_name: str | None = None
    result: Any = None
    exception: BaseException | None = None
    decision: ToolDecision | None = None
    caller: ToolInvocation | None = None
    # The `error.type` of a failure, when the integration knows a better one than the
    # exception's class (an MCP JSON-RPC error: its code).
    error_name: str | None = None
    _token: object | None = None

    def __init__(self, spec: ToolSpec, arguments: Any) -> None:
        super().__init__()
        self.spec = spec
        self.arguments = arguments
        self.call_id: str | None = None
        self.ledger: RunLedger | None = None
        self.request: ToolCallRequest | None = None
        self.match: str | None = None
        self.fingerprint: str | None = None
        self.attempt = 1
        self.agent_name: str | None = None
        self.result: Any = None
        self.exception: BaseException | None = None
        # What the policy gate decided (see `ToolDecision`), None without a gate's answer.
        self.decision: ToolDecision | None = None
        # Internal errors while the call was being opened, up to the gate's verdict: the
        # gate decides on them by `on_error` (fail closed: the call is refused).
        self.open_failures: list[BaseException] = []
        # The caller's invocation of this same call when this one serves it in the same
        # process (an MCP server under its client): the caller's record is the call's.
        self.caller: ToolInvocation | None = None
        self._token: object | None = None

    @classmethod
    def start(
        cls,
        spec: ToolSpec,
        arguments: Any,
        call_id: str | None = None,
        failures: Sequence[BaseException] = (),
        *,
        parent: Invocation | otel_context.Context | None = None,
        make_current: bool = True,
        caller: ToolInvocation | None = None,
    ) -> ToolInvocation:
        """Open the `execute_tool` span and run the observers' pre-checks (the gate).

        Raises only an `Intervention` (a deliberate stop, such as a policy deny, or the
        refusal of a call that could not be checked under fail-closed); the span then
        records it and is ended. `failures` are errors met before this (reading the
        arguments), for the gate to decide on. `parent` (default: the current context)
        is where the call runs: its run ledger and agent; `make_current=False` leaves the
        context alone (a callback API finishes the call later, perhaps elsewhere).
        `caller`: the invocation this one serves in the same process (see `caller`): it
        is counted once, in the caller's ledger, with the caller's attempt number.
        """
        invocation = cls(spec, arguments)
        invocation.caller = caller
        invocation.open_failures.extend(failures)
        watching = opening_failures.set(invocation.open_failures)
        try:
            try:
                invocation.parent_context = (
                    otel_context.get_current() if parent is None else cls.resolve_parent(parent)
                )
                invocation._open(call_id, make_current)
            except Exception as exc:
                report_internal_error("tool start", exc)
                invocation.ensure_span()
            invocation.decision = get_runtime().check_tool(invocation)
        except Intervention as stop:
            invocation.decision = stop.decision or invocation.decision
            invocation._stop(stop)
            raise
        except Exception as exc:  # the observers could not be asked: the gate was skipped
            report_internal_error("tool observers", exc)
            refusal = invocation._refusal(exc)
            if refusal is not None:
                invocation.decision = refusal.decision
                invocation._stop(refusal)
                raise refusal from None
        finally:
            opening_failures.reset(watching)
        return invocation

    @classmethod
    def refused_upstream(
        cls,
        spec: ToolSpec,
        arguments: Any,
        call_id: str | None,
        parent: Invocation | otel_context.Context | None,
    ) -> ToolInvocation:
        """The span of a call that a framework's own check refused before our gate was
        asked (nothing will run, so the gate is not asked: no approval for a dead call).
        The caller records the refusal and ends it (`finish` with the `Intervention`)."""
        invocation = cls(spec, arguments)
        try:
            invocation.parent_context = Invocation.resolve_parent(parent)
            invocation._open(call_id, make_current=False)
        except Exception as exc:
            report_internal_error("tool start", exc)
            invocation.ensure_span()
        return invocation

    @classmethod
    def unchecked(cls, spec: ToolSpec, exc: BaseException) -> ToolInvocation:
        """When even `start` failed: a refusal under fail-closed (on a span of its own),
        else an invocation that records nothing, so that the tool runs as it would."""
        invocation = cls.__new__(cls)
        invocation.spec, invocation.arguments, invocation.open_failures = spec, None, [exc]
        invocation.started = time.monotonic()
        stop = invocation._refusal(exc)
        if stop is not None:
            invocation.decision = stop.decision
            invocation._stop(stop)
            raise stop from None
        invocation._finished = True
        return invocation

    def _open(self, explicit_call_id: str | None, make_current: bool = True) -> None:
        runtime = get_runtime()
        spec = self.spec
        attributes = dict(spec.attributes)
        if self.arguments is not None:  # content-free: what a crashed run's view shows
            attributes[sc.TOOL_CALL_ARGUMENTS_SUMMARY] = summarize(self.arguments)
        links: Sequence[Link] = ()
        reasoning: str | None = None
        try:
            links, reasoning = self._decision_path(attributes, explicit_call_id)
        except Exception as exc:
            report_internal_error("tool decision path", exc)
        # `start_span` and `make_current`, in line: every tool call's path
        self.span = span = runtime.tracer.start_span(
            f"execute_tool {spec.name}",
            context=self.parent_context,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            links=links,
        )
        if runtime.settings.capture_content.enabled:
            content: dict[str, Any] = {}
            if self.arguments is not None:
                content[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = self.arguments
            if reasoning:
                content[sc.DECISION_REASONING] = reasoning
            capture_content(span, runtime, content)
        if make_current:
            self._token = otel_context.attach(self.child_context())

    def _decision_path(
        self, attributes: dict[str, AttributeValue], explicit_call_id: str | None
    ) -> tuple[Sequence[Link], str | None]:
        """Who asked for this call and why, and which attempt it is: onto `attributes`;
        returns the link to the requesting LLM span and the reasoning."""
        spec = self.spec
        ctx = self.parent_context or otel_context.get_current()
        self.call_id = explicit_call_id or _explicit_call_id(ctx)
        frame = current_agent(ctx)
        self.agent_name = frame.name if frame is not None else None
        attributes.update(run_id_attributes(ctx))
        links: Sequence[Link] = ()
        reasoning: str | None = None
        caller = self.caller
        self.ledger = ledger = current_ledger(ctx) if caller is None else caller.ledger
        if ledger is not None:
            arguments_key = canonical_arguments(self.arguments)
            if caller is None:
                self.request, self.match = ledger.requests.claim(
                    self.call_id, spec.name, arguments_key
                )
                self.fingerprint = fingerprint(spec.name, arguments_key)
                self.attempt = ledger.attempts.next(self.fingerprint)
                ledger.totals.add_tool_call(self.attempt)
            else:  # served here: the caller counted the call (and its attempt) already
                self.fingerprint = fingerprint(spec.name, arguments_key)
                self.attempt = caller.attempt
            attributes[sc.TOOL_CALL_FINGERPRINT] = self.fingerprint
        if caller is not None:
            self.call_id = self.call_id or caller.call_id  # one call, one id
        # Without a run or a trace to count in, every call is a first attempt.
        attributes[sc.TOOL_CALL_ATTEMPT] = self.attempt
        if self.request is not None:
            request = self.request
            self.call_id = self.call_id or request.call_id
            attributes[sc.DECISION_MATCH] = self.match or "name"
            if request.reasoning_source:
                attributes[sc.DECISION_REASONING_SOURCE] = request.reasoning_source
            reasoning = request.reasoning
            if request.requested_by is not None and request.requested_by.is_valid:
                links = [Link(request.requested_by)]
        if self.call_id:
            attributes[sc.GEN_AI_TOOL_CALL_ID] = self.call_id
        if self.agent_name:
            attributes[sc.GEN_AI_AGENT_NAME] = self.agent_name
        return links, reasoning

    # -- failure paths: they use nothing that the normal path may have broken ------------

    def ensure_span(self) -> None:
        """A span with the tool's own attributes if opening it failed, so that what the
        gate decides still lands on a span (and in the audit log). Not made current."""
        if self.span is not INVALID_SPAN:
            return
        try:
            runtime = built_runtime()
            if runtime is not None:
                self.span = runtime.tracer.start_span(
                    f"execute_tool {self.spec.name}",
                    context=self.parent_context,
                    kind=SpanKind.INTERNAL,
                    attributes=self.spec.attributes,
                )
        except Exception as exc:
            report_internal_error("tool bare span", exc)

    def _refusal(self, exc: BaseException) -> Intervention | None:
        """What fail-closed observers say when the call could not be checked."""
        try:
            runtime = built_runtime()
            for observer in runtime.observers if runtime is not None else ():
                stop = observer.refusal(self, exc)
                if stop is not None:
                    return stop
        except Exception as internal:
            report_internal_error("tool refusal", internal)
        return None

    def _stop(self, stop: BaseException) -> None:
        """Record a stop and end the span; whatever fails here, the stop still stands."""
        try:
            self.finish(stop)
        except Exception as internal:
            report_internal_error("tool stop", internal)
            self._end_quietly()

    def note_failed_result(self) -> None:
        """The tool answered with an error result instead of raising (an MCP `isError`):
        a failure of the call all the same, for the run totals and the retry limits."""
        if self.caller is None and self.ledger is not None and self.fingerprint is not None:
            self.ledger.attempts.note_failure(self.fingerprint)
            self.ledger.totals.add_tool_failure()

    @property
    def verdict(self) -> str | None:
        return self.decision.verdict if self.decision is not None else None

    @property
    def contract_status(self) -> str | None:
        return self.decision.contract_status if self.decision is not None else None

    def _end_quietly(self) -> None:
        self.stop_current(self._token)
        self._token = None
        self.abandon()

    def finish(self, exc: BaseException | None, result: Any = None) -> None:
        """Record the outcome and end the span. Safe to call more than once."""
        if self._finished:
            return
        self.exception, self.result = exc, result
        try:
            self.complete(exc)
        finally:
            self._detach()

    def _record_end(self, exc: BaseException | None) -> None:
        runtime = get_runtime()
        if exc is not None:
            record_error(self.span, exc, runtime, self.error_name)
            if self.caller is None and self.ledger is not None and self.fingerprint is not None:
                # Policies and detectors count these; a refusal is not the tool failing.
                self.ledger.attempts.note_failure(self.fingerprint)
                if not isinstance(exc, Intervention):
                    self.ledger.totals.add_tool_failure()
        elif self.result is not None:
            capture_content(self.span, runtime, {sc.GEN_AI_TOOL_CALL_RESULT: self.result})
        runtime.deliver(runtime.hooks.tool_end, self)
        metric_attributes: dict[str, AttributeValue] = {sc.GEN_AI_TOOL_NAME: self.spec.name}
        if self.agent_name:
            metric_attributes[sc.GEN_AI_AGENT_NAME] = self.agent_name
        if exc is not None:
            metric_attributes[sc.ERROR_TYPE] = self.error_name or error_type(exc)
        decision = self.decision
        if decision is not None and decision.verdict is not None:
            metric_attributes[sc.POLICY_VERDICT] = decision.verdict
        runtime.instruments.tool_calls.add(1, attribute_key(metric_attributes))
        runtime.instruments.tool_duration.record(
            time.monotonic() - self.started,
            {
                sc.GEN_AI_OPERATION_NAME: sc.GenAiOperationNameValues.EXECUTE_TOOL,
                sc.GEN_AI_TOOL_TYPE: self.spec.tool_type,
                **metric_attributes,
            },
            self.span,
        )

    def _detach(self) -> None:
        self.stop_current(self._token)
        self._token = None


class _ArgumentBinder:
    """Maps a call's positional and keyword arguments to parameter names, once per tool.

    Plain signatures (no `*args`, `**kwargs` or positional-only parameters) take a fast
    path: `inspect.Signature.bind` costs more than the span it annotates.
    """

    def __init__(self, func: Callable[..., Any]) -> None:
        try:
            signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):
            signature = None
        self.signature = signature
        parameters = list(signature.parameters.values()) if signature is not None else []
        # A function defined in a class and taking self/cls first is a method: skip it.
        self.skip_first = (
            bool(parameters)
            and parameters[0].name in ("self", "cls")
            and "." in getattr(func, "__qualname__", "")
        )
        plain = all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters)
        self.names: tuple[str, ...] | None = (
            tuple(p.name for p in parameters) if signature is not None and plain else None
        )

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.names is not None and len(args) <= len(self.names):
            arguments = dict(zip(self.names, args, strict=False))
            arguments.update(kwargs)
        elif self.signature is None:
            return {"args": list(args), **kwargs} if args else dict(kwargs)
        else:
            try:
                arguments = dict(self.signature.bind_partial(*args, **kwargs).arguments)
            except TypeError:  # the call itself is wrong; the function will raise it
                return {"args": list(args), **kwargs}
        if self.skip_first and args and arguments:
            arguments.pop(next(iter(arguments)))
        return arguments


@overload
def tool(func: F, /) -> F: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    tool_type: str = "function",
    tags: Sequence[str] = (),
    reversible: bool | None = None,
    impact_scope: str | None = None,
    **options: Any,
) -> Callable[[F], F]: ...


def tool(
    func: F | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    tool_type: str = "function",
    tags: Sequence[str] = (),
    reversible: bool | None = None,
    impact_scope: str | None = None,
    **options: Any,
) -> F | Callable[[F], F]:
    """Trace a function (sync or async, plain or method) as a tool: `execute_tool {name}`.

    Use bare (`@otel_agents.tool`) or with options (`@otel_agents.tool(name="grant",
    tags=["writes:iam"], reversible=False)`). Extra keyword options are kept on the tool
    spec for the policy engine and contracts.
    """

    def decorate(function: F) -> F:
        try:
            return _traced_tool(function)
        except Exception as exc:  # the tool still works, untraced and ungated
            report_internal_error("tool decorator", exc)
            return function

    def _traced_tool(function: F) -> F:
        spec = ToolSpec(
            name=name or function.__name__,
            description=description or _first_line(function.__doc__),
            tool_type=tool_type,
            tags=tuple(tags),
            reversible=reversible,
            impact_scope=impact_scope,
            options=dict(options),
        )
        if len(_registered_names) < _MAX_REGISTERED:
            _registered_names.add(spec.name)
        binder = _ArgumentBinder(function)

        def begin(args: tuple[Any, ...], kwargs: dict[str, Any]) -> ToolInvocation:
            try:
                arguments: Any = binder.bind(args, kwargs)
            except Exception as exc:
                report_internal_error("tool arguments", exc)
                return ToolInvocation.start(spec, None, failures=[exc])
            return ToolInvocation.start(spec, arguments)

        def unchecked(exc: BaseException) -> ToolInvocation:
            return ToolInvocation.unchecked(spec, exc)

        wrapped = wrap_callable(function, begin, unchecked)
        wrapped.__otel_agents_tool__ = spec  # type: ignore[attr-defined]
        return wrapped

    if func is not None:
        try:
            return decorate(func)
        except Exception as exc:
            report_internal_error("tool decorator", exc)
            return func
    return decorate


def _first_line(doc: str | None) -> str | None:
    if not doc:
        return None
    line = doc.strip().splitlines()[0].strip()
    return line or None
