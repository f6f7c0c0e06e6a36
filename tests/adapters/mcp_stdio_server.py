"""An MCP server over stdio for tests/adapters/test_mcp.py: its tool answers with the
trace id and parent span id of the server's span, to show which trace it joined."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

trace.set_tracer_provider(TracerProvider())  # recording spans, exported nowhere
server = MCPServer("probe")


@server.tool()
def where_am_i() -> str:
    span = trace.get_current_span()
    parent = getattr(span, "parent", None)
    parent_id = f"{parent.span_id:016x}" if parent is not None else "none"
    return f"{span.get_span_context().trace_id:032x} {parent_id}"


if __name__ == "__main__":
    server.run("stdio")
