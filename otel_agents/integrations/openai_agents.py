"""The OpenAI Agents SDK (`openai-agents`, module `agents`) on the decision path.

Two hooks, both undone by `unpatch()`:

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
  error output saying why, where the SDK puts a failing tool's error text.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

from otel_agents import semconv as sc
from otel_agents.core import handler
from otel_agents.core.agent import AgentRun, AgentSpec
from otel_agents.core.invocation import Invocation, Invocations
from otel_agents.core.ledger import current_ledger
from otel_agents.core.tool import ToolSpec
from otel_agents.errors import Intervention
from otel_agents.runtime import report_internal_error

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
            run = handler.start_agent(AgentSpec(name=str(trace.name or "Agent workflow")))
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
                self._record_handoff(span)
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

    def _record_handoff(self, span: Any) -> None:
        """The handoff the SDK made (accepted when it named a receiver: the receiver is
        only set once the handoff went through), and one rejected boundary per further
        handoff the model asked for in the same turn (the SDK takes the first, ignores the
        rest and says so in the span's error)."""
        data, error = span.span_data, span.error or {}
        source = str(data.from_agent or _UNKNOWN_AGENT)
        parent = self.parent_of(span)
        boundary = handler.start_handoff(
            source, str(data.to_agent or _UNKNOWN_AGENT), None, parent=parent
        )
        if data.to_agent is None:
            handler.stop_handoff(boundary, False, "the handoff did not complete")
        else:
            handler.stop_handoff(boundary, True)
        requested = (error.get("data") or {}).get("requested_agents") or []
        for ignored in requested[1:]:
            extra = handler.start_handoff(source, str(ignored), None, parent=parent)
            handler.stop_handoff(extra, False, str(error.get("message") or "ignored"))

    def _record_guardrail(self, span: Any) -> None:
        """The verdict lands on the invocation the guardrail governed (its agent): an
        event per guardrail, and when one trips, the policy verdict attributes (deny, rule
        = the guardrail's name)."""
        governed = self.parent_of(span)
        if governed is None:
            return
        data = span.span_data
        tripped = bool(data.triggered)
        verdict = sc.PolicyVerdictValues.DENY if tripped else sc.PolicyVerdictValues.ALLOW
        governed.span.add_event(
            sc.EVENT_GUARDRAIL,
            {
                sc.POLICY_RULE: str(data.name),
                sc.POLICY_VERDICT: verdict,
                sc.GUARDRAIL_TRIPPED: tripped,
            },
        )
        if tripped:
            ledger = current_ledger(governed.child_context())
            if ledger is not None:
                ledger.totals.add_denial()
            governed.span.set_attributes(
                {
                    sc.POLICY_VERDICT: verdict,
                    sc.POLICY_RULE: str(data.name),
                    sc.POLICY_REASON: "guardrail tripwire triggered",
                    sc.GUARDRAIL_TRIPPED: True,
                }
            )

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


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
        spec = ToolSpec(name=str(function_tool.name), description=function_tool.description)
        call_id = getattr(context, "tool_call_id", None)
        tool = handler.start_tool(spec, _decoded(arguments), call_id, parent=parent)
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
    else:
        handler.stop_tool(tool, output)
    return result


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

_processor: OtelAgentsProcessor | None = None
_patched_module: ModuleType | None = None


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


def unpatch() -> None:
    global _patched_module
    if _processor is not None:
        _processor.active = False
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
