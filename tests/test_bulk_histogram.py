"""Recording a group of histogram points at once gives the same data points as recording
them one by one, on the installed SDK, whichever way the SDK is configured; the shortcut is
taken where it can be and left where it cannot."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.metrics import AlwaysOnExemplarFilter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import SumAggregation, View
from opentelemetry.util.types import AttributeValue

from otel_agents import bulk_histogram
from otel_agents.bulk_histogram import record_groups, record_values
from otel_agents.deferred_metrics import DeferredPoints

ATTRIBUTES: dict[str, AttributeValue] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "m",
    "server.port": 443,
}
VALUES = [0.0, 0.004, 0.02, 1.5, 0.02, 7.0, 0.3, 2500.0, 12_000.0, 0.0001]


def readers() -> list[InMemoryMetricReader]:
    return [
        InMemoryMetricReader(),
        InMemoryMetricReader(preferred_temporality={Histogram: AggregationTemporality.CUMULATIVE}),
    ]


def summary(reader: InMemoryMetricReader) -> list[tuple[Any, ...]]:
    """Every data point, without its times (they differ between two providers)."""
    data = reader.get_metrics_data()
    found: list[tuple[Any, ...]] = []
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    shape = tuple(
                        getattr(point, name, None)
                        for name in ("count", "sum", "min", "max", "bucket_counts", "value")
                    )
                    exemplars = len(getattr(point, "exemplars", ()) or ())
                    found.append((metric.name, dict(point.attributes or {}), shape, exemplars))
    return sorted(found, key=repr)


def both_ways(
    values: Sequence[float], **provider_options: Any
) -> tuple[list[list[tuple[Any, ...]]], list[list[tuple[Any, ...]]], int]:
    """The data points of `values` recorded one by one and with `record_values`, and how
    many values took the shortcut."""
    results = []
    for record in (_one_by_one, record_values):
        provider_readers = readers()
        provider = MeterProvider(metric_readers=provider_readers, **provider_options)
        histogram = provider.get_meter("test").create_histogram("latency", "s")
        before = bulk_histogram.shortcut().aggregated_directly
        record(histogram, values, ATTRIBUTES)
        taken = bulk_histogram.shortcut().aggregated_directly - before
        results.append([summary(reader) for reader in provider_readers])
    return results[0], results[1], taken


def _one_by_one(histogram: Any, values: Sequence[float], attributes: Any) -> None:
    for value in values:
        histogram.record(value, attributes)


def test_the_default_histogram_takes_the_shortcut_with_the_same_data_points() -> None:
    one_by_one, grouped, taken = both_ways(VALUES)
    assert grouped == one_by_one
    assert one_by_one[0][0][2][0] == len(VALUES)  # count, in the delta reader
    assert taken == len(VALUES) - 1  # all but the first, which created the aggregation


def test_values_the_sdk_refuses_are_refused_alike() -> None:
    values = [0.5, -1.0, math.nan, math.inf, 0.25]
    one_by_one, grouped, taken = both_ways(values)
    assert grouped == one_by_one
    assert one_by_one[0][0][2][:2] == (2, 0.75)
    assert taken == 1


def test_a_view_keeping_some_attributes_is_followed() -> None:
    view = View(instrument_name="latency", attribute_keys={"gen_ai.request.model"})
    one_by_one, grouped, taken = both_ways(VALUES, views=[view])
    assert grouped == one_by_one
    assert one_by_one[0][0][1] == {"gen_ai.request.model": "m"}
    assert taken == len(VALUES) - 1


@pytest.mark.parametrize(
    "options",
    [
        {"views": [View(instrument_name="latency", aggregation=SumAggregation())]},
        {"exemplar_filter": AlwaysOnExemplarFilter()},
    ],
    ids=["view-to-sum", "exemplars-always-on"],
)
def test_where_the_shortcut_does_not_apply_every_point_is_recorded_by_the_sdk(
    options: dict[str, Any],
) -> None:
    one_by_one, grouped, taken = both_ways(VALUES, **options)
    assert grouped == one_by_one
    assert taken == 0


def test_an_sdk_laid_out_otherwise_falls_back_to_record(monkeypatch: pytest.MonkeyPatch) -> None:
    def unexpected(*_: Any) -> None:
        raise AttributeError("_reader_storages")

    monkeypatch.setattr(bulk_histogram.Shortcut, "aggregations", unexpected)
    one_by_one, grouped, taken = both_ways(VALUES)
    assert grouped == one_by_one and taken == 0


def test_an_aggregation_that_fails_midway_counts_no_value_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real: Callable[..., Any] = bulk_histogram.Shortcut.aggregations
    calls = {"n": 0}

    def failing_on_third(self: Any, histogram: Any, attributes: Any, memo: Any = None) -> Any:
        found = real(self, histogram, attributes, memo)
        if found is None:
            return None

        def aggregate(point: Any, sample: bool) -> None:
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("lock broken")
            for each in found:
                each(point, sample)

        return [aggregate]

    monkeypatch.setattr(bulk_histogram.Shortcut, "aggregations", failing_on_third)
    reader = InMemoryMetricReader()
    histogram = MeterProvider(metric_readers=[reader]).get_meter("t").create_histogram("h")
    record_values(histogram, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], ATTRIBUTES)
    [(_, _, shape, _)] = summary(reader)
    assert shape[:2] == (5, 17.0)  # 4.0 failed and was not recorded again; the rest were


def test_a_drain_records_the_points_of_one_attribute_dict_as_one_group() -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    queue = DeferredPoints.on(meter)
    latency = queue.histogram(meter.create_histogram("latency", "s"))
    shared: dict[str, AttributeValue] = {"model": "m", "streamed": True}  # kept by a recorder
    before = bulk_histogram.shortcut().aggregated_directly
    for call in range(50):
        latency.record(float(call), shared)
        latency.record_intervals([0.0, 0.5, 1.5], shared)
    latency.record(1.0, {"model": "m", "streamed": 1})  # an equal dict: True == 1
    latency.record(2.0, {"model": "m", "streamed": True})  # an equal dict of its own
    points = {repr(p[1]): p[2] for p in summary(reader) if p[0] == "latency"}
    assert points[repr(shared)][:2] == (151, 1225.0 + 75.0 + 2.0)
    assert points[repr({"model": "m", "streamed": 1})][:2] == (1, 1.0)
    # 149 of the shared group after its first; the equal dict's point finds its aggregation
    assert bulk_histogram.shortcut().aggregated_directly - before == 150
    assert queue.recorded == 152


def test_once_the_attribute_set_has_its_aggregation_even_a_lone_point_takes_the_shortcut() -> None:
    reader = InMemoryMetricReader()
    histogram = MeterProvider(metric_readers=[reader]).get_meter("t").create_histogram("h")
    record_values(histogram, [1.0], ATTRIBUTES)  # creates the aggregation
    reader.get_metrics_data()  # a collection: the aggregation stays
    before = bulk_histogram.shortcut().aggregated_directly
    record_values(histogram, [2.0], ATTRIBUTES)
    record_values(histogram, [3.0, 4.0], ATTRIBUTES)
    assert bulk_histogram.shortcut().aggregated_directly - before == 3
    [(_, attributes, shape, _)] = summary(reader)
    assert attributes == ATTRIBUTES and shape[:4] == (4, 10.0, 1.0, 4.0)  # cumulative


def test_groups_sharing_an_attribute_dict_each_land_in_their_own_histogram() -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("t")
    duration, tokens = meter.create_histogram("duration"), meter.create_histogram("tokens")
    shared: dict[str, AttributeValue] = {"model": "m"}
    record_groups([(duration, shared, [1.0]), (tokens, shared, [10.0, 20.0])])  # create
    record_groups(
        [(duration, shared, [2.0]), (tokens, shared, [30.0]), (duration, {"model": "n"}, [5.0])]
    )
    points = {(p[0], repr(p[1])): p[2][:2] for p in summary(reader)}
    assert points == {
        ("duration", repr({"model": "m"})): (2, 3.0),
        ("tokens", repr({"model": "m"})): (3, 60.0),
        ("duration", repr({"model": "n"})): (1, 5.0),
    }
