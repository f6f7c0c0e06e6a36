"""`SummingCounter`: in-process sums reported through an asynchronous counter."""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_agents.summing_counter import (
    MAX_ATTRIBUTE_SETS,
    SummingCounter,
    attribute_key,
)


def _points(reader: InMemoryMetricReader, name: str) -> dict[Any, float]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        tuple(sorted(point.attributes.items())): point.value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    }


def test_sums_per_attribute_set_are_reported_as_a_monotonic_sum() -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    counter = SummingCounter.on(meter, "test.cost", "{USD}", "Cost.")
    a = attribute_key({"gen_ai.request.model": "a"})
    b = attribute_key({"gen_ai.request.model": "b"})

    def spend() -> None:
        for _ in range(1000):
            counter.add(0.5, a)
            counter.add(1, b)

    threads = [threading.Thread(target=spend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    points = _points(reader, "test.cost")
    assert points == {
        (("gen_ai.request.model", "a"),): 2000.0,
        (("gen_ai.request.model", "b"),): 4000,
    }
    # Asked for again on the same meter (instrument() after uninstrument()): the same sums.
    assert SummingCounter.on(meter, "test.cost", "{USD}", "Cost.") is counter
    counter.add(1, b)
    assert _points(reader, "test.cost")[(("gen_ai.request.model", "b"),)] == 4001


def test_attribute_sets_past_the_limit_fold_into_the_overflow_set() -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    counter = SummingCounter.on(meter, "test.many", "1", "Many.")
    for index in range(MAX_ATTRIBUTE_SETS + 10):
        counter.add(1, attribute_key({"tool": f"t-{index}"}))
    points = _points(reader, "test.many")
    assert len(points) == MAX_ATTRIBUTE_SETS + 1
    assert points[(("otel.metric.overflow", True),)] == 10
