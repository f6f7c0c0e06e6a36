"""The generic LLM-call recorder that every client adapter feeds.

An adapter only says how to read its client's request and response (`LLMRequest`,
`LLMResponse`) and, for streams, how to fold chunks into a response (`StreamAccumulator`).
This module does the rest, the same way for every client: the inference span and its
attributes, opt-in content, cost, metrics, the run ledger (tokens, cost, and the tool calls
the model asked for together with the reasoning behind them), and transparent stream
wrapping whose span ends exactly once.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry._logs import LogRecord
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from otel_agents import semconv as sc
from otel_agents.core.common import (
    capture_on_span,
    current_agent,
    error_type,
    record_error,
    run_id_attributes,
)
from otel_agents.core.decision import note_tool_requests
from otel_agents.core.invocation import Invocation
from otel_agents.core.ledger import RunLedger, current_ledger
from otel_agents.core.requests import ToolCallRequest
from otel_agents.pricing import PriceBook, TokenUsage
from otel_agents.runtime import (
    Instruments,
    LegacyInstruments,
    Runtime,
    get_runtime,
    report_internal_error,
)
from otel_agents.summing_counter import AttributeKey, attribute_key

_CALL_KEY = otel_context.create_key("otel_agents.llm_call")


@dataclass
class LLMRequest:
    """What an adapter reads from a request, in GenAI-convention terms."""

    provider: str
    model: str | None
    operation: str = sc.GenAiOperationNameValues.CHAT
    stream: bool = False
    server_address: str | None = None
    server_port: int | None = None
    parameters: dict[str, AttributeValue] = field(default_factory=dict)  # gen_ai.request.*
    conversation_id: str | None = None
    service_tier: str | None = None  # asked for (priced by when the response names none)
    # Content (only serialized when capture is on), in the conventions' JSON shapes:
    input_messages: list[dict[str, Any]] | None = None
    system_instructions: list[dict[str, Any]] | None = None
    tool_definitions: list[dict[str, Any]] | None = None


@dataclass
class LLMResponse:
    """What an adapter reads from a complete response (or an accumulated stream)."""

    response_id: str | None = None
    response_model: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    usage: TokenUsage | None = None
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    reasoning: str | None = None  # thinking text or reasoning summary
    reasoning_source: str | None = None  # a DecisionReasoningSourceValues member
    text: str | None = None  # the assistant's visible text
    output_messages: list[dict[str, Any]] | None = None  # content, conventions' JSON shape
    attributes: dict[str, AttributeValue] = field(default_factory=dict)  # provider extras
    service_tier: str | None = None  # the tier that served the call: priced at its rates
    # The call failed although no exception reached the caller (an HTTP 200 whose body is
    # an error object, a Responses API result with status `failed`): the span is an error.
    error_type: str | None = None
    error_message: str | None = None
    # False when the usage's output count is not the real one (a stream closed before the
    # provider reported it): the output tokens are then neither reported nor priced.
    output_tokens_known: bool = True


class StreamAccumulator(Protocol):
    """Folds a client's stream chunks into one `LLMResponse`. One per stream."""

    def add(self, chunk: Any) -> None: ...

    def response(self) -> LLMResponse: ...


class LLMCall(Invocation):
    """One inference call (`chat`, `text_completion`, ...): opened before the request,
    finished once with the response."""

    def __init__(self, request: LLMRequest) -> None:
        super().__init__()
        self.request = request
        # When each streamed chunk arrived (monotonic seconds): the first gives the time to
        # first chunk, the gaps the time per output chunk.
        self.chunk_times: list[float] = []
        self.response: LLMResponse | None = None
        self.exception: BaseException | None = None
        self.cost_usd: float | None = None
        self.agent_name: str | None = None
        self.attempts: int | None = None
        # The client's own low-cardinality name for an error (an API's error code), when
        # its adapter knows one better than the exception's class: `error.type`.
        self.name_error: Callable[[BaseException], str | None] | None = None
        # The run (or trace) this call counts toward, found once when the call finishes.
        self.ledger: RunLedger | None = None

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def start(
        cls, request: LLMRequest, parent: Invocation | otel_context.Context | None = None
    ) -> LLMCall | None:
        """Open the inference span in `parent` (default: the current context), or return
        None if this call is already being recorded by an outer layer of ours (so one call
        gives one span) or recording failed. Not made current: see `activate`."""
        try:
            ctx = otel_context.get_current() if parent is None else cls.resolve_parent(parent)
            if current_call(ctx) is not None:
                return None
            runtime = get_runtime()
            model = request.model or ""
            frame = current_agent(ctx)
            agent_name = frame.name if frame is not None else None
            attributes = _request_attributes(request, ctx=ctx)
            if agent_name:
                # Not in the inference span's list upstream, but a registry attribute: it lets
                # the collector break cost down by agent from spans alone.
                attributes[sc.GEN_AI_AGENT_NAME] = agent_name
            call = cls(request)
            call.parent_context = ctx
            call.span = span = runtime.tracer.start_span(  # `start_span`, in line: hot
                f"{request.operation} {model}".strip(),
                context=ctx,
                kind=SpanKind.CLIENT,
                attributes=attributes,
            )
            call.agent_name = agent_name
            if runtime.settings.capture_content.on_spans:
                capture_on_span(span, runtime, _request_content(request))
            return call
        except Exception as exc:
            report_internal_error("llm call start", exc)
            return None

    def _add_to_context(self, ctx: otel_context.Context) -> otel_context.Context:
        # Marks the context so that a second layer of ours records nothing.
        return otel_context.set_value(_CALL_KEY, self, ctx)

    def activate(self) -> object:
        """Make the span current (so HTTP spans nest under it). Returns a token for
        `deactivate`."""
        return otel_context.attach(self.child_context())

    @staticmethod
    def deactivate(token: object) -> None:
        """Put back the context `activate` replaced. May raise (the callers guard it)."""
        otel_context.detach(token)  # type: ignore[arg-type]

    # -- streaming ---------------------------------------------------------------------

    @property
    def first_chunk_at(self) -> float | None:
        return self.chunk_times[0] if self.chunk_times else None

    # -- closing -----------------------------------------------------------------------

    def finish(
        self,
        response: LLMResponse | None = None,
        exc: BaseException | None = None,
        attempts: int | None = None,
    ) -> None:
        """Record the outcome and end the span. Only the first call counts."""
        if self._finished:
            return
        self.response, self.exception = response, exc
        if attempts is not None:
            self.attempts = attempts
        self.complete(exc)

    def error_name(self, exc: BaseException) -> str:
        """`error.type` for `exc`: the adapter's name for it, else the exception's class."""
        if self.name_error is not None:
            try:
                name = self.name_error(exc)
            except Exception as internal:
                report_internal_error("error name", internal)
                name = None
            if name:
                return name
        return error_type(exc)

    def _record_end(self, exc: BaseException | None) -> None:
        runtime = get_runtime()
        span = self.span
        response = self.response
        self.ledger = current_ledger(self.parent_context)
        if exc is not None:
            record_error(span, exc, runtime, self.error_name(exc))
        # Everything the end of the call tells goes onto the span in one `set_attributes`
        # (each call takes the span's lock and cleans the values again).
        attributes: dict[str, AttributeValue] = {}
        if self.attempts is not None:
            attributes[sc.LLM_ATTEMPTS] = self.attempts
        if self.first_chunk_at is not None:
            attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self.first_chunk_at - self.started
        if response is not None:
            self._record_response(runtime, response, attributes)
        elif attributes:
            span.set_attributes(attributes)
        if runtime.settings.capture_content.on_events:
            emit_operation_details(runtime, self, exc)
        runtime.deliver(runtime.hooks.llm_call_end, self)
        self._record_metrics(runtime, exc)

    def _record_response(
        self, runtime: Runtime, response: LLMResponse, attributes: dict[str, AttributeValue]
    ) -> None:
        span = self.span
        _add_response_attributes(attributes, response)
        if response.error_type is not None and self.exception is None:
            attributes[sc.ERROR_TYPE] = response.error_type
            span.set_status(Status(StatusCode.ERROR, response.error_message or response.error_type))
        usage = response.usage
        if usage is not None:
            if not response.output_tokens_known:
                usage = usage._replace(output_tokens=0, reasoning_tokens=0)
            model = _priced_model(runtime.prices, self.request, response)
            tier = response.service_tier or self.request.service_tier
            priced = runtime.prices.cost(self.request.provider, model, usage, service_tier=tier)
            if priced is not None:
                self.cost_usd, cost_source = priced
                attributes[sc.COST_USD] = round(self.cost_usd, 10)
                attributes[sc.COST_SOURCE] = cost_source
        span.set_attributes(attributes)
        if response.output_messages is not None:
            capture_on_span(span, runtime, {sc.GEN_AI_OUTPUT_MESSAGES: response.output_messages})
        ledger = self.ledger
        if ledger is None:
            return  # outside any run or trace: no one to hand the tool calls to
        ledger.totals.add_llm_call(
            usage.input_tokens if usage else 0,
            usage.output_tokens if usage else 0,
            self.cost_usd,
        )
        if response.tool_calls:
            reasoning: str | None = response.reasoning
            source: str | None = response.reasoning_source
            if not reasoning and response.text:
                reasoning, source = response.text, sc.DecisionReasoningSourceValues.ASSISTANT_TEXT
            for requested in response.tool_calls:
                requested.reasoning, requested.reasoning_source = reasoning, source
            note_tool_requests(response.tool_calls, span.get_span_context(), ledger)

    def _record_metrics(self, runtime: Runtime, exc: BaseException | None) -> None:
        request, response = self.request, self.response
        response_model = response.response_model if response is not None else None
        metric = _metric_attributes(request, response_model)
        instruments = runtime.instruments
        elapsed = time.monotonic() - self.started
        duration_attributes = metric.common
        if exc is not None:
            duration_attributes = {**metric.common, sc.ERROR_TYPE: self.error_name(exc)}
        elif response is not None and response.error_type is not None:
            duration_attributes = {**metric.common, sc.ERROR_TYPE: response.error_type}
        usage = response.usage if response is not None else None
        output_known = response is None or response.output_tokens_known
        if metric.inference:
            # No exemplar: the backend's latency exemplars come from the collector's span
            # metrics, and a reservoir offer per call costs more than it adds here.
            instruments.inference_duration.record(elapsed, duration_attributes)
            self._record_chunk_times(instruments, metric.common)
            _record_token_usage(instruments, metric, usage, output_known)
        else:  # embeddings: the conventions keep the generic operation metric for them
            instruments.operation_duration.record(elapsed, duration_attributes)
        if instruments.legacy is not None:
            self._record_legacy_metrics(instruments.legacy, metric, elapsed, duration_attributes)
        if self.cost_usd is not None:
            instruments.llm_cost.add(self.cost_usd, metric.cost_key(self.agent_name))

    def _record_chunk_times(self, instruments: Instruments, attributes: dict[str, Any]) -> None:
        times = self.chunk_times
        if not times:
            return
        instruments.time_to_first_chunk.record(times[0] - self.started, attributes)
        # One point per chunk after the first; a pathologically long stream is sampled at its
        # start rather than costing a metric point for each of its chunks.
        if len(times) > 1:
            instruments.time_per_output_chunk.record_intervals(
                times[: _MAX_CHUNK_GAPS + 1], attributes
            )

    def _record_legacy_metrics(
        self,
        legacy: LegacyInstruments,
        metric: _MetricAttributes,
        elapsed: float,
        duration_attributes: dict[str, AttributeValue],
    ) -> None:
        """The v1.41 names, for `OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai/dup` only."""
        legacy.operation_duration.record(elapsed, duration_attributes)
        if self.chunk_times:
            legacy.time_to_first_chunk.record(self.chunk_times[0] - self.started, metric.common)
        usage = self.response.usage if self.response is not None else None
        if usage is not None:
            legacy_type = sc.GEN_AI_TOKEN_TYPE
            legacy.token_usage.record(usage.input_tokens, {**metric.common, legacy_type: "input"})
            legacy.token_usage.record(usage.output_tokens, {**metric.common, legacy_type: "output"})


# At most this many `time_per_output_chunk` points per stream.
_MAX_CHUNK_GAPS = 2048


def _record_token_usage(
    instruments: Instruments,
    metric: _MetricAttributes,
    usage: TokenUsage | None,
    output_known: bool = True,
) -> None:
    """The usage counters on every inference call (0 when no usage came back, as the
    conventions ask), the per-call token histograms when usage is known. `output_known`
    is false for a stream cut before the provider reported its output tokens."""
    key = metric.usage_key
    if usage is None:
        instruments.usage_input_tokens.add(0, key)
        instruments.usage_output_tokens.add(0, key)
        return
    instruments.usage_input_tokens.add(usage.input_tokens, key)
    instruments.usage_output_tokens.add(usage.output_tokens if output_known else 0, key)
    if usage.cache_read_tokens:
        instruments.usage_cache_read_tokens.add(usage.cache_read_tokens, key)
    if usage.cache_write_tokens:
        instruments.usage_cache_write_tokens.add(usage.cache_write_tokens, key)
    if usage.reasoning_tokens:
        instruments.usage_reasoning_tokens.add(usage.reasoning_tokens, key)
    instruments.operation_input_tokens.record(usage.input_tokens, metric.common)
    if output_known:
        instruments.operation_output_tokens.record(usage.output_tokens, metric.common)


@dataclass(frozen=True)
class _MetricAttributes:
    """The attribute sets of one (model, server) pair's metric points, built once: the
    SDK copies what it is given, so they can be shared."""

    common: dict[str, AttributeValue]
    inference: bool  # an inference operation (chat, text completion, content generation)
    usage_key: AttributeKey  # the usage counters' attributes: common + token modality
    _cost: AttributeKey  # provider and model (a `SummingCounter` key)
    _cost_by_agent: dict[str, AttributeKey] = field(default_factory=dict)

    def cost_key(self, agent_name: str | None) -> AttributeKey:
        if not agent_name:
            return self._cost
        key = self._cost_by_agent.get(agent_name)
        if key is None:
            key = (*self._cost, (sc.GEN_AI_AGENT_NAME, agent_name))
            if len(self._cost_by_agent) < _MAX_METRIC_ATTRIBUTE_SETS:
                self._cost_by_agent[agent_name] = key
        return key


_MAX_METRIC_ATTRIBUTE_SETS = 256
_INFERENCE_OPERATIONS = frozenset(
    {
        sc.GenAiOperationNameValues.CHAT,
        sc.GenAiOperationNameValues.TEXT_COMPLETION,
        sc.GenAiOperationNameValues.GENERATE_CONTENT,
    }
)
_metric_attribute_sets: dict[tuple[Any, ...], _MetricAttributes] = {}


def _metric_attributes(request: LLMRequest, response_model: str | None) -> _MetricAttributes:
    key = (
        request.operation,
        request.provider,
        request.model,
        response_model,
        request.server_address,
        request.server_port,
    )
    known = _metric_attribute_sets.get(key)
    if known is not None:
        return known
    common: dict[str, AttributeValue] = {
        sc.GEN_AI_OPERATION_NAME: request.operation,
        sc.GEN_AI_PROVIDER_NAME: request.provider,
    }
    if request.model:
        common[sc.GEN_AI_REQUEST_MODEL] = request.model
    if response_model:
        common[sc.GEN_AI_RESPONSE_MODEL] = response_model
    if request.server_address:
        common[sc.SERVER_ADDRESS] = request.server_address
    if request.server_port:
        common[sc.SERVER_PORT] = request.server_port
    known = _MetricAttributes(
        common=common,
        inference=request.operation in _INFERENCE_OPERATIONS,
        # Providers report no split by modality that we read: `unknown`, as the conventions ask.
        usage_key=attribute_key(
            {**common, sc.GEN_AI_TOKEN_MODALITY: sc.GenAiTokenModalityValues.UNKNOWN}
        ),
        _cost=attribute_key(
            {
                k: v
                for k, v in common.items()
                if k in (sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_REQUEST_MODEL)
            }
        ),
    )
    if len(_metric_attribute_sets) >= _MAX_METRIC_ATTRIBUTE_SETS:
        _metric_attribute_sets.clear()  # many models or servers: start over, stay bounded
    _metric_attribute_sets[key] = known
    return known


def emit_operation_details(runtime: Runtime, call: LLMCall, exc: BaseException | None) -> None:
    """The conventions' `gen_ai.client.inference.operation.details` event, once per call
    when the capture mode asks for events: a log record (Logs API, `event_name`) in the
    call's span context, with the inference span's attributes and the content in structured
    form, as `opentelemetry-util-genai` emits it. Without a LoggerProvider (the local store;
    an application that set up traces only) the content goes into a span event of that name
    on the inference span instead."""
    try:
        request, response = call.request, call.response
        content = _request_content(request)
        if response is not None and response.output_messages is not None:
            content[sc.GEN_AI_OUTPUT_MESSAGES] = response.output_messages
        logger = runtime.event_logger()
        capturer = runtime.capturer
        if logger is None:
            if content:
                safe = {key: capturer.text(value) for key, value in content.items()}
                call.span.add_event(sc.EVENT_GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS, safe)
            return
        attributes = _request_attributes(request, with_run_id=False)
        if response is not None:
            _add_response_attributes(attributes, response, provider_extras=False)
        if exc is not None:
            attributes[sc.ERROR_TYPE] = call.error_name(exc)
        event: dict[str, Any] = dict(attributes)
        event.update((key, capturer.structured(value)) for key, value in content.items())
        logger.emit(_log_record(call.span, event))
    except Exception as internal:
        report_internal_error("operation details event", internal)


def _log_record(span: Span, attributes: dict[str, Any]) -> LogRecord:
    context = span.get_span_context()
    fields: dict[str, Any] = {
        "timestamp": time.time_ns(),
        "trace_id": context.trace_id,
        "span_id": context.span_id,
        "trace_flags": context.trace_flags,
        "attributes": attributes,
    }
    if _LOG_RECORDS_HAVE_EVENT_NAMES:
        fields["event_name"] = sc.EVENT_GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS
    else:  # an older Logs API: the event name as the attribute it used to be
        attributes["event.name"] = sc.EVENT_GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS
    return LogRecord(**fields)


_LOG_RECORDS_HAVE_EVENT_NAMES = "event_name" in inspect.signature(LogRecord.__init__).parameters


def _request_content(request: LLMRequest) -> dict[str, Any]:
    return _drop_none(
        {
            sc.GEN_AI_INPUT_MESSAGES: request.input_messages,
            sc.GEN_AI_SYSTEM_INSTRUCTIONS: request.system_instructions,
            sc.GEN_AI_TOOL_DEFINITIONS: request.tool_definitions,
        }
    )


def current_call(ctx: otel_context.Context | None = None) -> LLMCall | None:
    """The LLM call being made in this context (its span is current), if any."""
    value = otel_context.get_value(_CALL_KEY, ctx)
    return value if isinstance(value, LLMCall) else None


def _request_attributes(
    request: LLMRequest, with_run_id: bool = True, ctx: otel_context.Context | None = None
) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        sc.GEN_AI_OPERATION_NAME: request.operation,
        sc.GEN_AI_PROVIDER_NAME: request.provider,
    }
    if with_run_id:
        attributes.update(run_id_attributes(ctx))
    if request.model:
        attributes[sc.GEN_AI_REQUEST_MODEL] = request.model
    if request.stream:
        attributes[sc.GEN_AI_REQUEST_STREAM] = True
    if request.server_address:
        attributes[sc.SERVER_ADDRESS] = request.server_address
    if request.server_port:
        attributes[sc.SERVER_PORT] = request.server_port
    if request.conversation_id:
        attributes[sc.GEN_AI_CONVERSATION_ID] = request.conversation_id
    attributes.update(request.parameters)
    return attributes


def _add_response_attributes(
    attributes: dict[str, AttributeValue], response: LLMResponse, provider_extras: bool = True
) -> None:
    if response.response_id:
        attributes[sc.GEN_AI_RESPONSE_ID] = response.response_id
    if response.response_model:
        attributes[sc.GEN_AI_RESPONSE_MODEL] = response.response_model
    if response.finish_reasons:
        attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] = list(response.finish_reasons)
    usage = response.usage
    if usage is not None:
        attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
        if response.output_tokens_known:
            attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
        if usage.cache_read_tokens:
            attributes[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
        if usage.cache_write_tokens:
            attributes[sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = usage.cache_write_tokens
        if usage.reasoning_tokens:
            attributes[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
    if response.attributes and provider_extras:
        attributes.update(response.attributes)


def _priced_model(prices: PriceBook, request: LLMRequest, response: LLMResponse) -> str | None:
    """The model that answered (providers report dated names: `gpt-4o-mini-2024-07-18`),
    unless only the name the application asked for (or its Azure deployment) has a price
    override: an override must win under the name the user knows."""
    answered = response.response_model or request.model
    if not prices.overrides:
        return answered

    def overridden(model: str | None) -> bool:
        keys = (f"{request.provider}/{model}", model)
        return model is not None and any(key in prices.overrides for key in keys)

    if not overridden(answered) and overridden(request.model):
        return request.model
    return answered


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


__all__ = [
    "LLMCall",
    "LLMRequest",
    "LLMResponse",
    "StreamAccumulator",
    "ToolCallRequest",
    "current_call",
]
