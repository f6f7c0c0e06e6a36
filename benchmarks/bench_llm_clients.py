"""Per-call overhead of LLM client instrumentation: otel-agents, the bare SDK and the peers.

    python benchmarks/bench_llm_clients.py [--calls N] [--repeat R] [--warmup W]
        [--workloads NAME ...] [--variants NAME ...] [--json PATH]

The real `openai` and `anthropic` SDKs make real calls, answered at once by an in-process
`httpx2.MockTransport` with the same recorded wire bytes every time (`tests/fixtures/`), so
the time measured is the SDK plus the instrumentation, never a network. Each workload
(OpenAI chat completions and Anthropic messages, plain and streamed, answered with tool
calls) is run under every variant: the bare SDK, otel-agents, and each peer
instrumentation on the same workload.

Every variant records into the same real OpenTelemetry SDK: a `TracerProvider` with a
`SimpleSpanProcessor` whose exporter counts and drops spans, a `MeterProvider` with an
in-memory reader, and a `LoggerProvider` whose exporter counts and drops log records (for
peers that emit events). Content capture is off for all, as it is by default; one extra
row shows otel-agents with content capture on, one inside an agent run.

Each round of each variant runs in a fresh process (some peers' `uninstrument()` leaves
patches behind, so one process could not give every variant a clean SDK): it installs the
variant, warms up, times N calls of each workload, uninstalls it and reports which SDK
methods are still patched. Rounds are interleaved, in a rotating order, so that drift on
the machine hits all variants alike; rows show the median of R rounds, with min and max,
and the overhead is the median of the per-round differences to the bare SDK.
The time is process CPU time by default (the work is all CPU: no network, no sleeps), which
other processes on a shared machine disturb far less than wall time (`--clock wall`).

Every variant must produce its spans on every call: one that produces none is reported as
not working, never as fast. What a variant captures is read off the spans of one call
(usage, cost, tool-call ids, ...), and content capture is checked to be really off.

Peers are optional: install them from `benchmarks/requirements-peers.txt` into a separate
virtualenv (see `benchmarks/README.md`). A peer that is missing, fails to import or to
instrument, breaks the call or produces no spans gets a row that says why.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx2
from instructions import InstructionCounter
from opentelemetry import metrics, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"

# Text that only content capture can put on a span: in the prompt, and in the model's answer
# (the tool-call arguments of every fixture below say "celsius"; no request does).
CONTENT_MARKERS = ("bench-marker-prompt", "celsius")
TOOL_CALL_ID = re.compile(r"^(call_|toolu_)\w+$")
RESPONSE_ID = re.compile(r"^(chatcmpl-|msg_)\w+$")


# ------------------------------------------------------------------------------- telemetry


class CountingSpanExporter(SpanExporter):
    """Counts spans and drops them; keeps them only while `keep` is set (for inspection)."""

    def __init__(self) -> None:
        self.count = 0
        self.keep = False
        self.kept: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        if self.keep:
            self.kept.extend(spans)
        return SpanExportResult.SUCCESS


class CountingLogExporter(LogRecordExporter):
    """Counts log records (events) and drops them; keeps their bodies while `keep` is set."""

    def __init__(self) -> None:
        self.count = 0
        self.keep = False
        self.kept: list[str] = []

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        self.count += len(batch)
        if self.keep:
            for data in batch:
                record = getattr(data, "log_record", data)
                body = getattr(record, "body", None)
                attributes = dict(getattr(record, "attributes", None) or {})
                self.kept.append(json.dumps([body, attributes], default=str))
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


@dataclass
class Telemetry:
    """One real OpenTelemetry SDK set-up, shared by every variant (and registered globally)."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    spans: CountingSpanExporter
    logs: CountingLogExporter
    metric_reader: InMemoryMetricReader

    @classmethod
    def install(cls) -> Telemetry:
        spans, logs = CountingSpanExporter(), CountingLogExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        delta = AggregationTemporality.DELTA
        reader = InMemoryMetricReader(
            preferred_temporality={
                kind: delta
                for kind in (
                    Counter,
                    UpDownCounter,
                    Histogram,
                    ObservableCounter,
                    ObservableUpDownCounter,
                    ObservableGauge,
                )
            }
        )
        meter_provider = MeterProvider(metric_readers=[reader])
        logger_provider = LoggerProvider()
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
        # Global too: what an application would do, and what the `anthropic` SDK's own
        # tracing (and any peer that ignores the providers it is given) records into.
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
        set_logger_provider(logger_provider)
        return cls(tracer_provider, meter_provider, logger_provider, spans, logs, reader)

    def metric_names(self) -> set[str]:
        """Names of the metrics that got data points since the last call (delta temporality)."""
        data = self.metric_reader.get_metrics_data()
        names: set[str] = set()
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if list(getattr(metric.data, "data_points", ())):
                        names.add(metric.name)
        return names

    def provider_kwargs(self) -> dict[str, Any]:
        return {
            "tracer_provider": self.tracer_provider,
            "meter_provider": self.meter_provider,
            "logger_provider": self.logger_provider,
        }


# ------------------------------------------------------------------------------- transport


class _EventStream(httpx2.SyncByteStream):
    """A server-sent event body, one event per chunk (as a server flushes them)."""

    def __init__(self, events: tuple[bytes, ...]) -> None:
        self._events = events

    def __iter__(self) -> Iterator[bytes]:
        yield from self._events

    def close(self) -> None:
        pass


def fixture_transport(name: str) -> httpx2.MockTransport:
    """A transport that answers every request at once with fixture `name` (and its headers)."""
    path = FIXTURES / name
    body = path.read_bytes()
    is_sse = path.suffix == ".sse"
    headers = {"content-type": "text/event-stream" if is_sse else "application/json"}
    sidecar = path.with_name(f"{path.stem}.meta.json")
    if sidecar.is_file():
        meta = json.loads(sidecar.read_bytes())
        headers.update({k.lower(): str(v) for k, v in meta.get("headers", {}).items()})
    if is_sse:
        events = tuple(event for event in re.split(rb"(?<=\n\n)", body) if event)

        def answer_stream(request: httpx2.Request) -> httpx2.Response:
            return httpx2.Response(
                200, headers=headers, stream=_EventStream(events), request=request
            )

        return httpx2.MockTransport(answer_stream)

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers=headers, content=body, request=request)

    return httpx2.MockTransport(answer)


# ------------------------------------------------------------------------------- workloads

OPENAI_MESSAGES = [
    {"role": "system", "content": "You are a travel assistant. bench-marker-prompt"},
    {"role": "user", "content": "What is the weather and the local time in Paris?"},
]
OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_local_time",
            "description": "Local time in a time zone.",
            "parameters": {
                "type": "object",
                "properties": {"timezone": {"type": "string"}},
                "required": ["timezone"],
            },
        },
    },
]
ANTHROPIC_SYSTEM = "You are a travel assistant. bench-marker-prompt"
ANTHROPIC_MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
ANTHROPIC_TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    }
]
ANTHROPIC_ARGS: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 2048,
    "system": ANTHROPIC_SYSTEM,
    "messages": ANTHROPIC_MESSAGES,
    "tools": ANTHROPIC_TOOLS,
    "thinking": {"type": "enabled", "budget_tokens": 1024},
}
FAKE_KEY = "sk-bench-0000000000000000000000000000000000000000"


def make_client(sdk: str, fixture: str, *, native_tracing: bool = False) -> Any:
    """A real SDK client whose requests `fixture_transport(fixture)` answers.

    `native_tracing` is for `anthropic`, whose 2.x SDK makes its own spans whenever a tracer
    provider is registered: off (`open_telemetry=False`) unless asked for.
    """
    http_client = httpx2.Client(transport=fixture_transport(fixture))
    if sdk == "openai":
        import openai

        return openai.OpenAI(
            api_key=FAKE_KEY,
            base_url="https://api.openai.test/v1",
            max_retries=0,
            http_client=http_client,
        )
    import anthropic

    return anthropic.Anthropic(
        api_key=FAKE_KEY,
        base_url="https://api.anthropic.test",
        max_retries=0,
        http_client=http_client,
        **({} if native_tracing else {"open_telemetry": False}),
    )


def openai_chat(client: Any) -> None:
    client.chat.completions.create(model="gpt-4.1", messages=OPENAI_MESSAGES, tools=OPENAI_TOOLS)


def openai_chat_stream(client: Any) -> None:
    stream = client.chat.completions.create(
        model="gpt-4.1",
        messages=OPENAI_MESSAGES,
        tools=OPENAI_TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    for _ in stream:
        pass


def anthropic_messages(client: Any) -> None:
    client.messages.create(**ANTHROPIC_ARGS)


def anthropic_messages_stream(client: Any) -> None:
    for _ in client.messages.create(**ANTHROPIC_ARGS, stream=True):
        pass


def anthropic_messages_stream_helper(client: Any) -> None:
    with client.messages.stream(**ANTHROPIC_ARGS) as stream:
        for _ in stream:
            pass


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    sdk: str  # "openai" | "anthropic"
    fixture: str
    call: Callable[[Any], None]


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "openai-chat",
        "OpenAI chat completions, non-streaming (2 tool calls)",
        "openai",
        "openai/chat_tool_calls.json",
        openai_chat,
    ),
    Workload(
        "openai-chat-stream",
        "OpenAI chat completions, streaming with include_usage (2 tool calls, 20 chunks)",
        "openai",
        "openai/chat_stream_tool_calls.sse",
        openai_chat_stream,
    ),
    Workload(
        "anthropic-messages",
        "Anthropic messages, non-streaming (thinking, text, tool use)",
        "anthropic",
        "anthropic/message_thinking_tool_use.json",
        anthropic_messages,
    ),
    Workload(
        "anthropic-messages-stream",
        "Anthropic messages, streaming with `create(stream=True)` (thinking, text, tool use)",
        "anthropic",
        "anthropic/stream_thinking_text_tool_use.sse",
        anthropic_messages_stream,
    ),
    Workload(
        "anthropic-messages-stream-helper",
        "Anthropic messages, streaming with the `messages.stream()` helper",
        "anthropic",
        "anthropic/stream_thinking_text_tool_use.sse",
        anthropic_messages_stream_helper,
    ),
)
DEFAULT_WORKLOADS = tuple(w.key for w in WORKLOADS if w.key != "anthropic-messages-stream-helper")


# -------------------------------------------------------------------------------- variants


class NotCompatible(Exception):
    """A variant that cannot run on this workload: the message says why."""


class Instrumentor(Protocol):
    is_instrumented_by_opentelemetry: bool

    def instrument(self, **kwargs: Any) -> None: ...

    def uninstrument(self, **kwargs: Any) -> None: ...


Uninstall = Callable[[], None]
Install = Callable[[Telemetry, str], Uninstall]


def install_nothing(telemetry: Telemetry, sdk: str) -> Uninstall:
    return lambda: None


def install_otel_agents(capture: str) -> Install:
    def install(telemetry: Telemetry, sdk: str) -> Uninstall:
        adapter = f"otel_agents.adapters.{sdk}"
        if importlib.util.find_spec(adapter) is None:
            raise NotCompatible(f"no adapter yet ({adapter} is missing)")
        import otel_agents

        otel_agents.instrument(
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
            configure_sdk=False,
            capture_content=capture,
        )
        return otel_agents.uninstrument

    return install


def otel_agents_run() -> AbstractContextManager[Any]:
    import otel_agents

    return otel_agents.agent("bench")


def verify_decision_path(telemetry: Telemetry) -> list[str]:
    """Run the tool the model asked for: its span must name the model's tool call id and
    link back to the LLM span that requested it."""
    import otel_agents

    @otel_agents.tool
    def get_weather(city: str, unit: str = "celsius") -> str:
        return "sunny"

    telemetry.spans.keep = True
    try:
        get_weather(city="Paris", unit="celsius")
    finally:
        telemetry.spans.keep = False
    spans, telemetry.spans.kept = telemetry.spans.kept, []
    for span in spans:
        call_id = str((span.attributes or {}).get("gen_ai.tool.call.id", ""))
        if span.name.startswith("execute_tool") and TOOL_CALL_ID.match(call_id) and span.links:
            return ["decision path (tool span linked to the request)"]
    return []


def install_instrumentor(
    factories: Mapping[str, Callable[[], tuple[Instrumentor, dict[str, Any]]]],
    environ: Mapping[str, str] | None = None,
) -> Install:
    """A peer built on OpenTelemetry's `BaseInstrumentor`, one factory per SDK."""

    def install(telemetry: Telemetry, sdk: str) -> Uninstall:
        factory = factories.get(sdk)
        if factory is None:
            raise NotCompatible(f"does not instrument {sdk}")
        try:
            instrumentor, options = factory()
        except Exception as exc:
            raise NotCompatible(f"import fails: {type(exc).__name__}: {exc}") from exc
        saved = {name: os.environ.get(name) for name in environ or {}}
        os.environ.update(environ or {})

        def uninstall() -> None:
            instrumentor.uninstrument()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

        try:
            instrumentor.instrument(**telemetry.provider_kwargs(), **options)
        except Exception as exc:
            uninstall()
            raise NotCompatible(f"instrument() fails: {type(exc).__name__}: {exc}") from exc
        if not instrumentor.is_instrumented_by_opentelemetry:
            uninstall()
            raise NotCompatible("instrument() did nothing (its dependency check refused the SDK)")
        return uninstall

    return install


def _openai_v2() -> tuple[Instrumentor, dict[str, Any]]:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    return OpenAIInstrumentor(), {}


def _openllmetry_openai() -> tuple[Instrumentor, dict[str, Any]]:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    return OpenAIInstrumentor(), {}


def _openllmetry_anthropic() -> tuple[Instrumentor, dict[str, Any]]:
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

    return AnthropicInstrumentor(), {}


def _openinference_config() -> dict[str, Any]:
    from openinference.instrumentation import TraceConfig

    return {"config": TraceConfig(hide_inputs=True, hide_outputs=True)}


def _openinference_openai() -> tuple[Instrumentor, dict[str, Any]]:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    return OpenAIInstrumentor(), _openinference_config()


def _openinference_anthropic() -> tuple[Instrumentor, dict[str, Any]]:
    from openinference.instrumentation.anthropic import AnthropicInstrumentor

    return AnthropicInstrumentor(), _openinference_config()


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    install: Install
    distributions: Mapping[str, str] = field(default_factory=dict)  # sdk -> distribution
    sdks: frozenset[str] = frozenset({"openai", "anthropic"})
    native_tracing: bool = False  # the anthropic client's own spans on
    content: bool = False
    # Around the calls (e.g. an agent run), and a check of what it records beyond the
    # LLM span, made inside it after the first call: returns the capture labels it proved.
    around: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext
    verify: Callable[[Telemetry], list[str]] | None = None
    note: str = ""

    def installed(self, sdk: str) -> bool:
        distribution = self.distributions.get(sdk)
        try:
            return distribution is None or bool(importlib.metadata.version(distribution))
        except importlib.metadata.PackageNotFoundError:
            return False

    def version(self, sdk: str) -> str:
        distribution = self.distributions.get(sdk)
        if distribution is None:
            return ""
        try:
            return f"{distribution} {importlib.metadata.version(distribution)}"
        except importlib.metadata.PackageNotFoundError:
            return f"{distribution} (not installed)"


VARIANTS: tuple[Variant, ...] = (
    Variant("bare", "bare SDK", install_nothing, {"openai": "openai", "anthropic": "anthropic"}),
    Variant(
        "anthropic-native",
        "anthropic SDK's own tracing",
        install_nothing,
        {"anthropic": "anthropic"},
        sdks=frozenset({"anthropic"}),
        native_tracing=True,
    ),
    Variant(
        "otel-agents",
        "otel-agents",
        install_otel_agents("NO_CONTENT"),
        {"openai": "otel-agents", "anthropic": "otel-agents"},
    ),
    Variant(
        "otel-agents-run",
        "otel-agents, inside an agent run",
        install_otel_agents("NO_CONTENT"),
        {"openai": "otel-agents", "anthropic": "otel-agents"},
        around=otel_agents_run,
        verify=verify_decision_path,
        note="the calls are made inside one `otel_agents.agent(...)` "
        "span (not counted), so the run's ledger also notes the tool calls each response "
        "asks for (the decision path) and adds up tokens and cost; the benchmark checks "
        "that a tool executed afterwards links back to its request",
    ),
    Variant(
        "otel-agents-content",
        "otel-agents, content capture on",
        install_otel_agents("SPAN_ONLY"),
        {"openai": "otel-agents", "anthropic": "otel-agents"},
        content=True,
    ),
    Variant(
        "otel-agents-native",
        "otel-agents, SDK's own tracing left on",
        install_otel_agents("NO_CONTENT"),
        {"anthropic": "otel-agents"},
        sdks=frozenset({"anthropic"}),
        native_tracing=True,
        note="an `anthropic` client at its default, whose own span otel-agents replaces "
        "with its span (one span per call, not two)",
    ),
    Variant(
        "openai-v2",
        "OpenTelemetry contrib openai-v2",
        install_instrumentor({"openai": _openai_v2}),
        {"openai": "opentelemetry-instrumentation-openai-v2"},
        sdks=frozenset({"openai"}),
        note="imports `httpx`, which openai 3.x no longer uses: runs only with "
        "`httpx2.alias_httpx()` called first (this benchmark does, unless --no-httpx-alias)",
    ),
    Variant(
        "openllmetry",
        "OpenLLMetry",
        install_instrumentor(
            {"openai": _openllmetry_openai, "anthropic": _openllmetry_anthropic},
            environ={"TRACELOOP_TRACE_CONTENT": "false"},
        ),
        {
            "openai": "opentelemetry-instrumentation-openai",
            "anthropic": "opentelemetry-instrumentation-anthropic",
        },
    ),
    Variant(
        "openinference",
        "OpenInference",
        install_instrumentor(
            {"openai": _openinference_openai, "anthropic": _openinference_anthropic}
        ),
        {
            "openai": "openinference-instrumentation-openai",
            "anthropic": "openinference-instrumentation-anthropic",
        },
    ),
)
VARIANT_KEYS = tuple(v.key for v in VARIANTS)


# ------------------------------------------------------------------------ patch inspection

_PATCHABLE_MODULES = re.compile(
    r"^(openai|anthropic)(\._client|\._base_client|\._streaming|\._response"
    r"|\.resources(\..*)?|\.lib(\..*)?)?$"
)
Snapshot = dict[tuple[str, str, str], Any]


def patch_snapshot() -> Snapshot:
    """Every function and descriptor that the SDKs' client, resource and stream classes
    define (and the SDKs' module-level callables), by (module, class, attribute)."""
    snapshot: Snapshot = {}
    for module_name, module in list(sys.modules.items()):
        if module is None or not _PATCHABLE_MODULES.match(module_name):
            continue
        for name, value in list(vars(module).items()):
            if inspect.isclass(value) and value.__module__ == module_name:
                for attribute, member in list(vars(value).items()):
                    snapshot[(module_name, value.__qualname__, attribute)] = member
            elif callable(value):
                snapshot[(module_name, "", name)] = value
    return snapshot


def patch_changes(before: Snapshot) -> list[str]:
    """What differs from `before`: ignoring modules and classes that appeared since, and
    class attributes added that hold the very object the class inherited."""
    after = patch_snapshot()
    changed = [
        ".".join(filter(None, key)) for key, value in before.items() if after.get(key) is not value
    ]
    classes_before = {(module_name, qualname) for module_name, qualname, _ in before if qualname}
    for key, value in after.items():
        module_name, qualname, attribute = key
        if key in before or (module_name, qualname) not in classes_before:
            continue
        owner = getattr(sys.modules[module_name], qualname)
        inherited = next(
            (vars(base)[attribute] for base in owner.__mro__[1:] if attribute in vars(base)),
            None,
        )
        if inherited is not value:
            changed.append(".".join(key))
    return sorted(changed)


# ------------------------------------------------------------------------------ measuring


@dataclass
class Probe:
    """What one call under a variant recorded."""

    span_names: list[str]
    attributes: int  # attributes on the call's spans (and their events)
    captures: list[str]
    content_found: bool


@dataclass
class Outcome:
    workload: Workload
    variant: Variant
    samples: list[float] = field(default_factory=list)  # µs per call, one per round
    other_samples: list[float] = field(default_factory=list)  # the same, by the other clock
    instructions: list[float] = field(default_factory=list)  # per call, one per round
    rounds: list[int] = field(default_factory=list)  # the round of each sample
    spans: int = 0
    logs: int = 0
    calls: int = 0
    metrics: set[str] = field(default_factory=set)
    left_patched: list[str] = field(default_factory=list)  # after uninstrument()
    probe: Probe | None = None
    error: str | None = None

    def add(self, result: Mapping[str, Any], clock: str, round_: int) -> None:
        """Fold in one round's result from a worker."""
        if self.error is not None:
            return
        if result.get("error"):
            self.error = result["error"]
            return
        other = "wall" if clock == "cpu" else "cpu"
        self.samples.append(result[f"{clock}_us"])
        self.other_samples.append(result[f"{other}_us"])
        if result.get("instructions") is not None:
            self.instructions.append(result["instructions"])
        self.rounds.append(round_)
        self.spans += result["spans"]
        self.logs += result["logs"]
        self.calls += result["calls"]
        self.metrics.update(result["metrics"])
        self.left_patched = result["left_patched"]
        if "probe" in result:
            self.probe = Probe(**result["probe"])

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def overhead(
        self, bare: Outcome | None, measure: str = "time"
    ) -> tuple[float, float, float] | None:
        """Time (or, with `measure="instructions"`, instructions) added over the bare SDK:
        the median, and the quartiles, of the differences between this variant and the
        bare SDK within each round (paired, so that slow drift of the machine between
        rounds cancels out)."""
        if bare is None:
            return None
        mine, theirs = self.samples, bare.samples
        if measure == "instructions":
            mine, theirs = self.instructions, bare.instructions
        if not mine or len(mine) != len(self.rounds) or len(theirs) != len(bare.rounds):
            return None
        bare_by_round = dict(zip(bare.rounds, theirs, strict=True))
        diffs = sorted(
            value - bare_by_round[r]
            for r, value in zip(self.rounds, mine, strict=True)
            if r in bare_by_round
        )
        if not diffs:
            return None
        if len(diffs) < 2:
            return diffs[0], diffs[0], diffs[0]
        q1, _, q3 = statistics.quantiles(diffs, n=4)
        return statistics.median(diffs), q1, q3

    @property
    def spans_per_call(self) -> float:
        return self.spans / self.calls if self.calls else 0.0

    @property
    def logs_per_call(self) -> float:
        return self.logs / self.calls if self.calls else 0.0


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


def inspect_call(spans: Sequence[ReadableSpan], logs: Sequence[str]) -> Probe:
    """Which kinds of information the spans of one call carry, by looking at them."""
    attributes: dict[str, Any] = {}
    count = 0
    for span in spans:
        count += len(span.attributes or {})
        attributes.update(span.attributes or {})
        for event in span.events:
            count += len(event.attributes or {})
            attributes.update({f"event:{k}": v for k, v in (event.attributes or {}).items()})
    keys = " ".join(attributes)
    values = [s for value in attributes.values() for s in _strings(value)]
    captures = []
    if re.search(r"(input|prompt)[._]?tokens|token_count\.prompt", keys):
        captures.append("usage")
    if re.search(r"cache", keys):
        captures.append("cache tokens")
    if re.search(r"reasoning[._]\w*tokens|reasoning_tokens", keys):
        captures.append("reasoning tokens")
    if re.search(r"cost", keys):
        captures.append("cost")
    if re.search(r"finish_reason|stop_reason", keys):
        captures.append("finish reason")
    if re.search(r"time_to_first", keys) or any(
        "First Token" in e.name for s in spans for e in s.events
    ):
        captures.append("time to first chunk")
    if re.search(r"attempts|resend_count", keys):
        captures.append("attempts")
    if any(RESPONSE_ID.match(v) for v in values):
        captures.append("response id")
    if any(TOOL_CALL_ID.match(v) for v in values):
        captures.append("tool-call ids")
    if any(v in ("get_weather", "get_local_time") for v in values):
        captures.append("tool names")
    texts = values + list(logs)
    content_found = any(marker in text for text in texts for marker in CONTENT_MARKERS)
    if content_found:
        captures.append("content")
    return Probe([span.name for span in spans], count, captures, content_found)


def timed(
    call: Callable[[], None], calls: int, blocks: int
) -> tuple[float, float, float | None]:
    """Per call: (process CPU time µs, wall time µs, user-space instructions), each the
    best of `blocks` blocks of `calls // blocks` calls (the block least disturbed by the
    rest of the machine). Instructions are None where the kernel does not count them."""
    per_block = max(1, calls // blocks)
    best_cpu = best_wall = best_instructions = float("inf")
    counter = InstructionCounter.open()
    gc.collect()
    for _ in range(blocks):
        executed = counter.read() if counter is not None else 0
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(per_block):
            call()
        best_cpu = min(best_cpu, (time.process_time() - cpu) / per_block * 1e6)
        best_wall = min(best_wall, (time.perf_counter() - wall) / per_block * 1e6)
        if counter is not None:
            best_instructions = min(best_instructions, (counter.read() - executed) / per_block)
    if counter is None:
        return best_cpu, best_wall, None
    counter.close()
    return best_cpu, best_wall, best_instructions


def measure_workload(
    variant: Variant,
    workload: Workload,
    telemetry: Telemetry,
    *,
    calls: int,
    blocks: int,
    warmup: int,
    probe: bool,
) -> dict[str, Any]:
    """Warm up and time one workload under an installed variant (and look at one call)."""
    result: dict[str, Any] = {}
    client = make_client(workload.sdk, workload.fixture, native_tracing=variant.native_tracing)
    call = functools.partial(workload.call, client)
    telemetry.metric_names()  # drop what the warm-up of earlier workloads left
    try:
        with variant.around():
            if probe:
                telemetry.spans.keep = telemetry.logs.keep = True
                try:
                    call()
                finally:
                    telemetry.spans.keep = telemetry.logs.keep = False
                found = inspect_call(telemetry.spans.kept, telemetry.logs.kept)
                telemetry.spans.kept.clear()
                telemetry.logs.kept.clear()
                if variant.verify is not None:
                    found.captures += variant.verify(telemetry)
                result["probe"] = asdict(found)
            for _ in range(warmup):
                call()
            spans, logs = telemetry.spans.count, telemetry.logs.count
            result["cpu_us"], result["wall_us"], result["instructions"] = timed(
                call, calls, blocks
            )
            result["spans"] = telemetry.spans.count - spans
            result["logs"] = telemetry.logs.count - logs
    except Exception as exc:
        return {"error": f"not compatible: the call fails: {type(exc).__name__}: {exc}"}
    finally:
        client.close()
    result["calls"] = calls
    result["metrics"] = sorted(telemetry.metric_names())
    return result


def measure_variant(
    variant: Variant,
    workloads: Sequence[Workload],
    *,
    calls: int,
    blocks: int,
    warmup: int,
    probe: bool,
) -> list[dict[str, Any]]:
    """One round of one variant on every workload, in this (fresh) process.

    Installs the variant for each SDK once, measures each workload, then uninstalls it
    and reports which SDK methods are still not the originals.
    """
    telemetry = Telemetry.install()
    for workload in workloads:  # import what each workload uses, so the snapshot sees it
        client = make_client(workload.sdk, workload.fixture)
        workload.call(client)
        client.close()
    before = patch_snapshot()
    uninstalls: list[Uninstall] = []
    refused: dict[str, str] = {}
    for sdk in dict.fromkeys(w.sdk for w in workloads):
        if not variant.installed(sdk):
            refused[sdk] = "not installed (see benchmarks/requirements-peers.txt)"
            continue
        try:
            uninstalls.append(variant.install(telemetry, sdk))
        except NotCompatible as exc:
            refused[sdk] = f"not compatible: {exc}"
    results: list[dict[str, Any]] = []
    for workload in workloads:
        if workload.sdk in refused:
            result: dict[str, Any] = {"error": refused[workload.sdk]}
        else:
            result = measure_workload(
                variant,
                workload,
                telemetry,
                calls=calls,
                blocks=blocks,
                warmup=warmup,
                probe=probe,
            )
        results.append({"workload": workload.key, **result})
    for uninstall in uninstalls:
        uninstall()
    left = patch_changes(before)
    for result in results:
        result["left_patched"] = left
    return results


def run(
    workloads: Sequence[Workload],
    variants: Sequence[Variant],
    *,
    calls: int,
    blocks: int,
    repeat: int,
    warmup: int,
    clock: str,
    worker_argv: Sequence[str],
    progress: Callable[[str], None],
) -> list[Outcome]:
    """R rounds; in each, every variant runs in a fresh process, in a rotating order."""
    outcomes = {
        (w.key, v.key): Outcome(w, v, error=None if w.sdk in v.sdks else "n/a")
        for w in workloads
        for v in variants
    }
    for round_ in range(repeat):
        shift = round_ % len(variants)
        for variant in [*variants[shift:], *variants[:shift]]:
            active = [w.key for w in workloads if outcomes[(w.key, variant.key)].error is None]
            if not active:
                continue
            command = [
                sys.executable,
                *worker_argv,
                "--worker",
                variant.key,
                "--calls",
                str(calls),
                "--blocks",
                str(blocks),
                "--warmup",
                str(warmup),
                "--workloads",
                *active,
                *(["--probe"] if round_ == 0 else []),
            ]
            finished = subprocess.run(command, capture_output=True, text=True, check=False)
            if finished.returncode != 0:
                raise SystemExit(
                    f"{variant.key} worker failed:\n{finished.stdout}\n{finished.stderr}"
                )
            for result in json.loads(finished.stdout):
                outcomes[(result["workload"], variant.key)].add(result, clock, round_)
        progress(f"round {round_ + 1}/{repeat} done")
    for outcome in outcomes.values():
        if outcome.error is None and outcome.variant.key != "bare" and outcome.spans == 0:
            outcome.error = "not working: instrumented, but produced no spans"
    return list(outcomes.values())


# ------------------------------------------------------------------------------- reporting


def _fmt_ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def workload_table(outcomes: Sequence[Outcome]) -> list[str]:
    """The Markdown table of one workload."""
    by_key = {o.variant.key: o for o in outcomes}
    bare = by_key.get("bare")
    ours = by_key.get("otel-agents")
    bare_us = bare.median if bare and bare.samples else None
    ours_us = ours.median if ours and ours.samples and not ours.error else None
    ours_paired = ours.overhead(bare) if ours and not ours.error else None
    ours_over = ours_paired[0] if ours_paired else None
    lines = [
        "| variant | version | µs/call: median (min-max) | overhead µs: median (IQR) "
        "| x bare | x otel-agents "
        "| overhead ÷ otel-agents' | spans/call | attributes | metrics | events/call "
        "| captures |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for o in outcomes:
        if o.error == "n/a":
            continue
        version = o.variant.version(o.workload.sdk)
        if o.error or not o.samples:
            lines.append(f"| {o.variant.label} | {version} | {o.error or 'not run'} |||||||||")
            continue
        median = o.median
        paired = o.overhead(bare)
        overhead = paired[0] if paired else None
        over_ratio = (
            overhead / ours_over
            if overhead is not None and ours_over is not None and ours_over > 0
            else None
        )
        probe = o.probe
        captures = ", ".join(probe.captures) if probe else ""
        if probe and probe.content_found and not o.variant.content:
            captures += " (**content leaked although capture is off**)"
        lines.append(
            "| "
            + " | ".join(
                [
                    o.variant.label,
                    version,
                    f"{median:.1f} ({min(o.samples):.1f}-{max(o.samples):.1f})",
                    ""
                    if paired is None or o.variant.key == "bare"
                    else f"{paired[0]:+.0f} ({paired[1]:+.0f}..{paired[2]:+.0f})",
                    _fmt_ratio(median / bare_us if bare_us else None),
                    _fmt_ratio(median / ours_us if ours_us else None),
                    "" if o.variant.key == "bare" else _fmt_ratio(over_ratio),
                    f"{o.spans_per_call:g}",
                    str(probe.attributes) if probe else "",
                    str(len(o.metrics)),
                    f"{o.logs_per_call:g}",
                    captures,
                ]
            )
            + " |"
        )
    return lines


def summary_table(
    outcomes: Sequence[Outcome], workloads: Sequence[Workload], measure: str = "time"
) -> list[str]:
    """Overhead per call of each variant on each workload, and its ratio to otel-agents',
    in µs (`measure="time"`) or in thousands of instructions (`"instructions"`)."""
    cells: dict[tuple[str, str], Outcome] = {(o.workload.key, o.variant.key): o for o in outcomes}
    header = "| instrumentation | " + " | ".join(w.key for w in workloads) + " |"
    lines = [header, "|---|" + "---:|" * len(workloads)]
    for variant in VARIANTS:
        if variant.key == "bare":
            continue
        row: list[str] = []
        seen = False
        for workload in workloads:
            o = cells.get((workload.key, variant.key))
            bare = cells.get((workload.key, "bare"))
            ours = cells.get((workload.key, "otel-agents"))
            if o is None or o.error == "n/a":
                row.append("—")
                continue
            seen = True
            paired = o.overhead(bare, measure)
            if o.error or paired is None:
                row.append((o.error or "not run").split(":")[0])
                continue
            overhead = paired[0]
            cell = f"{overhead:+.0f} µs" if measure == "time" else f"{overhead / 1e3:+,.0f}k"
            ours_paired = (
                ours.overhead(bare, measure) if ours is not None and not ours.error else None
            )
            if ours_paired and ours_paired[0] > 0 and variant.key != "otel-agents":
                cell += f" ({overhead / ours_paired[0]:.1f}x ours)"
            row.append(cell)
        if seen:
            lines.append(f"| {variant.label} | " + " | ".join(row) + " |")
    bare_row = []
    for workload in workloads:
        bare = cells.get((workload.key, "bare"))
        if measure == "time":
            bare_row.append(f"{bare.median:.0f} µs" if bare and bare.samples else "")
        else:
            counts = bare.instructions if bare else []
            bare_row.append(f"{statistics.median(counts) / 1e3:,.0f}k" if counts else "")
    lines.append("| *(bare SDK call, for scale)* | " + " | ".join(bare_row) + " |")
    return lines


def report(
    outcomes: Sequence[Outcome],
    workloads: Sequence[Workload],
    options: argparse.Namespace,
    elapsed: float,
) -> str:
    import platform

    clock_name = "process CPU time" if options.clock == "cpu" else "wall time"
    sdk_versions = []
    for distribution in ("openai", "anthropic", "httpx2", "opentelemetry-sdk"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            sdk_versions.append(f"{distribution} {importlib.metadata.version(distribution)}")
    out = [
        f"LLM client instrumentation overhead: {clock_name} per call; median of "
        f"{options.repeat} rounds, each the best of {options.blocks} blocks of "
        f"{max(1, options.calls // options.blocks)} calls (after {options.warmup} warm-up "
        "calls); each round of each variant in a fresh process; "
        f"Python {platform.python_version()}, {', '.join(sdk_versions)}; "
        f"run took {elapsed:.0f} s.",
        "",
        "Overhead per call over the bare SDK (and as a multiple of otel-agents' overhead):",
        "",
        *summary_table(outcomes, workloads),
    ]
    if any(o.instructions for o in outcomes):
        out += [
            "",
            "The same in CPU instructions executed per call (user space, counted by the "
            "kernel; thousands; barely moved by the load of other processes):",
            "",
            *summary_table(outcomes, workloads, "instructions"),
        ]
    else:
        # Say so rather than drop the table silently (VMs usually block perf_event_open).
        notice = (
            "**Instruction counts: NOT MEASURED** - the CPU's performance counters are "
            "not available here (perf_event_open refused), so only time is reported. "
            "For instruction counts without hardware counters run "
            "`python benchmarks/callgrind.py` (valgrind's callgrind; see benchmarks/README.md)."
        )
        print(f"warning: {notice}", file=sys.stderr)
        out += ["", notice]
    for workload in workloads:
        rows = [o for o in outcomes if o.workload.key == workload.key]
        out += [
            "",
            f"### {workload.title}",
            "",
            f"`{workload.key}`, answered with `tests/fixtures/{workload.fixture}`.",
            "",
            *workload_table(rows),
        ]
    shown = [o for o in outcomes if o.error != "n/a"]
    notes = list(
        dict.fromkeys(f"{o.variant.label}: {o.variant.note}" for o in shown if o.variant.note)
    )
    left_patched = {o.variant.label: o.left_patched for o in shown if o.left_patched}
    for label, methods in left_patched.items():
        notes.append(
            f"{label}: `uninstrument()` leaves {len(methods)} SDK methods patched "
            f"(e.g. `{methods[0]}`); harmless here, since every round of every variant "
            "runs in a fresh process"
        )
    if notes:
        out += ["", *[f"- {note}" for note in notes]]
    return "\n".join(out)


def to_json(outcomes: Sequence[Outcome], clock: str) -> list[dict[str, Any]]:
    return [
        {
            "workload": o.workload.key,
            "variant": o.variant.key,
            "version": o.variant.version(o.workload.sdk),
            "clock": clock,
            "samples_us": o.samples,
            "instructions_per_call": o.instructions,
            "other_clock_samples_us": o.other_samples,
            "rounds": o.rounds,
            "median_us": o.median if o.samples else None,
            "spans_per_call": o.spans_per_call,
            "events_per_call": o.logs_per_call,
            "metrics": sorted(o.metrics),
            "span_names": o.probe.span_names if o.probe else [],
            "attributes": o.probe.attributes if o.probe else None,
            "captures": o.probe.captures if o.probe else [],
            "error": o.error,
        }
        for o in outcomes
        if o.error != "n/a"
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=500, help="timed calls per round")
    parser.add_argument(
        "--blocks",
        type=int,
        default=10,
        help="split each round's calls into this many timed blocks and keep the best one",
    )
    parser.add_argument("--repeat", type=int, default=7, help="rounds; rows show the median")
    parser.add_argument("--warmup", type=int, default=50, help="untimed calls before each round")
    parser.add_argument(
        "--workloads",
        nargs="+",
        choices=[w.key for w in WORKLOADS],
        default=list(DEFAULT_WORKLOADS),
        metavar="NAME",
        help=f"from {', '.join(w.key for w in WORKLOADS)} (default: all but the last)",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANT_KEYS,
        default=list(VARIANT_KEYS),
        metavar="NAME",
        help=f"from {', '.join(VARIANT_KEYS)} (default: all; bare is always run)",
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="what to report: process CPU time (default; steady on a shared machine) "
        "or wall time (both are recorded in --json)",
    )
    parser.add_argument(
        "--no-httpx-alias",
        action="store_true",
        help="do not call httpx2.alias_httpx() (then openai-v2 cannot be imported)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write raw results here")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    # Internal: one round of one variant, run by the parent in a fresh process.
    parser.add_argument("--worker", choices=VARIANT_KEYS, help=argparse.SUPPRESS)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    workloads = [w for w in WORKLOADS if w.key in options.workloads]

    if options.worker:
        if options.worker == "openai-v2" and not options.no_httpx_alias:
            httpx2.alias_httpx()  # before anything imports `httpx`
        # Peers warn when they create their instruments again on a second SDK.
        logging.getLogger("opentelemetry.sdk.metrics").setLevel(logging.ERROR)
        variant = next(v for v in VARIANTS if v.key == options.worker)
        results = measure_variant(
            variant,
            workloads,
            calls=options.calls,
            blocks=options.blocks,
            warmup=options.warmup,
            probe=options.probe,
        )
        print(json.dumps(results))
        return

    variants = [v for v in VARIANTS if v.key == "bare" or v.key in options.variants]

    def progress(message: str) -> None:
        if not options.quiet:
            print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    outcomes = run(
        workloads,
        variants,
        calls=options.calls,
        blocks=options.blocks,
        repeat=options.repeat,
        warmup=options.warmup,
        clock=options.clock,
        worker_argv=[__file__, *(["--no-httpx-alias"] if options.no_httpx_alias else [])],
        progress=progress,
    )
    print(report(outcomes, workloads, options, time.perf_counter() - started))
    if options.json:
        options.json.write_text(json.dumps(to_json(outcomes, options.clock), indent=2))


if __name__ == "__main__":
    main()
