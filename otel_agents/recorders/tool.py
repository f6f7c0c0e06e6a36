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
import contextvars
import inspect
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind
from opentelemetry.util.types import AttributeValue

from otel_agents import semconv as sc
from otel_agents.errors import Intervention
from otel_agents.ledger import (
    RequestedToolCall,
    RunLedger,
    canonical_arguments,
    current_ledger,
    fingerprint,
)
from otel_agents.recorders.common import (
    capture_content,
    current_agent,
    error_type,
    record_error,
    run_id_attributes,
    wrap_callable,
)
from otel_agents.runtime import get_runtime, report_internal_error

F = TypeVar("F", bound=Callable[..., Any])

_explicit_call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "otel_agents_tool_call_id", default=None
)


@contextlib.contextmanager
def tool_call_id(call_id: str | None) -> Iterator[None]:
    """Tell the next tool executed in this block which model tool call it answers.

    >>> with otel_agents.tool_call_id(call.id):
    ...     result = lookup_vendor(**json.loads(call.function.arguments))
    """
    token = _explicit_call_id.set(call_id)
    try:
        yield
    finally:
        _explicit_call_id.reset(token)


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
    # The span attributes every call of the tool starts with, built once.
    attributes: Mapping[str, AttributeValue] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", self.static_attributes())

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


class ToolInvocation:
    """One execution of a tool: its span, arguments, decision path and outcome."""

    def __init__(self, spec: ToolSpec, arguments: Any, span: Span = INVALID_SPAN) -> None:
        self.spec = spec
        self.arguments = arguments
        self.span = span
        self.call_id: str | None = None
        self.ledger: RunLedger | None = None
        self.request: RequestedToolCall | None = None
        self.match: str | None = None
        self.fingerprint: str | None = None
        self.attempt = 1
        self.agent_name: str | None = None
        self.result: Any = None
        self.exception: BaseException | None = None
        # Set by the policy gate: the verdict (for the tool-calls metric), the contract
        # check's outcome (for the silent-failure detector), and its own per-call state.
        self.verdict: str | None = None
        self.contract_status: str | None = None
        self.policy_state: Any = None
        self.finished = False
        self._started = time.monotonic()
        self._token: object | None = None
        self._call_id_token: contextvars.Token[str | None] | None = None

    @classmethod
    def start(cls, spec: ToolSpec, arguments: Any, call_id: str | None = None) -> ToolInvocation:
        """Open the `execute_tool` span and run the observers' pre-checks.

        Raises only an `Intervention` (a deliberate stop, such as a policy deny); the span
        then records it and is ended.
        """
        invocation = cls(spec, arguments)
        try:
            invocation._open(call_id)
        except Exception as exc:
            report_internal_error("tool start", exc)
            return invocation
        try:
            get_runtime().notify("on_tool_start", invocation)
        except Intervention as stop:
            invocation.finish(stop)
            raise
        return invocation

    def _open(self, explicit_call_id: str | None) -> None:
        runtime = get_runtime()
        spec = self.spec
        self.call_id = explicit_call_id or _explicit_call_id.get()
        frame = current_agent()
        self.agent_name = frame.name if frame is not None else None
        attributes = dict(spec.attributes)
        attributes.update(run_id_attributes())
        links: Sequence[Link] = ()
        reasoning: str | None = None
        self.ledger = ledger = current_ledger()
        if ledger is not None:
            arguments_key = canonical_arguments(self.arguments)
            self.request, self.match = ledger.claim_requested_call(
                self.call_id, spec.name, arguments_key
            )
            self.fingerprint = fingerprint(spec.name, arguments_key)
            self.attempt = ledger.next_attempt(self.fingerprint)
            attributes[sc.TOOL_CALL_FINGERPRINT] = self.fingerprint
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
        self.span = span = runtime.tracer.start_span(
            f"execute_tool {spec.name}", kind=SpanKind.INTERNAL, attributes=attributes, links=links
        )
        content: dict[str, Any] = {}
        if self.arguments is not None:
            content[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = self.arguments
        if reasoning:
            content[sc.DECISION_REASONING] = reasoning
        capture_content(span, runtime, content)
        self._token = otel_context.attach(trace.set_span_in_context(span))
        self._call_id_token = _explicit_call_id.set(None)  # nested tools answer no call id

    def finish(self, exc: BaseException | None, result: Any = None) -> None:
        """Record the outcome and end the span. Safe to call more than once."""
        if self.finished:
            return
        self.finished = True
        self.exception, self.result = exc, result
        try:
            self._record_outcome()
        except Exception as internal:
            report_internal_error("tool finish", internal)
        finally:
            self._detach()

    def _record_outcome(self) -> None:
        if self.span is INVALID_SPAN:
            return
        runtime = get_runtime()
        exc = self.exception
        if exc is not None:
            record_error(self.span, exc, runtime)
            if self.ledger is not None and self.fingerprint is not None:
                self.ledger.note_failure(self.fingerprint)  # policies and detectors count these
        elif self.result is not None:
            capture_content(self.span, runtime, {sc.GEN_AI_TOOL_CALL_RESULT: self.result})
        runtime.notify("on_tool_end", self)
        metric_attributes: dict[str, AttributeValue] = {sc.GEN_AI_TOOL_NAME: self.spec.name}
        if self.agent_name:
            metric_attributes[sc.GEN_AI_AGENT_NAME] = self.agent_name
        if exc is not None:
            metric_attributes[sc.ERROR_TYPE] = error_type(exc)
        if self.verdict is not None:
            metric_attributes[sc.POLICY_VERDICT] = self.verdict
        runtime.instruments.tool_calls.add(1, metric_attributes)
        runtime.instruments.tool_duration.record(
            time.monotonic() - self._started,
            {
                sc.GEN_AI_OPERATION_NAME: sc.GenAiOperationNameValues.EXECUTE_TOOL,
                **metric_attributes,
            },
        )
        self.span.end()

    def _detach(self) -> None:
        try:
            if self._call_id_token is not None:
                _explicit_call_id.reset(self._call_id_token)
            if self._token is not None:
                otel_context.detach(self._token)  # type: ignore[arg-type]
        except Exception as internal:
            report_internal_error("tool detach", internal)
        self._token = self._call_id_token = None


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
                arguments = None
            return ToolInvocation.start(spec, arguments)

        wrapped = wrap_callable(function, begin)
        wrapped.__otel_agents_tool__ = spec  # type: ignore[attr-defined]
        return wrapped

    if func is not None:
        return decorate(func)
    return decorate


def _first_line(doc: str | None) -> str | None:
    if not doc:
        return None
    line = doc.strip().splitlines()[0].strip()
    return line or None
