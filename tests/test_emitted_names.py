"""Every `gen_ai.*` name otel-agents emits is current in the conventions' snapshot.

The names are collected from real telemetry, not from the code: the demo story (two agents
on the real `openai` SDK over real HTTP, tools, handoffs, the policy gate, an approval, the
detectors) and the client adapters over their wire fixtures (streams, failures, the
Responses API, anthropic), with content capture on and a LoggerProvider for the log-based
events. From spans, span events, log records, metrics and metric attributes, the test checks
against `semconv/upstream/gen-ai.json` (the upstream snapshot) and our registry:

- every `gen_ai.*` attribute key, metric name and event name is defined upstream and not
  deprecated there; enum values are known members; values have the declared type;
- a signal carries only the attributes its definition lists (the upstream one, plus our
  refinements of it for `otel_agents.*` keys), and every attribute it requires;
- metrics have the instrument and unit the definition gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from agents_testing import Telemetry, instrumented
from opentelemetry.sdk.metrics.export import Histogram, Sum
from wire import ScriptedResponse, ScriptedTransport, anthropic_client, openai_client

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM_SPAN_TYPES = {
    "chat": "gen_ai.client.inference",
    "text_completion": "gen_ai.client.inference",
    "generate_content": "gen_ai.client.inference",
    "invoke_agent": "gen_ai.invoke_agent.internal",
    "execute_tool": "gen_ai.execute_tool.internal",
}
OUR_SPAN_TYPES = {"handoff": "otel_agents.handoff", "await_approval": "otel_agents.approval"}
# Names from other conventions that these signals carry (the SDK's exception event).
FOREIGN_PREFIXES = ("exception.",)


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "_semconv_gen_names", ROOT / "scripts/semconv_gen.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Definition:
    """What a signal may and must carry."""

    allowed: frozenset[str]
    required: frozenset[str]


class Conventions:
    def __init__(self) -> None:
        registry, problems = _load_generator().load(ROOT)
        assert problems == [], problems
        self.registry = registry
        self.attributes = {a.key: a for a in registry.all_attributes()}
        self.upstream_metrics = {m.name: m for m in registry.upstream_metrics}
        self.our_metrics = {m.name: m for m in registry.metrics}
        self.upstream_events = {e.name: e for e in registry.upstream_events}
        self.our_events = {e.name: e for e in registry.events}

    def _definition(self, refs: Any, refinements: list[Any]) -> Definition:
        expanded = list(self.registry.expand(refs))
        for refinement in refinements:
            expanded += self.registry.expand(refinement.attributes)
        return Definition(
            allowed=frozenset(r.ref for r in expanded),
            required=frozenset(r.ref for r in expanded if r.level == "required"),
        )

    def _refinements(self, section: str, target: str) -> list[Any]:
        return [r for r in self.registry.refinements if r.section == section and r.ref == target]

    def span(self, span_type: str) -> Definition:
        for span in self.registry.upstream_spans:
            if span.type == span_type:
                return self._definition(
                    span.attributes, self._refinements("span_refinements", span_type)
                )
        for ours in self.registry.spans:
            if ours.type == span_type:
                return self._definition(ours.attributes, [])
        raise AssertionError(f"no span type {span_type}")

    def metric(self, name: str) -> Definition:
        metric = self.upstream_metrics.get(name) or self.our_metrics[name]
        return self._definition(metric.attributes, self._refinements("metric_refinements", name))

    def event(self, name: str) -> Definition:
        event = self.upstream_events.get(name) or self.our_events[name]
        return self._definition(event.attributes, [])


@dataclass
class Signal:
    what: str  # for messages: "span 'chat gpt-4.1-mini'", "metric 'gen_ai...'"
    definition: Definition | None  # None: only the name checks apply
    attributes: Mapping[str, Any]


# -- running the real thing ----------------------------------------------------------------


def scripted(*names: str) -> ScriptedTransport:
    return ScriptedTransport([ScriptedResponse.fixture(name) for name in names])


def _client_calls() -> None:
    """The adapters over their wire fixtures: the shapes the demo does not produce."""
    import anthropic
    import openai

    chat = openai_client(scripted("openai/chat_stream_tool_calls.sse")).chat.completions
    for _ in chat.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Weather?"}],
        stream=True,
        stream_options={"include_usage": True},
        temperature=0.2,
        top_p=0.9,
        max_tokens=256,
        seed=7,
        n=2,
        stop=["END"],
        presence_penalty=0.1,
        frequency_penalty=0.1,
        response_format={"type": "json_object"},
    ):
        pass
    with pytest.raises(openai.BadRequestError):
        openai_client(scripted("openai/error_400_invalid_request.json")).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "?"}]
        )
    responses = openai_client(scripted("openai/responses_reasoning_function_call.json")).responses
    responses.create(
        model="o4-mini",
        input="Weather in Paris?",
        instructions="Be brief.",
        reasoning={"effort": "medium", "summary": "detailed"},
        previous_response_id="resp_0123456789abcdef",
    )
    stream = openai_client(
        scripted("openai/responses_stream_reasoning_function_call.sse")
    ).responses.create(model="o4-mini", input="Weather in Paris?", stream=True)
    for _ in stream:
        pass
    messages = anthropic_client(scripted("anthropic/message_thinking_tool_use.json")).messages
    messages.create(
        model="claude-sonnet-4-6",
        max_tokens=1024,
        system="Be brief.",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        stop_sequences=["END"],
        extra_body={"temperature": 0.2, "top_k": 40},
    )
    stream = anthropic_client(scripted("anthropic/stream_thinking_text_tool_use.sse")).messages
    for _ in stream.create(
        model="claude-sonnet-4-6",
        max_tokens=1024,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        stream=True,
    ):
        pass
    with pytest.raises(anthropic.APIStatusError):
        anthropic_client(scripted("anthropic/error_529_overloaded.json")).messages.create(
            model="claude-sonnet-4-6", max_tokens=16, messages=[{"role": "user", "content": "?"}]
        )
    _google_genai_calls()
    _bedrock_calls()


def _bedrock_calls() -> None:
    import boto3
    from wire import load_json_fixture
    from wire.aws import AwsResponder, Recorded

    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    recorded = [
        Recorded.json(load_json_fixture("bedrock/converse_reasoning_tool_use.json")),
        Recorded.events(
            load_json_fixture("bedrock/converse_stream_reasoning_tool_use.events.json")
        ),
    ]
    AwsResponder(recorded).attach(client)
    model = "anthropic.claude-sonnet-4-20250514-v1:0"
    messages = [{"role": "user", "content": [{"text": "Weather?"}]}]
    client.converse(
        modelId=model,
        messages=messages,
        toolConfig={"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {}}}}]},
        system=[{"text": "Be brief."}],
        inferenceConfig={"maxTokens": 256, "topP": 0.9, "stopSequences": ["END"]},
    )
    for _ in client.converse_stream(modelId=model, messages=messages)["stream"]:
        pass


def _google_genai_calls() -> None:
    if importlib.util.find_spec("google") is None or not importlib.util.find_spec("google.genai"):
        return  # google-genai 3.x needs Python 3.11
    import httpx2
    from google import genai
    from google.genai import types

    transport = scripted(
        "google_genai/generate_thought_function_call.json", "google_genai/stream_text.sse"
    )
    models = genai.Client(
        api_key="test-key",
        http_options=types.HttpOptions(
            base_url="https://generativelanguage.googleapis.com",
            httpx_client=httpx2.Client(transport=transport),
        ),
    ).models
    config = types.GenerateContentConfig(
        system_instruction="Be brief.",
        temperature=0.2,
        top_k=20,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    models.generate_content(model="gemini-2.5-flash", contents="Weather?", config=config)
    for _ in models.generate_content_stream(model="gemini-2.5-flash", contents="Weather?"):
        pass


def _core_api_calls() -> None:
    """The public API's options the demo leaves out."""
    import otel_agents

    @otel_agents.tool(description="Echoes its input.", tags=["reads:echo"], reversible=True)
    async def echo(text: str) -> str:
        return text

    async def run() -> None:
        async with otel_agents.agent(
            "core-api", id="agent-1", version="2", description="d", conversation_id="conv-1"
        ):
            otel_agents.decision("Echo it", tool_name="echo", tool_call_id="call_1")
            with otel_agents.tool_call_id("call_1"):
                await echo("hi")
            with pytest.raises(ZeroDivisionError), otel_agents.agent("failing"):
                raise ZeroDivisionError

    asyncio.run(run())


def _framework_calls() -> None:
    """The OpenAI Agents SDK integration: a tool, a handoff and a tripped guardrail."""
    if importlib.util.find_spec("agents") is None:
        return
    from integrations.test_openai_agents import agents_names_run

    agents_names_run()


def _langgraph_calls() -> None:
    """The LangGraph integration: a nested agent, a tool, a handoff tool, an interrupt."""
    if importlib.util.find_spec("langgraph.pregel") is not None:
        from integrations.test_langgraph import langgraph_names_run

        langgraph_names_run()


def _mcp_calls() -> None:
    """An MCP tool call, client and server side (over the SDK's in-memory connection)."""
    from mcp import Client
    from mcp.server.mcpserver import MCPServer
    from mcp.shared.exceptions import MCPError
    from mcp_types import INVALID_PARAMS

    server = MCPServer("names")

    @server.tool()
    def echo_back(text: str) -> str:
        return text

    @server.tool()
    def refuse(text: str) -> str:
        raise MCPError(code=INVALID_PARAMS, message="no")

    async def run() -> None:
        async with Client(server) as client:
            await client.list_tools()
            await client.call_tool("echo_back", {"text": "hi"})
        # JSON-RPC framing: request ids on both sides, and a JSON-RPC error code.
        async with Client(server, mode="legacy") as client:
            await client.call_tool("echo_back", {"text": "hi"})
            with contextlib.suppress(MCPError):
                await client.call_tool("refuse", {"text": "hi"})

    asyncio.run(run())


@pytest.fixture(scope="module")
def emitted() -> Iterator[list[Signal]]:
    pytest.importorskip("anthropic")
    from otel_agents.demo import DETECTORS, POLICY_FILE, _auto_approver, _onboard

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
        for telemetry in instrumented(
            monkeypatch,
            with_logs=True,
            capture_content="SPAN_AND_EVENT",
            policy=POLICY_FILE,
            approver=_auto_approver(lambda text: None),
            detectors=DETECTORS,
        ):
            _onboard(lambda text: None)
            _client_calls()
            _core_api_calls()
            _framework_calls()
            _mcp_calls()
            _langgraph_calls()
            yield _collect(telemetry, Conventions())


def _collect(telemetry: Telemetry, conventions: Conventions) -> list[Signal]:
    signals: list[Signal] = []
    for span in telemetry.spans():
        attributes = dict(span.attributes or {})
        operation = attributes.get("gen_ai.operation.name")
        span_type = UPSTREAM_SPAN_TYPES.get(str(operation)) or OUR_SPAN_TYPES.get(
            span.name.split(" ")[0]
        )
        assert span_type is not None, f"span {span.name!r} of no known type"
        if operation is not None:
            assert span.name.split(" ")[0] == operation, span.name
        signals.append(Signal(f"span {span.name!r}", conventions.span(span_type), attributes))
        for event in span.events:
            known = event.name in conventions.our_events or event.name in (
                conventions.upstream_events
            )
            definition = conventions.event(event.name) if known else None
            if event.name.startswith(("gen_ai.", "otel_agents.")):
                assert known, f"span event {event.name!r} is defined nowhere"
            signals.append(
                Signal(f"span event {event.name!r}", definition, dict(event.attributes or {}))
            )
    for log in telemetry.logs():
        record = log.log_record
        name = record.event_name or ""
        signals.append(
            Signal(f"log event {name!r}", conventions.event(name), dict(record.attributes or {}))
        )
    data = telemetry.metric_reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                _check_instrument(conventions, metric)
                for point in metric.data.data_points:
                    signals.append(
                        Signal(
                            f"metric {metric.name!r}",
                            conventions.metric(metric.name),
                            dict(point.attributes or {}),
                        )
                    )
    return signals


def _check_instrument(conventions: Conventions, metric: Any) -> None:
    definition = conventions.upstream_metrics.get(metric.name) or conventions.our_metrics.get(
        metric.name
    )
    assert definition is not None, f"metric {metric.name!r} is defined nowhere"
    assert not getattr(definition, "deprecated", ""), (
        f"metric {metric.name!r} is deprecated upstream: {definition.deprecated}"
    )
    assert metric.unit == definition.unit, metric.name
    if definition.instrument == "histogram":
        assert isinstance(metric.data, Histogram), metric.name
    elif definition.instrument == "updowncounter":
        assert isinstance(metric.data, Sum) and not metric.data.is_monotonic, metric.name
    else:
        assert isinstance(metric.data, Sum) and metric.data.is_monotonic, metric.name


# -- the checks ----------------------------------------------------------------------------


def _type_matches(value: Any, attribute: Any) -> bool:
    if attribute.type == "enum":
        return value in {member.value for member in attribute.members}
    if attribute.type == "any":
        return True
    if attribute.type.endswith("[]"):
        item = attribute.type[:-2]
        return isinstance(value, (list, tuple)) and all(
            _type_matches(v, _Scalar(item)) for v in value
        )
    expected = {"string": str, "boolean": bool, "double": float}
    if attribute.type == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected[attribute.type])


@dataclass(frozen=True)
class _Scalar:
    type: str


def _problems(signal: Signal, conventions: Conventions) -> list[str]:
    found: list[str] = []
    for key, value in signal.attributes.items():
        if key.startswith(FOREIGN_PREFIXES):
            continue
        attribute = conventions.attributes.get(key)
        if attribute is None:
            found.append(f"{signal.what}: '{key}' is defined neither upstream nor by us")
            continue
        if attribute.deprecated:
            found.append(f"{signal.what}: '{key}' is deprecated upstream: {attribute.deprecated}")
        if not _type_matches(value, attribute):
            found.append(f"{signal.what}: '{key}'={value!r} is not a {attribute.type_label}")
        if signal.definition is not None and key not in signal.definition.allowed:
            found.append(f"{signal.what}: '{key}' is not an attribute of its definition")
    if signal.definition is not None:
        for key in sorted(signal.definition.required - set(signal.attributes)):
            found.append(f"{signal.what}: the required '{key}' is missing")
    return found


def test_every_emitted_name_is_current_in_the_conventions(emitted: list[Signal]) -> None:
    conventions = Conventions()
    problems = sorted({p for signal in emitted for p in _problems(signal, conventions)})
    assert problems == [], "\n".join(problems)


def test_the_run_covers_every_signal_kind(emitted: list[Signal]) -> None:
    """The check above is only as good as what ran: make sure the interesting names did."""
    names = {signal.what.split("'")[1] for signal in emitted}
    for expected in (
        "gen_ai.client.inference.duration",
        "gen_ai.client.inference.time_to_first_chunk",
        "gen_ai.client.inference.time_per_output_chunk",
        "gen_ai.client.inference.usage.input_tokens",
        "gen_ai.client.inference.usage.cache_read.input_tokens",
        "gen_ai.client.inference.usage.reasoning.output_tokens",
        "gen_ai.client.inference.operation.output_tokens",
        "gen_ai.execute_tool.duration",
        "gen_ai.invoke_agent.duration",
        "gen_ai.invoke_agent.inference_calls",
        "gen_ai.invoke_agent.tool_calls",
        "gen_ai.client.inference.operation.details",
        "otel_agents.tool.calls",
    ):
        assert expected in names, f"{expected} was not emitted: {sorted(names)}"
    keys = {key for signal in emitted for key in signal.attributes}
    for expected in (
        "gen_ai.request.top_k",
        "gen_ai.request.previous_response.id",
        "gen_ai.agent.name",
        "gen_ai.usage.input_tokens",
        "gen_ai.token.modality",
        "otel_agents.policy.verdict",
        "gen_ai.input.messages",
    ):
        assert expected in keys, f"{expected} was not emitted"


def test_the_check_fails_on_an_old_name() -> None:
    """The check itself can fail: the names we used to emit are caught."""
    conventions = Conventions()
    old_metric = Signal(
        "metric 'gen_ai.client.token.usage'",
        conventions.metric("gen_ai.client.token.usage"),
        {"gen_ai.token.type": "input", "gen_ai.operation.name": "chat"},
    )
    problems = _problems(old_metric, conventions)
    assert any("'gen_ai.token.type' is deprecated upstream" in p for p in problems), problems
    agent_span = Signal(
        "span 'invoke_agent a'",
        conventions.span("gen_ai.invoke_agent.internal"),
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.version": "2"},
    )
    assert any(
        "'gen_ai.agent.version' is not an attribute" in p
        for p in _problems(agent_span, conventions)
    )
    float_top_k = Signal(
        "span 'chat m'",
        conventions.span("gen_ai.client.inference"),
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.top_k": 40.0,
        },
    )
    assert any("is not a int" in p for p in _problems(float_top_k, conventions))
    with pytest.raises(AssertionError, match="deprecated upstream"):
        _check_instrument(conventions, _FakeMetric("gen_ai.client.token.usage"))


@dataclass
class _FakeMetric:
    name: str
    unit: str = "{token}"
    data: Any = None
