"""The OpenAI Agents SDK (`openai-agents`, module `agents`) on the decision path.

Three hooks, all undone by `unpatch()`:

- a `TracingProcessor` added beside the SDK's own (`add_trace_processor`: the SDK's export
  to OpenAI is left as the application configured it). It maps the SDK's trace and spans
  onto our invocations by the SDK's span ids: the trace is the run (`invoke_agent
  {workflow}`, owner of the run ledger, so a handoff's receiver stays in the same run),
  agent spans are `invoke_agent {agent}`, handoff spans are handoff boundaries, guardrail
  spans leave a policy verdict on the invocation they governed. Model calls are recorded
  once, by our `openai` adapter: while the SDK's response/generation span is open, its agent's
  context is made current (attached in `on_span_start`, detached in `on_span_end`, exactly
  as the SDK scopes its own current span), so the `chat` span nests under the agent;
- the SDK's function-tool invoker, wrapped so that every function tool runs inside
  `handler.start_tool`: an `execute_tool` span with the call id and the decision path, and
  our policy gate before the body runs. A refused call never runs; the model gets a tool
  error output saying why, where the SDK puts a failing tool's error text;
- the SDK's `execute_handoffs`, wrapped (the kit's `Patcher`) so that the handoff boundary
  also says what passed: the handoff's input data (content-free summary; the value itself
  only with content capture on, scrubbed), and the input filter as the receiver's check
  with what it did to the conversation items. The SDK's handoff span ends inside that
  function, so our processor leaves it to the wrapper, which records once it returns.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from otel_agents import semconv as sc
from otel_agents.adapters.kit import Patcher
from otel_agents.core import handler
from otel_agents.core.agent import AgentRun, AgentSpec
from otel_agents.core.invocation import Invocation, Invocations
from otel_agents.core.ledger import current_ledger
from otel_agents.core.tool import ToolInvocation, ToolSpec
from otel_agents.errors import Intervention
from otel_agents.runtime import get_runtime, report_internal_error

_TOOL_INVOKER = "_invoke_function_tool_with_metadata"
_TOOL_EXECUTION_MODULE = "agents.run_internal.tool_execution"
_UNKNOWN_AGENT = "unknown"


class AgentsSpanError(Exception):
    """An error the SDK recorded on one of its spans, carried onto ours."""


class ToolFailedInSdk(Exception):
    """A function tool failed and the SDK turned the exception into error text."""


class _SpanTree:
    """Open SDK spans' parents (span id -> parent span id or trace id), bounded."""

    def __init__(self, limit: int = 10_000) -> None:
        self._parents: OrderedDict[str, str] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def add(self, span_id: str, parent_key: str) -> None:
        with self._lock:
            self._parents[span_id] = parent_key
            while len(self._parents) > self._limit:
                self._parents.popitem(last=False)

    def parent(self, key: str) -> str | None:
        with self._lock:
            return self._parents.get(key)

    def remove(self, span_id: str) -> None:
        with self._lock:
            self._parents.pop(span_id, None)


def _workflow_spec(trace: Any) -> AgentSpec:
    """The run root for an SDK trace: named after its workflow (`trace("...")`, else the
    SDK's "Agent workflow"), with the conventions' `gen_ai.workflow.name`, and the trace's
    `group_id` (the SDK's conversation or thread id) as `gen_ai.conversation.id`."""
    workflow = str(trace.name or "Agent workflow")
    group_id = getattr(trace, "group_id", None)
    return AgentSpec(
        name=workflow,
        conversation_id=str(group_id) if group_id else None,
        attributes={sc.GEN_AI_WORKFLOW_NAME: workflow},
    )


class OtelAgentsProcessor:
    """The SDK's `TracingProcessor` interface (duck-typed, so that importing this module
    does not import the SDK). Every callback is a boundary: it never raises."""

    def __init__(self) -> None:
        self.active = True
        self.invocations: Invocations[Invocation] = Invocations()
        self.tree = _SpanTree()
        self._tokens: dict[str, object] = {}

    # -- lookups ---------------------------------------------------------------------

    def nearest(self, key: str | None) -> Invocation | None:
        """Our invocation for an SDK span (or trace) id, else for its nearest ancestor."""
        for _ in range(1_000):  # a bound, against a cycle in ids we did not make
            if key is None:
                return None
            found = self.invocations.get(key)
            if found is not None:
                return found
            key = self.tree.parent(key)
        return None

    def parent_of(self, span: Any) -> Invocation | None:
        return self.nearest(span.parent_id or span.trace_id)

    # -- traces: the run ------------------------------------------------------------

    def on_trace_start(self, trace: Any) -> None:
        if not self.active:
            return
        try:
            run = handler.start_agent(_workflow_spec(trace))
            self.invocations.add(trace.trace_id, run)
        except Exception as exc:
            report_internal_error("openai-agents trace start", exc)

    def on_trace_end(self, trace: Any) -> None:
        try:
            run = self.invocations.pop(trace.trace_id)
            if isinstance(run, AgentRun):
                handler.stop_agent(run)
        except Exception as exc:
            report_internal_error("openai-agents trace end", exc)

    # -- spans -------------------------------------------------------------------------

    def on_span_start(self, span: Any) -> None:
        if not self.active:
            return
        try:
            self.tree.add(span.span_id, span.parent_id or span.trace_id)
            kind = type(span.span_data).__name__
            if kind == "AgentSpanData":
                spec = AgentSpec(name=str(span.span_data.name))
                run = handler.start_agent(spec, parent=self.parent_of(span))
                self.invocations.add(span.span_id, run)
            elif kind in ("ResponseSpanData", "GenerationSpanData"):
                self._enter_model_call(span)
        except Exception as exc:
            report_internal_error("openai-agents span start", exc)

    def on_span_end(self, span: Any) -> None:
        try:
            kind = type(span.span_data).__name__
            if kind == "AgentSpanData":
                self._end_agent(span)
            elif kind in ("ResponseSpanData", "GenerationSpanData"):
                Invocation.stop_current(self._tokens.pop(span.span_id, None))
            elif kind == "HandoffSpanData" and self.active:
                self._end_handoff_span(span)
            elif kind == "GuardrailSpanData" and self.active:
                self._record_guardrail(span)
        except Exception as exc:
            report_internal_error("openai-agents span end", exc)
        finally:
            self.tree.remove(span.span_id)

    def _enter_model_call(self, span: Any) -> None:
        """Make the agent current for the model call the SDK makes inside this span, so
        the `openai` adapter's one `chat` span nests under it. The SDK opens these spans
        with `with` (start and end in one context), as our attach/detach pair needs."""
        agent = self.parent_of(span)
        if agent is not None:
            self._tokens[span.span_id] = agent.make_current()

    def _end_agent(self, span: Any) -> None:
        run = self.invocations.pop(span.span_id)
        if not isinstance(run, AgentRun):
            return
        error = span.error
        if error:
            handler.fail_agent(run, AgentsSpanError(str(error.get("message", error))))
        else:
            handler.stop_agent(run)

    def _end_handoff_span(self, span: Any) -> None:
        """Inside our wrapper of the SDK's handoff execution, leave the span to it: what
        passed and what the input filter did are known only once that returns."""
        pending = _pending_handoff.get()
        if pending is not None and pending.span is None:
            pending.span, pending.parent = span, self.parent_of(span)
        else:
            self.record_handoff(span, self.parent_of(span))

    def record_handoff(
        self,
        span: Any,
        parent: Invocation | None,
        passed: HandoffPassage | None = None,
        failure: BaseException | None = None,
    ) -> None:
        """The handoff the SDK made (accepted when it named a receiver: the receiver is
        only set once the handoff went through), with what passed and the input filter as
        the receiver's check when known; and one rejected boundary per further handoff the
        model asked for in the same turn (the SDK takes the first, ignores the rest and
        says so in the span's error)."""
        data, error = span.span_data, span.error or {}
        source = str(data.from_agent or _UNKNOWN_AGENT)
        payload = passed.payload if passed is not None else None
        boundary = handler.start_handoff(
            source, str(data.to_agent or _UNKNOWN_AGENT), payload, parent=parent
        )
        check = passed.filter_check(failure) if passed is not None else None
        if check is not None:
            boundary.check(*check)
        if failure is not None:
            handler.fail_handoff(boundary, failure)
        elif data.to_agent is None:
            handler.stop_handoff(boundary, False, "the handoff did not complete")
        else:
            handler.stop_handoff(boundary, True)
        requested = (error.get("data") or {}).get("requested_agents") or []
        for ignored in requested[1:]:
            extra = handler.start_handoff(source, str(ignored), None, parent=parent)
            handler.stop_handoff(extra, False, str(error.get("message") or "ignored"))

    def _record_guardrail(self, span: Any) -> None:
        """An agent's input or output guardrail: its verdict on the agent it governed."""
        governed = self.parent_of(span)
        if governed is not None:
            data = span.span_data
            tripped = bool(data.triggered)
            reason = "guardrail tripwire triggered" if tripped else None
            record_verdicts(governed, [GuardrailVerdict(str(data.name), tripped, reason)])

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


# -- guardrail verdicts ----------------------------------------------------------------------


class GuardrailRefused(Intervention):
    """A guardrail of the SDK stopped a tool call or its output (the SDK's decision; this
    only records it on our span, never raised into the SDK)."""


@dataclass(frozen=True)
class GuardrailVerdict:
    """One guardrail evaluation: its name, whether it tripped, and why."""

    name: str
    tripped: bool
    reason: str | None = None

    @classmethod
    def of_tool_result(cls, result: Any) -> GuardrailVerdict:
        """From the SDK's `ToolInputGuardrailResult` / `ToolOutputGuardrailResult`: a
        guardrail that rejected the content or raised its tripwire tripped."""
        behavior = result.output.behavior
        kind = behavior.get("type", "allow")
        reason = None
        if kind == "reject_content":
            reason = f"rejected: {behavior.get('message', '')}"
        elif kind != "allow":
            reason = "tool guardrail tripwire triggered"
        return cls(str(result.guardrail.get_name()), kind != "allow", reason)


def record_verdicts(governed: Invocation, verdicts: list[GuardrailVerdict]) -> None:
    """On the invocation a guardrail governed: an event per evaluation, and for one that
    tripped, the policy verdict attributes (deny, rule = the guardrail's name) and a
    denial in the run totals (the counter the policy gate's refusals go to)."""
    for verdict in verdicts:
        value = sc.PolicyVerdictValues.DENY if verdict.tripped else sc.PolicyVerdictValues.ALLOW
        event = {sc.POLICY_RULE: verdict.name, sc.POLICY_VERDICT: value}
        governed.span.add_event(
            sc.EVENT_GUARDRAIL, {**event, sc.GUARDRAIL_TRIPPED: verdict.tripped}
        )
        if not verdict.tripped:
            continue
        ledger = current_ledger(governed.child_context())
        if ledger is not None:
            ledger.totals.add_denial()
        reason = get_runtime().capturer.scrub(verdict.reason or "guardrail tripped")
        governed.span.set_attributes(
            {**event, sc.POLICY_REASON: reason, sc.GUARDRAIL_TRIPPED: True}
        )


# -- handoffs ------------------------------------------------------------------------------


@dataclass
class _PendingHandoff:
    """The SDK's handoff span, left by `on_span_end` for our wrapper to record."""

    span: Any = None
    parent: Invocation | None = None


_pending_handoff: ContextVar[_PendingHandoff | None] = ContextVar(
    "otel_agents_openai_agents_handoff", default=None
)


@dataclass(frozen=True)
class HandoffPassage:
    """What crossed a handoff: the handoff's input data (the arguments the model gave the
    transfer tool, when the handoff declares an `input_type`), the conversation items before
    and after the input filter, and the filter's name."""

    payload: Any
    filter_name: str | None
    items_before: int
    items_after: int
    items_changed: bool
    filter_failed: bool = False  # the handoff failed inside the filter

    def filter_check(self, failure: BaseException | None) -> tuple[str, bool, str | None] | None:
        """The filter as the receiver's check (name, passed, detail), naming what it did
        to the conversation; None without a filter, or when the handoff failed before it."""
        label = f"input_filter {self.filter_name}"
        if self.filter_name is None or (failure is not None and not self.filter_failed):
            return None
        if failure is not None:
            return label, False, f"{type(failure).__name__}: {failure}"
        if self.items_after != self.items_before:
            effect = f"passed {self.items_after} of {self.items_before} items"
        elif self.items_changed:
            effect = f"changed items, passed {self.items_after}"
        else:
            effect = f"passed all {self.items_after} items unchanged"
        return f"{label}: {effect}", True, None


def _handoff_wrapper(processor: OtelAgentsProcessor) -> Callable[..., Any]:
    """Our wrapper (wrapt's signature) of the SDK's `execute_handoffs`."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not processor.active:
            return wrapped(*args, **kwargs)
        return _traced_handoffs(processor, wrapped, args, kwargs)

    return wrapper


async def _traced_handoffs(
    processor: OtelAgentsProcessor, wrapped: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    pending = _PendingHandoff()
    token = _pending_handoff.set(pending)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        _record_pending(processor, pending, kwargs, None, exc)
        raise
    finally:
        _pending_handoff.reset(token)
    _record_pending(processor, pending, kwargs, result, None)
    return result


def _record_pending(
    processor: OtelAgentsProcessor,
    pending: _PendingHandoff,
    kwargs: dict[str, Any],
    result: Any,
    failure: BaseException | None,
) -> None:
    if pending.span is None:
        return  # the SDK failed before it opened its handoff span: no handoff to show
    try:
        passed = _passage(kwargs, result, failure)
    except Exception as exc:
        report_internal_error("openai-agents handoff inputs", exc)
        passed = None
    try:
        processor.record_handoff(pending.span, pending.parent, passed, failure)
    except Exception as exc:
        report_internal_error("openai-agents handoff", exc)


def _passage(kwargs: dict[str, Any], result: Any, failure: BaseException | None) -> HandoffPassage:
    """Read what passed from `execute_handoffs`' arguments and result. The SDK appends the
    handoff's own output item to the `new_step_items` list it was given, so that list, read
    after the call, is everything on offer; the result holds what the receiver gets."""
    taken = kwargs["run_handoffs"][0]
    before = _items(
        kwargs.get("original_input"), kwargs.get("pre_step_items"), kwargs.get("new_step_items")
    )
    after = before
    if result is not None:
        after = _items(result.original_input, result.pre_step_items, result.new_step_items)
    input_filter = taken.handoff.input_filter
    if input_filter is None:
        input_filter = getattr(kwargs.get("run_config"), "handoff_input_filter", None)
    if result is not None and getattr(result, "handoff_input_filtered", True) is False:
        input_filter = None  # the SDK did not run it (a server-managed conversation)
    arguments = _decoded(getattr(taken.tool_call, "arguments", "") or "")
    return HandoffPassage(
        payload=arguments or None,
        filter_name=_callable_name(input_filter) if input_filter is not None else None,
        items_before=len(before),
        items_after=len(after),
        items_changed=not _same_items(before, after),
        filter_failed=failure is not None and _raised_in(failure, input_filter),
    )


def _raised_in(failure: BaseException, function: Any) -> bool:
    """Whether `failure` was raised inside `function` (a plain function or method; a
    callable object's `__call__`): a frame of its code is in the traceback."""
    target = getattr(function, "__func__", function)
    call = vars(type(target)).get("__call__")
    code = getattr(target, "__code__", None) or getattr(call, "__code__", None)
    traceback = failure.__traceback__
    while traceback is not None and code is not None:
        if traceback.tb_frame.f_code is code:
            return True
        traceback = traceback.tb_next
    return False


def _items(history: Any, pre_step: Any, new_step: Any) -> list[Any]:
    """The conversation items of a handoff's input, in order (a string input is one)."""
    items: list[Any] = [history] if isinstance(history, str) else list(history or ())
    return items + list(pre_step or ()) + list(new_step or ())


def _same_items(before: list[Any], after: list[Any]) -> bool:
    """The same item objects in the same order (a filter builds new lists, and new items
    where it rewrites one)."""
    return len(before) == len(after) and all(a is b for a, b in zip(before, after, strict=True))


def _callable_name(function: Any) -> str:
    return str(getattr(function, "__qualname__", None) or type(function).__name__)


# -- function tools ------------------------------------------------------------------------

Invoker = Callable[..., Awaitable[Any]]


def _gated_invoker(original: Invoker, processor: OtelAgentsProcessor) -> Invoker:
    async def invoke(*, function_tool: Any, context: Any, arguments: str) -> Any:
        if not processor.active:
            return await original(function_tool=function_tool, context=context, arguments=arguments)
        return await _run_tool(original, processor, function_tool, context, arguments)

    invoke.__otel_agents_original__ = original  # type: ignore[attr-defined]
    return invoke


async def _run_tool(
    original: Invoker,
    processor: OtelAgentsProcessor,
    function_tool: Any,
    context: Any,
    arguments: str,
) -> Any:
    """One function tool call inside `handler.start_tool`; a refused call does not run."""
    import agents.tracing as sdk_tracing

    sdk_span = None
    try:
        sdk_span = sdk_tracing.get_current_span()  # the SDK's function span
        parent = processor.nearest(sdk_span.span_id) if sdk_span is not None else None
        call_id = getattr(context, "tool_call_id", None)
        tool = handler.start_tool(_spec(function_tool), _decoded(arguments), call_id, parent)
    except Intervention as stop:
        return _refused(stop)
    except Exception as exc:
        report_internal_error("openai-agents tool start", exc)
        return await original(function_tool=function_tool, context=context, arguments=arguments)
    token: object | None = None
    try:
        if sdk_span is not None:
            processor.invocations.add(sdk_span.span_id, tool)  # agents run as tools nest in it
        token = tool.make_current()
        _record_input_verdicts(tool, context)
    except Exception as exc:  # the tool still runs, its span outside the context
        report_internal_error("openai-agents tool context", exc)
    try:
        result = await original(function_tool=function_tool, context=context, arguments=arguments)
    except BaseException as exc:
        handler.fail_tool(tool, exc)
        raise
    finally:
        Invocation.stop_current(token)
        if sdk_span is not None:
            processor.invocations.pop(sdk_span.span_id)
    output = getattr(result, "output", result)
    if getattr(result, "is_sdk_generated_error", False):
        # The SDK caught the tool's exception and answers the model with error text: for
        # us the call failed (retry counts, failure totals), though nothing was raised.
        handler.fail_tool(tool, ToolFailedInSdk(str(output)))
    elif _tool_guardrails_wrapped and getattr(function_tool, "tool_output_guardrails", None):
        # Its output guardrails run next, in this task: they end the span with their verdict.
        _held_tool.set(_HeldTool(tool, context, output))
    else:
        handler.stop_tool(tool, output)
    return result


def _spec(function_tool: Any) -> ToolSpec:
    return ToolSpec(name=str(function_tool.name), description=function_tool.description)


# -- tool guardrails -----------------------------------------------------------------------
# The SDK runs a function tool's input guardrails before our invoker and its output
# guardrails after it, in the same task. Each wrapper runs them with a results list of its
# own (so concurrent calls sharing the SDK's list cannot be told apart wrongly), copies
# the results into the SDK's list and puts the verdicts on the call's `execute_tool` span:
# allowed inputs through a context variable the invoker reads, a refused call on a span
# of its own (the tool never runs), outputs on the span the invoker held open for them.


@dataclass
class _HeldTool:
    """A call that ran, its span held open until the tool's output guardrails decide."""

    tool: ToolInvocation
    context: Any  # the SDK's ToolContext of the call: the output guardrails get the same
    output: Any


_held_tool: ContextVar[_HeldTool | None] = ContextVar("otel_agents_held_tool", default=None)
_input_verdicts: ContextVar[tuple[Any, list[GuardrailVerdict]] | None] = ContextVar(
    "otel_agents_tool_input_verdicts", default=None
)
_INPUT_RESULTS = "tool_input_guardrail_results"
_OUTPUT_RESULTS = "tool_output_guardrail_results"


def _record_input_verdicts(tool: ToolInvocation, context: Any) -> None:
    found = _input_verdicts.get()
    if found is not None and found[0] is context:
        _input_verdicts.set(None)
        record_verdicts(tool, found[1])


def _tool_input_wrapper(processor: OtelAgentsProcessor) -> Callable[..., Any]:
    """Our wrapper (wrapt's signature) of the SDK's `_execute_tool_input_guardrails`."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        guarded = getattr(kwargs.get("func_tool"), "tool_input_guardrails", None)
        if not processor.active or not guarded or not isinstance(kwargs.get(_INPUT_RESULTS), list):
            return wrapped(*args, **kwargs)
        return _guarded_tool_input(processor, wrapped, args, kwargs)

    return wrapper


async def _guarded_tool_input(
    processor: OtelAgentsProcessor, wrapped: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    ours: list[Any] = []
    try:
        message = await wrapped(*args, **{**kwargs, _INPUT_RESULTS: ours})
    except BaseException:
        _after_tool_input(processor, kwargs, ours, refused=True)
        raise
    finally:
        kwargs[_INPUT_RESULTS].extend(ours)
    _after_tool_input(processor, kwargs, ours, refused=message is not None)
    return message


def _after_tool_input(
    processor: OtelAgentsProcessor, kwargs: dict[str, Any], results: list[Any], refused: bool
) -> None:
    """Allowed: leave the verdicts for the call's span. Refused: the call never runs, so
    its span is made here, with the verdicts and the refusal."""
    import agents.tracing as sdk_tracing

    try:
        verdicts = [GuardrailVerdict.of_tool_result(result) for result in results]
        context = kwargs.get("tool_context")
        if not verdicts:
            return
        if not refused:
            _input_verdicts.set((context, verdicts))
            return
        if not any(verdict.tripped for verdict in verdicts):
            return  # stopped by an error (a guardrail's bug, a cancellation), not a verdict
        sdk_span = sdk_tracing.get_current_span()  # the SDK's function span
        parent = processor.nearest(sdk_span.span_id) if sdk_span is not None else None
        arguments = _decoded(getattr(context, "tool_arguments", "") or "")
        call_id = getattr(context, "tool_call_id", None)
        tool = handler.start_refused_tool(_spec(kwargs["func_tool"]), arguments, call_id, parent)
        record_verdicts(tool, verdicts)
        handler.fail_tool(tool, GuardrailRefused(_refusal_reason(verdicts)))
    except Exception as exc:
        report_internal_error("openai-agents tool input guardrails", exc)


def _tool_output_wrapper(processor: OtelAgentsProcessor) -> Callable[..., Any]:
    """Our wrapper (wrapt's signature) of the SDK's `_execute_tool_output_guardrails`."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        held = _held_tool.get()
        if held is None or held.context is not kwargs.get("tool_context"):
            return wrapped(*args, **kwargs)
        _held_tool.set(None)
        if not isinstance(kwargs.get(_OUTPUT_RESULTS), list):
            handler.stop_tool(held.tool, held.output)
            return wrapped(*args, **kwargs)
        return _guarded_tool_output(held, wrapped, args, kwargs)

    return wrapper


async def _guarded_tool_output(
    held: _HeldTool, wrapped: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    ours: list[Any] = []
    try:
        return await wrapped(*args, **{**kwargs, _OUTPUT_RESULTS: ours})
    finally:
        kwargs[_OUTPUT_RESULTS].extend(ours)
        _release(held, ours)


def _release(held: _HeldTool, results: list[Any]) -> None:
    """End the held span: refused when an output guardrail tripped, else as the tool
    returned."""
    try:
        verdicts = [GuardrailVerdict.of_tool_result(result) for result in results]
        record_verdicts(held.tool, verdicts)
        if any(verdict.tripped for verdict in verdicts):
            handler.fail_tool(held.tool, GuardrailRefused(_refusal_reason(verdicts)))
    except Exception as exc:
        report_internal_error("openai-agents tool output guardrails", exc)
    handler.stop_tool(held.tool, held.output)  # no-op when already ended


def _release_unclaimed() -> None:
    """A held span whose output guardrails never ran (the SDK returned early): end it."""
    held = _held_tool.get()
    if held is not None:
        _held_tool.set(None)
        handler.stop_tool(held.tool, held.output)


def _post_invoke_wrapper(processor: OtelAgentsProcessor) -> Callable[..., Any]:
    """Our wrapper of the SDK's per-call task body (invoker, then output guardrails), the
    backstop that ends a span held for output guardrails the SDK did not run."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return _with_backstop(wrapped, args, kwargs)

    return wrapper


async def _with_backstop(wrapped: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _release_unclaimed()


def _refusal_reason(verdicts: list[GuardrailVerdict]) -> str:
    tripped = [v for v in verdicts if v.tripped]
    if not tripped:
        return "a tool guardrail stopped the call"
    return f"tool guardrail {tripped[0].name}: {tripped[0].reason}"


def _decoded(arguments: str) -> Any:
    try:
        return json.loads(arguments) if arguments else {}
    except ValueError:
        return arguments


def _refused(stop: Intervention) -> Any:
    """What the model sees for a refused call: a tool error output that says why (the
    SDK's default text for a failing tool hides the reason and says "try again"), in the
    SDK's invocation result, marked as an SDK-generated error output."""
    from agents import tool as sdk_tool

    message = f"The tool was not run: {stop}"
    result_type = getattr(sdk_tool, "_FunctionToolInvocationResult", None)
    if result_type is None:
        return message
    return result_type(message, is_sdk_generated_error=True)


# -- patch / unpatch -----------------------------------------------------------------------

_HANDOFF_MODULE = "agents.run_internal.turn_resolution"
_TOOL_INPUT_GUARDRAILS = "_execute_tool_input_guardrails"
_TOOL_OUTPUT_GUARDRAILS = "_execute_tool_output_guardrails"
_TOOL_BATCH_EXECUTOR = "_FunctionToolBatchExecutor"
_TOOL_POST_INVOKE = "_invoke_tool_and_run_post_invoke"
_HANDOFF_EXECUTOR = "execute_handoffs"

_processor: OtelAgentsProcessor | None = None
_patched_module: ModuleType | None = None
_tool_guardrails_wrapped = False  # the invoker holds spans for output guardrails only then
_patcher = Patcher()


def patch(agents_module: ModuleType) -> None:
    """Add our processor (once per process: the SDK cannot remove one) and wrap the
    function-tool invoker."""
    global _processor, _patched_module
    import importlib

    from agents.tracing import add_trace_processor

    if _processor is None:
        _processor = OtelAgentsProcessor()
        add_trace_processor(_processor)  # type: ignore[arg-type]
    _processor.active = True
    execution = importlib.import_module(_TOOL_EXECUTION_MODULE)
    current = getattr(execution, _TOOL_INVOKER)
    if not hasattr(current, "__otel_agents_original__"):
        setattr(execution, _TOOL_INVOKER, _gated_invoker(current, _processor))
    _patched_module = execution
    try:
        handoffs = importlib.import_module(_HANDOFF_MODULE)
        _patcher.wrap(handoffs, _HANDOFF_EXECUTOR, _handoff_wrapper(_processor))
    except Exception as exc:  # handoffs are still recorded from the SDK's spans alone
        report_internal_error("openai-agents handoff patch", exc)
    _wrap_tool_guardrails(execution, _processor)


def _wrap_tool_guardrails(execution: ModuleType, processor: OtelAgentsProcessor) -> None:
    """The tool guardrail runners and, as the backstop for held spans, the per-call task
    body; all or none (a held span needs its backstop)."""
    executor = getattr(execution, _TOOL_BATCH_EXECUTOR, None)
    names = (_TOOL_INPUT_GUARDRAILS, _TOOL_OUTPUT_GUARDRAILS)
    if executor is None or not all(hasattr(execution, name) for name in names):
        return  # an SDK without tool guardrails (or laid out otherwise): not recorded
    global _tool_guardrails_wrapped
    try:
        _patcher.wrap(executor, _TOOL_POST_INVOKE, _post_invoke_wrapper(processor))
        _patcher.wrap(execution, _TOOL_INPUT_GUARDRAILS, _tool_input_wrapper(processor))
        _patcher.wrap(execution, _TOOL_OUTPUT_GUARDRAILS, _tool_output_wrapper(processor))
        _tool_guardrails_wrapped = True
    except Exception as exc:
        report_internal_error("openai-agents tool guardrail patch", exc)


def unpatch() -> None:
    global _patched_module, _tool_guardrails_wrapped
    if _processor is not None:
        _processor.active = False
    _tool_guardrails_wrapped = False
    _patcher.unwrap_all()
    execution = _patched_module
    if execution is not None:
        current = getattr(execution, _TOOL_INVOKER, None)
        original = getattr(current, "__otel_agents_original__", None)
        if original is not None:
            setattr(execution, _TOOL_INVOKER, original)
        _patched_module = None


def processor() -> OtelAgentsProcessor | None:
    """Our processor once patched, for `agents.set_trace_processors([...])` when an
    application wants the SDK's own export to OpenAI off (see docs/frameworks.md)."""
    return _processor
