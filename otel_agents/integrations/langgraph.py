"""LangGraph and LangChain (`langgraph` 1.x, `langchain-core` 1.x) on the decision path.

Four hooks, all undone by `unpatch()`:

- `BaseCallbackManager.__init__`: every callback manager LangChain builds gets our handler
  as an inheritable handler, so every run (graph, node, chat model, tool) reports to it. The
  handler runs inline (`run_inline`), in the caller's context, for sync and async runs. It
  maps LangChain's runs onto our invocations by `run_id` / `parent_run_id`:
  - the outermost graph run (no parent run) is the agent run: `invoke_agent {name}`,
    owner of the run ledger, carrying the run totals;
  - a run is an agent (`invoke_agent {name}`, nested when it has a parent) when it is a
    graph (a subgraph, a `create_react_agent` prebuilt agent: any `Pregel`),
    or the first run whose metadata names an agent (`add_node("review", review, metadata=
    {"gen_ai.agent.name": "reviewer"})`: LangChain passes node metadata down to everything
    the node runs, so only its first carrier counts). Other nodes and chains get no span:
    what runs in them nests under their nearest agent, and a node's own code runs with that
    agent's context attached (from the node's start to its end), so that what it calls
    outside LangChain (an `@otel_agents.tool`, an SDK client) is part of the run;
  - a chat model is recorded from `on_chat_model_start`/`on_llm_end` (`chat {model}`:
    model, tokens from `usage_metadata`, the tool calls it requested with their ids, cost
    where priced), unless its provider's client is one our adapters already trace (the
    `openai` and `anthropic` packages, under `langchain-openai`/`langchain-anthropic`): then
    the adapter records the one span and we only make the agent current around the call;
  - a `Command(goto=...)` out of a node, or a handoff tool's `Command(goto=...,
    graph=Command.PARENT)`, is a handoff boundary (from the agent, or the node in the root
    graph, to each target node), so the ping-pong detector sees back-and-forth;
  - `interrupt()` (`GraphInterrupt`) marks the agent spans it paused as waiting for a human
    (`otel_agents.approval.status` = `pending`, not an error); a later run on the same
    graph and `thread_id` (the resume) continues the same run id, marked
    `otel_agents.run.resumed`: in this process from memory, in any other from the run id
    we put in the run's metadata, which LangGraph keeps in its checkpoints.
- `Pregel.stream`/`astream` (which `invoke`/`ainvoke` call): each graph run gets a run id
  given up front, so the handler knows which chain runs are graphs.
- `BaseChatModel._generate_with_cache`/`_agenerate_with_cache`: the model call runs with
  its span (or, for a natively traced provider, its agent) current, exactly around the call.
- `BaseTool.run`/`arun`: every LangChain tool (`BaseTool`, `@tool`, in a `ToolNode` or not)
  runs inside `handler.start_tool` with the model's tool call id (the decision path), with
  its span current. The policy gate runs there, before the body, not in a callback:
  LangChain swallows a callback's exception unless the handler sets `raise_error`, and a
  tool raising an arbitrary exception makes `ToolNode` fail the whole graph by default. A
  refused call with a tool call id returns the error `ToolMessage` a failing tool gives the
  model (`status="error"`, saying why); called directly without one, the `Intervention` is
  raised, as for `@otel_agents.tool`.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import wrapt
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.outputs import LLMResult
from langgraph.errors import GraphBubbleUp, GraphInterrupt, ParentCommand
from langgraph.types import Command, Send
from opentelemetry import context as otel_context
from opentelemetry.util.types import AttributeValue

from otel_agents import semconv as sc
from otel_agents.core import handler
from otel_agents.core.agent import AgentRun, AgentSpec
from otel_agents.core.inference import LLMCall, LLMRequest, LLMResponse
from otel_agents.core.invocation import Invocation, Invocations
from otel_agents.core.requests import ToolCallRequest
from otel_agents.core.tool import ToolInvocation, ToolSpec
from otel_agents.errors import Intervention
from otel_agents.pricing import TokenUsage
from otel_agents.runtime import get_runtime, report_internal_error

AGENT_METADATA_KEY = sc.GEN_AI_AGENT_NAME
"""Node metadata that makes a node an agent of that name (`gen_ai.agent.name`)."""

_DEFAULT_RUN_NAME = "LangGraph"
# `ls_provider` of chat models whose client our adapters trace -> that adapter's name.
_NATIVE_PROVIDERS = {"openai": "openai", "azure": "openai", "anthropic": "anthropic"}
# LangChain's `ls_provider` -> the conventions' `gen_ai.provider.name`. Others are set as
# LangChain names them (a custom value, as the conventions allow).
_PROVIDER_NAMES = {
    "openai": sc.GenAiProviderNameValues.OPENAI,
    "azure": sc.GenAiProviderNameValues.AZURE_AI_OPENAI,
    "anthropic": sc.GenAiProviderNameValues.ANTHROPIC,
    "groq": sc.GenAiProviderNameValues.GROQ,
    "deepseek": sc.GenAiProviderNameValues.DEEPSEEK,
    "mistralai": sc.GenAiProviderNameValues.MISTRAL_AI,
    "xai": sc.GenAiProviderNameValues.X_AI,
    "perplexity": sc.GenAiProviderNameValues.PERPLEXITY,
    "google_genai": sc.GenAiProviderNameValues.GCP_GEMINI,
    "google_vertexai": sc.GenAiProviderNameValues.GCP_VERTEX_AI,
    "amazon_bedrock": sc.GenAiProviderNameValues.AWS_BEDROCK,
    "bedrock": sc.GenAiProviderNameValues.AWS_BEDROCK,
}
_RUNNING_TOOL_KEY = otel_context.create_key("otel_agents.langgraph.running_tool")


class ToolFailedInLangChain(Exception):
    """A tool failed and LangChain turned the exception into an error `ToolMessage`."""


@dataclass
class _Run:
    """What we keep about an open LangChain run."""

    parent: UUID | None
    root: UUID
    name: str
    node: str | None
    carries_agent_name: bool  # its metadata names an agent (maybe inherited)
    marked_agent: bool  # the first run down its line that carries it: the agent
    thread_id: str | None = None
    interrupted: bool = False


class _Bounded(OrderedDict[Any, Any]):
    """An insertion-ordered map that drops its oldest entries past `limit`."""

    def __init__(self, limit: int = 10_000) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        while len(self) > self.limit:
            self.popitem(last=False)


class OtelAgentsCallbackHandler(BaseCallbackHandler):
    """LangChain runs -> our invocations (see the module docstring). Never raises."""

    run_inline = True  # in the caller's context, also for async runs (no executor thread)
    raise_error = False

    def __init__(self) -> None:
        super().__init__()
        self.active = True
        self.invocations: Invocations[Invocation] = Invocations()
        self._runs = _Bounded()
        self._graph_runs = _Bounded()
        self._paused_threads = _Bounded()  # (graph, thread_id) -> a paused run's id
        self._node_tokens = _Bounded()  # a node's run id -> the token of its agent's context
        # Commands already recorded: the same object can end several nested runs. Kept by
        # reference (an id could be reused by the next command once this one is freed).
        self._handed_off: deque[Command[Any]] = deque(maxlen=64)
        self._lock = threading.Lock()

    # -- the run tree --------------------------------------------------------------------

    def _add_run(self, run_id: UUID, parent: UUID | None, name: str, metadata: Any) -> _Run:
        meta = metadata if isinstance(metadata, Mapping) else {}
        with self._lock:
            parent_run = self._runs.get(parent) if parent is not None else None
            marked = isinstance(meta.get(AGENT_METADATA_KEY), str)
            run = _Run(
                parent=parent,
                root=parent_run.root if parent_run is not None else run_id,
                name=name,
                node=meta.get("langgraph_node"),
                carries_agent_name=marked,
                marked_agent=marked
                and not (parent_run is not None and parent_run.carries_agent_name),
                thread_id=_thread_id(meta),
            )
            self._runs.put(run_id, run)
        return run

    def _run(self, run_id: UUID | None) -> _Run | None:
        with self._lock:
            return self._runs.get(run_id) if run_id is not None else None

    def _drop_run(self, run_id: UUID) -> _Run | None:
        with self._lock:
            run: _Run | None = self._runs.pop(run_id, None)
            return run

    def nearest(self, run_id: UUID | None) -> Invocation | None:
        """The invocation of `run_id`, else of its nearest ancestor."""
        for _ in range(1_000):  # a bound, against a cycle in ids we did not make
            if run_id is None:
                return None
            found = self.invocations.get(run_id)
            if found is not None:
                return found
            run = self._run(run_id)
            run_id = run.parent if run is not None else None
        return None

    def mark_graph_run(self, run_id: UUID) -> None:
        with self._lock:
            self._graph_runs.put(run_id, True)

    def _is_graph_run(self, run_id: UUID) -> bool:
        with self._lock:
            return self._graph_runs.pop(run_id, None) is not None

    # -- chains: runs, agents, handoffs, interrupts ---------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self.active:
            return
        try:
            name = str(kwargs.get("name") or _serialized_name(serialized) or _DEFAULT_RUN_NAME)
            run = self._add_run(run_id, parent_run_id, name, metadata)
            is_graph = self._is_graph_run(run_id)
            if not (is_graph or run.marked_agent):
                # A plain chain or node: what it runs nests under the nearest agent. A node's
                # own code runs with that agent current, so that what it calls outside
                # LangChain (an `@otel_agents.tool`, an SDK client) is part of the run too.
                agent = self.nearest(parent_run_id) if run.node == name else None
                if agent is not None:
                    context = agent.child_context()
                    tokens = self._node_tokens  # in line from the attach on: nothing can fail
                    tokens[run_id] = otel_context.attach(context)
                    if len(tokens) > tokens.limit:  # a node that never ended: forget it
                        tokens.popitem(last=False)
                return
            agent_name = name if is_graph else str((metadata or {})[AGENT_METADATA_KEY])
            if parent_run_id is None:
                self._start_root(run_id, run, agent_name, metadata or {})
            else:
                parent = self.nearest(parent_run_id)
                self.invocations.add(run_id, handler.start_agent(AgentSpec(agent_name), parent))
        except Exception as exc:
            report_internal_error("langgraph chain start", exc)

    def _start_root(
        self, run_id: UUID, run: _Run, name: str, metadata: Mapping[str, Any]
    ) -> None:
        """The outermost graph: the run, continuing the run an interrupt paused on its
        thread (known in this process, or named in the checkpoint a resume starts from)."""
        paused = None
        if run.thread_id is not None:
            with self._lock:
                paused = self._paused_threads.pop((name, run.thread_id), None)
        given = metadata.get(sc.RUN_ID)
        run_id_given = paused or (given if isinstance(given, str) else None)
        resumed = paused is not None or metadata.get(RESUMED_METADATA_KEY) is True
        spec = AgentSpec(name, conversation_id=run.thread_id)
        agent = handler.start_agent(spec, run_id=run_id_given)
        if resumed:
            agent.span.set_attribute(sc.RUN_RESUMED, True)
        self.invocations.add(run_id, agent)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        token = self._node_tokens.pop(run_id, None)  # a node's context: put back, in line
        if token is not None:
            try:
                otel_context.detach(token)
            except Exception as exc:  # ended in another context than it started in
                report_internal_error("langgraph node context", exc)
        try:
            if self.active:  # a command to the parent graph is recorded as it bubbles up
                local = [c for c in _commands(outputs) if c.graph is None]
                self._record_handoffs(run_id, local)
            self._end_chain(run_id, None)
        except Exception as exc:
            report_internal_error("langgraph chain end", exc)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        token = self._node_tokens.pop(run_id, None)  # a node's context: put back, in line
        if token is not None:
            try:
                otel_context.detach(token)
            except Exception as exc:  # ended in another context than it started in
                report_internal_error("langgraph node context", exc)
        try:
            if self.active and isinstance(error, ParentCommand):
                # As raised in the node; the parent graph re-raises it rewritten: skip those.
                raised = _commands(error.args[0] if error.args else None)
                self._record_handoffs(run_id, [c for c in raised if c.graph == Command.PARENT])
            if self.active and isinstance(error, GraphInterrupt):
                self._mark_interrupted(run_id)
            # Interrupts and parent commands are LangGraph's control flow, and a stream its
            # consumer closed early (GeneratorExit) was not a failure either.
            control_flow = isinstance(error, GraphBubbleUp | GeneratorExit)
            self._end_chain(run_id, None if control_flow else error)
        except Exception as exc:
            report_internal_error("langgraph chain error", exc)

    # LangGraph's own lifecycle events (1.2 and later), which its graph callback managers
    # send to their handlers, ours among them: an interrupt also pauses a graph at a static
    # breakpoint (`interrupt_before`/`interrupt_after`), where no node raises.

    def on_interrupt(self, event: Any) -> None:
        try:
            run_id = getattr(event, "run_id", None)
            if self.active and run_id is not None:
                self._mark_interrupted(run_id)
        except Exception as exc:
            report_internal_error("langgraph interrupt", exc)

    def on_resume(self, event: Any) -> None:
        """The resumed run was recognised when its graph started (by graph and thread)."""

    def _end_chain(self, run_id: UUID, error: BaseException | None) -> None:
        run = self._drop_run(run_id)
        agent = self.invocations.pop(run_id)
        if not isinstance(agent, AgentRun):
            return
        if error is not None:
            handler.fail_agent(agent, error)
        else:
            handler.stop_agent(agent)
        if run is not None and run.parent is None and run.interrupted and run.thread_id:
            with self._lock:  # the resume on this thread continues this run
                self._paused_threads.put((agent.name, run.thread_id), agent.run_id)

    def _mark_interrupted(self, run_id: UUID) -> None:
        """The agent the interrupt paused, and the run, wait for a human."""
        run = self._run(run_id)
        paused = self.nearest(run_id)
        root = self._run(run.root) if run is not None else None
        if root is not None:
            root.interrupted = True
        for invocation in (paused, self.invocations.get(run.root) if run else None):
            if isinstance(invocation, AgentRun) and not invocation.finished:
                invocation.span.set_attribute(sc.APPROVAL_STATUS, sc.ApprovalStatusValues.PENDING)

    def _record_handoffs(self, run_id: UUID, commands: list[Command[Any]]) -> None:
        """One accepted boundary per target of each command not seen yet (a command
        bubbles up through several runs)."""
        for command in commands:
            if any(seen is command for seen in self._handed_off):
                continue
            self._handed_off.append(command)
            targets = _targets(command.goto)
            if not targets:
                continue
            source_agent = self.nearest(run_id)
            source = self._handoff_source(run_id, source_agent)
            for target in targets:  # what passed: the command's state update
                boundary = handler.start_handoff(
                    source, target, command.update, parent=source_agent
                )
                handler.stop_handoff(boundary, True)

    def _handoff_source(self, run_id: UUID, agent: Invocation | None) -> str:
        """The nested agent that handed off, or in the root graph the node that did."""
        run = self._run(run_id)
        root_agent = self.invocations.get(run.root) if run is not None else None
        if isinstance(agent, AgentRun) and agent is not root_agent:
            return agent.name
        if run is not None and run.node:
            return run.node
        return agent.name if isinstance(agent, AgentRun) else "unknown"

    # -- chat models ----------------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self.active:
            return
        try:
            meta = metadata or {}
            self._add_run(run_id, parent_run_id, str(kwargs.get("name") or "chat"), None)
            if _natively_traced(meta.get("ls_provider")):
                return  # our client adapter records it; the agent is made current around it
            params = kwargs.get("invocation_params") or {}
            request = LLMRequest(
                provider=_provider_name(meta.get("ls_provider")),
                model=_model_name(meta, params),
                stream=bool(params.get("stream", False)),
                parameters=_request_parameters(meta),
            )
            if _capturing() and messages:
                _add_request_content(request, messages[0])
            call = handler.start_inference(request, parent=self.nearest(parent_run_id))
            if call is not None:
                self.invocations.add(run_id, call)
        except Exception as exc:
            report_internal_error("langgraph chat model start", exc)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._drop_run(run_id)
            call = self.invocations.pop(run_id)
            if isinstance(call, LLMCall):
                handler.stop_inference(call, _llm_response(response))
        except Exception as exc:
            report_internal_error("langgraph chat model end", exc)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._drop_run(run_id)
            call = self.invocations.pop(run_id)
            if isinstance(call, LLMCall):
                handler.fail_inference(call, error)
        except Exception as exc:
            report_internal_error("langgraph chat model error", exc)

    # -- tools: recorded by the `BaseTool.run` wrapper; here only their run ids -------------

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            self._add_run(run_id, parent_run_id, str(serialized.get("name") or "tool"), None)
            tool = otel_context.get_value(_RUNNING_TOOL_KEY)
            if isinstance(tool, ToolInvocation) and not tool.finished:
                self.invocations.add(run_id, tool)  # what the tool runs nests in it
        except Exception as exc:
            report_internal_error("langgraph tool start", exc)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._forget(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._forget(run_id)

    def _forget(self, run_id: UUID) -> None:
        try:
            self._drop_run(run_id)
            self.invocations.pop(run_id)
        except Exception as exc:
            report_internal_error("langgraph run end", exc)


# -- reading LangChain's objects --------------------------------------------------------------


RESUMED_METADATA_KEY = "otel_agents.run.resumed"


def _run_metadata(graph: Any, args: Any, kwargs: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """Our run id for a graph run, in its metadata: the paused run's, read back from the
    graph's last checkpoint, when the input resumes it (`Command(resume=...)` on a thread
    with a checkpointer); else a new one."""
    command = _argument(args, kwargs, 0, "input")
    configurable = config.get("configurable") or {}
    if (
        isinstance(command, Command)
        and command.resume is not None
        and getattr(graph, "checkpointer", None)
        and configurable.get("thread_id") is not None
    ):
        paused = graph.get_state(config).metadata or {}
        run_id = paused.get(sc.RUN_ID)
        if isinstance(run_id, str) and run_id:
            return {sc.RUN_ID: run_id, RESUMED_METADATA_KEY: True}
    return {sc.RUN_ID: uuid.uuid4().hex}  # as the run ledger names a run


def _thread_id(metadata: Mapping[str, Any]) -> str | None:
    value = metadata.get("thread_id")
    return str(value) if value is not None else None


def _serialized_name(serialized: Mapping[str, Any] | None) -> str | None:
    if not serialized:
        return None
    ids = serialized.get("id")
    return str(ids[-1]) if isinstance(ids, list) and ids else None


def _natively_traced(provider: Any) -> bool:
    from otel_agents import adapters

    adapter = _NATIVE_PROVIDERS.get(str(provider)) if provider else None
    return adapter is not None and adapter in adapters._patched


def _provider_name(ls_provider: Any) -> str:
    name = str(ls_provider or "langchain")
    return _PROVIDER_NAMES.get(name, name)


def _request_parameters(metadata: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """The request parameters LangChain reports for tracing (`ls_temperature`, ...)."""
    parameters: dict[str, AttributeValue] = {}
    temperature, max_tokens = metadata.get("ls_temperature"), metadata.get("ls_max_tokens")
    if isinstance(temperature, int | float) and not isinstance(temperature, bool):
        parameters[sc.GEN_AI_REQUEST_TEMPERATURE] = float(temperature)
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        parameters[sc.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    return parameters


def _model_name(metadata: Mapping[str, Any], params: Mapping[str, Any]) -> str | None:
    for value in (
        metadata.get("ls_model_name"),
        params.get("model"),
        params.get("model_name"),
        params.get("_type"),
    ):
        if value:
            return str(value)
    return None


def _llm_response(result: LLMResult) -> LLMResponse:
    response = LLMResponse()
    generation = result.generations[0][0] if result.generations and result.generations[0] else None
    message = getattr(generation, "message", None)
    if message is None:
        return response
    metadata = getattr(message, "response_metadata", None) or {}
    response.response_model = metadata.get("model_name") or metadata.get("model")
    finish = metadata.get("finish_reason") or metadata.get("stop_reason")
    response.finish_reasons = [str(finish)] if finish else []
    response.usage = _usage(getattr(message, "usage_metadata", None))
    response.text = message.text or None
    response.tool_calls = [
        ToolCallRequest(call_id=call.get("id"), name=call.get("name"), arguments=call.get("args"))
        for call in getattr(message, "tool_calls", None) or []
    ]
    if response.tool_calls and not response.finish_reasons:
        response.finish_reasons = ["tool_calls"]
    if _capturing():
        output = _message_json(message)
        if response.finish_reasons:
            output["finish_reason"] = response.finish_reasons[0]
        response.output_messages = [output]
    return response


# -- content, in the conventions' JSON shapes (only built when it will be captured) ----------

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def _capturing() -> bool:
    return get_runtime().settings.capture_content.enabled


def _add_request_content(request: LLMRequest, messages: Sequence[BaseMessage]) -> None:
    system = [m for m in messages if m.type == "system"]
    if system:
        request.system_instructions = [{"type": "text", "content": m.text} for m in system]
    request.input_messages = [_message_json(m) for m in messages if m.type != "system"]


def _message_json(message: BaseMessage) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if isinstance(message, ToolMessage):
        parts.append(
            {"type": "tool_call_response", "id": message.tool_call_id, "response": message.text}
        )
    elif message.text:
        parts.append({"type": "text", "content": message.text})
    for call in getattr(message, "tool_calls", None) or []:
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": call.get("name"),
                "arguments": call.get("args"),
            }
        )
    return {"role": _ROLES.get(message.type, message.type), "parts": parts}


def _usage(usage: Mapping[str, Any] | None) -> TokenUsage | None:
    if not usage:
        return None
    input_details = usage.get("input_token_details") or {}
    output_details = usage.get("output_token_details") or {}
    return TokenUsage(
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
        cache_read_tokens=int(input_details.get("cache_read") or 0),
        cache_write_tokens=int(input_details.get("cache_creation") or 0),
        reasoning_tokens=int(output_details.get("reasoning") or 0),
    )


def _commands(value: Any) -> list[Command[Any]]:
    if isinstance(value, Command):
        return [value]
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, Command)]
    return []


def _targets(goto: Any) -> list[str]:
    """The node names a command sends control to (not the graph's own `__end__` etc.)."""
    items = goto if isinstance(goto, list | tuple) else [goto]
    names = [item.node if isinstance(item, Send) else item for item in items]
    return [str(name) for name in names if isinstance(name, str) and not name.startswith("__")]


# -- wrappers ------------------------------------------------------------------------------


def _argument(args: Sequence[Any], kwargs: Mapping[str, Any], index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


class _Wrappers:
    """The wrapt wrappers, bound to the handler they report to."""

    def __init__(self, callbacks: OtelAgentsCallbackHandler) -> None:
        self.callbacks = callbacks

    def manager_init(
        self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> None:
        wrapped(*args, **kwargs)
        ours = self.callbacks
        try:
            # Most managers are copies or children of one that has us already: `in` (a
            # comparison in C, by identity for handlers) keeps that common case cheap.
            if ours.active and ours not in instance.inheritable_handlers:
                # New lists: the ones given may be the application's own.
                instance.handlers = [*instance.handlers, ours]
                instance.inheritable_handlers = [*instance.inheritable_handlers, ours]
        except Exception as exc:
            report_internal_error("langgraph callback manager", exc)

    def graph_stream(
        self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> Any:
        """Give the graph run its run id up front, so its chain start is known as a graph."""
        if self.callbacks.active:
            try:
                args, kwargs = self._with_run_id(args, kwargs, instance)
            except Exception as exc:
                report_internal_error("langgraph graph run id", exc)
        return wrapped(*args, **kwargs)

    def _with_run_id(self, args: Any, kwargs: Any, graph: Any = None) -> tuple[Any, Any]:
        config = dict(_argument(args, kwargs, 1, "config") or {})
        run_id = config.get("run_id")
        if run_id is None:
            run_id = config["run_id"] = _new_run_id()
        self.callbacks.mark_graph_run(run_id)
        metadata = config.get("metadata")
        if graph is not None and not (isinstance(metadata, Mapping) and sc.RUN_ID in metadata):
            # The outermost graph: name our run in the run's metadata, which LangGraph keeps
            # in its checkpoints, so that a resume in another process continues the run.
            config["metadata"] = {**(metadata or {}), **_run_metadata(graph, args, kwargs, config)}
        if len(args) > 1:
            return (args[0], config, *args[2:]), kwargs
        return args, {**kwargs, "config": config}

    # -- chat models: the call runs with its span (or its agent) current -------------------

    def _model_target(self, args: Any, kwargs: Any) -> Invocation | None:
        manager = _argument(args, kwargs, 2, "run_manager")
        return self.callbacks.nearest(getattr(manager, "run_id", None)) if manager else None

    # The wrappers are boundaries (LangChain calls them): every call into our code is
    # guarded in line, the context found on entry is put back if ours failed to, and the
    # wrapped call runs whatever happened to ours.

    def generate(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        entry, token = otel_context.get_current(), None
        try:
            token = self._enter(args, kwargs)
        except Exception as exc:
            report_internal_error("langgraph model context", exc)
        try:
            return wrapped(*args, **kwargs)
        finally:
            try:
                _leave(entry, token)
            except Exception as exc:
                report_internal_error("langgraph model context", exc)
            if otel_context.get_current() is not entry:
                otel_context.attach(entry)

    async def agenerate(
        self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> Any:
        entry, token = otel_context.get_current(), None
        try:
            token = self._enter(args, kwargs)
        except Exception as exc:
            report_internal_error("langgraph model context", exc)
        try:
            return await wrapped(*args, **kwargs)
        finally:
            try:
                _leave(entry, token)
            except Exception as exc:
                report_internal_error("langgraph model context", exc)
            if otel_context.get_current() is not entry:
                otel_context.attach(entry)

    def _enter(self, args: Any, kwargs: Any) -> object | None:
        """Make the model call's span (or its agent) current; the token to leave it."""
        if not self.callbacks.active:
            return None
        manager = _argument(args, kwargs, 2, "run_manager")
        target = self.callbacks.nearest(getattr(manager, "run_id", None)) if manager else None
        return target.make_current() if target is not None else None

    # -- tools: the gate before the body, the span current around it -----------------------

    def tool_run(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        if not self.callbacks.active:
            return wrapped(*args, **kwargs)
        entry, started = otel_context.get_current(), None
        try:
            started = self._start_tool(instance, args, kwargs)
        except Intervention:
            raise  # refused, called without a tool call id: the policy's deliberate stop
        except Exception as exc:
            report_internal_error("langgraph tool start", exc)
            if otel_context.get_current() is not entry:
                otel_context.attach(entry)
        if isinstance(started, ToolMessage):
            return started  # refused: the body does not run, the model reads why
        if started is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            try:
                _after_tool(entry, *started, None, exc)
            except Exception as internal:
                report_internal_error("langgraph tool end", internal)
            if otel_context.get_current() is not entry:
                otel_context.attach(entry)
            raise
        try:
            _after_tool(entry, *started, result, None)
        except Exception as internal:
            report_internal_error("langgraph tool end", internal)
        if otel_context.get_current() is not entry:
            otel_context.attach(entry)
        return result

    async def tool_arun(
        self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> Any:
        if not self.callbacks.active:
            return await wrapped(*args, **kwargs)
        entry, started = otel_context.get_current(), None
        try:
            started = self._start_tool(instance, args, kwargs)
        except Intervention:
            raise  # refused, called without a tool call id: the policy's deliberate stop
        except Exception as exc:
            report_internal_error("langgraph tool start", exc)
            if otel_context.get_current() is not entry:
                otel_context.attach(entry)
        if isinstance(started, ToolMessage):
            return started  # refused: the body does not run, the model reads why
        if started is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            try:
                _after_tool(entry, *started, None, exc)
            except Exception as internal:
                report_internal_error("langgraph tool end", internal)
            if otel_context.get_current() is not entry:
                otel_context.attach(entry)
            raise
        try:
            _after_tool(entry, *started, result, None)
        except Exception as internal:
            report_internal_error("langgraph tool end", internal)
        if otel_context.get_current() is not entry:
            otel_context.attach(entry)
        return result

    def _start_tool(
        self, instance: Any, args: Any, kwargs: Any
    ) -> tuple[ToolInvocation, object] | ToolMessage | None:
        """The started tool, made current (and the token to leave it); a refusal's
        `ToolMessage`; or None when recording failed (the tool then runs unrecorded). A
        refusal without a tool call id raises the policy's `Intervention`."""
        call_id = kwargs.get("tool_call_id")
        try:
            manager = _argument(args, kwargs, 4, "callbacks")
            parent_run = getattr(manager, "parent_run_id", None)
            parent = self.callbacks.nearest(parent_run) if parent_run is not None else None
            spec = ToolSpec(name=str(instance.name), description=instance.description or None)
            tool = handler.start_tool(
                spec, _argument(args, kwargs, 0, "tool_input"), call_id, parent=parent
            )
        except Intervention as stop:
            if call_id is None:
                raise
            return ToolMessage(
                content=f"The tool was not run: {stop}",
                tool_call_id=str(call_id),
                name=str(instance.name),
                status="error",
            )
        except Exception as exc:
            report_internal_error("langgraph tool start", exc)
            return None
        try:
            # The tool's context, marked with the tool for `on_tool_start` (its run id).
            running = otel_context.set_value(_RUNNING_TOOL_KEY, tool, tool.child_context())
            return tool, otel_context.attach(running)
        except Exception as exc:
            report_internal_error("langgraph tool context", exc)
            handler.stop_tool(tool)
            return None


def _leave(entry: otel_context.Context, token: object | None) -> None:
    """Detach what we attached; put back the context found on entry if that failed."""
    try:
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]
    except Exception as exc:
        report_internal_error("langgraph context", exc)
    if otel_context.get_current() is not entry:
        otel_context.attach(entry)


def _after_tool(
    entry: otel_context.Context,
    tool: ToolInvocation,
    token: object,
    result: Any,
    error: BaseException | None,
) -> None:
    """Leave the tool's context, then record how the call ended."""
    _leave(entry, token)
    _end_tool(tool, result, error)


def _end_tool(tool: ToolInvocation, result: Any, error: BaseException | None) -> None:
    try:
        if error is not None and not isinstance(error, GraphBubbleUp):
            handler.fail_tool(tool, error)
        elif isinstance(result, ToolMessage) and result.status == "error":
            # `handle_tool_error` turned the failure into a message for the model: for us
            # the call failed (retry counts, failure totals), though nothing was raised.
            handler.fail_tool(tool, ToolFailedInLangChain(str(result.content)))
        else:
            content = result.content if isinstance(result, ToolMessage) else result
            handler.stop_tool(tool, content)
    except Exception as exc:
        report_internal_error("langgraph tool end", exc)


def _new_run_id() -> UUID:
    try:
        from langchain_core.utils.uuid import uuid7

        return uuid7()  # the kind of id LangChain itself gives runs
    except ImportError:
        return uuid.uuid4()


# -- patch / unpatch -----------------------------------------------------------------------

_HOOKS: tuple[tuple[str, str, str], ...] = (
    ("langchain_core.callbacks.base", "BaseCallbackManager.__init__", "manager_init"),
    ("langgraph.pregel.main", "Pregel.stream", "graph_stream"),
    ("langgraph.pregel.main", "Pregel.astream", "graph_stream"),
    (
        "langchain_core.language_models.chat_models",
        "BaseChatModel._generate_with_cache",
        "generate",
    ),
    (
        "langchain_core.language_models.chat_models",
        "BaseChatModel._agenerate_with_cache",
        "agenerate",
    ),
    ("langchain_core.tools.base", "BaseTool.run", "tool_run"),
    ("langchain_core.tools.base", "BaseTool.arun", "tool_arun"),
)

_handler: OtelAgentsCallbackHandler | None = None
_patched: list[tuple[Any, str, Any]] = []  # (class, attribute, original)


def patch(langgraph_module: Any) -> None:
    """Wrap the hooks (once; again after `unpatch`)."""
    global _handler
    import importlib

    if _handler is None:
        _handler = OtelAgentsCallbackHandler()
    _handler.active = True
    if _patched:
        return
    wrappers = _Wrappers(_handler)
    for module_name, path, method in _HOOKS:
        owner_name, attribute = path.split(".")
        owner = getattr(importlib.import_module(module_name), owner_name)
        original = owner.__dict__[attribute]
        wrapper = getattr(wrappers, method)
        setattr(owner, attribute, wrapt.FunctionWrapper(original, wrapper))
        _patched.append((owner, attribute, original))


def unpatch() -> None:
    if _handler is not None:
        _handler.active = False  # managers built before still hold it: it then does nothing
    while _patched:
        owner, attribute, original = _patched.pop()
        setattr(owner, attribute, original)


def callback_handler() -> OtelAgentsCallbackHandler | None:
    """Our handler once patched (for tests and for applications that pass handlers
    explicitly)."""
    return _handler


__all__ = [
    "AGENT_METADATA_KEY",
    "OtelAgentsCallbackHandler",
    "callback_handler",
    "patch",
    "unpatch",
]
