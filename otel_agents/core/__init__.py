"""The invocation core: what every adapter and integration records through.

`invocation.Invocation` owns a span's life; its kinds are `inference.LLMCall`,
`tool.ToolInvocation`, `agent.AgentRun` and `handoff.Handoff`. `handler` starts, stops and
fails them for integrations driven by callbacks. The run ledger (`ledger`, `requests`,
`arguments`) links what a model asked for to what ran, counts attempts and keeps totals.
"""
