"""Agent-framework integrations: each maps a framework's own callbacks onto the invocation
core (`otel_agents.core.handler`) and is switched on like a client adapter (see
`otel_agents.adapters.ADAPTERS`), only when its framework is installed."""
