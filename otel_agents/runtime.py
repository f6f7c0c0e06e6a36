"""Process-wide state: settings, the tracer and meter, metric instruments, observers.

Built lazily on first use (so `@otel_agents.tool` works before or without `instrument()`),
rebuilt by `instrument()`. The tracer and meter come from the global providers unless
`instrument()` was handed explicit ones; the OpenTelemetry proxies make late provider
registration work either way.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from opentelemetry import _logs, metrics, trace
from opentelemetry._logs import Logger, LoggerProvider
from opentelemetry.metrics import Counter, Histogram, Meter, MeterProvider
from opentelemetry.trace import Tracer, TracerProvider

from otel_agents import semconv as sc
from otel_agents.capture import Capturer, Redactor
from otel_agents.config import Settings
from otel_agents.deferred_metrics import DeferredHistogram, DeferredPoints
from otel_agents.errors import Intervention
from otel_agents.pricing import PriceBook
from otel_agents.summing_counter import SummingCounter
from otel_agents.version import __version__

if TYPE_CHECKING:
    from otel_agents.core.agent import AgentRun
    from otel_agents.core.handoff import Handoff
    from otel_agents.core.inference import LLMCall
    from otel_agents.core.tool import ToolDecision, ToolInvocation

_logger = logging.getLogger("otel_agents")
INSTRUMENTATION_SCOPE = "otel_agents"
# The schema URL of the GenAI conventions we follow (the registry manifest's dependency).
SCHEMA_URL = sc.UPSTREAM_SCHEMA_URL


class Observer:
    """Base for components that watch invocations: the policy gate and the detectors.

    Override what you need. The events are typed by the invocation kinds they carry. A hook
    may raise an `otel_agents.errors.Intervention` to stop a tool call on purpose (a policy
    deny); any other exception is an internal error: it is logged and swallowed, and the
    application goes on.
    """

    def on_tool_start(self, invocation: ToolInvocation) -> ToolDecision | None:
        """Before a tool runs; its span exists. The gate returns its decision (verdict,
        contract status, its own state for `on_tool_end`); others return None."""
        return None

    def on_tool_end(self, invocation: ToolInvocation) -> None:
        """After a tool returned or raised; its span is still open."""

    def on_llm_call_end(self, call: LLMCall) -> None:
        """After an LLM call's response (or stream) is complete; its span is still open."""

    def on_handoff_end(self, handoff: Handoff) -> None:
        """When a handoff boundary closes; its span is still open."""

    def on_run_end(self, run: AgentRun) -> None:
        """When a run's root agent span is about to end."""

    def refusal(self, invocation: ToolInvocation, exc: BaseException) -> Intervention | None:
        """The stop to raise when a tool call could not be checked (`exc` broke its opening
        before this observer's verdict), or None to let it run. Only the policy gate in
        enforce mode with `on_error: fail_closed` refuses."""
        return None


Payload = TypeVar("Payload")


@dataclass(frozen=True)
class ObserverHooks:
    """Per event, the bound hooks of the observers that override it, in order: an event is
    delivered by calling these (typed, no lookup by name), and an observer that ignores an
    event costs it nothing. Built when the observers change (`Runtime.add_observers`)."""

    tool_end: tuple[Callable[[ToolInvocation], None], ...] = ()
    llm_call_end: tuple[Callable[[LLMCall], None], ...] = ()
    handoff_end: tuple[Callable[[Handoff], None], ...] = ()
    run_end: tuple[Callable[[AgentRun], None], ...] = ()

    @classmethod
    def of(cls, observers: Iterable[Observer]) -> ObserverHooks:
        observers = tuple(observers)
        return cls(
            tool_end=tuple(o.on_tool_end for o in observers if _overrides(o, "on_tool_end")),
            llm_call_end=tuple(
                o.on_llm_call_end for o in observers if _overrides(o, "on_llm_call_end")
            ),
            handoff_end=tuple(
                o.on_handoff_end for o in observers if _overrides(o, "on_handoff_end")
            ),
            run_end=tuple(o.on_run_end for o in observers if _overrides(o, "on_run_end")),
        )


def _overrides(observer: Observer, hook: str) -> bool:
    return getattr(type(observer), hook, None) is not getattr(Observer, hook)


@dataclass
class LegacyInstruments:
    """The GenAI metric names of semantic conventions v1.41 that upstream removed or renamed,
    recorded as well as the current ones only with `OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai/dup`
    (for dashboards not yet moved to the new names)."""

    token_usage: Histogram  # gen_ai.client.token.usage, split by gen_ai.token.type
    operation_duration: Histogram  # gen_ai.client.operation.duration for inference too
    time_to_first_chunk: Histogram  # gen_ai.client.operation.time_to_first_chunk

    @classmethod
    def create(cls, meter: Meter) -> LegacyInstruments:
        return cls(
            token_usage=histogram(
                meter,
                sc.METRIC_GEN_AI_CLIENT_TOKEN_USAGE,
                "Number of input and output tokens used.",
            ),
            operation_duration=histogram(
                meter, sc.METRIC_GEN_AI_CLIENT_OPERATION_DURATION, "GenAI operation duration."
            ),
            time_to_first_chunk=histogram(
                meter,
                sc.METRIC_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
                "Time to receive the first chunk of a streamed response.",
            ),
        )


@dataclass
class Instruments:
    # Histograms on the calls' paths are deferred: recorded at collection (see
    # `deferred_metrics`); counters are summed in process (see `SummingCounter`).
    tool_calls: SummingCounter
    tool_duration: DeferredHistogram
    agent_duration: DeferredHistogram
    agent_inference_calls: DeferredHistogram
    agent_tool_calls: DeferredHistogram
    runs: Counter
    run_cost: DeferredHistogram
    handoffs: Counter
    inference_duration: DeferredHistogram
    operation_duration: DeferredHistogram  # GenAI client operations other than inference
    time_to_first_chunk: DeferredHistogram
    time_per_output_chunk: DeferredHistogram
    operation_input_tokens: DeferredHistogram
    operation_output_tokens: DeferredHistogram
    usage_input_tokens: SummingCounter
    usage_output_tokens: SummingCounter
    usage_cache_read_tokens: SummingCounter
    usage_cache_write_tokens: SummingCounter
    usage_reasoning_tokens: SummingCounter
    llm_cost: SummingCounter
    legacy: LegacyInstruments | None = None

    @classmethod
    def create(cls, meter: Meter, legacy: bool = False) -> Instruments:
        def unit(name: str) -> str:
            return sc.METRIC_UNITS.get(name, "")

        def usage(name: str, description: str) -> SummingCounter:
            return SummingCounter.on(meter, name, unit(name), description)

        deferred = DeferredPoints.on(meter)

        def deferred_histogram(meter: Meter, name: str, description: str) -> DeferredHistogram:
            return deferred.histogram(histogram(meter, name, description))

        return cls(
            tool_calls=usage(sc.METRIC_TOOL_CALLS, "Tool executions."),
            tool_duration=deferred_histogram(
                meter, sc.METRIC_GEN_AI_EXECUTE_TOOL_DURATION, "Duration of tool executions."
            ),
            agent_duration=deferred_histogram(
                meter, sc.METRIC_GEN_AI_INVOKE_AGENT_DURATION, "Duration of agent invocations."
            ),
            agent_inference_calls=deferred_histogram(
                meter,
                sc.METRIC_GEN_AI_INVOKE_AGENT_INFERENCE_CALLS,
                "Inference calls made during one agent invocation.",
            ),
            agent_tool_calls=deferred_histogram(
                meter,
                sc.METRIC_GEN_AI_INVOKE_AGENT_TOOL_CALLS,
                "Tool calls made during one agent invocation.",
            ),
            runs=meter.create_counter(sc.METRIC_RUNS, unit(sc.METRIC_RUNS), "Agent runs."),
            run_cost=deferred.histogram(
                meter.create_histogram(
                    sc.METRIC_RUN_COST, unit(sc.METRIC_RUN_COST), "Cost of whole agent runs, USD."
                )
            ),
            handoffs=meter.create_counter(
                sc.METRIC_HANDOFFS, unit(sc.METRIC_HANDOFFS), "Handoffs between agents."
            ),
            inference_duration=deferred_histogram(
                meter, sc.METRIC_GEN_AI_CLIENT_INFERENCE_DURATION, "GenAI inference duration."
            ),
            operation_duration=deferred_histogram(
                meter, sc.METRIC_GEN_AI_CLIENT_OPERATION_DURATION, "GenAI operation duration."
            ),
            time_to_first_chunk=deferred_histogram(
                meter,
                sc.METRIC_GEN_AI_CLIENT_INFERENCE_TIME_TO_FIRST_CHUNK,
                "Time to receive the first chunk of a streamed response.",
            ),
            time_per_output_chunk=deferred_histogram(
                meter,
                sc.METRIC_GEN_AI_CLIENT_INFERENCE_TIME_PER_OUTPUT_CHUNK,
                "Time between consecutive chunks of a streamed response.",
            ),
            operation_input_tokens=deferred_histogram(
                meter,
                sc.METRIC_GEN_AI_CLIENT_INFERENCE_OPERATION_INPUT_TOKENS,
                "Input tokens per inference call.",
            ),
            operation_output_tokens=deferred_histogram(
                meter,
                sc.METRIC_GEN_AI_CLIENT_INFERENCE_OPERATION_OUTPUT_TOKENS,
                "Output tokens per inference call.",
            ),
            usage_input_tokens=usage(
                sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS, "Input tokens used."
            ),
            usage_output_tokens=usage(
                sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_OUTPUT_TOKENS, "Output tokens used."
            ),
            usage_cache_read_tokens=usage(
                sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS,
                "Input tokens served from a provider-managed cache.",
            ),
            usage_cache_write_tokens=usage(
                sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS,
                "Input tokens written to a provider-managed cache.",
            ),
            usage_reasoning_tokens=usage(
                sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS,
                "Output tokens used for reasoning.",
            ),
            llm_cost=SummingCounter.on(
                meter, sc.METRIC_LLM_COST, unit(sc.METRIC_LLM_COST), "Cost of LLM calls, USD."
            ),
            legacy=LegacyInstruments.create(meter) if legacy else None,
        )


def histogram(meter: Meter, name: str, description: str) -> Histogram:
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
    # The policy gate first, then the detectors and the application's observers. Changed
    # only through `add_observers`, which keeps `hooks` in step.
    observers: tuple[Observer, ...] = ()
    hooks: ObserverHooks = field(default_factory=ObserverHooks)
    logger_provider: LoggerProvider | None = None  # given to `instrument()`, else the global
    _event_logger: Logger | None = None

    def event_logger(self) -> Logger | None:
        """The Logs API logger for log-based events, or None when no LoggerProvider is set
        up (neither given to `instrument()` nor registered globally): events then fall back
        to span events. Asked only when an event is about to be emitted."""
        logger = self._event_logger
        if logger is not None:
            return logger
        provider = self.logger_provider or _logs.get_logger_provider()
        if not logs_are_configured(provider):
            return None
        logger = provider.get_logger(INSTRUMENTATION_SCOPE, __version__, schema_url=SCHEMA_URL)
        self._event_logger = logger
        return logger

    @classmethod
    def build(
        cls,
        settings: Settings,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        logger_provider: LoggerProvider | None = None,
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
            instruments=Instruments.create(meter, settings.legacy_genai_metrics),
            prices=PriceBook(settings.prices),
            logger_provider=logger_provider,
        )

    def check_tool(self, invocation: ToolInvocation) -> ToolDecision | None:
        """`on_tool_start` on every observer; the first decision returned (the gate's). An
        observer that fails (rather than decides) is asked for its `refusal`: the policy
        gate failing under fail-closed stops the call; any other failure is logged and
        swallowed."""
        decision: ToolDecision | None = None
        for observer in self.observers:
            try:
                answer = observer.on_tool_start(invocation)
            except Intervention:
                raise
            except Exception as exc:
                report_internal_error(f"observer {type(observer).__name__}.on_tool_start", exc)
                stop = observer.refusal(invocation, exc)
                if stop is not None:
                    raise stop from None
                continue
            if decision is None:
                decision = answer
        return decision

    def add_observers(self, observers: Iterable[Observer], at: int | None = None) -> None:
        """Add observers at the end (or before position `at`)."""
        current = list(self.observers)
        position = len(current) if at is None else at
        current[position:position] = list(observers)
        self.observers = tuple(current)
        self.hooks = ObserverHooks.of(current)

    @staticmethod
    def deliver(hooks: tuple[Callable[[Payload], None], ...], payload: Payload) -> None:
        """Call each hook (from `hooks`) with the event's payload; internal errors are
        swallowed. Exceptions deriving from `Intervention` propagate: they are decisions,
        not bugs."""
        for hook in hooks:
            try:
                hook(payload)
            except Intervention:
                raise
            except Exception as exc:
                report_internal_error(f"observer {_hook_name(hook)}", exc)


def _hook_name(hook: Callable[..., object]) -> str:
    owner = getattr(hook, "__self__", None)
    return f"{type(owner).__name__}.{getattr(hook, '__name__', '?')}"


def logs_are_configured(provider: LoggerProvider | None = None) -> bool:
    """Whether `provider` (default: the global one) is a real LoggerProvider, not the API's
    placeholder (a proxy before one is registered, or the no-op)."""
    provider = provider or _logs.get_logger_provider()
    return type(provider).__name__ not in ("ProxyLoggerProvider", "NoOpLoggerProvider")


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def built_runtime() -> Runtime | None:
    """The runtime if one is built, without building it: for failure paths, which must not
    depend on what may just have failed."""
    return _runtime


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

# While a tool call is being opened (up to its policy verdict), the internal errors reported
# in this context, so that the gate sees failures that were swallowed on the way.
opening_failures: contextvars.ContextVar[list[BaseException] | None] = contextvars.ContextVar(
    "otel_agents_opening_failures", default=None
)


def report_internal_error(where: str, exc: BaseException) -> None:
    """Log an error inside otel-agents once a minute per place; never raise.

    The message (and the traceback, at DEBUG) is scrubbed like captured content: an
    exception raised around user data may quote a key.
    """
    try:
        failures = opening_failures.get()
        if failures is not None:
            failures.append(exc)
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
