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
background thread, and spans dropped because the backend is slow or down are counted in
`otel_agents.spans.dropped`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry.metrics import Meter
from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from otel_agents import semconv as sc
from otel_agents.runtime import INSTRUMENTATION_SCOPE, SCHEMA_URL, logs_are_configured
from otel_agents.version import __version__

_logger = logging.getLogger("otel_agents")


@dataclass
class OwnedProviders:
    """The providers we created (None where the application brought its own)."""

    tracer_provider: SdkTracerProvider | None = None
    meter_provider: SdkMeterProvider | None = None
    logger_provider: SdkLoggerProvider | None = None

    def force_flush(self, timeout_millis: int = 5_000) -> None:
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush(timeout_millis)
        if self.meter_provider is not None:
            self.meter_provider.force_flush(timeout_millis)
        if self.logger_provider is not None:
            self.logger_provider.force_flush(timeout_millis)


class DropCountingSpanProcessor(BatchSpanProcessor):
    """The SDK's batch processor, plus a counter of spans dropped on a full queue."""

    def __init__(self, exporter: SpanExporter, meter: Meter | None = None, **kwargs: Any) -> None:
        super().__init__(exporter, **kwargs)
        meter = meter or metrics.get_meter(
            INSTRUMENTATION_SCOPE, __version__, schema_url=SCHEMA_URL
        )
        self._dropped = meter.create_counter(
            sc.METRIC_SPANS_DROPPED,
            sc.METRIC_UNITS.get(sc.METRIC_SPANS_DROPPED, "{span}"),
            "Spans dropped because the export queue was full (backend slow or down).",
        )
        self.dropped_spans = 0

    def on_end(self, span: ReadableSpan) -> None:
        queue = getattr(getattr(self, "_batch_processor", None), "_queue", None)
        capacity = getattr(queue, "maxlen", None)
        if queue is not None and capacity is not None and len(queue) >= capacity:
            self.dropped_spans += 1
            self._dropped.add(1)
        super().on_end(span)


def tracing_is_configured() -> bool:
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def metrics_are_configured() -> bool:
    return not type(metrics.get_meter_provider()).__name__.startswith("_Proxy")


def configure_sdk(
    environ: Mapping[str, str] | None = None, default_span_exporter: SpanExporter | None = None
) -> OwnedProviders:
    """Register SDK providers for whatever the application left unconfigured."""
    env = os.environ if environ is None else environ
    owned = OwnedProviders()
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return owned
    resource = Resource.create()
    if not tracing_is_configured():
        provider = SdkTracerProvider(resource=resource)
        exporter = span_exporter_from_env(env) or default_span_exporter
        if exporter is not None:
            provider.add_span_processor(DropCountingSpanProcessor(exporter))
        store = local_store_processor(env, other_exporter=exporter is not None)
        if store is not None:
            provider.add_span_processor(store)
        trace.set_tracer_provider(provider)
        owned.tracer_provider = provider
    if not metrics_are_configured():
        readers = metric_readers_from_env(env)
        if readers:
            meter_provider = SdkMeterProvider(resource=resource, metric_readers=readers)
            metrics.set_meter_provider(meter_provider)
            owned.meter_provider = meter_provider
    if not logs_are_configured():
        log_exporter = log_exporter_from_env(env)
        if log_exporter is not None:
            from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

            logger_provider = SdkLoggerProvider(resource=resource)
            logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
            _logs.set_logger_provider(logger_provider)
            owned.logger_provider = logger_provider
    return owned


def local_store_processor(env: Mapping[str, str], other_exporter: bool) -> SpanProcessor | None:
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
