"""Does the cost stay flat as runs grow long and many?

    python benchmarks/bench_scaling.py [--turns 5000] [--runs 100000] [--block 500]

Three measurements on the real OpenTelemetry SDK (spans dropped by the exporter, metrics
collected periodically by a reader on its own thread, as in production):

- **Turns in one run.** One `otel_agents.agent` run doing `--turns` turns, each an LLM call
  (the core's inference invocation, with a response that asks for one tool call) and the
  `@tool` execution that answers it. CPU per turn, per block of `--block` turns: a ledger
  or a detector that grows with the run would make later blocks dearer.
- **Many runs.** `--runs` short runs (one turn each) one after another: traced memory
  (tracemalloc) after each block. State kept per run and never released would grow it.
- **Content capture per message.** The same turn with content capture on and off, with
  the input history growing by one 225-character message per turn: the cost of capture per
  message carried.

The figures are printed as Markdown tables; no test depends on them.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import otel_agents
from otel_agents.core import handler
from otel_agents.core.inference import LLMRequest, LLMResponse
from otel_agents.core.requests import ToolCallRequest
from otel_agents.pricing import TokenUsage

MESSAGE = ("The vendor record lists a tax id, a bank account and a billing contact. " * 4)[:225]


class DropSpans(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class DropMetrics(MetricExporter):
    def __init__(self) -> None:
        super().__init__(preferred_temporality={})

    def export(
        self, metrics_data: object, timeout_millis: float = 0, **kwargs: object
    ) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 0) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 0, **kwargs: object) -> None:
        return None


def set_up(capture: str) -> None:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(DropSpans()))
    reader = PeriodicExportingMetricReader(DropMetrics(), export_interval_millis=1000)
    otel_agents.instrument(
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
        configure_sdk=False,
        capture_content=capture,
    )


@otel_agents.tool
def lookup(vendor_id: str) -> dict[str, str]:
    return {"vendor_id": vendor_id, "status": "active"}


def one_turn(turn: int, history: list[dict[str, object]] | None = None) -> None:
    request = LLMRequest(provider="openai", model="gpt-4o-mini", input_messages=history)
    call = handler.start_inference(request)
    if call is not None:
        arguments = f'{{"vendor_id": "v{turn}"}}'
        handler.stop_inference(
            call,
            LLMResponse(
                response_model="gpt-4o-mini",
                usage=TokenUsage(input_tokens=200, output_tokens=20),
                tool_calls=[ToolCallRequest(f"call_{turn}", "lookup", arguments)],
                finish_reasons=["tool_call"],
            ),
        )
    lookup(f"v{turn}")


def per_block(turns: int, block: int, work: Callable[[int], None]) -> list[float]:
    """µs of CPU (this thread) per turn, per block of turns."""
    costs: list[float] = []
    for start in range(0, turns, block):
        began = time.thread_time()
        for turn in range(start, start + block):
            work(turn)
        costs.append((time.thread_time() - began) / block * 1e6)
    return costs


def turns_in_one_run(turns: int, block: int) -> list[float]:
    with otel_agents.agent("long-runner"):
        return per_block(turns, block, one_turn)


def many_runs(runs: int, block: int) -> list[float]:
    """Traced MB after each block of runs."""
    gc.collect()
    tracemalloc.start()
    sizes: list[float] = []
    for start in range(0, runs, block):
        for run in range(start, start + block):
            with otel_agents.agent("short-runner"):
                one_turn(run)
        gc.collect()
        sizes.append(tracemalloc.get_traced_memory()[0] / 1e6)
    tracemalloc.stop()
    return sizes


def capture_cost(turns: int, capture: str) -> float:
    """µs per turn with a history that grows by one message per turn."""
    set_up(capture)
    history: list[dict[str, object]] = []

    def turn(index: int) -> None:
        history.append({"role": "user", "parts": [{"type": "text", "content": MESSAGE}]})
        one_turn(index, history)

    with otel_agents.agent("chatty"):
        return statistics.mean(per_block(turns, turns, turn))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--block", type=int, default=500)
    parser.add_argument("--capture-turns", type=int, default=200)
    options = parser.parse_args()

    set_up("NO_CONTENT")
    costs = turns_in_one_run(options.turns, options.block)
    print(f"## {options.turns} turns in one run: µs of CPU per turn, per {options.block} turns\n")
    print("| turns | µs/turn |\n|---:|---:|")
    for index, cost in enumerate(costs):
        print(f"| {(index + 1) * options.block} | {cost:.1f} |")
    print(f"\nlast block ÷ first block: {costs[-1] / costs[0]:.2f}\n")

    run_block = max(options.runs // 10, 1)
    sizes = many_runs(options.runs, run_block)
    print(f"## {options.runs} runs of one turn: traced memory after each {run_block} runs\n")
    print("| runs | MB |\n|---:|---:|")
    for index, size in enumerate(sizes):
        print(f"| {(index + 1) * run_block} | {size:.2f} |")
    print(f"\nlast ÷ first: {sizes[-1] / sizes[0]:.2f}\n")

    off = capture_cost(options.capture_turns, "NO_CONTENT")
    on = capture_cost(options.capture_turns, "SPAN_ONLY")
    messages = options.capture_turns / 2  # the history's mean length over the run
    print(f"## content capture, history growing to {options.capture_turns} messages\n")
    print("| capture | µs/turn |\n|---|---:|")
    print(f"| off | {off:.1f} |\n| on (span attributes) | {on:.1f} |")
    print(f"\ncapture costs {(on - off) / messages:.2f} µs per 225-character message carried")


if __name__ == "__main__":
    main()
