"""Histogram points taken on the application's thread, recorded when metrics are collected.

`Histogram.record` costs the OpenTelemetry SDK about 90k instructions: a measurement object,
a copy, cleaning and hash of the attributes, an aggregation lookup under a lock and an
exemplar check. On an LLM call's path (a duration, two token counts, and one point per
streamed chunk) that would be most of what the instrumentation costs. A
`DeferredHistogram` appends the value to a queue instead (a tuple and a `deque.append`),
and the points are recorded into the real histograms just before the SDK aggregates them:
`collect` runs the callbacks of asynchronous instruments first, and ours
(`otel_agents.metrics.deferred_points`) drains the queue there, on the metric reader's
thread. Every point is recorded, with the same value and attributes. The drain groups the
points by histogram and attribute set (the same dict: the recorders keep one per set), and
records a group at the cost of about one point
plus a few thousand instructions per further value (`bulk_histogram`): a stream's points
per chunk, and the points of calls to the same model between two collections. A point
queued with its span (the tool and agent duration histograms, whose span was current when
they were recorded on the caller's thread) is recorded on its own with an exemplar naming
that span (the span's context is passed to `record`); the others get none, as before: an
exemplar costs the SDK a reservoir offer per point.

The queue is bounded: past `MAX_PENDING` points (no reader collecting, or a slow one) the
caller that fills it drains it, so memory stays bounded and no point is dropped.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from otel_agents import semconv as sc
from otel_agents.bulk_histogram import record_groups

MAX_PENDING = 16_384

# (histogram, value, attributes, span): a tuple of monotonic times as the value stands for
# one point per interval between consecutive times (`record_intervals`).
_Point = tuple[Histogram, float | tuple[float, ...], Mapping[str, AttributeValue], Span | None]


# The points of one histogram and attribute set in one drain: (histogram, attributes, values).
_Group = tuple[Histogram, Mapping[str, AttributeValue], list[float]]


class DeferredPoints:
    """The queue of one meter's deferred points (one per meter, like its instruments)."""

    _registry: ClassVar[weakref.WeakKeyDictionary[Meter, DeferredPoints]] = (
        weakref.WeakKeyDictionary()
    )
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, defer: bool = True) -> None:
        self._pending: deque[_Point] = deque()
        self._drain_lock = threading.Lock()
        self.recorded = 0  # points recorded from the queue so far
        # Only an SDK meter aggregates (and collects, draining the queue): on the API's
        # proxy or no-op meter a point costs nothing to record, so it is not queued.
        self.defer = defer

    @classmethod
    def on(cls, meter: Meter) -> DeferredPoints:
        with cls._registry_lock:
            points = cls._registry.get(meter)
            if points is None:
                defer = type(meter).__module__.startswith("opentelemetry.sdk")
                points = cls._registry[meter] = cls(defer)
                meter.create_observable_counter(
                    sc.METRIC_METRICS_DEFERRED_POINTS,
                    [points.observe],
                    sc.METRIC_UNITS.get(sc.METRIC_METRICS_DEFERRED_POINTS, ""),
                    "Histogram points recorded at collection, off the application's thread.",
                )
            return points

    def histogram(self, histogram: Histogram) -> DeferredHistogram:
        return DeferredHistogram(histogram, self)

    def drain(self) -> None:
        """Record every queued point into its histogram (any thread; one at a time). Only
        drainers take from the queue, under the lock: the points counted at the start are
        there to take (later ones wait for the next drain). Points without a span are
        grouped by histogram and attribute set and recorded a group at a time
        (`bulk_histogram`)."""
        pending = self._pending
        with self._drain_lock:
            take, recorded = pending.popleft, 0
            groups: dict[tuple[int, int], _Group] = {}
            for _ in range(len(pending)):
                histogram, value, attributes, span = take()
                if span is not None:  # its exemplar names the span: recorded on its own
                    context = trace.set_span_in_context(span)
                    histogram.record(value, attributes, context=context)  # type: ignore[arg-type]
                    recorded += 1
                    continue
                # Grouped by the attributes' identity: the recorders share one dict per
                # attribute set (a dict is alive, so its id unique, while its group is).
                key = (id(histogram), id(attributes))
                group = groups.get(key)
                if group is None:
                    group = groups[key] = (histogram, attributes, [])
                values = group[2]
                if isinstance(value, tuple):  # times: one point per interval
                    values.extend(later - earlier for earlier, later in itertools.pairwise(value))
                else:
                    values.append(value)
            record_groups(groups.values())
            self.recorded += recorded + sum(len(values) for _, _, values in groups.values())

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        self.drain()
        return [Observation(self.recorded)]


class DeferredHistogram:
    """A histogram whose `record` queues the point (see the module's docstring)."""

    __slots__ = ("_histogram", "_pending", "_points")

    def __init__(self, histogram: Histogram, points: DeferredPoints) -> None:
        self._histogram = histogram
        self._points = points
        self._pending = points._pending if points.defer else None

    def record(
        self, value: float, attributes: Mapping[str, AttributeValue], span: Span | None = None
    ) -> None:
        """Queue a point; `attributes` must not change afterwards (pass a dict you keep)."""
        pending = self._pending
        if pending is None:  # not an SDK meter: nothing to defer, nor exemplars to keep
            self._histogram.record(value, attributes)
            return
        pending.append((self._histogram, value, attributes, span))  # the hot path: inline
        if len(pending) > MAX_PENDING:
            self._points.drain()

    def record_intervals(
        self, times: Sequence[float], attributes: Mapping[str, AttributeValue]
    ) -> None:
        """One point per interval between consecutive `times` (a stream's chunk arrivals),
        queued as one entry: the intervals are worked out when the points are recorded."""
        pending = self._pending
        if pending is None:
            for earlier, later in itertools.pairwise(times):
                self._histogram.record(later - earlier, attributes)
            return
        pending.append((self._histogram, tuple(times), attributes, None))
        if len(pending) > MAX_PENDING:
            self._points.drain()


__all__ = ["MAX_PENDING", "DeferredHistogram", "DeferredPoints"]
