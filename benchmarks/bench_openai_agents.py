"""Overhead of tracing an OpenAI Agents SDK run: one agent step (a model call that asks for
a tool, the tool call, the model's answer), side by side:

- `sdk-off`: the SDK with its tracing disabled (`set_tracing_disabled(True)`): the baseline;
- `sdk-default`: the SDK's own tracing as it ships (its `BatchTraceProcessor`), with the
  export to OpenAI replaced by one that discards (no network; the batching thread runs);
- `otel-agents`: our processor and wrappers only (the SDK's export off), spans to the real
  OpenTelemetry SDK with an exporter that discards;
- `otel-agents+sdk`: ours beside the SDK's default processor, what `instrument()` gives an
  application that leaves the SDK's export on;
- `openinference`: `openinference-instrumentation-openai-agents` (its processor only, the
  SDK's export off), on the same TracerProvider setup. Not installed in the project's
  environment: run from the peers' virtualenv (benchmarks/README.md) or its row says so.

    python benchmarks/bench_openai_agents.py [--runs N] [--repeat R] [--variants ...]
    python benchmarks/bench_openai_agents.py --callgrind 5,25 [--variants ...]

The real SDK and the real `openai` client over an in-process mock transport. Each round runs
every variant once, in turn (so a neighbour's load hits all of them alike); a variant's
figure is its best round, in wall-clock and CPU milliseconds per run, and that as a ratio to
`sdk-off`. CPU time counts every thread of the process (the SDK's batching thread too).

With `--callgrind N1,N2` it counts instructions instead, which the machine's load does not
move: each variant runs in a fresh process under valgrind's callgrind, once with N1 and once
with N2 runs after the same warm-up, and (Ir(N2) - Ir(N1)) / (N2 - N1) is the count per run
(the whole process: the SDK's batching thread and the export at shutdown included).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx2
import openai
from agents import (
    Agent,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_trace_processors,
    set_tracing_disabled,
)
from agents.tracing.processor_interface import TracingExporter
from agents.tracing.processors import BatchTraceProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import otel_agents
from otel_agents.integrations import openai_agents

VARIANTS = ("sdk-off", "sdk-default", "otel-agents", "otel-agents+sdk", "openinference")


EXPORTED = [0]  # spans (or SDK traces and spans) the variants exported, for spans per run


class DiscardingExporter(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        EXPORTED[0] += len(spans)
        return SpanExportResult.SUCCESS


class DiscardingTracingExporter(TracingExporter):
    """The SDK's exporter interface, discarding: its default export minus the network."""

    def export(self, items: list[Any]) -> None:
        EXPORTED[0] += len(items)


def _body(output: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "resp_1", "object": "response", "created_at": 0, "status": "completed",
        "model": "gpt-4o-mini", "output": output, "parallel_tool_calls": True,
        "tool_choice": "auto", "tools": [],
        "usage": {"input_tokens": 20, "output_tokens": 5, "total_tokens": 25,
                  "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens_details": {"reasoning_tokens": 0}},
    }  # fmt: skip


TOOL_CALL = _body(
    [{"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
      "arguments": json.dumps({"city": "Paris"}), "status": "completed"}]
)  # fmt: skip
ANSWER = _body(
    [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
      "content": [{"type": "output_text", "text": "Sunny.", "annotations": []}]}]
)  # fmt: skip


def scripted(request: httpx2.Request) -> httpx2.Response:
    asked_tool = b"function_call_output" in request.content
    return httpx2.Response(200, json=ANSWER if asked_tool else TOOL_CALL)


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


def make_agent() -> Agent[Any]:
    client = openai.AsyncOpenAI(
        api_key="sk-bench",
        base_url="https://api.openai.test/v1",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(scripted)),
    )
    return Agent(
        name="weather",
        tools=[get_weather],
        model=OpenAIResponsesModel(model="gpt-4o-mini", openai_client=client),
    )


def measure(agent: Agent[Any], runs: int) -> tuple[float, float]:
    """Milliseconds per run, wall clock and CPU, over `runs` runs."""

    async def loop() -> None:
        for _ in range(runs):
            result = await Runner.run(agent, "Weather in Paris?")
            assert result.final_output == "Sunny."

    wall, cpu = time.perf_counter(), time.process_time()
    asyncio.run(loop())
    return (time.perf_counter() - wall) / runs * 1e3, (time.process_time() - cpu) / runs * 1e3


# -- variants: each sets itself up and returns its teardown -----------------------------------

Teardown = Callable[[], None]


def _provider() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(DiscardingExporter()))
    return provider


def _sdk_default() -> Teardown:
    processor = BatchTraceProcessor(DiscardingTracingExporter())
    set_trace_processors([processor])
    return processor.shutdown


def _otel_agents(with_sdk_default: bool) -> Teardown:
    otel_agents.instrument(
        tracer_provider=_provider(), meter_provider=MeterProvider(), configure_sdk=False
    )
    ours = openai_agents.processor()
    assert ours is not None
    sdk = BatchTraceProcessor(DiscardingTracingExporter()) if with_sdk_default else None
    set_trace_processors([p for p in (sdk, ours) if p is not None])  # type: ignore[misc]

    def teardown() -> None:
        otel_agents.uninstrument()
        if sdk is not None:
            sdk.shutdown()

    return teardown


def _openinference() -> Teardown | None:
    try:
        importlib.util.find_spec("openinference.instrumentation.openai_agents")
    except ModuleNotFoundError:
        return None
    from agents.tracing import get_trace_provider
    from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

    instrumentor = OpenAIAgentsInstrumentor()
    instrumentor.instrument(tracer_provider=_provider())
    registered = get_trace_provider()._multi_processor._processors  # type: ignore[attr-defined]
    theirs = [p for p in registered if type(p).__module__.startswith("openinference")]
    set_trace_processors(theirs)
    return instrumentor.uninstrument  # type: ignore[no-any-return]


def set_up(variant: str) -> Teardown | None:
    """Start `variant`; its teardown, or None when it is not installed."""
    set_tracing_disabled(variant == "sdk-off")
    set_trace_processors([])
    if variant == "sdk-off":
        return lambda: None
    if variant == "sdk-default":
        return _sdk_default()
    if variant in ("otel-agents", "otel-agents+sdk"):
        return _otel_agents(with_sdk_default=variant == "otel-agents+sdk")
    return _openinference()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--callgrind", metavar="N1,N2", help="count instructions instead")
    parser.add_argument("--single", choices=VARIANTS, help=argparse.SUPPRESS)  # a child
    options = parser.parse_args()
    variants = ["sdk-off", *(v for v in options.variants if v != "sdk-off")]
    if options.single:
        _run_single(options.single, options.runs)
    elif options.callgrind:
        n1, n2 = (int(n) for n in options.callgrind.split(","))
        _print_instructions(variants, {v: _instructions(v, n1, n2) for v in variants})
    else:
        _time_variants(variants, options.runs, options.repeat)


def _time_variants(variants: list[str], runs: int, repeat: int) -> None:
    agent = make_agent()
    best: dict[str, tuple[float, float]] = {}
    spans: dict[str, float] = {}
    missing: set[str] = set()
    for _ in range(repeat):
        for variant in variants:
            if variant in missing:
                continue
            exported_before = EXPORTED[0]
            teardown = set_up(variant)
            if teardown is None:
                missing.add(variant)
                continue
            warmup = max(runs // 10, 1)
            try:
                measure(agent, warmup)
                wall, cpu = measure(agent, runs)
            finally:
                teardown()  # flushes what a batching processor still held
            spans[variant] = (EXPORTED[0] - exported_before) / (warmup + runs)
            old = best.get(variant, (float("inf"), float("inf")))
            best[variant] = (min(old[0], wall), min(old[1], cpu))
    set_tracing_disabled(False)
    _print(variants, best, spans, missing)


WARMUP_RUNS = 5


def _run_single(variant: str, runs: int) -> None:
    """A child under callgrind: set up, warm up, `runs` runs, tear down; exit 2 when the
    variant is not installed."""
    teardown = set_up(variant)
    if teardown is None:
        sys.exit(2)
    agent = make_agent()
    measure(agent, WARMUP_RUNS)
    measure(agent, runs)
    teardown()


def _instructions(variant: str, n1: int, n2: int) -> float | None:
    """Instructions per run of `variant` (None when it is not installed)."""
    from callgrind import instructions_per_call

    return instructions_per_call(
        lambda runs: [sys.executable, __file__, "--single", variant, "--runs", str(runs)], n1, n2
    )


def _print_instructions(variants: list[str], counts: dict[str, float | None]) -> None:
    base = counts["sdk-off"]
    assert base is not None
    print("| variant | instructions/run | added over sdk-off | x sdk-off |")
    print("|---|---:|---:|---:|")
    for variant in variants:
        count = counts[variant]
        if count is None:
            print(f"| {variant} | not installed | | |")
            continue
        print(f"| {variant} | {count:,.0f} | {count - base:,.0f} | {count / base:.2f} |")


def _print(
    variants: list[str],
    best: dict[str, tuple[float, float]],
    spans: dict[str, float],
    missing: set[str],
) -> None:
    base_wall, base_cpu = best["sdk-off"]
    print("| variant | spans/run | wall ms/run | CPU ms/run | wall / sdk-off | CPU / sdk-off |")
    print("|---|---:|---:|---:|---:|---:|")
    for variant in variants:
        if variant in missing:
            print(f"| {variant} | not installed | | | | |")
            continue
        wall, cpu = best[variant]
        ratios = f"{wall / base_wall:.2f} | {cpu / base_cpu:.2f}"
        print(f"| {variant} | {spans[variant]:.1f} | {wall:.2f} | {cpu:.2f} | {ratios} |")


if __name__ == "__main__":
    main()
