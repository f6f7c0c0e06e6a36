"""Overhead of a traced tool call, against the bare function and a hand-written floor.

    python benchmarks/bench_tool_call.py [--calls N] [--repeat R]

All variants run side by side in one process on the real OpenTelemetry SDK: a
`TracerProvider` with a `SimpleSpanProcessor` and an exporter that keeps nothing (we measure
recording, not exporting) and a `MeterProvider` with an in-memory reader. Each timed loop of
N calls ends with one metric collection, and its time is part of the loop's: otel-agents
records its histogram points at collection (`deferred_metrics.py`), so leaving collection
out would leave out their cost. Each row is the best of R loops.

The floor is what a hand-written instrumentation of the same call records: one span with
the same six attributes, one `gen_ai.execute_tool.duration`-style histogram point and one
tool-call counter increment (the metric points otel-agents records for a tool call).
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
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


def best_of(
    repeat: int, calls: int, body: Callable[[], object], reader: InMemoryMetricReader
) -> float:
    """Microseconds per call: the best of `repeat` timed loops (least disturbed), each
    ending with a metric collection."""
    reader.collect()
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(calls):
            body()
        reader.collect()
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
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    meter = meter_provider.get_meter("bench")
    duration = meter.create_histogram("floor.execute_tool.duration", "s")
    tool_calls = meter.create_counter("floor.tool.calls")
    point_attributes = {
        sc.GEN_AI_OPERATION_NAME: "execute_tool",
        sc.GEN_AI_TOOL_NAME: "create_account",
        sc.GEN_AI_TOOL_TYPE: "function",
    }

    def floor() -> object:
        started = time.monotonic()
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
            result = create_account("v1")
        duration.record(time.monotonic() - started, point_attributes)
        tool_calls.add(1, point_attributes)
        return result

    def timed(body: Callable[[], object]) -> float:
        return best_of(options.repeat, options.calls, body, reader)

    rows: list[tuple[str, float]] = [
        ("bare function", timed(lambda: create_account("v1"))),
        ("floor: hand-written span (6 attributes), histogram point, counter add", timed(floor)),
    ]
    for label, capture in (("content off", "NO_CONTENT"), ("content on", "SPAN_ONLY")):
        otel_agents.instrument(
            tracer_provider=provider,
            meter_provider=meter_provider,
            configure_sdk=False,
            capture_content=capture,
        )
        call_tool = functools.partial(otel_agents.tool(create_account), "v1")
        rows.append((f"@tool, no agent run, {label}", timed(call_tool)))
        with otel_agents.agent("bench"):
            rows.append((f"@tool inside an agent run, {label}", timed(call_tool)))
        otel_agents.uninstrument()

    bare, floor_micros = rows[0][1], rows[1][1]
    print(f"tool-call overhead, best of {options.repeat} x {options.calls} calls")
    print("(each loop includes one metric collection: deferred points are recorded there)\n")
    print("| variant | µs per call | added over bare function | added ÷ floor's added |")
    print("|---|---:|---:|---:|")
    for label, micros in rows:
        ratio = (micros - bare) / (floor_micros - bare)
        print(f"| {label} | {micros:.2f} | {micros - bare:.2f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
