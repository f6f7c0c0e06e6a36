"""One entry point for integrations: start, stop and fail invocations of every kind.

Named as `opentelemetry-util-genai`'s `TelemetryHandler` names them (`start_llm`,
`stop_llm`, `fail_llm`; here per kind: inference, tool, agent, handoff), so that a reader
of both feels at home. The kinds behind it:

| here | util-genai | span |
|---|---|---|
| `LLMCall` (`LLMRequest` in, `LLMResponse` out) | `LLMInvocation` | `chat {model}` (CLIENT) |
| `ToolInvocation` (`ToolSpec`, arguments) | `ToolCall` | `execute_tool {name}` |
| `AgentRun` (`AgentSpec`) | `AgentInvocation` | `invoke_agent {name}` |
| `Handoff` | (none upstream) | `handoff {to}` |

Every `start_*` takes `parent` (an invocation, a `Context`, or None for the current
context) and never makes the invocation current: callback-driven integrations keep the
returned object (or register it by id in an `Invocations`) and stop or fail it later, from
any context or thread. Code that wants children to nest by context calls
`make_current()` / `stop_current(token)` itself. Nothing here raises into the caller
except a policy's deliberate stop (`Intervention`) from `start_tool`.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context

from otel_agents.core.agent import AgentRun, AgentSpec
from otel_agents.core.handoff import Handoff
from otel_agents.core.inference import LLMCall, LLMRequest, LLMResponse
from otel_agents.core.invocation import Invocation
from otel_agents.core.tool import ToolInvocation, ToolSpec
from otel_agents.runtime import report_internal_error

Parent = Invocation | otel_context.Context | None


# -- inference -------------------------------------------------------------------------------


def start_inference(request: LLMRequest, parent: Parent = None) -> LLMCall | None:
    """None when an outer layer of ours already records this call (one span per call)."""
    return LLMCall.start(request, parent)


def stop_inference(call: LLMCall, response: LLMResponse | None) -> None:
    call.finish(response)


def fail_inference(call: LLMCall, error: BaseException) -> None:
    call.finish(None, error)


# -- tools -----------------------------------------------------------------------------------


def start_tool(
    spec: ToolSpec,
    arguments: Any,
    call_id: str | None = None,
    parent: Parent = None,
    caller: ToolInvocation | None = None,
) -> ToolInvocation:
    """Runs the policy gate: raises its `Intervention` when the call must not run.
    `caller`: the invocation of the same call this one serves in this process."""
    return ToolInvocation.start(
        spec, arguments, call_id, parent=parent, make_current=False, caller=caller
    )


def start_refused_tool(
    spec: ToolSpec, arguments: Any, call_id: str | None = None, parent: Parent = None
) -> ToolInvocation:
    """A call the framework refused itself (its guardrail): the span, without our gate;
    end it with `fail_tool(tool, intervention)`."""
    return ToolInvocation.refused_upstream(spec, arguments, call_id, parent)


def stop_tool(tool: ToolInvocation, result: Any = None) -> None:
    tool.finish(None, result)


def fail_tool(tool: ToolInvocation, error: BaseException) -> None:
    tool.finish(error)


# -- agents ----------------------------------------------------------------------------------


def start_agent(spec: AgentSpec, parent: Parent = None, run_id: str | None = None) -> AgentRun:
    """The first agent without a run above it in `parent` starts the run and its ledger
    (under `run_id` when given: a framework resuming a paused run keeps its id)."""
    return AgentRun.start(spec, parent=parent, make_current=False, run_id=run_id)


def stop_agent(run: AgentRun) -> None:
    run.finish()


def fail_agent(run: AgentRun, error: BaseException) -> None:
    run.finish(error)


# -- handoffs --------------------------------------------------------------------------------


def start_handoff(source: str, target: str, payload: Any, parent: Parent = None) -> Handoff:
    boundary = Handoff(source, target, payload)
    try:
        boundary.open(parent, make_current=False)
    except Exception as exc:
        report_internal_error("handoff start", exc)
    return boundary


def stop_handoff(
    boundary: Handoff, accepted: bool | None = None, reason: str | None = None
) -> None:
    """`accepted` None: accepted unless a check failed."""
    if accepted is True:
        boundary.accept(reason)
    elif accepted is False:
        boundary.reject(reason or "rejected")
    boundary.close()


def fail_handoff(boundary: Handoff, error: BaseException) -> None:
    boundary.close(error)


__all__ = [
    "fail_agent",
    "fail_handoff",
    "fail_inference",
    "fail_tool",
    "start_agent",
    "start_handoff",
    "start_inference",
    "start_tool",
    "stop_agent",
    "stop_handoff",
    "stop_inference",
    "stop_tool",
]
