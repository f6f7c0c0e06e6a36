"""Setting up the OpenTelemetry SDK when the application has not.

If the application (or `opentelemetry-instrument` with a distro) already registered a
global TracerProvider or MeterProvider, we use it and replace nothing. Otherwise we build
one from the standard variables: `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` for the
resource, `OTEL_TRACES_SAMPLER(_ARG)` for sampling, `OTEL_EXPORTER_OTLP_*` for where data
goes (`OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf`, the default, or `grpc`), and
`OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER` (`otlp`, `console`, `none`). With no
trace exporter configured, spans go to the embedded local store (`otel_agents.store`;
`OTEL_AGENTS_STORE=auto|always|off`).

Log-based events (`gen_ai.client.inference.operation.details`, when content capture asks
for events) need a LoggerProvider. If the application registered one, we use it. If not,
and spans go over OTLP, we register one whose OTLP logs go where the traces go (the
`OTEL_EXPORTER_OTLP_LOGS_*` variables win; `OTEL_LOGS_EXPORTER=none` or `console` as
usual). With the local store and no log exporter we register none, and the recorders fall
back to span events, which the store keeps.

Export never blocks the application: spans go through a bounded batch queue in a
background thread, and spans dropped because the backend is slow or down (a full queue, a
failed export, spans still queued when the process exits) are counted in
`otel_agents.spans.dropped`. A dead or silent backend never holds the process either:
`flush(timeout)` returns within its timeout, and at interpreter exit the providers we own
are shut down with a deadline (`OTEL_AGENTS_EXIT_TIMEOUT`, seconds, default 2) that is
passed down to the batch processors and exporters, which cuts off their retries.
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import _logs, metrics, trace
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_agents import semconv as sc
from otel_agents.config import ConfigError
from otel_agents.runtime import INSTRUMENTATION_SCOPE, SCHEMA_URL, logs_are_configured
from otel_agents.version import __version__

if TYPE_CHECKING:  # the SDK's logs module is imported only when logs are exported
    from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider

_logger = logging.getLogger("otel_agents")

EXIT_TIMEOUT_ENV = "OTEL_AGENTS_EXIT_TIMEOUT"
DEFAULT_EXIT_TIMEOUT_SECONDS = 2.0
_EXIT_RESERVE = 0.2  # of the exit deadline, kept for exporter and meter provider shutdown


def exit_timeout_from_env(env: Mapping[str, str]) -> float:
    """Seconds the process may spend exporting at exit (`OTEL_AGENTS_EXIT_TIMEOUT`)."""
    text = env.get(EXIT_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_EXIT_TIMEOUT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 3600:  # also rejects nan
        raise ConfigError(f"{EXIT_TIMEOUT_ENV}={text!r} is not a number of seconds (0 to 3600)")
    return seconds


class BoundedCall:
    """Runs a blocking call in a daemon thread and waits for it at most a deadline.

    The caller gets control back on time whatever the call does (an exporter stuck on a
    silent socket, say); a call still running is joined by the next caller instead of
    being started a second time, so repeated calls never pile up threads.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._running: threading.Thread | None = None
        self._ok = False

    def run(self, call: Callable[[], object], timeout_seconds: float) -> bool:
        """True if the call finished within the timeout and returned a true value."""
        with self._lock:
            thread = self._running
            if thread is None or not thread.is_alive():
                thread = self._running = threading.Thread(
                    target=self._target, args=(call,), name=self._name, daemon=True
                )
                self._ok = False
                thread.start()
        thread.join(max(timeout_seconds, 0.0))
        return not thread.is_alive() and self._ok

    def _target(self, call: Callable[[], object]) -> None:
        try:
            self._ok = call() is not False
        except Exception:
            _logger.exception("otel-agents: %s failed", self._name)
            self._ok = False


@dataclass(frozen=True)
class ExportCounts:
    """What one of our span processors did so far: for telling the user what happened."""

    destination: str
    local_store: bool
    exported: int
    failed: int  # given to the exporter, which reported a failure
    dropped: int  # queue full, failed, or cut off at exit
    pending: int  # still queued or in an export that has not returned


@dataclass
class OwnedProviders:
    """The providers we created (None where the application brought its own)."""

    tracer_provider: SdkTracerProvider | None = None
    meter_provider: SdkMeterProvider | None = None
    logger_provider: SdkLoggerProvider | None = None
    exit_timeout_seconds: float = DEFAULT_EXIT_TIMEOUT_SECONDS
    span_processors: list[DropCountingSpanProcessor] = field(default_factory=list)
    _flusher: BoundedCall = field(default_factory=lambda: BoundedCall("otel-agents flush"))
    _closer: BoundedCall = field(default_factory=lambda: BoundedCall("otel-agents shutdown"))

    def force_flush(self, timeout_millis: int = 5_000) -> bool:
        """Export what is buffered; returns within the timeout whatever the backend does."""
        return self._flusher.run(lambda: self._flush_all(timeout_millis), timeout_millis / 1000)

    def _flush_all(self, timeout_millis: int) -> bool:
        flushed = True
        for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
            if provider is not None:
                flushed = provider.force_flush(timeout_millis) is not False and flushed
        return flushed

    def export_counts(self) -> list[ExportCounts]:
        return [p.counts() for p in self.span_processors]

    def shutdown(self, timeout_seconds: float | None = None) -> bool:
        """Shut our providers down within the deadline; exporters get what remains of it."""
        seconds = self.exit_timeout_seconds if timeout_seconds is None else timeout_seconds
        deadline = time.monotonic() + seconds
        # The processors share most of it; the rest is for cutting off their exporters
        # (after the worker join ran out) and for the metrics.
        for processor in self.span_processors:
            processor.shutdown_deadline = deadline - seconds * _EXIT_RESERVE
        finished = self._closer.run(lambda: self._shutdown_all(deadline), seconds)
        if not finished:  # however the threads were scheduled: no exporter goes on retrying
            for processor in self.span_processors:
                processor.cut_off()
        self._report_unexported(finished, seconds)
        return finished

    def _shutdown_all(self, deadline: float) -> None:
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            remaining = max(deadline - time.monotonic(), 0.0)
            self.meter_provider.shutdown(timeout_millis=remaining * 1000)
        if self.logger_provider is not None:
            self.logger_provider.shutdown()

    def _report_unexported(self, finished: bool, seconds: float) -> None:
        for processor in self.span_processors:
            left = processor.count_unexported()
            if left:
                with contextlib.suppress(Exception):
                    _logger.warning(
                        "otel-agents: at exit, %d spans were not exported to %s within"
                        " %s=%gs; they are counted in otel_agents.spans.dropped.",
                        left,
                        processor.destination,
                        EXIT_TIMEOUT_ENV,
                        seconds,
                    )


class DropCountingSpanProcessor(BatchSpanProcessor):
    """The SDK's batch processor, counting spans exported and spans dropped.

    Dropped: on a full queue, in a failed export (unless the exporter counts its own
    failures, as the local store does), and still queued when a shutdown's deadline
    passed. `shutdown()` passes its deadline (`shutdown_deadline`, else
    `shutdown_timeout_millis`) to the SDK's processor, which waits that long for its worker
    and then shuts the exporter down, which stops its retries.
    """

    def __init__(self, exporter: SpanExporter, meter: Meter | None = None, **kwargs: Any) -> None:
        meter = meter or metrics.get_meter(
            INSTRUMENTATION_SCOPE, __version__, schema_url=SCHEMA_URL
        )
        self._dropped = meter.create_counter(
            sc.METRIC_SPANS_DROPPED,
            sc.METRIC_UNITS.get(sc.METRIC_SPANS_DROPPED, "{span}"),
            "Spans dropped because the backend was slow or down (queue full, export failed).",
        )
        self.dropped_spans = 0
        self.exported_spans = 0
        self.failed_spans = 0
        self.in_flight_spans = 0
        self.shutdown_timeout_millis = DEFAULT_EXIT_TIMEOUT_SECONDS * 1000
        self.shutdown_deadline: float | None = None  # time.monotonic(); set at exit
        self._count_lock = threading.Lock()
        self._counted_queue = False
        self._in_flight_counted = 0
        self.wrapped_exporter = exporter
        self._counting = _CountingExporter(exporter, self)
        super().__init__(self._counting, **kwargs)

    def on_end(self, span: ReadableSpan) -> None:
        queue = self._queue()
        capacity = getattr(queue, "maxlen", None)
        if queue is not None and capacity is not None and len(queue) >= capacity:
            self.count_dropped(1)
        super().on_end(span)

    def shutdown(self) -> None:
        if self.shutdown_deadline is not None:
            remaining = max(self.shutdown_deadline - time.monotonic(), 0.0)
            self.shutdown_timeout_millis = remaining * 1000
        self._batch_processor.shutdown(timeout_millis=int(self.shutdown_timeout_millis))

    def cut_off(self) -> None:
        """Shut a network exporter down now (once): its retries stop, an export in flight
        is abandoned. (The OTLP exporters' shutdown only sets a flag and closes sockets;
        the local store's would wait for a write in progress, so it is left to finish.)"""
        if not getattr(self.wrapped_exporter, "counts_own_drops", False):
            self._counting.shutdown(timeout_millis=0)

    def count_dropped(self, count: int) -> None:
        self.dropped_spans += count
        with contextlib.suppress(Exception):
            self._dropped.add(count)

    def count_unexported(self) -> int:
        """Spans still queued or in an export that has not returned (after a shutdown ran
        out of time): counted as dropped, once."""
        with self._count_lock:
            queue = self._queue()
            queued = len(queue) if queue is not None and not self._counted_queue else 0
            self._counted_queue = self._counted_queue or queued > 0
            in_flight = self.in_flight_spans - self._in_flight_counted
            self._in_flight_counted = self.in_flight_spans
        if queued + in_flight:
            self.count_dropped(queued + in_flight)
        return queued + in_flight

    def export_started(self, count: int) -> None:
        self.in_flight_spans = count  # one export at a time (the SDK's export lock)

    def export_finished(self, count: int, ok: bool, count_drops: bool) -> None:
        with self._count_lock:
            already_counted, self._in_flight_counted = self._in_flight_counted, 0
            self.in_flight_spans = 0
        if ok:
            self.exported_spans += count
            return
        self.failed_spans += count
        if count_drops and count > already_counted:
            self.count_dropped(count - already_counted)

    def counts(self) -> ExportCounts:
        queue = self._queue()
        return ExportCounts(
            destination=self.destination,
            local_store=bool(getattr(self.wrapped_exporter, "counts_own_drops", False)),
            exported=self.exported_spans,
            failed=self.failed_spans,
            dropped=self.dropped_spans,
            pending=(len(queue) if queue is not None else 0) + self.in_flight_spans,
        )

    @property
    def destination(self) -> str:
        """Where the spans go, for messages: the exporter and its endpoint."""
        endpoint = getattr(self.wrapped_exporter, "_endpoint", None)
        name = type(self.wrapped_exporter).__name__
        return f"{name} {endpoint}" if isinstance(endpoint, str) else name

    def _queue(self) -> Any:
        return getattr(getattr(self, "_batch_processor", None), "_queue", None)


class _CountingExporter(SpanExporter):
    """Counts what the wrapped exporter exported and what it failed to; passes the
    shutdown deadline on to exporters that take one (the OTLP/gRPC one does)."""

    def __init__(self, inner: SpanExporter, processor: DropCountingSpanProcessor) -> None:
        self.inner = inner
        self._processor = processor
        self._counts_own_drops = bool(getattr(inner, "counts_own_drops", False))
        self._shutdown_lock = threading.Lock()
        self._shut_down = False
        parameters = inspect.signature(inner.shutdown).parameters
        self._shutdown_lock = threading.Lock()
        self._shut_down = False
        parameters = inspect.signature(inner.shutdown).parameters
        self._shutdown_takes_timeout = "timeout_millis" in parameters

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._processor.export_started(len(spans))
        result = SpanExportResult.FAILURE
        try:
            result = self.inner.export(spans)
        finally:
            self._processor.export_finished(
                len(spans),
                result is SpanExportResult.SUCCESS,
                count_drops=not self._counts_own_drops,
            )
        return result

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        with self._shutdown_lock:  # once: at exit both we and the SDK's processor call it
            if self._shut_down:
                return
            self._shut_down = True
        if self._shutdown_takes_timeout:
            self.inner.shutdown(timeout_millis=timeout_millis)  # type: ignore[call-arg]
        else:
            self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def tracing_is_configured() -> bool:
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def metrics_are_configured() -> bool:
    return not type(metrics.get_meter_provider()).__name__.startswith("_Proxy")


def configure_sdk(
    environ: Mapping[str, str] | None = None, default_span_exporter: SpanExporter | None = None
) -> OwnedProviders:
    """Register SDK providers for whatever the application left unconfigured."""
    env = os.environ if environ is None else environ
    owned = OwnedProviders(exit_timeout_seconds=exit_timeout_from_env(env))
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return owned
    resource = Resource.create()
    if not tracing_is_configured():
        # Not the SDK's own exit hook: it waits up to 30 s per processor for a dead backend.
        provider = SdkTracerProvider(resource=resource, shutdown_on_exit=False)
        exporter = span_exporter_from_env(env) or default_span_exporter
        # The local store first: at exit it is written before a remote backend may stall.
        store = local_store_processor(env, other_exporter=exporter is not None)
        if store is not None:
            owned.span_processors.append(store)
        if exporter is not None:
            owned.span_processors.append(DropCountingSpanProcessor(exporter))
        for processor in owned.span_processors:
            provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        owned.tracer_provider = provider
    if not metrics_are_configured():
        readers = metric_readers_from_env(env)
        if readers:
            meter_provider = SdkMeterProvider(
                resource=resource, metric_readers=readers, shutdown_on_exit=False
            )
            metrics.set_meter_provider(meter_provider)
            owned.meter_provider = meter_provider
    if not logs_are_configured():
        log_exporter = log_exporter_from_env(env)
        if log_exporter is not None:
            from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
            from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

            # Not the SDK's exit hook either: our bounded shutdown ends it.
            logger_provider = SdkLoggerProvider(resource=resource, shutdown_on_exit=False)
            logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
            _logs.set_logger_provider(logger_provider)
            owned.logger_provider = logger_provider
    if owned.tracer_provider or owned.meter_provider or owned.logger_provider:
        atexit.register(owned.shutdown)
    return owned


def local_store_processor(
    env: Mapping[str, str], other_exporter: bool
) -> DropCountingSpanProcessor | None:
    """The embedded local store, unless switched off or another exporter replaces it.

    `OTEL_AGENTS_STORE=auto` (default): only when no exporter is configured (and
    `OTEL_TRACES_EXPORTER` is not `none`); `always`: as well as any other; `off`: never.
    """
    from otel_agents.store.exporter import StoreSpanProcessor
    from otel_agents.store.settings import StoreMode, StoreSettings

    settings = StoreSettings.from_env(env)
    if settings.mode is StoreMode.OFF:
        return None
    explicitly_none = env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none"
    if settings.mode is StoreMode.AUTO and (other_exporter or explicitly_none):
        return None
    return StoreSpanProcessor(settings)


def otlp_configured(env: Mapping[str, str], signal: str) -> bool:
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    )


def _protocol(env: Mapping[str, str], signal: str) -> str:
    return (
        env.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()


def span_exporter_from_env(env: Mapping[str, str]) -> SpanExporter | None:
    """The exporter the variables ask for, or None to use the embedded default."""
    choice = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if choice == "none":
        return None
    if choice == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if choice == "otlp" or otlp_configured(env, "TRACES"):
        if _protocol(env, "TRACES") == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcSpanExporter,
            )

            return GrpcSpanExporter()
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if choice and choice != "otlp":
        _logger.warning("otel-agents: OTEL_TRACES_EXPORTER=%r is not supported here", choice)
    return None


def metric_readers_from_env(env: Mapping[str, str]) -> list[Any]:
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    choice = env.get("OTEL_METRICS_EXPORTER", "").strip().lower()
    if choice == "none":
        return []
    if choice == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return [PeriodicExportingMetricReader(ConsoleMetricExporter())]
    if choice == "otlp" or otlp_configured(env, "METRICS"):
        if _protocol(env, "METRICS") == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter as GrpcMetricExporter,
            )

            return [PeriodicExportingMetricReader(GrpcMetricExporter())]
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return [PeriodicExportingMetricReader(OTLPMetricExporter())]
    return []


def log_exporter_from_env(env: Mapping[str, str]) -> Any:
    """The log exporter the variables ask for, or None. OTLP logs go where the traces go
    unless `OTEL_EXPORTER_OTLP_LOGS_*` say otherwise."""
    choice = env.get("OTEL_LOGS_EXPORTER", "").strip().lower()
    if choice == "none":
        return None
    if choice == "console":
        from opentelemetry.sdk._logs.export import ConsoleLogExporter

        return ConsoleLogExporter()
    if choice != "otlp" and not (otlp_configured(env, "LOGS") or otlp_configured(env, "TRACES")):
        return None
    endpoint = env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") or None
    # Only a traces-specific endpoint needs carrying over: the generic one serves every signal.
    traces_endpoint = (
        None
        if env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        else env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
    protocol = (env.get("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL") or _protocol(env, "TRACES")).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
            OTLPLogExporter as GrpcLogExporter,
        )

        return GrpcLogExporter(endpoint=endpoint or traces_endpoint)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    if endpoint is None and traces_endpoint:
        endpoint = _http_logs_endpoint(traces_endpoint)
    return OTLPLogExporter(endpoint=endpoint)


def _http_logs_endpoint(traces_endpoint: str) -> str:
    """The OTLP/HTTP logs URL beside a traces URL: `.../v1/traces` -> `.../v1/logs`."""
    base = traces_endpoint.rstrip("/")
    if base.endswith("/v1/traces"):
        base = base[: -len("/v1/traces")]
    return f"{base}/v1/logs"
