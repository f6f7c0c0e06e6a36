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
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from opentelemetry.trace import StatusCode

from otel_agents import semconv as sc
from otel_agents.adapters.kit import Patcher
from otel_agents.core import handler
from otel_agents.core.invocation import Invocation
from otel_agents.core.tool import ToolInvocation, ToolSpec
from otel_agents.runtime import report_internal_error

# What `gen_ai.tool.type` calls a tool that runs outside the agent's process.
MCP_TOOL_TYPE = "extension"
TOOL_ERROR = "tool_error"

_patcher = Patcher()
_state = {"active": False}


def patch(client_module: ModuleType | None = None) -> None:
    from mcp.client.session import ClientSession

    _state["active"] = True
    _patcher.wrap(ClientSession, "call_tool", _call_tool)


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
    tool = handler.start_tool(ToolSpec(name=name, tool_type=MCP_TOOL_TYPE), arguments)
    token = _enter(tool, session)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        Invocation.stop_current(token)
        handler.fail_tool(tool, exc)
        raise
    Invocation.stop_current(token)
    _finish(tool, result)
    return result


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
