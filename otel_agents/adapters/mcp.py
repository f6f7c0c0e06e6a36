"""MCP adapter: every `tools/call` of the official `mcp` SDK as an `execute_tool` call,
on the client and on the server.

Client. `ClientSession.call_tool` (which `mcp.Client.call_tool` also goes through) runs
inside an `execute_tool {name}` span opened by `handler.start_tool`: the same policy gate
as a local tool (a denied call never reaches the server; the caller gets the
`Intervention`), the same attempts, run totals and decision path. Our span is current
while the SDK sends the request, so the SDK's own `MCP send tools/call` CLIENT span
becomes its child (no second tool span) and the W3C context the SDK injects into
`params._meta` names our trace: the server's spans join it. The span carries the MCP
conventions' attributes: `mcp.method.name`, `mcp.protocol.version`, `jsonrpc.request.id`
(read from the request as the SDK writes it), `network.transport` (`pipe` for stdio,
`tcp` for streamable HTTP) and `mcp.session.id` (when the transport has one), and the
server's name (`serverInfo.name`, `otel_agents.mcp.server.name`), which a policy can
match as `{server}/{tool}`. A result with `isError: true` ends the span in error
(`error.type` `tool_error`) and is returned unchanged; a JSON-RPC error sets `error.type`
and `rpc.response.status_code` to its code; any exception is recorded and re-raised
unchanged.

`ClientSession.list_tools` results are kept per session: a listed tool's `inputSchema`
becomes its contract (the gate checks the arguments, `input_violation`), its annotations
its policy facts: `readOnlyHint` / `destructiveHint` give `reversible`, `openWorldHint`
the impact scope `open_world`, and `mcp:read_only` / `mcp:destructive` / `mcp:idempotent`
/ `mcp:open_world` tags, so that a policy can match them. The `outputSchema` is checked by
the SDK, which validates `structuredContent` against it and raises: our span then says the
output side of the contract broke, the server's fault (`otel_agents.contract.status`
`output_violation`).

Server. Every `tools/call` a server (`MCPServer` or the low-level `Server`) serves goes
through the one handler lookup of its dispatch, `Server.get_request_handler`: the handler
it returns runs inside an `execute_tool` span of the server's own, under the SDK's
`tools/call` SERVER span (which joined the client's trace), through the same gate with
the server's policy. The tool's schema and hints come from `MCPServer`'s registry or, for
a low-level server, from its own last `tools/list` answer. A call the server's policy
stops never runs: the client gets an `isError` result saying why. A call served in the
process that made it (in-memory transport) is the caller's call: it is not counted again.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import StatusCode
from opentelemetry.util.types import AttributeValue

from otel_agents import semconv as sc
from otel_agents.core import handler
from otel_agents.core.invocation import Invocation
from otel_agents.core.tool import ToolInvocation, ToolSpec
from otel_agents.errors import Intervention
from otel_agents.patching import Patcher
from otel_agents.policy.contracts import ToolContract
from otel_agents.runtime import report_internal_error

# What `gen_ai.tool.type` calls a tool that runs outside the agent's process.
MCP_TOOL_TYPE = "extension"
TOOL_ERROR = "tool_error"
# What the server runs is a function of its own.
SERVER_TOOL_TYPE = "function"
TOOLS_CALL = sc.McpMethodNameValues.TOOLS_CALL
TOOLS_LIST = "tools/list"
SESSION_HEADER = "mcp-session-id"
# MCPError codes the SDK raises itself, without a response: not the peer's JSON-RPC error.
LOCAL_ERRORS = {-32000: "connection_closed", -32001: "timeout"}

OPEN_WORLD_SCOPE = "open_world"

_patcher = Patcher()
_state = {"active": False}


@dataclass(frozen=True)
class McpToolSpec(ToolSpec):
    """A tool reached over MCP: its spans start with the MCP attributes of its session
    (or server), also when the policy stops the call before it is sent."""

    mcp: Mapping[str, AttributeValue] = field(default_factory=dict)

    def static_attributes(self) -> dict[str, AttributeValue]:
        attributes = super().static_attributes()
        attributes.update(self.mcp)
        return attributes


@dataclass
class _Peer:
    """What a client session knows about its server: tool specs by name (listed ones with
    their contract and hints, others bare), made once per session state and reused."""

    specs: dict[str, McpToolSpec] = field(default_factory=dict)


@dataclass
class _Link:
    """The transport under a session's write stream; the HTTP one has a session id."""

    transport: str
    http: Any = None

    @property
    def session_id(self) -> str | None:
        value = getattr(self.http, "session_id", None)
        return value if isinstance(value, str) and value else None


@dataclass
class _Outbound:
    """The tools/call in flight in this context: the request id the SDK gives it."""

    request_id: str | None = None


_peers: weakref.WeakKeyDictionary[Any, _Peer] = weakref.WeakKeyDictionary()
# id(write stream) -> (the stream, its transport), while the transport runs. By id: the
# SDK's context streams take no weak references; the entry goes when the transport stops.
_links: dict[int, tuple[Any, _Link]] = {}
_outbound: ContextVar[_Outbound | None] = ContextVar("otel_agents_mcp_outbound", default=None)
# (trace id, tool name) -> client invocations in flight: a server in this process serving
# one of them serves the same call.
_in_flight: dict[tuple[int, str], list[ToolInvocation]] = {}
_in_flight_lock = threading.Lock()


def patch(client_module: ModuleType | None = None) -> None:
    import mcp
    import mcp.client.client
    import mcp.client.stdio
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import StreamableHTTPTransport
    from mcp.server.lowlevel.server import Server
    from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher

    _state["active"] = True
    _patcher.wrap(ClientSession, "call_tool", _call_tool)
    _patcher.wrap(ClientSession, "list_tools", _list_tools)
    _patcher.wrap(JSONRPCDispatcher, "_write", _write)
    _patcher.wrap(StreamableHTTPTransport, "post_writer", _post_writer)
    # `stdio_client` is imported by name into these modules (`mcp.Client` uses its own).
    for module in (mcp.client.stdio, mcp.client.client, mcp):
        _patcher.wrap(module, "stdio_client", _stdio_client)
    _patcher.wrap(Server, "get_request_handler", _get_request_handler)


def unpatch() -> None:
    _state["active"] = False
    _patcher.unwrap_all()


# -- client: tools/call ---------------------------------------------------------------------


async def _call_tool(
    wrapped: Callable[..., Any], session: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if not _state["active"]:
        return await wrapped(*args, **kwargs)
    name, arguments = _name_and_arguments(args, kwargs)
    if name is None:
        return await wrapped(*args, **kwargs)
    tool = handler.start_tool(_spec(session, name), arguments)
    token = _enter(tool)
    outbound = _Outbound()
    sending = _outbound.set(outbound)
    key = _track(tool, name)
    try:
        return await _run_recorded(tool, token, wrapped, args, kwargs, outbound)
    finally:
        _outbound.reset(sending)
        _untrack(key, tool)


async def _run_recorded(
    tool: ToolInvocation,
    token: object | None,
    wrapped: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    outbound: _Outbound | None = None,
) -> Any:
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        Invocation.stop_current(token)
        _note_request_id(tool, outbound)
        _note_error(tool, exc)
        handler.fail_tool(tool, exc)
        raise
    Invocation.stop_current(token)
    _note_request_id(tool, outbound)
    _finish(tool, result)
    return result


def _name_and_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str | None, Any]:
    name = args[0] if args else kwargs.get("name")
    arguments = args[1] if len(args) > 1 else kwargs.get("arguments")
    return (name if isinstance(name, str) else None), arguments


def _enter(tool: ToolInvocation) -> object | None:
    """Our span current: the SDK's span nests under it."""
    try:
        return tool.make_current()
    except Exception as exc:
        report_internal_error("mcp tool start", exc)
        return None


def _session_attributes(session: Any, server: str | None) -> dict[str, AttributeValue]:
    """The MCP attributes of every tools/call on this session (fixed once it is set up)."""
    attributes: dict[str, AttributeValue] = {sc.MCP_METHOD_NAME: TOOLS_CALL}
    version = getattr(session, "protocol_version", None)
    if isinstance(version, str):
        attributes[sc.MCP_PROTOCOL_VERSION] = version
    if server is not None:
        attributes[sc.MCP_SERVER_NAME] = server
    link = _link_of(session)
    if link is not None:
        attributes[sc.NETWORK_TRANSPORT] = link.transport
        session_id = link.session_id
        if session_id is not None:
            attributes[sc.MCP_SESSION_ID] = session_id
    return attributes


def _note_request_id(tool: ToolInvocation, outbound: _Outbound | None) -> None:
    if outbound is not None and outbound.request_id is not None:
        try:
            tool.span.set_attribute(sc.JSONRPC_REQUEST_ID, outbound.request_id)
        except Exception as exc:
            report_internal_error("mcp request id", exc)


def _note_error(tool: ToolInvocation, exc: BaseException) -> None:
    """A JSON-RPC error: its code is the `error.type` and `rpc.response.status_code`. A
    structured result the SDK found outside the tool's listed `outputSchema`: the output
    side of its contract, broken by the server."""
    _note_output_violation(tool, exc)
    code = getattr(getattr(exc, "error", None), "code", None)
    if not isinstance(code, int) or isinstance(code, bool):
        return
    try:
        local = LOCAL_ERRORS.get(code)
        if local is not None:  # no response came: the SDK's own timeout or closed stream
            tool.error_name = local
            return
        tool.error_name = str(code)
        tool.span.set_attribute(sc.RPC_RESPONSE_STATUS_CODE, str(code))
    except Exception as internal:
        report_internal_error("mcp error code", internal)


def _note_output_violation(tool: ToolInvocation, exc: BaseException) -> None:
    """The client SDK validates `structuredContent` against the listed `outputSchema` and
    raises a RuntimeError from the schema's ValidationError: that cause is the signal."""
    cause = exc.__cause__
    if not isinstance(exc, RuntimeError) or type(cause).__name__ != "ValidationError":
        return
    if not type(cause).__module__.startswith("jsonschema"):
        return
    try:
        message = getattr(cause, "message", None) or str(cause)
        tool.span.set_attributes(
            {
                sc.CONTRACT_STATUS: sc.ContractStatusValues.OUTPUT_VIOLATION,
                sc.CONTRACT_VIOLATION: f"output (the server's fault): {message}"[:512],
            }
        )
    except Exception as internal:
        report_internal_error("mcp output contract", internal)


def _finish(tool: ToolInvocation, result: Any) -> None:
    try:
        if _is_error_result(result):
            tool.span.set_attribute(sc.ERROR_TYPE, TOOL_ERROR)
            tool.span.set_status(StatusCode.ERROR, "the tool reported an error")
            tool.note_failed_result()
    except Exception as exc:
        report_internal_error("mcp tool result", exc)
    handler.stop_tool(tool, result)


def _is_error_result(result: Any) -> bool:
    if isinstance(result, dict):  # a low-level handler may answer with the wire dict
        return result.get("isError") is True
    return getattr(result, "is_error", False) is True


# -- client: what it knows about the server and the transport ------------------------------


def _spec(session: Any, name: str) -> ToolSpec:
    """The tool's spec for this session: its listing, its server, the session's state."""
    try:
        peer = _peer(session)
        server = _server_name(session)
        mcp = _session_attributes(session, server)
        spec = peer.specs.get(name)
        if spec is None:
            spec = McpToolSpec(name, tool_type=MCP_TOOL_TYPE, namespace=server, mcp=mcp)
            peer.specs[name] = spec
        elif spec.mcp != mcp:  # listed before the session was set up, or set up anew
            spec = peer.specs[name] = replace(spec, namespace=server, mcp=mcp)
        return spec
    except Exception as exc:
        report_internal_error("mcp tool spec", exc)
    return ToolSpec(name=name, tool_type=MCP_TOOL_TYPE)


def _peer(session: Any) -> _Peer:
    peer = _peers.get(session)
    if peer is None:
        peer = _peers[session] = _Peer()
    return peer


def _server_name(session: Any) -> str | None:
    info = getattr(session, "server_info", None)
    name = getattr(info, "name", None)
    return name if isinstance(name, str) and name else None


def _link_of(session: Any) -> _Link | None:
    stream = getattr(getattr(session, "_dispatcher", None), "_write_stream", None)
    entry = _links.get(id(stream)) if stream is not None else None
    return entry[1] if entry is not None and entry[0] is stream else None


def _write(
    wrapped: Callable[..., Any], dispatcher: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The dispatcher writes a message: a tools/call of ours gets its request id noted, and
    the SDK's span of any request it sends (`MCP send {method}`, current while it writes:
    initialize, tools/list, resources/read, prompts/get, ...) gets the transport and the
    session id the conventions give it, which the SDK does not know. Returns the SDK's own
    coroutine, untouched."""
    try:
        message = args[0] if args else kwargs.get("message")
        method = getattr(message, "method", None)
        if method is not None and getattr(message, "id", None) is not None:  # a request
            outbound = _outbound.get()
            if outbound is not None and outbound.request_id is None and method == TOOLS_CALL:
                outbound.request_id = str(getattr(message, "id", ""))
            _describe_sent_request(dispatcher)
    except Exception as exc:
        report_internal_error("mcp outbound request", exc)
    return wrapped(*args, **kwargs)


def _describe_sent_request(dispatcher: Any) -> None:
    stream = getattr(dispatcher, "_write_stream", None)
    entry = _links.get(id(stream)) if stream is not None else None
    if entry is None or entry[0] is not stream:
        return  # in memory: no network transport, no session
    span = trace.get_current_span()
    if not span.is_recording():
        return
    link = entry[1]
    attributes: dict[str, AttributeValue] = {sc.NETWORK_TRANSPORT: link.transport}
    session_id = link.session_id
    if session_id is not None:
        attributes[sc.MCP_SESSION_ID] = session_id
    span.set_attributes(attributes)


async def _post_writer(
    wrapped: Callable[..., Any], transport: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The streamable HTTP transport's writer runs as long as the transport: while it
    does, the session writing into its stream is over `tcp`, with its session id."""
    stream = args[3] if len(args) > 3 else kwargs.get("write_stream")
    _links[id(stream)] = (stream, _Link("tcp", transport))
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _links.pop(id(stream), None)


def _stdio_client(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    return _linked(wrapped(*args, **kwargs), "pipe")


@asynccontextmanager
async def _linked(transport: Any, kind: str) -> AsyncIterator[Any]:
    """The SDK's transport context, its write stream noted as `kind` while it is open."""
    async with transport as streams:
        stream = _write_stream(streams)
        if stream is not None:
            _links[id(stream)] = (stream, _Link(kind))
        try:
            yield streams
        finally:
            if stream is not None:
                _links.pop(id(stream), None)


def _write_stream(streams: Any) -> Any:
    try:
        return streams[1]
    except Exception:
        return None


def _track(tool: ToolInvocation, name: str) -> tuple[int, str] | None:
    try:
        key = (tool.span.get_span_context().trace_id, name)
        with _in_flight_lock:
            _in_flight.setdefault(key, []).append(tool)
        return key
    except Exception as exc:
        report_internal_error("mcp in-flight call", exc)
        return None


def _untrack(key: tuple[int, str] | None, tool: ToolInvocation) -> None:
    if key is None:
        return
    with _in_flight_lock:
        calls = _in_flight.get(key)
        if calls is not None and tool in calls:
            calls.remove(tool)
            if not calls:
                del _in_flight[key]


def _caller_of(name: str, arguments: Any) -> ToolInvocation | None:
    """The client invocation in this process that this served call is (same trace, same
    tool; by arguments when several are in flight). None when that is not certain: the
    call is then counted and checked (approval too) as a call of its own."""
    trace_id = trace.get_current_span().get_span_context().trace_id
    with _in_flight_lock:
        calls = list(_in_flight.get((trace_id, name), ()))
    if len(calls) > 1:  # the first with these arguments (identical calls are alike)
        calls = [call for call in calls if call.arguments == arguments][:1]
    return calls[0] if calls else None


async def _list_tools(
    wrapped: Callable[..., Any], session: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    result = await wrapped(*args, **kwargs)
    if _state["active"]:
        try:
            specs, server = _peer(session).specs, _server_name(session)
            for listed in getattr(result, "tools", None) or ():
                specs[listed.name] = spec_of(listed, server)
        except Exception as exc:
            report_internal_error("mcp tools/list", exc)
    return result


# -- server: tools/call through its dispatch ------------------------------------------------


@dataclass
class _Served:
    """Per server: our handler entries (made once per registered entry) and the specs of
    its tools, from its registry or its own last tools/list answer."""

    entries: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    listed: dict[str, ToolSpec] = field(default_factory=dict)
    registered: dict[str, tuple[Any, ToolSpec]] = field(default_factory=dict)


_served: weakref.WeakKeyDictionary[Any, _Served] = weakref.WeakKeyDictionary()


def _get_request_handler(
    wrapped: Callable[..., Any], server: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    entry = wrapped(*args, **kwargs)
    if entry is None or not _state["active"]:
        return entry
    method = args[0] if args else kwargs.get("method")
    if method not in (TOOLS_CALL, TOOLS_LIST):
        return entry
    try:
        return _our_entry(server, method, entry)
    except Exception as exc:
        report_internal_error("mcp server handler", exc)
        return entry


def _our_entry(server: Any, method: str, entry: Any) -> Any:
    served = _served_of(server)
    known = served.entries.get(method)
    if known is not None and known[0] is entry:
        return known[1]
    serve = _serve_call if method == TOOLS_CALL else _serve_listing
    original = entry.handler

    async def recorded(ctx: Any, params: Any) -> Any:
        return await serve(server, original, ctx, params)

    ours = replace(entry, handler=recorded)
    served.entries[method] = (entry, ours)
    return ours


def _served_of(server: Any) -> _Served:
    served = _served.get(server)
    if served is None:
        served = _served[server] = _Served()
    return served


async def _serve_call(server: Any, serve: Callable[..., Any], ctx: Any, params: Any) -> Any:
    """The server runs a tools/call: its own `execute_tool` span and policy verdict."""
    if not _state["active"]:
        return await serve(ctx, params)
    try:
        name, arguments = params.name, params.arguments
        spec = _served_spec(server, name)
        caller = _caller_of(name, arguments)
    except Exception as exc:
        report_internal_error("mcp server tool spec", exc)
        return await serve(ctx, params)
    try:
        tool = handler.start_tool(spec, arguments, caller=caller)
    except Intervention as stop:
        return _refusal(stop)
    token = _enter_served(tool, ctx)
    return await _run_recorded(tool, token, serve, (ctx, params), {})


def _enter_served(tool: ToolInvocation, ctx: Any) -> object | None:
    try:
        tool.span.set_attributes(_server_attributes(ctx))
        return tool.make_current()
    except Exception as exc:
        report_internal_error("mcp served tool start", exc)
        return None


def _server_attributes(ctx: Any) -> dict[str, AttributeValue]:
    """What varies per request (the spec has the method and the server's name)."""
    attributes: dict[str, AttributeValue] = {}
    version = getattr(ctx, "protocol_version", None)
    if isinstance(version, str):
        attributes[sc.MCP_PROTOCOL_VERSION] = version
    request_id = getattr(ctx, "request_id", None)
    if request_id is not None:
        attributes[sc.JSONRPC_REQUEST_ID] = str(request_id)
    request = getattr(ctx, "request", None)  # the HTTP request, on streamable HTTP
    if request is not None:
        attributes[sc.NETWORK_TRANSPORT] = "tcp"
        session_id = request.headers.get(SESSION_HEADER)
        if session_id:
            attributes[sc.MCP_SESSION_ID] = session_id
    return attributes


def _refusal(stop: Intervention) -> Any:
    """What the client gets when the server's policy stops a call: an error result."""
    from mcp_types import CallToolResult, TextContent

    return CallToolResult(content=[TextContent(type="text", text=str(stop))], is_error=True)


async def _serve_listing(server: Any, serve: Callable[..., Any], ctx: Any, params: Any) -> Any:
    """The server answers tools/list: its tools' schemas and hints, kept for its calls."""
    result = await serve(ctx, params)
    if _state["active"]:
        try:
            listed = _served_of(server).listed
            for tool in getattr(result, "tools", None) or ():
                listed[tool.name] = spec_of(tool, _name_of(server), SERVER_TOOL_TYPE)
        except Exception as exc:
            report_internal_error("mcp served tools/list", exc)
    return result


def _served_spec(server: Any, name: str) -> ToolSpec:
    """From `MCPServer`'s registry (the tool as it is now), else from the server's last
    tools/list answer, else a bare spec."""
    served = _served_of(server)
    registered = _registered_tool(server, name)
    if registered is not None:
        known = served.registered.get(name)
        if known is not None and known[0] is registered:
            return known[1]
        spec = _registered_spec(registered, _name_of(server))
        served.registered[name] = (registered, spec)
        return spec
    listed = served.listed.get(name)
    if listed is None:
        listed = served.listed[name] = tool_spec(
            name, None, None, None, SERVER_TOOL_TYPE, namespace=_name_of(server)
        )
    return listed


def _registered_tool(server: Any, name: str) -> Any:
    """`MCPServer` registers its lookup on its low-level server: that finds its registry."""
    owner = getattr(getattr(server, "get_tool_input_schema", None), "__self__", None)
    manager = getattr(owner, "_tool_manager", None)
    return manager.get_tool(name) if manager is not None else None


def _registered_spec(tool: Any, server: str | None) -> ToolSpec:
    return tool_spec(
        tool.name,
        tool.description,
        tool.annotations,
        tool.parameters,
        tool_type=SERVER_TOOL_TYPE,
        namespace=server,
    )


def _name_of(server: Any) -> str | None:
    name = getattr(server, "name", None)
    return name if isinstance(name, str) and name else None


# -- tool specs from MCP tool definitions ---------------------------------------------------


def spec_of(listed: Any, server: str | None = None, tool_type: str = MCP_TOOL_TYPE) -> McpToolSpec:
    """A listed MCP tool as a `ToolSpec`: its input schema as contract, its hints as facts."""
    return tool_spec(
        listed.name,
        listed.description,
        listed.annotations,
        listed.input_schema,
        tool_type=tool_type,
        namespace=server,
    )


def tool_spec(
    name: str,
    description: str | None,
    hints: Any,
    input_schema: Any,
    tool_type: str = MCP_TOOL_TYPE,
    namespace: str | None = None,
) -> McpToolSpec:
    """An MCP tool's `ToolSpec`: its input schema as contract, its hints as facts, its
    server's name and the MCP method on its spans."""
    read_only = hints is not None and hints.read_only_hint is True
    destructive = None if hints is None or read_only else hints.destructive_hint
    open_world = hints is not None and hints.open_world_hint is True
    tags = [
        tag
        for tag, present in (
            ("mcp:read_only", read_only),
            ("mcp:destructive", destructive is True),
            ("mcp:idempotent", hints is not None and hints.idempotent_hint is True),
            ("mcp:open_world", open_world),
        )
        if present
    ]
    reversible = True if read_only else (None if destructive is None else not destructive)
    mcp: dict[str, AttributeValue] = {sc.MCP_METHOD_NAME: TOOLS_CALL}
    if namespace is not None:
        mcp[sc.MCP_SERVER_NAME] = namespace
    return McpToolSpec(
        name=name,
        description=description or None,
        tool_type=tool_type,
        tags=tuple(tags),
        reversible=reversible,
        impact_scope=OPEN_WORLD_SCOPE if open_world else None,
        options=_contract_options(input_schema),
        namespace=namespace,
        mcp=mcp,
    )


def _contract_options(input_schema: Any) -> dict[str, Any]:
    """The input schema as the tool's contract; none when it cannot be compiled (no
    jsonschema installed, a schema it rejects): the call is then recorded without one."""
    if not isinstance(input_schema, dict) or not input_schema:
        return {}
    try:
        return {"contract": ToolContract(input=input_schema)}
    except Exception as exc:
        report_internal_error("mcp tool contract", exc)
        return {}
