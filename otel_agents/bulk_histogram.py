"""Many points of one SDK histogram with one attribute set, recorded at the cost of one.

`Histogram.record` costs the OpenTelemetry SDK about 90k instructions per point: a
`Measurement`, cleaning, copying and hashing the attributes, the view lookup and the
exemplar filter. All of that is the same for points that share a histogram and an
attribute set, such as a stream's time-per-chunk points or the durations of a model's
calls queued between two collections (`deferred_metrics`); only the aggregation itself (a
lock, a bisect, sum, min and max: about 8k) differs per value.

`record_values` records the first value with `record`, which also creates the SDK's
aggregation for the attribute set, and gives the others straight to the aggregations that
`record` fed. That reads SDK internals, so every step is checked, and anything unexpected
(another SDK layout, a view that changes the aggregation, an exemplar filter that would
sample, a cardinality overflow) makes the rest go through `record` one by one: the result
never depends on the shortcut. `tests/test_bulk_histogram.py` compares the data points of
both ways on the installed SDK.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.metrics import Histogram
from opentelemetry.util.types import AttributeValue

_Aggregate = Callable[[Any, bool], None]

_NO_CONTEXT = Context()  # the points have no span: no exemplar (as with `record` off-span)


class _Value:
    """A measurement as the explicit-bucket aggregation reads it when it samples no
    exemplar: its value only."""

    __slots__ = ("value",)
    value: float


class Shortcut:
    """What the installed SDK offers for the shortcut, found once (None: always `record`)."""

    def __init__(self) -> None:
        self.histogram_aggregation: Any = None  # the SDK class, or None
        self.attributes_key: Callable[[Mapping[str, Any]], object] | None = None
        self.aggregated_directly = 0  # values given straight to the aggregations so far
        try:
            from opentelemetry.sdk.metrics._internal import _view_instrument_match
            from opentelemetry.sdk.metrics._internal.aggregation import (
                _ExplicitBucketHistogramAggregation,
            )
        except ImportError:  # another layout: no shortcut
            return
        self.histogram_aggregation = _ExplicitBucketHistogramAggregation
        # The key the SDK files an attribute set's aggregation under (1.30: a frozenset).
        self.attributes_key = getattr(
            _view_instrument_match, "_hash_attributes", lambda kept: frozenset(kept.items())
        )

    def aggregations(
        self, histogram: Histogram, attributes: Mapping[str, AttributeValue]
    ) -> list[_Aggregate] | None:
        """The `aggregate` of every aggregation a point of `histogram` with `attributes`
        goes to (one per reader and view), if they already exist and are explicit-bucket
        histograms that would sample no exemplar; None otherwise."""
        key_of, wanted = self.attributes_key, self.histogram_aggregation
        if key_of is None:
            return None
        consumer = histogram._measurement_consumer  # type: ignore[attr-defined]
        if consumer._sdk_config.exemplar_filter.should_sample(0.0, 0, attributes, _NO_CONTEXT):
            return None
        found: list[_Aggregate] = []
        for storage in consumer._reader_storages.values():
            for match in storage._get_or_init_view_instrument_match(histogram):
                kept_keys = match._view._attribute_keys
                kept = (
                    dict(attributes)
                    if kept_keys is None
                    else {k: v for k, v in attributes.items() if k in kept_keys}
                )
                aggregation: Any = match._attributes_aggregation.get(key_of(kept))
                if type(aggregation) is not wanted:
                    return None
                found.append(aggregation.aggregate)
        return found or None


_shortcut: Shortcut | None = None


def shortcut() -> Shortcut:
    """The installed SDK's shortcut, looked up at the first drain (not at import: the
    application may never set an SDK meter provider up)."""
    global _shortcut
    if _shortcut is None:
        _shortcut = Shortcut()
    return _shortcut


def record_values(
    histogram: Histogram, values: Sequence[float], attributes: Mapping[str, AttributeValue]
) -> None:
    """Record each of `values` into `histogram` with `attributes` (the same data points as
    `histogram.record` for each)."""
    if not values:
        return
    histogram.record(values[0], attributes)
    if len(values) == 1:
        return
    try:
        aggregations = shortcut().aggregations(histogram, attributes)
    except Exception:  # an SDK laid out otherwise: record one by one
        aggregations = None
    done = 1
    if aggregations is not None:
        done = _aggregate(aggregations, values, histogram, attributes)
    for value in values[done:]:
        histogram.record(value, attributes)


def _aggregate(
    aggregations: list[_Aggregate],
    values: Sequence[float],
    histogram: Histogram,
    attributes: Mapping[str, AttributeValue],
) -> int:
    """Aggregate `values[1:]` directly; returns how many of `values` are done (all, unless
    an aggregation failed: the caller records the rest with `record`)."""
    point, done, direct = _Value(), 1, 0
    try:
        for value in values[1:]:
            done += 1
            if not 0.0 <= value < math.inf:  # negative, NaN, infinite: the SDK warns, drops
                histogram.record(value, attributes)
                continue
            point.value = value
            for aggregate in aggregations:
                aggregate(point, False)
            direct += 1
    except Exception:  # the value that failed is not retried (no double count)
        pass
    shortcut().aggregated_directly += direct
    return done


__all__ = ["Shortcut", "record_values", "shortcut"]
