"""The `google-genai` adapter: the real SDK over its real HTTP layer (httpx2, scripted
wire-format fixtures of the Gemini API) and the real OpenTelemetry SDK with in-memory
exporters. Reader unit tests run on the same recorded payloads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from agents_testing import Telemetry, instrumented
from genai_prices import Usage, calc_price
from google import genai
from google.genai import errors, types
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from wire import ScriptedResponse, ScriptedTransport, load_fixture, load_json_fixture

import otel_agents
from otel_agents import semconv as sc
from otel_agents.adapters import google_genai as adapter

MODEL = "gemini-2.5-flash"
BASE_URL = "https://generativelanguage.googleapis.com"
THOUGHT_CALL = "google_genai/generate_thought_function_call.json"
TEXT = "google_genai/generate_text.json"
STREAM = "google_genai/stream_text.sse"
BLOCKED = "google_genai/blocked_prompt.json"
WEATHER_TOOL = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Current weather for a city.",
            parameters_json_schema={
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            },
        )
    ]
)
CONFIG = types.GenerateContentConfig(
    tools=[WEATHER_TOOL],
    temperature=0.2,
    max_output_tokens=512,
    system_instruction="You are a weather assistant.",
    automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
)


def scripted(*names: str) -> ScriptedTransport:
    return ScriptedTransport([ScriptedResponse.fixture(name) for name in names])


def gemini(transport: ScriptedTransport, **options: Any) -> genai.Client:
    return genai.Client(
        api_key="test-key",
        http_options=types.HttpOptions(
            base_url=BASE_URL,
            httpx_client=httpx2.Client(transport=transport),
            httpx_async_client=httpx2.AsyncClient(transport=transport),
            **options,
        ),
    )


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def only_span(telemetry: Telemetry) -> ReadableSpan:
    spans = telemetry.spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


@pytest.fixture
def content_telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    yield from instrumented(monkeypatch, capture_content="SPAN_ONLY")


# -- readers, on recorded payloads ---------------------------------------------------------


def recorded(name: str) -> types.GenerateContentResponse:
    """A fixture as the SDK parses it (the REST JSON into its response type)."""
    return types.GenerateContentResponse._from_response(
        response=load_json_fixture(name), kwargs={}
    )


def test_the_response_reader_reads_tool_calls_reasoning_and_usage(telemetry: Telemetry) -> None:
    response = adapter.read_response(recorded(THOUGHT_CALL))
    assert [(c.call_id, c.name, c.arguments) for c in response.tool_calls] == [
        ("fc_paris_1", "get_weather", {"city": "Paris", "unit": "celsius"})
    ]
    assert response.reasoning and response.reasoning.startswith("The user wants the weather")
    assert response.reasoning_source == sc.DecisionReasoningSourceValues.REASONING_SUMMARY
    assert response.text is None
    assert (response.response_id, response.response_model) == ("resp_gemini_1", MODEL)
    assert response.finish_reasons == ["stop"]
    usage = response.usage
    assert usage is not None
    # Input counts the cached part already; thinking is billed as output.
    assert (usage.input_tokens, usage.cache_read_tokens) == (96, 32)
    assert (usage.output_tokens, usage.reasoning_tokens) == (21 + 58, 58)


def test_a_blocked_prompt_is_a_failed_call() -> None:
    response = adapter.read_response(recorded(BLOCKED))
    assert response.error_type == "blocked"
    assert response.error_message is not None and "safety" in response.error_message


def test_the_accumulator_folds_chunks_into_the_shape_of_a_whole_response() -> None:
    accumulator = adapter.ChunkAccumulator()
    for line in load_fixture(STREAM).decode().split("\n\n"):
        if line.startswith("data: "):
            chunk = json.loads(line[len("data: ") :])
            accumulator.add(
                types.GenerateContentResponse._from_response(response=chunk, kwargs={})
            )
    response = accumulator.response()
    assert response.text == "It is 18°C and sunny ☀️."
    assert response.reasoning == "Checking the weather in Paris first."
    assert response.usage is not None and response.usage.output_tokens == 9 + 12
    assert response.finish_reasons == ["stop"]


def test_request_parameters_follow_the_conventions() -> None:
    parameters = adapter.request_parameters(
        types.GenerateContentConfig(
            temperature=0.5,
            top_p=0.9,
            top_k=40,
            max_output_tokens=100,
            stop_sequences=["END"],
            candidate_count=2,
            seed=7,
            response_mime_type="application/json",
        )
    )
    assert parameters == {
        sc.GEN_AI_REQUEST_TEMPERATURE: 0.5,
        sc.GEN_AI_REQUEST_TOP_P: 0.9,
        sc.GEN_AI_REQUEST_TOP_K: 40,
        sc.GEN_AI_REQUEST_MAX_TOKENS: 100,
        sc.GEN_AI_REQUEST_STOP_SEQUENCES: ["END"],
        sc.GEN_AI_REQUEST_CHOICE_COUNT: 2,
        sc.GEN_AI_REQUEST_SEED: 7,
        sc.GEN_AI_OUTPUT_TYPE: sc.GenAiOutputTypeValues.JSON,
    }


# -- the real SDK -----------------------------------------------------------------------------


def test_a_call_is_one_client_span_with_usage_cost_and_the_result_unchanged(
    telemetry: Telemetry,
) -> None:
    transport = scripted(THOUGHT_CALL)
    response = gemini(transport).models.generate_content(
        model=MODEL, contents="What's the weather in Paris?", config=CONFIG
    )
    assert type(response) is types.GenerateContentResponse
    assert response.function_calls is not None and response.function_calls[0].name == "get_weather"
    assert transport.requests[0].path.endswith(f"/models/{MODEL}:generateContent")
    span = only_span(telemetry)
    a = attrs(span)
    assert (span.name, span.kind) == (f"chat {MODEL}", SpanKind.CLIENT)
    assert a[sc.GEN_AI_PROVIDER_NAME] == sc.GenAiProviderNameValues.GCP_GEMINI
    assert (a[sc.SERVER_ADDRESS], a[sc.SERVER_PORT]) == ("generativelanguage.googleapis.com", 443)
    assert (a[sc.GEN_AI_REQUEST_TEMPERATURE], a[sc.GEN_AI_REQUEST_MAX_TOKENS]) == (0.2, 512)
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (96, 79)
    assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 32
    assert a[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 58
    expected = calc_price(
        Usage(input_tokens=96, cache_read_tokens=32, output_tokens=79),
        MODEL,
        provider_id="google",
    ).total_price
    assert a[sc.COST_USD] == pytest.approx(float(expected))
    assert sc.GEN_AI_INPUT_MESSAGES not in a  # content capture is off by default
    durations = telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_DURATION)
    assert [getattr(p, "count", None) for p in durations] == [1]


def test_the_function_call_is_the_decision_behind_the_tool_that_runs(
    content_telemetry: Telemetry,
) -> None:
    @otel_agents.tool
    def get_weather(city: str, unit: str) -> str:
        return "18°C"

    with otel_agents.agent("forecaster"):
        response = gemini(scripted(THOUGHT_CALL)).models.generate_content(
            model=MODEL, contents="What's the weather in Paris?", config=CONFIG
        )
        call = response.function_calls[0] if response.function_calls else None
        assert call is not None and call.args is not None
        with otel_agents.tool_call_id(call.id):
            get_weather(**call.args)
    llm = content_telemetry.span(f"chat {MODEL}")
    tool = attrs(content_telemetry.span("execute_tool get_weather"))
    assert tool[sc.GEN_AI_TOOL_CALL_ID] == "fc_paris_1"
    assert tool[sc.DECISION_REASONING_SOURCE] == sc.DecisionReasoningSourceValues.REASONING_SUMMARY
    assert str(tool[sc.DECISION_REASONING]).startswith("The user wants the weather")
    executed = content_telemetry.span("execute_tool get_weather")
    assert [link.context.span_id for link in executed.links] == [llm.context.span_id]
    captured = json.loads(str(attrs(llm)[sc.GEN_AI_OUTPUT_MESSAGES]))
    assert [p["type"] for p in captured[0]["parts"]] == ["reasoning", "tool_call"]
    assert captured[0]["finish_reason"] == "tool_call"
    system = json.loads(str(attrs(llm)[sc.GEN_AI_SYSTEM_INSTRUCTIONS]))
    assert system == [{"type": "text", "content": "You are a weather assistant."}]


def test_a_stream_is_one_span_ended_when_exhausted(telemetry: Telemetry) -> None:
    stream = gemini(scripted(STREAM)).models.generate_content_stream(
        model=MODEL, contents="Weather?"
    )
    texts = [chunk.text for chunk in stream]
    assert "".join(t for t in texts if t) == "It is 18°C and sunny ☀️."
    a = attrs(only_span(telemetry))
    assert a[sc.GEN_AI_REQUEST_STREAM] is True
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 21
    assert sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in a
    first_chunk = telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_TIME_TO_FIRST_CHUNK)
    assert [getattr(p, "count", None) for p in first_chunk] == [1]


def test_a_stream_left_early_ends_its_span_once(telemetry: Telemetry) -> None:
    stream = gemini(scripted(STREAM)).models.generate_content_stream(
        model=MODEL, contents="Weather?"
    )
    next(iter(stream))
    del stream  # dropped unfinished: the span still ends, once
    import gc

    gc.collect()
    assert len(telemetry.spans()) == 1


async def test_async_calls_and_streams(telemetry: Telemetry) -> None:
    client = gemini(scripted(TEXT, STREAM)).aio
    response = await client.models.generate_content(model=MODEL, contents="Weather?")
    assert response.text == "It is 18°C and sunny in Paris."
    stream = await client.models.generate_content_stream(model=MODEL, contents="Weather?")
    chunks = [chunk async for chunk in stream]
    assert len(chunks) == 4
    spans = telemetry.spans()
    assert [s.name for s in spans] == [f"chat {MODEL}"] * 2
    assert attrs(spans[1])[sc.GEN_AI_REQUEST_STREAM] is True


def test_an_api_error_reaches_the_caller_unchanged(telemetry: Telemetry) -> None:
    transport = ScriptedTransport(
        [
            ScriptedResponse.json(
                {"error": {"code": 400, "message": "bad model", "status": "INVALID_ARGUMENT"}},
                status=400,
            )
        ]
    )
    with pytest.raises(errors.ClientError) as raised:
        gemini(transport).models.generate_content(model=MODEL, contents="hi")
    assert raised.value.code == 400
    span = only_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)[sc.ERROR_TYPE] == "google.genai.errors.ClientError"


def test_a_blocked_prompt_marks_the_span_failed_without_raising(telemetry: Telemetry) -> None:
    response = gemini(scripted(BLOCKED)).models.generate_content(model=MODEL, contents="hi")
    assert response.prompt_feedback is not None
    span = only_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)[sc.ERROR_TYPE] == "blocked"


def test_each_model_call_of_automatic_function_calling_is_its_own_span(
    telemetry: Telemetry,
) -> None:
    def get_weather(city: str, unit: str) -> str:
        """Current weather for a city."""
        return "18°C"

    transport = scripted(THOUGHT_CALL, TEXT)
    response = gemini(transport).models.generate_content(
        model=MODEL,
        contents="What's the weather in Paris?",
        config=types.GenerateContentConfig(tools=[get_weather]),
    )
    assert response.text == "It is 18°C and sunny in Paris."
    assert len(transport.requests) == 2
    assert [s.name for s in telemetry.spans()] == [f"chat {MODEL}"] * 2


def test_vertex_ai_is_its_own_provider(telemetry: Telemetry) -> None:
    from google.oauth2.credentials import Credentials

    transport = scripted(TEXT)
    client = genai.Client(
        vertexai=True,
        project="demo-project",
        location="us-central1",
        credentials=Credentials(token="test-token"),  # a valid token: nothing to refresh
        http_options=types.HttpOptions(httpx_client=httpx2.Client(transport=transport)),
    )
    client.models.generate_content(model=MODEL, contents="hi")
    a = attrs(only_span(telemetry))
    assert a[sc.GEN_AI_PROVIDER_NAME] == sc.GenAiProviderNameValues.GCP_VERTEX_AI
    assert a[sc.SERVER_ADDRESS] == "us-central1-aiplatform.googleapis.com"
    assert "aiplatform" in str(transport.requests[0].url)


def test_uninstrument_restores_the_sdk(telemetry: Telemetry) -> None:
    from google.genai import models

    otel_agents.uninstrument()
    for cls in (models.Models, models.AsyncModels):
        for name in ("_generate_content", "_generate_content_stream"):
            assert not hasattr(cls.__dict__[name], "__wrapped__"), f"{cls.__name__}.{name}"
    gemini(scripted(TEXT)).models.generate_content(model=MODEL, contents="hi")
    assert telemetry.spans() == []


def test_it_can_be_switched_off_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "otel_agents_google_genai")
    for telemetry in instrumented(monkeypatch):
        gemini(scripted(TEXT)).models.generate_content(model=MODEL, contents="hi")
        assert telemetry.spans() == []
