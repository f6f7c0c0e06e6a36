"""Generic recorders: agent runs, tool executions, handoffs, decisions (and LLM calls)."""
