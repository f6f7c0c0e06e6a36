"""MCP client adapter: every `tools/call` of the official `mcp` SDK as an `execute_tool` call.

`ClientSession.call_tool` (which `mcp.Client.call_tool` also goes through) runs inside an
`execute_tool {name}` span opened by `handler.start_tool`: the same policy gate as a local
tool (a denied call never reaches the server; the caller gets the `Intervention`), the same
attempts, run totals and decision path. Our span is current while the SDK sends the request,
so the SDK's own `MCP send tools/call` CLIENT span becomes its child (no second tool span)
and the W3C context the SDK injects into `params._meta` names our trace: the server's span
joins it. A result with `isError: true` ends the span in error (`error.type` `tool_error`)
and is returned unchanged; an exception (JSON-RPC error, timeout, closed transport) is
recorded and re-raised unchanged.

`ClientSession.list_tools` results are kept per session: a listed tool's `inputSchema`
becomes its contract (the gate checks the arguments, `input_violation`), its annotations
its policy facts: `readOnlyHint` / `destructiveHint` give `reversible`, `openWorldHint`
the impact scope `open_world`, and `mcp:read_only` / `mcp:destructive` / `mcp:idempotent`
/ `mcp:open_world` tags, so that a policy can match them. The `outputSchema` is left to the
SDK, which validates `structuredContent` against it itself.

Server side (`MCPServer`): each tool run (`mcpserver` `Tool.run`) is an `execute_tool`
span of its own under the SDK's `tools/call` SERVER span (which joined the client's trace),
through the same gate with the server's policy, the tool's declared schema and hints: a
call the server's policy stops never runs, and the client gets an `isError` result.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from types import ModuleType
from typing import Any

from opentelemetry.trace import StatusCode

from otel_agents import semconv as sc
from otel_agents.core import handler
from otel_agents.core.invocation import Invocation
from otel_agents.core.tool import ToolInvocation, ToolSpec
from otel_agents.patching import Patcher
from otel_agents.policy.contracts import ToolContract
from otel_agents.runtime import report_internal_error

# What `gen_ai.tool.type` calls a tool that runs outside the agent's process.
MCP_TOOL_TYPE = "extension"
TOOL_ERROR = "tool_error"
# What the server runs is a function of its own.
SERVER_TOOL_TYPE = "function"

OPEN_WORLD_SCOPE = "open_world"

_patcher = Patcher()
_state = {"active": False}
# session -> {tool name: spec} from its last tools/list (weak: dies with the session)
_listed: weakref.WeakKeyDictionary[Any, dict[str, ToolSpec]] = weakref.WeakKeyDictionary()


def patch(client_module: ModuleType | None = None) -> None:
    from mcp.client.session import ClientSession

    _state["active"] = True
    _patcher.wrap(ClientSession, "call_tool", _call_tool)
    _patcher.wrap(ClientSession, "list_tools", _list_tools)
    from mcp.server.mcpserver.tools.base import Tool

    _patcher.wrap(Tool, "run", _run_tool)


def unpatch() -> None:
    _state["active"] = False
    _patcher.unwrap_all()


async def _call_tool(
    wrapped: Callable[..., Any], session: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if not _state["active"]:
        return await wrapped(*args, **kwargs)
    name, arguments = _name_and_arguments(args, kwargs)
    if name is None:
        return await wrapped(*args, **kwargs)
    tool = handler.start_tool(_spec(session, name), arguments)
    token = _enter(tool, session)
    return await _run_recorded(tool, token, wrapped, args, kwargs)


async def _run_recorded(
    tool: ToolInvocation,
    token: object | None,
    wrapped: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        Invocation.stop_current(token)
        handler.fail_tool(tool, exc)
        raise
    Invocation.stop_current(token)
    _finish(tool, result)
    return result


async def _run_tool(
    wrapped: Callable[..., Any], server_tool: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The server runs one of its tools: the server's own `execute_tool` span and verdict."""
    if not _state["active"]:
        return await wrapped(*args, **kwargs)
    arguments = args[0] if args else kwargs.get("arguments")
    try:
        spec = _server_spec(server_tool)
    except Exception as exc:
        report_internal_error("mcp server tool spec", exc)
        return await wrapped(*args, **kwargs)
    tool = handler.start_tool(spec, arguments)
    token = _make_current(tool)
    return await _run_recorded(tool, token, wrapped, args, kwargs)


def _server_spec(server_tool: Any) -> ToolSpec:
    return tool_spec(
        server_tool.name,
        server_tool.description,
        server_tool.annotations,
        server_tool.parameters,
        tool_type=SERVER_TOOL_TYPE,
    )


def _make_current(tool: ToolInvocation) -> object | None:
    try:
        return tool.make_current()
    except Exception as exc:
        report_internal_error("mcp tool context", exc)
        return None


def _name_and_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str | None, Any]:
    name = args[0] if args else kwargs.get("name")
    arguments = args[1] if len(args) > 1 else kwargs.get("arguments")
    return (name if isinstance(name, str) else None), arguments


def _enter(tool: ToolInvocation, session: Any) -> object | None:
    """Our span current (the SDK's span nests under it) with the MCP attributes on it."""
    try:
        tool.span.set_attribute(sc.MCP_METHOD_NAME, sc.McpMethodNameValues.TOOLS_CALL)
        version = getattr(session, "_negotiated_version", None)
        if isinstance(version, str):
            tool.span.set_attribute(sc.MCP_PROTOCOL_VERSION, version)
        return tool.make_current()
    except Exception as exc:
        report_internal_error("mcp tool start", exc)
        return None


def _finish(tool: ToolInvocation, result: Any) -> None:
    try:
        if getattr(result, "is_error", False) is True:
            tool.span.set_attribute(sc.ERROR_TYPE, TOOL_ERROR)
            tool.span.set_status(StatusCode.ERROR, "the tool reported an error")
    except Exception as exc:
        report_internal_error("mcp tool result", exc)
    handler.stop_tool(tool, result)


async def _list_tools(
    wrapped: Callable[..., Any], session: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    result = await wrapped(*args, **kwargs)
    if _state["active"]:
        try:
            specs = _listed.setdefault(session, {})
            for listed in getattr(result, "tools", None) or ():
                specs[listed.name] = spec_of(listed)
        except Exception as exc:
            report_internal_error("mcp tools/list", exc)
    return result


def _spec(session: Any, name: str) -> ToolSpec:
    try:
        listed = _listed.get(session)
        if listed is not None and name in listed:
            return listed[name]
    except Exception as exc:
        report_internal_error("mcp tool spec", exc)
    return ToolSpec(name=name, tool_type=MCP_TOOL_TYPE)


def spec_of(listed: Any) -> ToolSpec:
    """A listed MCP tool as a `ToolSpec`: its input schema as contract, its hints as facts."""
    return tool_spec(listed.name, listed.description, listed.annotations, listed.input_schema)


def tool_spec(
    name: str,
    description: str | None,
    hints: Any,
    input_schema: Any,
    tool_type: str = MCP_TOOL_TYPE,
) -> ToolSpec:
    """An MCP tool's `ToolSpec`: its input schema as contract, its hints as facts."""
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
    return ToolSpec(
        name=name,
        description=description or None,
        tool_type=tool_type,
        tags=tuple(tags),
        reversible=reversible,
        impact_scope=OPEN_WORLD_SCOPE if open_world else None,
        options=_contract_options(input_schema),
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
