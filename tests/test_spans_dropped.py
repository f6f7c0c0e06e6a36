"""`otel_agents.spans.dropped`: spans the export queue drops are counted, and the counter
is really exported (it was declared, and never seen in a test)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_agents import semconv as sc
from otel_agents.sdk_setup import DropCountingSpanProcessor


class StuckExporter(SpanExporter):
    """A backend that does not answer until released."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait()
        return SpanExportResult.SUCCESS


def test_dropped_spans_are_counted_in_the_metric() -> None:
    reader = InMemoryMetricReader()
    exporter = StuckExporter()
    processor = DropCountingSpanProcessor(
        exporter,
        meter=MeterProvider(metric_readers=[reader]).get_meter("test"),
        max_queue_size=2,
        max_export_batch_size=1,
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("test")
    try:
        for index in range(10):
            tracer.start_span(f"step {index}").end()
        # At most one span is in the stuck export and two wait in the queue: the rest drop.
        assert processor.dropped_spans >= 7
        points = [
            point
            for resource_metrics in reader.get_metrics_data().resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
            if metric.name == sc.METRIC_SPANS_DROPPED
            for point in metric.data.data_points
        ]
        assert [point.value for point in points] == [processor.dropped_spans]
    finally:
        exporter.release.set()
        provider.shutdown()
