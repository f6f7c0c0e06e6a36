"""Agent runs for the two-tier collector test, sent over OTLP by the real otel-agents SDK.

    OTEL_EXPORTER_OTLP_ENDPOINT=http://tier1:4318 python scale_out_workload.py --runs 40

Each run is one trace (a root `invoke_agent` span) of one of four kinds, in a fixed cycle:
`clean` (nothing to keep: only the probabilistic policy may sample it), `retry_loop` (the
same failing tool call three times), `error` (the run ends in an exception) and `deny` (the
policy denies a tool call). Prints one JSON line per run, `{"kind", "trace_id",
"span_ids"}`, with the span ids the SDK itself ended for that trace (counted by a span
processor beside the exporter), after every span has been exported.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections import defaultdict
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider

import otel_agents
from otel_agents.core.inference import LLMCall, LLMRequest, LLMResponse, ToolCallRequest
from otel_agents.errors import Intervention
from otel_agents.pricing import TokenUsage

KINDS = ("clean", "retry_loop", "clean", "error", "clean", "deny")
PRICES = {"gpt-4.1-mini": {"input": 0.4, "output": 1.6}}
POLICY = """
version: 1
mode: enforce
rules:
  - id: no-admin-grants
    match: {tool: grant_permission, arguments: {role: admin}}
    verdict: deny
    reason: admin roles need a security review
"""
# The retry-loop detector only: no baseline-driven finding may mark a clean run.
DETECTORS = {"enabled": ["retry_loop"]}


class SpansByTrace(SpanProcessor):
    """The ground truth: every span the SDK ended, by trace id."""

    def __init__(self) -> None:
        self.spans: dict[str, list[str]] = defaultdict(list)
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        context = span.get_span_context()
        assert context is not None
        with self._lock:
            self.spans[f"{context.trace_id:032x}"].append(f"{context.span_id:016x}")


@otel_agents.tool
def lookup_customer(customer_id: str) -> dict[str, str]:
    return {"customer_id": customer_id, "tier": "gold"}


@otel_agents.tool
def fetch_invoice(invoice_id: str) -> dict[str, str]:
    raise TimeoutError(f"billing API timed out for {invoice_id}")


@otel_agents.tool
def grant_permission(account_id: str, role: str) -> dict[str, str]:
    return {"account_id": account_id, "role": role}


_call_ids = iter(range(1, 1_000_000))


def model_turn(tools: list[tuple[str, dict[str, Any]]]) -> list[ToolCallRequest]:
    """One LLM call through the generic recorder; returns the tool calls it asked for."""
    calls = [
        ToolCallRequest(f"call_{next(_call_ids)}", name, json.dumps(args)) for name, args in tools
    ]
    call = LLMCall.start(LLMRequest(provider="openai", model="gpt-4.1-mini"))
    assert call is not None
    call.finish(
        LLMResponse(
            response_model="gpt-4.1-mini",
            finish_reasons=["tool_calls" if calls else "stop"],
            usage=TokenUsage(400, 60),
            tool_calls=calls,
        )
    )
    return calls


def act(calls: list[ToolCallRequest], tools: dict[str, Any]) -> None:
    """Run the requested tools as an agent loop does: failures go back to the model."""
    for call in calls:
        try:
            with otel_agents.tool_call_id(call.call_id):
                tools[call.name](**json.loads(call.arguments))
        except (Intervention, TimeoutError):
            pass


def run_once(kind: str, index: int) -> str:
    tools = {f.__name__: f for f in (lookup_customer, fetch_invoice, grant_permission)}
    try:
        with otel_agents.agent("scale-out-agent"):
            trace_id = f"{trace.get_current_span().get_span_context().trace_id:032x}"
            if kind == "clean":
                act(model_turn([("lookup_customer", {"customer_id": f"c-{index}"})]), tools)
            elif kind == "retry_loop":
                invoice = {"invoice_id": f"inv-{index}"}
                act(model_turn([("fetch_invoice", invoice)] * 3), tools)
            elif kind == "deny":
                act(
                    model_turn([("grant_permission", {"account_id": "a-1", "role": "admin"})]),
                    tools,
                )
            elif kind == "error":
                act(model_turn([("lookup_customer", {"customer_id": f"c-{index}"})]), tools)
                raise RuntimeError("the agent gave up")
            model_turn([])
    except RuntimeError:
        pass
    return trace_id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    runs = parser.parse_args().runs
    otel_agents.instrument(prices=PRICES, policy=POLICY, detectors=DETECTORS)
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider), "otel-agents did not set up the SDK"
    ground_truth = SpansByTrace()
    provider.add_span_processor(ground_truth)
    done = [(KINDS[i % len(KINDS)], run_once(KINDS[i % len(KINDS)], i)) for i in range(runs)]
    otel_agents.flush()
    provider.shutdown()  # every span exported (or failed loudly) before we report
    for kind, trace_id in done:
        line = {"kind": kind, "trace_id": trace_id, "span_ids": ground_truth.spans[trace_id]}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
