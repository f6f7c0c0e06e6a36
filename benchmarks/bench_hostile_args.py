"""What a hostile tool argument costs us: a traced tool call with it, inside an agent run.

    python benchmarks/bench_hostile_args.py [--repeat R]

Each row calls a traced tool with one argument inside an agent run (a policy in observe
mode and the detectors on, content capture off and on), and reports the time added over
the same call with a small argument: our work on the value (fingerprint, decision
matching, policy facts, captured content). The tool body does nothing, so the difference
is ours. Best of R calls per row (the least disturbed).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import otel_agents

POLICY = """
version: 1
mode: observe
rules:
  - id: no-admin
    verdict: deny
    match: {tool: grant, arguments: {role: admin}}
"""


class DiscardingExporter(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def deep_dict(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"next": value}
    return value


HOSTILE: dict[str, Callable[[], Any]] = {
    "10 MB bytes": lambda: b"\x00" * 10_000_000,
    "10 MB str": lambda: "x" * 10_000_000,
    "1M-item list": lambda: list(range(1_000_000)),
    "10k-deep dict": lambda: deep_dict(10_000),
    "100k-key dict": lambda: {f"k{i}": i for i in range(100_000)},
}


@otel_agents.tool
def grant(payload: Any, role: str = "viewer") -> None:
    return None


def best_ms(repeat: int, body: Callable[[], object]) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        body()
        timings.append((time.perf_counter() - started) * 1e3)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    options = parser.parse_args()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(DiscardingExporter()))
    print(f"time a hostile argument adds to one traced tool call, best of {options.repeat}\n")
    print("| argument | content off (ms) | content on (ms) |")
    print("|---|---:|---:|")
    values = {label: make() for label, make in HOSTILE.items()}
    results: dict[str, list[float]] = {label: [] for label in values}
    for capture in ("NO_CONTENT", "SPAN_ONLY"):
        otel_agents.instrument(
            tracer_provider=provider, configure_sdk=False, capture_content=capture, policy=POLICY
        )
        with otel_agents.agent("bench"):
            small = best_ms(options.repeat, lambda: grant("small"))
            for label, value in values.items():
                results[label].append(best_ms(options.repeat, lambda v=value: grant(v)) - small)
        otel_agents.uninstrument()
    for label, (off, on) in results.items():
        print(f"| {label} | {max(off, 0.0):.3f} | {max(on, 0.0):.3f} |")


if __name__ == "__main__":
    main()
