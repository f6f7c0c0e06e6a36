"""Deferred histogram points: every point recorded, at collection, with its exemplar's span;
memory bounded without a collecting reader; no loss under concurrent recording."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from otel_agents import deferred_metrics
from otel_agents import semconv as sc
from otel_agents.deferred_metrics import DeferredPoints


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    found: list[Any] = []
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == name:
                    found.extend(metric.data.data_points)
    return found


def setup() -> tuple[InMemoryMetricReader, DeferredPoints, Any]:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    queue = DeferredPoints.on(meter)
    return reader, queue, queue.histogram(meter.create_histogram("latency", "s"))


def test_points_are_recorded_at_collection_with_their_values_and_span() -> None:
    reader, queue, latency = setup()
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("call") as span:
        latency.record(0.25, {"model": "m"}, span)
    latency.record(0.75, {"model": "m"})
    assert queue.recorded == 0  # nothing recorded on the caller's thread
    [point] = points(reader, "latency")
    assert (point.count, point.sum, point.attributes) == (2, 1.0, {"model": "m"})
    exemplar_traces = {e.trace_id for e in point.exemplars if e.trace_id}
    assert exemplar_traces == {span.get_span_context().trace_id}
    [counted] = points(reader, sc.METRIC_METRICS_DEFERRED_POINTS)
    assert counted.value == 2


def test_without_a_collecting_reader_the_queue_stays_bounded_and_drops_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deferred_metrics, "MAX_PENDING", 10)
    reader, queue, latency = setup()
    for _ in range(35):
        latency.record(1.0, {})
    assert len(queue._pending) <= 10  # the callers drained it as it filled
    [point] = points(reader, "latency")
    assert point.count == 35


def test_concurrent_recording_loses_no_point() -> None:
    reader, _, latency = setup()
    start = threading.Barrier(4)

    def record() -> None:
        start.wait()
        for _ in range(2_000):
            latency.record(1.0, {"t": "x"})

    threads = [threading.Thread(target=record) for _ in range(4)]
    for thread in threads:
        thread.start()
    middle = points(reader, "latency")  # a collection while they record
    for thread in threads:
        thread.join()
    final = points(reader, "latency")
    assert final[0].count == 8_000
    assert not middle or middle[0].count <= 8_000


def test_intervals_between_times_are_one_point_each_recorded_at_collection() -> None:
    reader, queue, gaps = setup()
    gaps.record_intervals([10.0, 10.5, 11.5, 11.75], {"model": "m"})
    gaps.record_intervals([3.0], {"model": "m"})  # a single time: no interval
    assert queue.recorded == 0 and len(queue._pending) == 2  # one entry per series
    [point] = points(reader, "latency")
    assert (point.count, point.sum, point.min, point.max) == (3, 1.75, 0.25, 1.0)
    [counted] = points(reader, sc.METRIC_METRICS_DEFERRED_POINTS)
    assert counted.value == 3


def test_on_the_api_meter_points_are_recorded_at_once() -> None:
    recorded: list[float] = []

    class Histogram:
        def record(self, value: float, attributes: Any = None, context: Any = None) -> None:
            recorded.append(value)

    queue = DeferredPoints(defer=False)
    histogram = queue.histogram(Histogram())  # type: ignore[arg-type]
    histogram.record(2.0, {})
    histogram.record_intervals([1.0, 1.5, 3.5], {})
    assert recorded == [2.0, 0.5, 2.0] and not queue._pending
