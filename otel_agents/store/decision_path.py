"""A run's spans as its decision path: a tree of agents, LLM decisions, the tool calls
each decision led to, approvals, handoffs, errors and detector findings.

The tree follows the spans' parent links, with one change that makes decisions readable:
a tool call that links to the LLM call which requested it (and sits next to it) is moved
under that LLM call. `PathNode.to_json()` is the machine form of `otel-agents show`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from otel_agents import semconv as sc
from otel_agents.store.records import SpanRow

AGENT, LLM, TOOL, APPROVAL, HANDOFF, OTHER = "agent", "llm", "tool", "approval", "handoff", "span"


@dataclass
class PathNode:
    kind: str
    span: SpanRow
    children: list[PathNode] = field(default_factory=list)
    requested_by: str | None = None  # for a tool: the span id of the LLM call that asked

    @property
    def title(self) -> str:
        """The span's subject: agent, model, tool or receiving agent name."""
        span = self.span
        if self.kind == AGENT:
            return str(span.get(sc.GEN_AI_AGENT_NAME) or span.name.partition(" ")[2])
        if self.kind == LLM:
            return str(
                span.get(sc.GEN_AI_RESPONSE_MODEL) or span.get(sc.GEN_AI_REQUEST_MODEL) or span.name
            )
        if self.kind in (TOOL, APPROVAL):
            return str(span.get(sc.GEN_AI_TOOL_NAME) or span.name.partition(" ")[2])
        if self.kind == HANDOFF:
            return str(span.get(sc.HANDOFF_TO) or span.name.partition(" ")[2])
        return span.name

    def walk(self) -> list[PathNode]:
        """This node and all below it, in display order."""
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes

    def details(self) -> dict[str, Any]:
        return _DETAILS[self.kind](self.span)

    def findings(self) -> list[dict[str, Any]]:
        found = []
        for event in self.span.events_named(sc.EVENT_ANOMALY):
            attributes = event.get("attributes") or {}
            found.append(
                {
                    "detector": attributes.get(sc.DETECTOR_NAME),
                    "message": attributes.get(sc.DETECTOR_MESSAGE),
                    "threshold": attributes.get(sc.DETECTOR_THRESHOLD),
                    "observed": attributes.get(sc.DETECTOR_OBSERVED),
                }
            )
        return found

    def error(self) -> dict[str, Any] | None:
        span = self.span
        for event in span.events_named("exception"):
            attributes = event.get("attributes") or {}
            return {
                "type": attributes.get("exception.type") or span.get(sc.ERROR_TYPE),
                "message": attributes.get("exception.message"),
            }
        if span.status == "error":
            return {"type": span.get(sc.ERROR_TYPE), "message": span.status_message}
        return None

    def to_json(self) -> dict[str, Any]:
        span = self.span
        data: dict[str, Any] = {
            "kind": self.kind,
            "name": span.name,
            "title": self.title,
            "span_id": span.span_id,
            "start": iso_time(span.start_ns),
            "duration_ms": round(span.duration_ns / 1e6, 3),
            "status": "open" if span.open else span.status,
            **self.details(),
        }
        if span.open:  # started, never recorded as ended: duration is up to when last seen
            data["open"] = True
        if self.requested_by:
            data["requested_by"] = self.requested_by
        error = self.error()
        if error:
            data["error"] = error
        findings = self.findings()
        if findings:
            data["findings"] = findings
        data["children"] = [child.to_json() for child in self.children]
        return data


def build(spans: list[SpanRow]) -> list[PathNode]:
    """The decision path of a run's spans: the root nodes, children in start order."""
    nodes = {span.span_id: PathNode(_kind(span), span) for span in spans}
    roots: list[PathNode] = []
    for node in sorted(nodes.values(), key=lambda n: (n.span.start_ns, n.span.end_ns)):
        parent = nodes.get(node.span.parent_span_id or "")
        (parent.children if parent is not None else roots).append(node)
    for children in [roots, *(node.children for node in list(nodes.values()))]:
        _group_tools_under_decisions(children)
    return roots


def _group_tools_under_decisions(children: list[PathNode]) -> None:
    """Move each tool call under the sibling LLM call that requested it (span link)."""
    llm_by_id = {c.span.span_id: c for c in children if c.kind == LLM}
    if not llm_by_id:
        return
    kept: list[PathNode] = []
    for child in children:
        decision = _requester(child, llm_by_id)
        if decision is not None:
            child.requested_by = decision.span.span_id
            decision.children.append(child)
            decision.children.sort(key=lambda n: (n.span.start_ns, n.span.end_ns))
        else:
            kept.append(child)
    children[:] = kept


def _requester(node: PathNode, llm_by_id: dict[str, PathNode]) -> PathNode | None:
    if node.kind != TOOL:
        return None
    for link in node.span.links:
        found = llm_by_id.get(str(link.get("span_id")))
        if found is not None and link.get("trace_id") == node.span.trace_id:
            return found
    return None


def _kind(span: SpanRow) -> str:
    if span.is_agent:
        return AGENT
    if span.is_llm:
        return LLM
    if span.is_tool:
        return TOOL
    if span.is_approval:
        return APPROVAL
    if span.is_handoff:
        return HANDOFF
    return OTHER


# -- per-kind details -----------------------------------------------------------------------


def _agent(span: SpanRow) -> dict[str, Any]:
    data: dict[str, Any] = {"agent": span.get(sc.GEN_AI_AGENT_NAME)}
    if span.is_run_root:
        data["run_totals"] = {
            "cost_usd": span.get(sc.RUN_COST_USD),
            "input_tokens": span.get(sc.RUN_USAGE_INPUT_TOKENS),
            "output_tokens": span.get(sc.RUN_USAGE_OUTPUT_TOKENS),
            "llm_calls": span.get(sc.RUN_LLM_CALLS),
            "tool_calls": span.get(sc.RUN_TOOL_CALLS),
            "handoffs": span.get(sc.RUN_HANDOFFS),
            "retries": span.get(sc.RUN_RETRIES),
            "anomalies": span.get(sc.RUN_ANOMALIES),
        }
    return data


def _llm(span: SpanRow) -> dict[str, Any]:
    reasoning, text, requested = _read_output(span.content(sc.GEN_AI_OUTPUT_MESSAGES))
    return {
        "provider": span.get(sc.GEN_AI_PROVIDER_NAME),
        "model": span.get(sc.GEN_AI_RESPONSE_MODEL) or span.get(sc.GEN_AI_REQUEST_MODEL),
        "input_tokens": span.get(sc.GEN_AI_USAGE_INPUT_TOKENS),
        "output_tokens": span.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS),
        "cost_usd": span.get(sc.COST_USD),
        "finish_reasons": span.get(sc.GEN_AI_RESPONSE_FINISH_REASONS),
        "attempts": span.get(sc.LLM_ATTEMPTS),
        "reasoning": reasoning,
        "text": text,
        "requested_tools": requested,
    }


def _tool(span: SpanRow) -> dict[str, Any]:
    return {
        "tool": span.get(sc.GEN_AI_TOOL_NAME),
        "call_id": span.get(sc.GEN_AI_TOOL_CALL_ID),
        "arguments": span.content(sc.GEN_AI_TOOL_CALL_ARGUMENTS),
        "arguments_summary": span.get(sc.TOOL_CALL_ARGUMENTS_SUMMARY),
        "result": span.content(sc.GEN_AI_TOOL_CALL_RESULT),
        "reasoning": span.content(sc.DECISION_REASONING),
        "reasoning_source": span.get(sc.DECISION_REASONING_SOURCE),
        "match": span.get(sc.DECISION_MATCH),
        "attempt": span.get(sc.TOOL_CALL_ATTEMPT),
        "policy": _present(
            {
                "verdict": span.get(sc.POLICY_VERDICT),
                "rule": span.get(sc.POLICY_RULE),
                "reason": span.get(sc.POLICY_REASON),
                "mode": span.get(sc.POLICY_MODE),
            }
        ),
        "contract": _present(
            {
                "status": span.get(sc.CONTRACT_STATUS),
                "violation": span.get(sc.CONTRACT_VIOLATION),
            }
        ),
        "mcp": _mcp(span),
    }


# What `gen_ai.tool.type` the MCP adapter gives a call's client side (the server side runs
# a `function` of its own).
_MCP_CLIENT_TOOL_TYPE = "extension"


def _mcp(span: SpanRow) -> dict[str, Any] | None:
    """An MCP tools/call: which side (the client's call or the server's run of it), the
    server, the transport and the session and request ids."""
    if span.get(sc.MCP_METHOD_NAME) is None:
        return None
    client = span.get(sc.GEN_AI_TOOL_TYPE) == _MCP_CLIENT_TOOL_TYPE
    return _present(
        {
            "side": "client" if client else "server",
            "server": span.get(sc.MCP_SERVER_NAME),
            "transport": span.get(sc.NETWORK_TRANSPORT),
            "session_id": span.get(sc.MCP_SESSION_ID),
            "request_id": span.get(sc.JSONRPC_REQUEST_ID),
            "protocol_version": span.get(sc.MCP_PROTOCOL_VERSION),
        }
    )


def _approval(span: SpanRow) -> dict[str, Any]:
    return {
        "approval_status": span.get(sc.APPROVAL_STATUS),
        "approver": span.get(sc.APPROVAL_APPROVER),
        "channel": span.get(sc.APPROVAL_CHANNEL),
        "wait_s": span.get(sc.APPROVAL_WAIT_DURATION),
        "reason": span.get(sc.APPROVAL_REASON),
    }


def _handoff(span: SpanRow) -> dict[str, Any]:
    return {
        "from": span.get(sc.HANDOFF_FROM),
        "to": span.get(sc.HANDOFF_TO),
        "accepted": span.get(sc.HANDOFF_ACCEPTED),
        "reason": span.get(sc.HANDOFF_REASON),
        "checks_passed": span.get(sc.HANDOFF_CHECKS_PASSED) or [],
        "checks_failed": span.get(sc.HANDOFF_CHECKS_FAILED) or [],
        "payload_summary": span.get(sc.HANDOFF_PAYLOAD_SUMMARY),
        "payload": span.content(sc.HANDOFF_PAYLOAD),
    }


def _other(span: SpanRow) -> dict[str, Any]:
    return {"span_kind": span.kind}


_DETAILS = {
    AGENT: _agent,
    LLM: _llm,
    TOOL: _tool,
    APPROVAL: _approval,
    HANDOFF: _handoff,
    OTHER: _other,
}


def _present(values: dict[str, Any]) -> dict[str, Any] | None:
    kept = {k: v for k, v in values.items() if v is not None}
    return kept or None


def _read_output(raw: Any) -> tuple[str | None, str | None, list[str]]:
    """(reasoning, visible text, requested tool names) from `gen_ai.output.messages`.

    Captured content may have been cut to the configured length; then it is no longer
    JSON and the raw text is returned as the visible text.
    """
    if raw is None:
        return None, None, []
    try:
        messages = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None, str(raw), []
    reasoning: list[str] = []
    text: list[str] = []
    tools: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        for part in message.get("parts", []) if isinstance(message, dict) else []:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "reasoning" and part.get("content"):
                reasoning.append(str(part["content"]))
            elif kind == "text" and part.get("content"):
                text.append(str(part["content"]))
            elif kind == "tool_call" and part.get("name"):
                tools.append(str(part["name"]))
    return ("\n".join(reasoning) or None, "\n".join(text) or None, tools)


def iso_time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="milliseconds")
