"""Test support: otel-agents instrumented against the real SDK with in-memory exporters.

Imported by test modules (`from agents_testing import Telemetry, instrumented`) and by
`conftest.py` for the fixtures. Kept out of `conftest.py` because several test folders have
a conftest of their own, and only one module can be named `conftest`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_agents


@dataclass
class Telemetry:
    exporter: InMemorySpanExporter
    metric_reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    log_exporter: InMemoryLogRecordExporter
    logger_provider: LoggerProvider

    def logs(self) -> list[ReadableLogRecord]:
        return list(self.log_exporter.get_finished_logs())

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        found = [s for s in self.spans() if s.name == name]
        assert len(found) == 1, f"expected one span {name!r}, got {[s.name for s in self.spans()]}"
        return found[0]

    def metric_points(self, name: str) -> list[object]:
        data = self.metric_reader.get_metrics_data()
        points: list[object] = []
        for resource_metrics in data.resource_metrics if data else []:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points


def make_telemetry() -> Telemetry:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    log_exporter = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    return Telemetry(
        exporter,
        reader,
        tracer_provider,
        MeterProvider(metric_readers=[reader]),
        log_exporter,
        logger_provider,
    )


def instrumented(
    monkeypatch: pytest.MonkeyPatch, with_logs: bool = False, **options: object
) -> Iterator[Telemetry]:
    """`with_logs`: hand otel-agents a LoggerProvider (log-based events); without one,
    events fall back to span events, as in an application that set up traces only."""
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    built = make_telemetry()
    otel_agents.instrument(
        tracer_provider=built.tracer_provider,
        meter_provider=built.meter_provider,
        logger_provider=built.logger_provider if with_logs else None,
        configure_sdk=False,
        **options,  # type: ignore[arg-type]
    )
    yield built
    otel_agents.uninstrument()


class Hostile:
    """An argument whose every protocol method a careless serializer would call raises.
    `tag` tells two of them apart for tests that compare fingerprints."""

    def __init__(self, tag: str = "") -> None:
        self.tag = tag

    def __repr__(self) -> str:
        raise RuntimeError("repr")

    def __str__(self) -> str:
        raise RuntimeError("str")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq")

    def __hash__(self) -> int:
        raise RuntimeError("hash")

    def __iter__(self) -> Any:
        raise RuntimeError("iter")

    def __len__(self) -> int:
        raise RuntimeError("len")

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"getattr {name}")


def run_docs_example(
    doc: str, *headings: str, tmp_path: Path, env: Mapping[str, str] | None = None
) -> tuple[str, list[str]]:
    """Run the one Python block of `docs/<doc>` under `headings` (each found after the
    previous, up to the next `## ` heading) as a user copies it, with a local store of its
    own: (what it printed, `otel-agents show` of its run as lines, tree drawing stripped)."""
    text = (Path(__file__).parents[1] / "docs" / doc).read_text()
    for heading in headings:
        text = text.split(heading, 1)[1]
    [code] = re.findall(r"```python\n(.*?)```", text.split("\n## ", 1)[0], flags=re.S)
    script = tmp_path / "example.py"
    script.write_text(code)
    environment = {**os.environ, "OTEL_AGENTS_STORE_PATH": str(tmp_path / "traces.db")}
    environment.update(env or {})
    environment.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    done = subprocess.run(
        [sys.executable, str(script)], env=environment, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "otel_agents.cli", "show", "--color", "never"],
        env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    return done.stdout, [line.strip(" │├└─") for line in shown.stdout.splitlines()]


# A policy that denies the `delete_records` tool, for the framework integrations' tests.
DENY_POLICY = """
version: 1
mode: enforce
rules:
  - id: no-deletes
    match:
      tool: delete_records
    verdict: deny
    reason: Agents never delete records.
"""
