"""Measure the local store: write throughput, app-thread cost per span, size per 1000 spans.

    python benchmarks/bench_store.py

Spans are real: an agent run whose tool calls follow LLM calls made through the generic
LLM-call recorder, on the real SDK. Three measurements:

1. write throughput: `StoreExporter.export` of 512-span batches (what the background
   thread does), spans per second;
2. app-thread cost: time per tool call in the application thread with the store's batch
   processor attached, minus the same with no processor at all;
3. store size per 1000 spans, with content capture off and on;
4. the writer's CPU per span (what the background thread spends converting and writing a
   512-span batch) against the CPU of creating that span in the application (the agent
   run, LLM and tool recorders on the real SDK, spans dropped): `--writer` runs only this,
   `--writer --callgrind` counts it in instructions under callgrind;
5. the store processor's `on_start` alone (recording span starts for the crash view), per
   span: CPU instructions in the application thread (stable on a shared machine; needs
   Linux perf events) and microseconds.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_agents
from otel_agents.core.inference import LLMCall, LLMRequest, LLMResponse, ToolCallRequest
from otel_agents.pricing import TokenUsage
from otel_agents.store import retention, schema
from otel_agents.store.exporter import StoreExporter, StoreSpanProcessor
from otel_agents.store.settings import StoreSettings


@contextlib.contextmanager
def instrumented(provider: TracerProvider, capture: str) -> Iterator[None]:
    """otel-agents on, recording into `provider`; detectors off, so that runs are alike."""
    otel_agents.instrument(
        tracer_provider=provider, configure_sdk=False, capture_content=capture, detectors=False
    )
    try:
        yield
    finally:
        otel_agents.uninstrument()


@otel_agents.tool
def lookup(vendor_id: str, fields: list[str]) -> dict[str, object]:
    return {"vendor_id": vendor_id, "name": "Acme Robotics GmbH", "fields": fields, "ok": True}


def one_run(turns: int) -> None:
    with otel_agents.agent("bench"):
        for i in range(turns):
            call = LLMCall.start(LLMRequest(provider="openai", model="gpt-4.1-mini"))
            assert call is not None
            request = ToolCallRequest(f"call_{i}", "lookup", f'{{"vendor_id": "V-{i}"}}')
            call.finish(
                LLMResponse(
                    response_model="gpt-4.1-mini",
                    finish_reasons=["tool_calls"],
                    usage=TokenUsage(420, 35),
                    tool_calls=[request],
                    text="Looking the vendor up before deciding.",
                )
            )
            with otel_agents.tool_call_id(f"call_{i}"):
                lookup(f"V-{i}", ["name", "iban", "tax_id"])


def realistic_spans(count: int, capture: str) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with instrumented(provider, capture=capture):
        while len(memory.get_finished_spans()) < count:
            one_run(turns=10)  # 21 spans per run
    return list(memory.get_finished_spans())[:count]


def write_throughput(directory: Path, spans: list[ReadableSpan]) -> float:
    exporter = StoreExporter(
        StoreSettings(path=directory / "throughput.db", max_age_days=0, max_mb=0)
    )
    batches = [spans[i : i + 512] for i in range(0, len(spans), 512)]
    exporter.export(batches[0])  # create the file first
    started = time.perf_counter()
    for batch in batches[1:]:
        exporter.export(batch)
    elapsed = time.perf_counter() - started
    exporter.shutdown()
    return sum(len(b) for b in batches[1:]) / elapsed


def on_start_cost(directory: Path, spans: int = 20_000) -> tuple[float | None, float]:
    """(instructions, µs) per span of `StoreSpanProcessor.on_start`, for agent and tool
    spans alike, while the background writer waits (its own thread is not counted)."""
    from instructions import InstructionCounter

    tracer = TracerProvider().get_tracer("bench")  # no processors: starts cost us nothing
    names = ("invoke_agent bench", "execute_tool lookup", "chat gpt-4.1-mini")
    started = [tracer.start_span(names[i % 3]) for i in range(spans)]
    settings = StoreSettings(path=directory / "starts.db", max_age_days=0, max_mb=0)
    processor = StoreSpanProcessor(settings, schedule_delay_millis=600_000)
    counter = InstructionCounter.open()
    for span in started[:500]:  # warm up
        processor.on_start(span)
    gc.collect()
    before = counter.read() if counter is not None else 0
    begun = time.perf_counter()
    for span in started:
        processor.on_start(span)
    elapsed = time.perf_counter() - begun
    executed = (counter.read() - before) / spans if counter is not None else None
    processor.shutdown()
    return executed, elapsed / spans * 1e6


def app_thread_cost(directory: Path, calls: int = 5_000, rounds: int = 3) -> dict[str, float]:
    """Microseconds per tool call (one span) in the application thread: with no processor;
    with the store's processor while its writer sleeps (the enqueue cost alone); and with
    the writer busy at the same time (it shares the interpreter lock with the app)."""

    def timed(provider: TracerProvider) -> float:
        with instrumented(provider, capture="NO_CONTENT"), otel_agents.agent("bench"):
            for _ in range(500):  # warm up
                lookup("V", ["name"])
            gc.collect()
            started = time.perf_counter()
            for _ in range(calls):
                lookup("V", ["name"])
            elapsed = time.perf_counter() - started
        provider.shutdown()
        return elapsed / calls * 1e6

    def with_store(name: str, **batch: int) -> TracerProvider:
        provider = TracerProvider()
        settings = StoreSettings(path=directory / f"{name}.db", max_age_days=0, max_mb=0)
        provider.add_span_processor(StoreSpanProcessor(settings, **batch))
        return provider

    queue = calls * 2
    results: dict[str, list[float]] = {"bare": [], "enqueue": [], "live": []}
    for n in range(rounds):
        results["bare"].append(timed(TracerProvider()))
        results["enqueue"].append(
            timed(
                with_store(
                    f"q{n}",
                    max_queue_size=queue,
                    max_export_batch_size=queue,
                    schedule_delay_millis=600_000,
                )
            )
        )
        results["live"].append(timed(with_store(f"l{n}", max_queue_size=queue)))
    return {name: statistics.median(values) for name, values in results.items()}


def size_per_1000(directory: Path, spans: list[ReadableSpan], name: str) -> float:
    path = directory / f"{name}.db"
    exporter = StoreExporter(StoreSettings(path=path, max_age_days=0, max_mb=0))
    for i in range(0, len(spans), 512):
        exporter.export(spans[i : i + 512])
    exporter.shutdown()
    conn = schema.connect(path, create=False)
    try:
        return retention.used_bytes(conn) / len(spans) * 1000
    finally:
        conn.close()


def print_on_start_cost(directory: Path) -> None:
    instructions, micros = on_start_cost(directory)
    shown = (
        f"{instructions:,.0f} instructions, "
        if instructions is not None
        else "instructions NOT MEASURED (no CPU performance counters here; "
        "`--writer --callgrind` counts the writer with callgrind), "
    )
    print(f"store on_start per span (span starts for the crash view): {shown}{micros:.2f} µs")


class _Dropping(SimpleSpanProcessor):
    def __init__(self) -> None:
        super().__init__(InMemorySpanExporter())

    def on_end(self, span: ReadableSpan) -> None:
        pass


def writer_vs_creation(directory: Path, rounds: int = 5) -> tuple[float, float]:
    """(creation, writer) CPU µs per span, best of `rounds`: creation is the application
    thread making the spans of agent runs (10 turns, 21 spans each); writer is
    `StoreExporter.export` of the same spans in 512-span batches."""
    creation: list[float] = []
    writer: list[float] = []
    for n in range(rounds):
        provider = TracerProvider()
        provider.add_span_processor(_Dropping())
        with instrumented(provider, capture="NO_CONTENT"):
            one_run(turns=10)  # warm up
            gc.collect()
            started = time.process_time()
            for _ in range(200):
                one_run(turns=10)
            creation.append((time.process_time() - started) / (200 * 21) * 1e6)
        spans = realistic_spans(200 * 21, "NO_CONTENT")
        exporter = StoreExporter(
            StoreSettings(path=directory / f"writer{n}.db", max_age_days=0, max_mb=0)
        )
        exporter.export(spans[:21])  # create the file first
        spans = spans[21:]
        gc.collect()
        started = time.process_time()
        for i in range(0, len(spans), 512):
            exporter.export(spans[i : i + 512])
        writer.append((time.process_time() - started) / len(spans) * 1e6)
        exporter.shutdown()
    return min(creation), min(writer)


def print_writer_vs_creation(directory: Path) -> None:
    creation, writer = writer_vs_creation(directory)
    print(f"CPU per span, creating it in the application: {creation:6.1f} µs")
    print(
        f"CPU per span, the store writer:               {writer:6.1f} µs ({writer / creation:.2f}x)"
    )


def _writer_child(mode: str, runs: int) -> None:
    """Under callgrind: make `runs` agent runs (21 spans each) into memory and, for
    `export`, write them to a new store in 512-span batches, as the writer thread does."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with instrumented(provider, capture="NO_CONTENT"):
        for _ in range(runs):
            one_run(turns=10)
    spans = list(memory.get_finished_spans())
    if mode == "export":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "writer.db"
            exporter = StoreExporter(StoreSettings(path=path, max_age_days=0, max_mb=0))
            for i in range(0, len(spans), 512):
                exporter.export(spans[i : i + 512])
            exporter.shutdown()


def print_writer_vs_creation_instructions(runs: tuple[int, int] = (4, 24)) -> None:
    """The same comparison in instructions (callgrind, whole process): creating a span, and
    creating then writing it; the writer's share is the difference."""
    from callgrind import instructions_per_call

    def child(mode: str) -> Callable[[int], list[str]]:
        return lambda n: [sys.executable, __file__, "--writer-child", mode, str(n)]

    create = instructions_per_call(child("create"), *runs)
    both = instructions_per_call(child("export"), *runs)
    assert create is not None and both is not None
    per_span_create, per_span_writer = create / 21, (both - create) / 21
    print(f"instructions per span, creating it in the application: {per_span_create:,.0f}")
    print(
        f"instructions per span, the store writer:               {per_span_writer:,.0f} "
        f"({per_span_writer / per_span_create:.2f}x)"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        plain = realistic_spans(20_000, "NO_CONTENT")
        content = realistic_spans(20_000, "SPAN_ONLY")
        print(
            f"write throughput, no content:   {write_throughput(directory, plain):>9,.0f} spans/s"
        )
        print(
            f"write throughput, with content: {write_throughput(directory, content):>9,.0f} spans/s"
        )
        cost = app_thread_cost(directory)
        bare = cost["bare"]
        print(f"app thread per tool call, no span processor:      {bare:7.1f} µs")
        for name, label in (
            ("enqueue", "store, writer idle (enqueue)"),
            ("live", "store, writer busy"),
        ):
            added = cost[name] - bare
            print(f"app thread per tool call, {label + ':':<24}{cost[name]:7.1f} µs (+{added:.1f})")
        for name, spans in (("no content", plain), ("with content", content)):
            kb = size_per_1000(directory, spans, name.replace(" ", "-")) / 1024
            print(f"store size per 1000 spans, {name}: {kb:,.0f} KB")
        print_writer_vs_creation(directory)
        print_on_start_cost(directory)


if __name__ == "__main__":
    if sys.argv[1:] == ["--on-start"]:
        with tempfile.TemporaryDirectory() as tmp:
            print_on_start_cost(Path(tmp))
    elif sys.argv[1:] == ["--writer"]:
        with tempfile.TemporaryDirectory() as tmp:
            print_writer_vs_creation(Path(tmp))
    elif sys.argv[1:] == ["--writer", "--callgrind"]:
        print_writer_vs_creation_instructions()
    elif sys.argv[1:2] == ["--writer-child"]:
        _writer_child(sys.argv[2], int(sys.argv[3]))
    else:
        main()
