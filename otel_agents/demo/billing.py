"""The demo's MCP server (`otel-agents demo --mcp`): billing, reached over MCP (in memory,
offline).

`billing-server` serves one tool, `set_up_billing`, declared destructive
(`destructiveHint`). The provisioning agent's model asks for it like any other tool; the
call goes through the official `mcp` client, which lists the server's tools first, so the
hint reaches the demo policy (irreversible tools need approval) before anything is sent.
The server runs in the same process: its own span of the call sits under the client's,
counted once and approved once.
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

SERVER_NAME = "billing-server"
TOOL = "set_up_billing"
DESCRIPTION = "Set an account up for invoicing: the vendor is charged from now on."
PARAMETERS = {"account_id": "string", "plan": "string"}


def available() -> bool:
    return importlib.util.find_spec("mcp") is not None


def set_up_billing(**arguments: Any) -> dict[str, Any]:
    """Call the billing server's tool over MCP; its structured result."""
    return asyncio.run(_call(arguments))


async def _call(arguments: dict[str, Any]) -> dict[str, Any]:
    from mcp import Client

    async with Client(_server()) as client:
        await client.list_tools()
        result = await client.call_tool(TOOL, arguments)
    if result.is_error:
        raise RuntimeError(f"{TOOL} failed: {result.content}")
    return dict(result.structured_content or {})


def _server() -> Any:
    from mcp.server.mcpserver import MCPServer
    from mcp_types import ToolAnnotations

    # The SDK configures the root logger from here: at INFO it would echo every HTTP call.
    server = MCPServer(SERVER_NAME, log_level="WARNING")

    destructive = ToolAnnotations(destructive_hint=True)

    @server.tool(name=TOOL, description=DESCRIPTION, annotations=destructive)
    def billing(account_id: str, plan: str) -> dict[str, str]:
        return {"account_id": account_id, "plan": plan, "invoicing": "active"}

    return server
