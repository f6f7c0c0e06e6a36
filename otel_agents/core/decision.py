"""Attaching the reasoning behind a decision to the action it led to.

The LLM adapters call `note_tool_requests` for every tool call a model asks for; the
application can do the same by hand with `otel_agents.decision(...)`. When the tool later
runs, its `execute_tool` span picks the request up (see `core/tool.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanContext

from otel_agents import semconv as sc
from otel_agents.core.ledger import (
    RequestedToolCall,
    RunLedger,
    canonical_arguments,
    current_ledger,
)
from otel_agents.runtime import report_internal_error


@dataclass(frozen=True)
class ToolRequest:
    """A tool call as a model asked for it, with the reasoning that came with it."""

    name: str | None  # None: whatever tool runs next
    call_id: str | None = None
    arguments: Any = None
    reasoning: str | None = None
    reasoning_source: str | None = None


def note_tool_requests(
    requests: Iterable[ToolRequest], requested_by: SpanContext, ledger: RunLedger | None = None
) -> None:
    """Remember tool calls an LLM span asked for, for the tool spans that execute them
    (in `ledger`, default: the current context's)."""
    try:
        ledger = ledger or current_ledger()
        if ledger is None:
            return
        for request in requests:
            ledger.note_requested_call(
                RequestedToolCall(
                    name=request.name,
                    call_id=request.call_id,
                    arguments_key=canonical_arguments(request.arguments),
                    reasoning=request.reasoning,
                    reasoning_source=request.reasoning_source,
                    requested_by=requested_by,
                )
            )
    except Exception as exc:
        report_internal_error("note tool requests", exc)


def decision(
    reasoning: str,
    *,
    tool_name: str | None = None,
    tool_call_id: str | None = None,
    arguments: Any = None,
    source: str = sc.DecisionReasoningSourceValues.APPLICATION,
) -> None:
    """Record why the agent is about to act, for the tool call that acts on it.

    Name the tool (and optionally its call id or arguments) to target one call; with
    neither, the reasoning goes to the next tool executed in this run. The tool span links
    back to the span that was current here, and carries the reasoning as content.

    >>> otel_agents.decision("Vendor is new and verified; create the account",
    ...                      tool_name="create_account")
    """
    try:  # a boundary: nothing of ours may fail into the application
        note_tool_requests(
            [
                ToolRequest(
                    name=tool_name,
                    call_id=tool_call_id,
                    arguments=arguments,
                    reasoning=reasoning,
                    reasoning_source=source,
                )
            ],
            trace.get_current_span().get_span_context(),
        )
    except Exception as exc:
        report_internal_error("decision", exc)
