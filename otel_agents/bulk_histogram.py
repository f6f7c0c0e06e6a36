"""Histogram points given straight to the SDK's aggregation, without the per-point cost of `record`.

`Histogram.record` costs the OpenTelemetry SDK about 90k instructions per point: a
`Measurement`, cleaning, copying and hashing the attributes, the view lookup and the
exemplar filter. All of that is the same for points that share a histogram and an attribute
set, such as a stream's time-per-chunk points or the durations of a model's calls queued
between two collections (`deferred_metrics`); only the aggregation itself (a lock, a
bisect, sum, min and max: about 8k) differs per value.

`record_values` gives the values straight to the aggregations the SDK keeps for the
attribute set (one per reader and view); when there is none yet, the first value goes
through `record`, which creates them. That reads SDK internals, so every step is checked,
and anything unexpected (another SDK layout, a view that changes the aggregation, an
exemplar filter that would sample, a meter switched off, a cardinality overflow) makes the
rest go through `record` one by one: the result never depends on the shortcut.
`tests/test_bulk_histogram.py` compares the data points of both ways on the installed SDK.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.metrics import Histogram
from opentelemetry.util.types import AttributeValue

_Aggregate = Callable[[Any, bool], None]

_NO_CONTEXT = Context()
_MAX_KEYS = 1024  # the points have no span: no exemplar (as with `record` off-span)


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
        # The SDK's key of each attribute set seen (worked out by a recursive walk that
        # costs more than the rest of a lookup): a handful of sets, bounded all the same.
        self._keys: dict[object, object] = {}
        # The exemplar filters that never sample a point recorded outside a span (ours are).
        self._never_off_span: tuple[type, ...] = ()
        try:
            from opentelemetry.sdk.metrics import (
                AlwaysOffExemplarFilter,
                TraceBasedExemplarFilter,
            )
            from opentelemetry.sdk.metrics._internal import _view_instrument_match
            from opentelemetry.sdk.metrics._internal.aggregation import (
                _ExplicitBucketHistogramAggregation,
            )
        except ImportError:  # another layout: no shortcut
            return
        self.histogram_aggregation = _ExplicitBucketHistogramAggregation
        self._never_off_span = (TraceBasedExemplarFilter, AlwaysOffExemplarFilter)
        # The key the SDK files an attribute set's aggregation under (1.30: a frozenset).
        self.attributes_key = getattr(
            _view_instrument_match, "_hash_attributes", lambda kept: frozenset(kept.items())
        )

    def aggregations(
        self,
        histogram: Histogram,
        attributes: Mapping[str, AttributeValue],
        memo: dict[tuple[int, object], object] | None = None,
    ) -> list[_Aggregate] | None:
        """The `aggregate` of every aggregation a point of `histogram` with `attributes`
        goes to (one per reader and view), if they all exist and are explicit-bucket
        histograms that would sample no exemplar, on an enabled meter; None otherwise."""
        key_of, wanted = self.attributes_key, self.histogram_aggregation
        if key_of is None:
            return None
        enabled = getattr(histogram, "_is_enabled", None)  # a meter the SDK can switch off
        if enabled is not None and not enabled():
            return None
        consumer = histogram._measurement_consumer  # type: ignore[attr-defined]
        exemplars = consumer._sdk_config.exemplar_filter
        if type(exemplars) not in self._never_off_span and exemplars.should_sample(
            0.0, 0, attributes, _NO_CONTEXT
        ):
            return None
        found: list[_Aggregate] = []
        for storage in consumer._reader_storages.values():
            for match in storage._get_or_init_view_instrument_match(histogram):
                key = self._key(key_of, attributes, match._view._attribute_keys, memo)
                aggregation: Any = match._attributes_aggregation.get(key)
                if type(aggregation) is not wanted:
                    return None
                found.append(aggregation.aggregate)
        return found or None

    def _key(
        self,
        key_of: Callable[[Mapping[str, Any]], object],
        attributes: Mapping[str, AttributeValue],
        kept_keys: Any,
        memo: dict[tuple[int, object], object] | None,
    ) -> object:
        """The SDK's key for `attributes` as a view keeping `kept_keys` (None: all) sees
        them. Remembered by content and types (True and 1 are different attributes), and in
        `memo` by the dict's identity (for one drain, while the dict is alive); an
        unhashable value raises TypeError (no shortcut)."""
        view = None if kept_keys is None else frozenset(kept_keys)
        if memo is not None:
            known = memo.get((id(attributes), view))
            if known is not None:
                return known
        seen = (view, tuple(attributes.items()), tuple(map(type, attributes.values())))
        key = self._keys.get(seen)
        if key is None:
            kept = (
                dict(attributes)
                if kept_keys is None
                else {k: v for k, v in attributes.items() if k in kept_keys}
            )
            key = key_of(kept)
            if len(self._keys) >= _MAX_KEYS:
                self._keys.clear()
            self._keys[seen] = key
        if memo is not None:
            memo[(id(attributes), view)] = key
        return key


_shortcut: Shortcut | None = None


def shortcut() -> Shortcut:
    """The installed SDK's shortcut, looked up at the first drain (not at import: the
    application may never set an SDK meter provider up)."""
    global _shortcut
    if _shortcut is None:
        _shortcut = Shortcut()
    return _shortcut


def record_groups(
    groups: Iterable[tuple[Histogram, Mapping[str, AttributeValue], Sequence[float]]],
) -> None:
    """`record_values` for each (histogram, attributes, values). The groups hold their
    attribute dicts, so a dict's identity stands for its content throughout: the SDK's
    key of a dict shared by several histograms is looked up once."""
    memo: dict[tuple[int, object], object] = {}
    for histogram, attributes, values in groups:
        record_values(histogram, values, attributes, memo)


def record_values(
    histogram: Histogram,
    values: Sequence[float],
    attributes: Mapping[str, AttributeValue],
    memo: dict[tuple[int, object], object] | None = None,
) -> None:
    """Record each of `values` into `histogram` with `attributes` (the same data points as
    `histogram.record` for each)."""
    if not values:
        return
    done = 0
    aggregations = _aggregations(histogram, attributes, memo)
    if aggregations is None:  # the attribute set's first point (or no shortcut): `record`
        histogram.record(values[0], attributes)  # creates its aggregation
        done = 1
        if len(values) > 1:
            aggregations = _aggregations(histogram, attributes, memo)
    if aggregations is not None:
        done = _aggregate(aggregations, values, done, histogram, attributes)
    for value in values[done:]:
        histogram.record(value, attributes)


def _aggregations(
    histogram: Histogram,
    attributes: Mapping[str, AttributeValue],
    memo: dict[tuple[int, object], object] | None,
) -> list[_Aggregate] | None:
    try:
        return (_shortcut or shortcut()).aggregations(histogram, attributes, memo)
    except Exception:  # an SDK laid out otherwise: record one by one
        return None


def _aggregate(
    aggregations: list[_Aggregate],
    values: Sequence[float],
    start: int,
    histogram: Histogram,
    attributes: Mapping[str, AttributeValue],
) -> int:
    """Aggregate `values[start:]` directly; returns how many of `values` are done (all,
    unless an aggregation failed: the caller records the rest with `record`)."""
    point, done, direct = _Value(), start, 0
    try:
        for value in values[start:]:
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
    (_shortcut or shortcut()).aggregated_directly += direct
    return done


__all__ = ["Shortcut", "record_groups", "record_values", "shortcut"]
