"""Process-wide state: settings, the tracer and meter, metric instruments, observers.

Built lazily on first use (so `@otel_agents.tool` works before or without `instrument()`),
rebuilt by `instrument()`. The tracer and meter come from the global providers unless
`instrument()` was handed explicit ones; the OpenTelemetry proxies make late provider
registration work either way.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import Counter, Histogram, Meter, MeterProvider
from opentelemetry.trace import Tracer, TracerProvider

from otel_agents import semconv as sc
from otel_agents.capture import Capturer, Redactor
from otel_agents.config import Settings
from otel_agents.errors import Intervention
from otel_agents.pricing import PriceBook
from otel_agents.summing_counter import SummingCounter
from otel_agents.version import __version__

_logger = logging.getLogger("otel_agents")
INSTRUMENTATION_SCOPE = "otel_agents"
SCHEMA_URL = "https://opentelemetry.io/schemas/1.41.0"


class Observer:
    """Base for components that watch the recorders: the policy gate and the detectors.

    Override what you need. A hook may raise an `otel_agents.errors.Intervention` to stop a
    tool call on purpose (a policy deny); any other exception is an internal error: it is
    logged and swallowed, and the application goes on.
    """

    def on_tool_start(self, invocation: Any) -> None:
        """Before a tool runs; its span exists and is current."""

    def on_tool_end(self, invocation: Any) -> None:
        """After a tool returned or raised; its span is still open."""

    def on_llm_call_end(self, call: Any) -> None:
        """After an LLM call's response (or stream) is complete; its span is still open."""

    def on_handoff_end(self, handoff: Any) -> None:
        """When a handoff boundary closes; its span is still open."""

    def on_run_end(self, run: Any) -> None:
        """When a run's root agent span is about to end."""


@dataclass
class Instruments:
    tool_calls: Counter
    tool_duration: Histogram
    agent_duration: Histogram
    runs: Counter
    run_cost: Histogram
    handoffs: Counter
    token_usage: Histogram
    llm_duration: Histogram
    time_to_first_chunk: Histogram
    llm_cost: SummingCounter  # summed in process: see `SummingCounter`

    @classmethod
    def create(cls, meter: Meter) -> Instruments:
        def unit(name: str) -> str:
            return sc.METRIC_UNITS.get(name, "")

        return cls(
            tool_calls=meter.create_counter(
                sc.METRIC_TOOL_CALLS, unit(sc.METRIC_TOOL_CALLS), "Tool executions."
            ),
            tool_duration=meter.create_histogram(
                sc.METRIC_GEN_AI_EXECUTE_TOOL_DURATION, "s", "Duration of tool executions."
            ),
            agent_duration=meter.create_histogram(
                sc.METRIC_GEN_AI_INVOKE_AGENT_DURATION, "s", "Duration of agent invocations."
            ),
            runs=meter.create_counter(sc.METRIC_RUNS, unit(sc.METRIC_RUNS), "Agent runs."),
            run_cost=meter.create_histogram(
                sc.METRIC_RUN_COST, unit(sc.METRIC_RUN_COST), "Cost of whole agent runs, USD."
            ),
            handoffs=meter.create_counter(
                sc.METRIC_HANDOFFS, unit(sc.METRIC_HANDOFFS), "Handoffs between agents."
            ),
            token_usage=_histogram(
                meter,
                sc.METRIC_GEN_AI_CLIENT_TOKEN_USAGE,
                "Number of input and output tokens used.",
            ),
            llm_duration=_histogram(
                meter, sc.METRIC_GEN_AI_CLIENT_OPERATION_DURATION, "GenAI operation duration."
            ),
            time_to_first_chunk=_histogram(
                meter,
                sc.METRIC_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
                "Time to receive the first chunk of a streamed response.",
            ),
            llm_cost=SummingCounter.on(
                meter, sc.METRIC_LLM_COST, unit(sc.METRIC_LLM_COST), "Cost of LLM calls, USD."
            ),
        )


def _histogram(meter: Meter, name: str, description: str) -> Histogram:
    """A histogram with the conventions' bucket boundaries, given as an advisory so they
    apply with the application's own MeterProvider too (no View needed)."""
    boundaries = sc.METRIC_BUCKETS.get(name)
    unit = sc.METRIC_UNITS.get(name, "")
    if boundaries is None:
        return meter.create_histogram(name, unit, description)
    return meter.create_histogram(
        name, unit, description, explicit_bucket_boundaries_advisory=list(boundaries)
    )


@dataclass
class Runtime:
    settings: Settings
    capturer: Capturer
    tracer: Tracer
    meter: Meter
    instruments: Instruments
    prices: PriceBook
    observers: list[Observer] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        settings: Settings,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> Runtime:
        redactor = Redactor(settings.redact_patterns, settings.redact_keys, pii=settings.redact_pii)
        tracer = trace.get_tracer(
            INSTRUMENTATION_SCOPE, __version__, tracer_provider, schema_url=SCHEMA_URL
        )
        meter = metrics.get_meter(
            INSTRUMENTATION_SCOPE, __version__, meter_provider, schema_url=SCHEMA_URL
        )
        return cls(
            settings=settings,
            capturer=Capturer(settings.max_content_length, redactor),
            tracer=tracer,
            meter=meter,
            instruments=Instruments.create(meter),
            prices=PriceBook(settings.prices),
        )

    def notify(self, event: str, *args: Any) -> None:
        """Call `event` on every observer that has it; internal errors are swallowed.

        Exceptions deriving from `Intervention` propagate: they are decisions, not bugs.
        """
        for observer in self.observers:
            handler: Callable[..., Any] = getattr(observer, event)
            try:
                handler(*args)
            except Intervention:
                raise
            except Exception as exc:
                report_internal_error(f"observer {type(observer).__name__}.{event}", exc)


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    runtime = _runtime
    if runtime is None:
        with _runtime_lock:
            runtime = _runtime
            if runtime is None:
                runtime = Runtime.build(Settings.load())
                set_runtime(runtime)
    return runtime


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


# -- never harm the host ---------------------------------------------------------------

_ERROR_LOG_INTERVAL = 60.0


def _log_scrubber() -> Callable[[str], str]:
    runtime = _runtime
    return runtime.capturer.scrub if runtime is not None else _fallback_capturer.scrub


_fallback_capturer = Capturer(4096, Redactor())
_last_logged: dict[str, float] = {}


def report_internal_error(where: str, exc: BaseException) -> None:
    """Log an error inside otel-agents once a minute per place; never raise.

    The message (and the traceback, at DEBUG) is scrubbed like captured content: an
    exception raised around user data may quote a key.
    """
    try:
        now = time.monotonic()
        last = _last_logged.get(where)
        if last is not None and now - last < _ERROR_LOG_INTERVAL:
            return
        _last_logged[where] = now
        scrub = _log_scrubber()
        details = ""
        if _logger.isEnabledFor(logging.DEBUG):
            details = "\n" + scrub("".join(traceback.format_exception(exc)))
        _logger.warning(
            "otel-agents: internal error in %s (the application is unaffected): %s: %s%s",
            where,
            type(exc).__name__,
            scrub(str(exc)),
            details,
        )
    except Exception:  # logging itself failed; nothing more we can safely do
        pass
