"""Monotonic counters summed in process and reported when metrics are collected.

A synchronous `Counter.add` costs the OpenTelemetry SDK a measurement object, a copy and a
recursive hash of the attributes, and an aggregation lookup under a lock: on this project's
hot paths (every tool call passes the policy gate, every LLM call is priced) that costs more
than the work being counted. A `SummingCounter` adds to a dict entry instead, and an
asynchronous counter reports the running totals on each collection: the backend gets the
same monotonic sum (and, under delta temporality, the same deltas). What it gives up is
exemplars, which an asynchronous instrument cannot carry.

Totals are keyed by a hashable key the caller builds once per attribute set (a tuple of
attribute pairs), so the hot path never hashes a dict.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import ClassVar

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.util.types import AttributeValue

AttributeKey = tuple[tuple[str, AttributeValue], ...]
# The SDK's default cardinality limit per metric, and the attribute set it folds the rest into.
MAX_ATTRIBUTE_SETS = 2000
OVERFLOW: AttributeKey = (("otel.metric.overflow", True),)


def attribute_key(attributes: dict[str, AttributeValue]) -> AttributeKey:
    """The key a `SummingCounter` sums under for this attribute set (build it once)."""
    return tuple(attributes.items())


class SummingCounter:
    """One asynchronous counter's running totals, per attribute set.

    One instance per (meter, name): the SDK keeps the first registration of an
    instrument name on a meter, so a counter asked for again on the same meter (after
    `uninstrument()` and `instrument()`) must keep summing into the registered one.
    """

    _registry: ClassVar[weakref.WeakKeyDictionary[Meter, dict[str, SummingCounter]]] = (
        weakref.WeakKeyDictionary()
    )
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self._totals: dict[AttributeKey, float] = {}
        self._lock = threading.Lock()

    @classmethod
    def on(cls, meter: Meter, name: str, unit: str, description: str) -> SummingCounter:
        with cls._registry_lock:
            counters = cls._registry.setdefault(meter, {})
            counter = counters.get(name)
            if counter is None:
                counter = counters[name] = cls()
                meter.create_observable_counter(name, [counter.observe], unit, description)
            return counter

    def add(self, amount: float, key: AttributeKey) -> None:
        with self._lock:
            totals = self._totals
            if key not in totals and len(totals) >= MAX_ATTRIBUTE_SETS:
                key = OVERFLOW  # as the SDK does past its cardinality limit: memory stays bounded
            totals[key] = totals.get(key, 0) + amount

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            totals = list(self._totals.items())
        return [Observation(total, dict(key)) for key, total in totals]
