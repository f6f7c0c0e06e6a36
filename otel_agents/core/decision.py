"""Attaching the reasoning behind a decision to the action it led to.

The LLM adapters call `note_tool_requests` for every tool call a model asks for; the
application can do the same by hand with `otel_agents.decision(...)`. When the tool later
runs, its `execute_tool` span picks the request up (see `core/tool.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanContext

from otel_agents import semconv as sc
from otel_agents.core.ledger import RunLedger, current_ledger
from otel_agents.core.requests import ToolCallRequest
from otel_agents.runtime import report_internal_error


def note_tool_requests(
    requests: Iterable[ToolCallRequest],
    requested_by: SpanContext,
    ledger: RunLedger | None = None,
) -> None:
    """Post tool calls that a span (an LLM call's, or the application's) asked for on the
    run's request board (of `ledger`, default: the current context's), for the tool spans
    that execute them."""
    try:
        ledger = ledger or current_ledger()
        if ledger is None:
            return
        for request in requests:
            request.requested_by = requested_by
            ledger.requests.post(request)
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
                ToolCallRequest(
                    call_id=tool_call_id,
                    name=tool_name,
                    arguments=arguments,
                    reasoning=reasoning,
                    reasoning_source=source,
                )
            ],
            trace.get_current_span().get_span_context(),
        )
    except Exception as exc:
        report_internal_error("decision", exc)
