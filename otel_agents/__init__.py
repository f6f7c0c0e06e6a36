"""otel-agents: see what your AI agents did in production, and why.

    import otel_agents
    otel_agents.instrument()

The public names are loaded on first use, so `import otel_agents` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from otel_agents.version import __version__ as __version__

if TYPE_CHECKING:
    from otel_agents.config import ContentCapture as ContentCapture
    from otel_agents.config import Settings as Settings
    from otel_agents.core.agent import AgentRun as AgentRun
    from otel_agents.core.agent import agent as agent
    from otel_agents.core.decision import decision as decision
    from otel_agents.core.handoff import Handoff as Handoff
    from otel_agents.core.handoff import handoff as handoff
    from otel_agents.core.tool import tool as tool
    from otel_agents.core.tool import tool_call_id as tool_call_id
    from otel_agents.errors import Intervention as Intervention
    from otel_agents.errors import OtelAgentsError as OtelAgentsError
    from otel_agents.lifecycle import (
        flush as flush,
    )
    from otel_agents.lifecycle import (
        instrument as instrument,
    )
    from otel_agents.lifecycle import (
        is_instrumented as is_instrumented,
    )
    from otel_agents.lifecycle import (
        uninstrument as uninstrument,
    )
    from otel_agents.runtime import Observer as Observer

_EXPORTS = {
    "instrument": "otel_agents.lifecycle",
    "uninstrument": "otel_agents.lifecycle",
    "is_instrumented": "otel_agents.lifecycle",
    "flush": "otel_agents.lifecycle",
    "agent": "otel_agents.core.agent",
    "AgentRun": "otel_agents.core.agent",
    "tool": "otel_agents.core.tool",
    "tool_call_id": "otel_agents.core.tool",
    "handoff": "otel_agents.core.handoff",
    "Handoff": "otel_agents.core.handoff",
    "decision": "otel_agents.core.decision",
    "ContentCapture": "otel_agents.config",
    "Settings": "otel_agents.config",
    "OtelAgentsError": "otel_agents.errors",
    "Intervention": "otel_agents.errors",
    "Observer": "otel_agents.runtime",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
