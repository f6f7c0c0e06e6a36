"""Overhead of a traced tool call, against the bare function and a bare OTel span.

    python benchmarks/bench_tool_call.py [--calls N] [--repeat R]

All variants run side by side in one process on the real OpenTelemetry SDK, with a span
processor that keeps nothing (so we measure recording, not exporting). Each row is the best
of R repeats of N calls; ratios are against the bare OTel span with the same attributes,
the floor any OpenTelemetry instrumentation pays.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

import otel_agents
from otel_agents import semconv as sc


class DiscardingExporter(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def create_account(vendor_id: str, plan: str = "basic") -> dict[str, str]:
    return {"account": f"acct-{vendor_id}", "plan": plan}


def best_of(repeat: int, calls: int, body: Callable[[], object]) -> float:
    """Microseconds per call: the best of `repeat` timed loops (least disturbed)."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(calls):
            body()
        timings.append((time.perf_counter() - started) / calls * 1e6)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    options = parser.parse_args()

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(DiscardingExporter()))
    tracer = provider.get_tracer("bench")

    def bare_span() -> object:
        with tracer.start_as_current_span(
            "execute_tool create_account",
            kind=SpanKind.INTERNAL,
            attributes={
                sc.GEN_AI_OPERATION_NAME: "execute_tool",
                sc.GEN_AI_TOOL_NAME: "create_account",
                sc.GEN_AI_TOOL_TYPE: "function",
                sc.TOOL_CALL_ATTEMPT: 1,
                sc.TOOL_CALL_FINGERPRINT: "0123456789abcdef",
                sc.RUN_ID: "0" * 32,
            },
        ):
            return create_account("v1")

    rows: list[tuple[str, float]] = [
        ("bare function", best_of(options.repeat, options.calls, lambda: create_account("v1"))),
        (
            "bare OTel span, same attributes (floor)",
            best_of(options.repeat, options.calls, bare_span),
        ),
    ]
    for label, capture in (("content off", "NO_CONTENT"), ("content on", "SPAN_ONLY")):
        otel_agents.instrument(
            tracer_provider=provider, configure_sdk=False, capture_content=capture
        )
        call_tool = functools.partial(otel_agents.tool(create_account), "v1")
        outside = best_of(options.repeat, options.calls, call_tool)
        rows.append((f"@tool, no agent run, {label}", outside))
        with otel_agents.agent("bench"):
            inside = best_of(options.repeat, options.calls, call_tool)
        rows.append((f"@tool inside an agent run, {label}", inside))
        otel_agents.uninstrument()

    floor = rows[1][1]
    print(f"tool-call overhead, best of {options.repeat} x {options.calls} calls\n")
    print("| variant | µs per call | added over bare function | ratio to bare OTel span |")
    print("|---|---:|---:|---:|")
    bare = rows[0][1]
    for label, micros in rows:
        print(f"| {label} | {micros:.2f} | {micros - bare:.2f} | {micros / floor:.2f}x |")


if __name__ == "__main__":
    main()
