"""More of the `google-genai` adapter through the real SDK's HTTP path (tests/wire/google_genai.py:
`client_args` transports, so they also run on SDKs older than httpx2), for what
test_google_genai.py leaves out: Vertex AI's response shape and auth header, a custom base
URL, every request parameter, content capture, streams against uninstrumented ones, a stream
closed early (no output count), an error chunk mid-stream, AFC with a decorated tool and
AFC off, the usage metrics."""

from __future__ import annotations

import asyncio
import inspect
import json
import typing
from collections.abc import Callable
from typing import Any

import pytest
from agents_testing import Telemetry
from google import genai
from google.genai import errors, types
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from wire.google_genai import Server, body, gemini, ok, options, vertex

import otel_agents
from otel_agents import semconv as sc
from otel_agents.adapters import google_genai as adapter

MODEL = "gemini-2.5-flash"
SPAN = f"chat {MODEL}"
PROMPT = "What's the weather in Paris?"
WEATHER_ARGS = {"city": "Paris", "unit": "celsius"}
THOUGHT = (
    "**Checking the weather**\n\nThe user wants the weather in Paris. I have a get_weather"
    " tool taking a city and a unit; Europe uses Celsius."
)
WEATHER_TOOL = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Current weather in a city",
            parameters_json_schema={
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            },
        )
    ]
)


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def only_span(telemetry: Telemetry) -> ReadableSpan:
    (span,) = telemetry.spans()
    return span


def content(span: ReadableSpan, key: str) -> Any:
    return json.loads(attrs(span)[key])


# -- plain calls --------------------------------------------------------------------------


def test_gemini_api_call_parameters_and_capture_off(telemetry: Telemetry) -> None:
    client, server = gemini(ok("text.json"))
    config = types.GenerateContentConfig(
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        max_output_tokens=256,
        stop_sequences=["END"],
        candidate_count=1,
        seed=7,
        response_mime_type="text/plain",
    )
    result = client.models.generate_content(model=MODEL, contents=PROMPT, config=config)

    assert type(result) is types.GenerateContentResponse
    assert result.text == "It is 18 degrees Celsius and sunny in Paris."
    assert str(server.requests[0].url).endswith(f"models/{MODEL}:generateContent")
    span = only_span(telemetry)
    assert span.name == SPAN and span.kind is SpanKind.CLIENT
    a = attrs(span)
    assert a[sc.GEN_AI_PROVIDER_NAME] == sc.GenAiProviderNameValues.GCP_GEMINI
    assert a[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert a[sc.SERVER_ADDRESS] == "generativelanguage.googleapis.com"
    assert a[sc.SERVER_PORT] == 443
    assert a[sc.GEN_AI_REQUEST_MODEL] == MODEL
    assert a[sc.GEN_AI_RESPONSE_MODEL] == MODEL
    assert a[sc.GEN_AI_RESPONSE_ID] == "0J1xaKuBHpOjxN8PgZ6A8Q4"
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == 57
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert a[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert a[sc.GEN_AI_REQUEST_TOP_P] == 0.9
    assert a[sc.GEN_AI_REQUEST_TOP_K] == 40
    assert a[sc.GEN_AI_REQUEST_MAX_TOKENS] == 256
    assert a[sc.GEN_AI_REQUEST_STOP_SEQUENCES] == ("END",)
    assert a[sc.GEN_AI_REQUEST_CHOICE_COUNT] == 1
    assert a[sc.GEN_AI_REQUEST_SEED] == 7
    for key in (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES):
        assert key not in a  # content capture is off by default


@pytest.mark.skipif(
    "thinking_level" not in types.ThinkingConfig.model_fields, reason="SDK without levels"
)
def test_thinking_level_is_the_reasoning_level_and_a_budget_is_not(telemetry: Telemetry) -> None:
    client, _ = gemini(ok("text.json"), ok("text.json"))
    for thinking in (
        types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW),
        types.ThinkingConfig(thinking_budget=1024),
    ):
        config = types.GenerateContentConfig(thinking_config=thinking)
        client.models.generate_content(model=MODEL, contents=PROMPT, config=config)
    levels = [attrs(s).get(sc.GEN_AI_REQUEST_REASONING_LEVEL) for s in telemetry.spans()]
    assert levels == ["low", None]


def test_json_output_type(telemetry: Telemetry) -> None:
    client, _ = gemini(ok("text.json"))
    config = types.GenerateContentConfig(response_mime_type="application/json")
    client.models.generate_content(model=MODEL, contents=PROMPT, config=config)
    assert attrs(only_span(telemetry))[sc.GEN_AI_OUTPUT_TYPE] == "json"


def test_vertex_ai_client_names_its_provider_and_server(telemetry: Telemetry) -> None:
    client, server = vertex(ok("vertex_text.json"))
    result = client.models.generate_content(model=MODEL, contents=PROMPT)

    assert result.text == "It is 18 degrees Celsius and sunny in Paris."
    assert server.requests[0].url.host == "europe-west4-aiplatform.googleapis.com"
    assert server.requests[0].headers["authorization"] == "Bearer test-token"
    a = attrs(only_span(telemetry))
    assert a[sc.GEN_AI_PROVIDER_NAME] == sc.GenAiProviderNameValues.GCP_VERTEX_AI
    assert a[sc.SERVER_ADDRESS] == "europe-west4-aiplatform.googleapis.com"
    assert a[sc.GEN_AI_RESPONSE_ID] == "g2RxaJ2fHsqu2PgPvZ6L8QU"
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)


def test_custom_base_url_is_the_server(telemetry: Telemetry) -> None:
    server = Server(ok("text.json"))
    client = genai.Client(
        api_key="k", http_options=options(server, base_url="http://gemini-proxy.internal:8080/")
    )
    client.models.generate_content(model=MODEL, contents=PROMPT)
    a = attrs(only_span(telemetry))
    assert (a[sc.SERVER_ADDRESS], a[sc.SERVER_PORT]) == ("gemini-proxy.internal", 8080)


def test_content_captured_when_asked(content_telemetry: Telemetry) -> None:
    client, _ = gemini(ok("thought_function_call.json"))
    config = types.GenerateContentConfig(
        system_instruction="You are a weather assistant.", tools=[WEATHER_TOOL]
    )
    history = [
        types.Content(role="user", parts=[types.Part(text=PROMPT)]),
    ]
    client.models.generate_content(model=MODEL, contents=history, config=config)

    span = only_span(content_telemetry)
    assert content(span, sc.GEN_AI_INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}
    ]
    assert content(span, sc.GEN_AI_SYSTEM_INSTRUCTIONS) == [
        {"type": "text", "content": "You are a weather assistant."}
    ]
    (definition,) = content(span, sc.GEN_AI_TOOL_DEFINITIONS)
    assert definition["type"] == "function" and definition["name"] == "get_weather"
    assert definition["description"] == "Current weather in a city"
    assert content(span, sc.GEN_AI_OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": THOUGHT},
                {"type": "tool_call", "id": None, "name": "get_weather", "arguments": WEATHER_ARGS},
            ],
            "finish_reason": "tool_call",
        }
    ]


# -- the decision path --------------------------------------------------------------------


def _weather_tool() -> Callable[..., str]:
    @otel_agents.tool
    def get_weather(city: str, unit: str) -> str:
        """Current weather in a city."""
        return f"18 degrees {unit} in {city}"

    # This module's annotations are strings (postponed); SDKs before 2.x pass them to
    # isinstance when they run a function for automatic function calling.
    for function in (get_weather, inspect.unwrap(get_weather)):
        function.__annotations__ = typing.get_type_hints(inspect.unwrap(get_weather))
    return get_weather


def _assert_decision(telemetry: Telemetry, llm: ReadableSpan, match: str) -> None:
    """The reasoning text is content: it is on the tool span with capture on."""
    tool = telemetry.span("execute_tool get_weather")
    a = attrs(tool)
    assert a[sc.DECISION_MATCH] == match
    assert a[sc.DECISION_REASONING_SOURCE] == sc.DecisionReasoningSourceValues.REASONING_SUMMARY
    assert a[sc.DECISION_REASONING] == THOUGHT
    assert [link.context.span_id for link in tool.links] == [llm.context.span_id]


def test_function_call_id_when_the_api_gives_one(telemetry: Telemetry) -> None:
    payload = json.loads(body("thought_function_call.json"))
    payload["candidates"][0]["content"]["parts"][1]["functionCall"]["id"] = "call_7f3a"
    response = types.GenerateContentResponse._from_response(response=payload, kwargs={})
    read = adapter.read_response(response)
    assert [(c.call_id, c.name) for c in read.tool_calls] == [("call_7f3a", "get_weather")]


def test_automatic_function_calling_gives_a_span_per_model_call(
    content_telemetry: Telemetry,
) -> None:
    get_weather = _weather_tool()
    client, server = gemini(ok("thought_function_call.json"), ok("text.json"))
    with otel_agents.agent("weather"):
        result = client.models.generate_content(
            model=MODEL, contents=PROMPT, config=types.GenerateContentConfig(tools=[get_weather])
        )

    assert result.text == "It is 18 degrees Celsius and sunny in Paris."
    assert len(server.requests) == 2
    llm_spans = [s for s in content_telemetry.spans() if s.name == SPAN]
    assert [attrs(s)[sc.GEN_AI_RESPONSE_ID] for s in llm_spans] == [
        "yJ1xaPvJOqL2xN8Pt4vFiQo",
        "0J1xaKuBHpOjxN8PgZ6A8Q4",
    ]
    _assert_decision(content_telemetry, llm_spans[0], sc.DecisionMatchValues.NAME_AND_ARGUMENTS)


def test_afc_off_is_one_call(telemetry: Telemetry) -> None:
    client, server = gemini(ok("thought_function_call.json"))
    config = types.GenerateContentConfig(
        tools=[_weather_tool()],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    result = client.models.generate_content(model=MODEL, contents=PROMPT, config=config)
    assert result.function_calls and len(server.requests) == 1
    assert [s.name for s in telemetry.spans()] == [SPAN]


# -- streams ------------------------------------------------------------------------------


def _assert_stream_span(span: ReadableSpan) -> None:
    a = attrs(span)
    assert a[sc.GEN_AI_REQUEST_STREAM] is True
    assert a[sc.GEN_AI_RESPONSE_ID] == "4J1xaI2qMYqExN8Pxr2K-Q0"
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == 57
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 12 + 43
    assert a[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 43


def test_stream_is_transparent_and_recorded(content_telemetry: Telemetry) -> None:
    otel_agents.uninstrument()
    # A client lives as long as the test holds it: a dropped one closes its HTTP client.
    plain_client, _ = gemini(ok("stream_thought_text.sse"))
    plain = plain_client.models.generate_content_stream(model=MODEL, contents=PROMPT)
    expected = [chunk.model_dump() for chunk in plain]
    content_telemetry_again = _reinstrument(content_telemetry)

    client, server = gemini(ok("stream_thought_text.sse"))
    stream = client.models.generate_content_stream(model=MODEL, contents=PROMPT)
    chunks = [chunk.model_dump() for chunk in stream]

    assert chunks == expected and len(chunks) == 4
    assert "alt=sse" in str(server.requests[0].url)
    span = only_span(content_telemetry_again)
    _assert_stream_span(span)
    (output,) = content(span, sc.GEN_AI_OUTPUT_MESSAGES)
    assert output["parts"] == [
        {
            "type": "reasoning",
            "content": "**Weighing the request**\n\nThe user asks about Paris; "
            "I'll answer from the forecast.",
        },
        {"type": "text", "content": "It is 18 degrees Celsius and sunny in Paris."},
    ]
    (first_chunk,) = content_telemetry_again.metric_points(
        sc.METRIC_GEN_AI_CLIENT_INFERENCE_TIME_TO_FIRST_CHUNK
    )
    assert first_chunk.count == 1  # type: ignore[attr-defined]


def _reinstrument(telemetry: Telemetry) -> Telemetry:
    otel_agents.instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        configure_sdk=False,
        capture_content="SPAN_ONLY",
    )
    return telemetry


def test_stream_closed_early_ends_the_span_with_what_arrived(telemetry: Telemetry) -> None:
    client, _ = gemini(ok("stream_thought_text.sse"))
    stream = client.models.generate_content_stream(model=MODEL, contents=PROMPT)
    next(stream)
    assert telemetry.spans() == []
    stream.close()
    a = attrs(only_span(telemetry))
    assert a[sc.GEN_AI_RESPONSE_ID] == "4J1xaI2qMYqExN8Pxr2K-Q0"
    assert sc.GEN_AI_RESPONSE_FINISH_REASONS not in a
    assert sc.GEN_AI_USAGE_OUTPUT_TOKENS not in a  # never reported: not a guess


def test_stream_error_arrives_while_iterating(telemetry: Telemetry) -> None:
    client, _ = gemini((400, "error_400.json"))
    stream = client.models.generate_content_stream(model=MODEL, contents=PROMPT)
    with pytest.raises(errors.ClientError):
        list(stream)
    span = only_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)[sc.ERROR_TYPE] == "google.genai.errors.ClientError"


# -- async --------------------------------------------------------------------------------


def test_async_stream(telemetry: Telemetry) -> None:
    client, _ = vertex(ok("stream_thought_text.sse"))

    async def consume() -> list[str | None]:
        stream = await client.aio.models.generate_content_stream(model=MODEL, contents=PROMPT)
        return [chunk.text async for chunk in stream]

    texts = asyncio.run(consume())
    assert texts[-2:] == ["It is 18 degrees ", "Celsius and sunny in Paris."]
    span = only_span(telemetry)
    _assert_stream_span(span)
    assert attrs(span)[sc.GEN_AI_PROVIDER_NAME] == sc.GenAiProviderNameValues.GCP_VERTEX_AI


def test_async_api_error(telemetry: Telemetry) -> None:
    client, _ = gemini((400, "error_400.json"))
    with pytest.raises(errors.ClientError):
        asyncio.run(client.aio.models.generate_content(model=MODEL, contents=PROMPT))
    assert attrs(only_span(telemetry))[sc.ERROR_TYPE] == "google.genai.errors.ClientError"


# -- cost and metrics ---------------------------------------------------------------------


def test_metrics(telemetry: Telemetry) -> None:
    client, _ = gemini(ok("thought_function_call.json"))
    client.models.generate_content(model=MODEL, contents=PROMPT)
    (duration,) = telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_DURATION)
    assert duration.count == 1  # type: ignore[attr-defined]
    assert duration.attributes[sc.GEN_AI_PROVIDER_NAME] == "gcp.gemini"  # type: ignore[attr-defined]
    used = [
        telemetry.metric_points(name)[0].value  # type: ignore[attr-defined]
        for name in (
            sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS,
            sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS,
            sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_OUTPUT_TOKENS,
        )
    ]
    assert used == [2179, 2048, 110]


# -- patching -----------------------------------------------------------------------------


# -- readers on recorded payloads ---------------------------------------------------------


def test_stream_accumulator_matches_a_whole_response() -> None:
    accumulator = adapter.ChunkAccumulator()
    for line in body("stream_thought_text.sse").split(b"\n\n"):
        if line.startswith(b"data: "):
            payload = json.loads(line[len(b"data: ") :])
            accumulator.add(
                types.GenerateContentResponse._from_response(response=payload, kwargs={})
            )
    read = accumulator.response()
    assert read.text == "It is 18 degrees Celsius and sunny in Paris."
    assert read.reasoning is not None and read.reasoning.endswith("forecast.")
    assert read.finish_reasons == ["stop"]


def test_request_parameters_from_a_config_dict() -> None:
    parameters = adapter.request_parameters(
        {"top_k": 40.0, "temperature": 1, "seed": 3, "stop_sequences": ["a", 1]}
    )
    assert parameters == {
        sc.GEN_AI_REQUEST_TOP_K: 40,
        sc.GEN_AI_REQUEST_TEMPERATURE: 1.0,
        sc.GEN_AI_REQUEST_SEED: 3,
        sc.GEN_AI_REQUEST_STOP_SEQUENCES: ["a"],
    }
    assert type(parameters[sc.GEN_AI_REQUEST_TOP_K]) is int
    assert sc.GEN_AI_REQUEST_TOP_K not in adapter.request_parameters({"top_k": 0.5})


def test_stream_accumulator_keeps_function_calls_whole() -> None:
    payload = json.loads(body("thought_function_call.json"))
    thought, call = payload["candidates"][0]["content"]["parts"]
    accumulator = adapter.ChunkAccumulator()
    for parts, finish in (([thought], None), ([call], "STOP")):
        chunk = {**payload, "candidates": [{"content": {"role": "model", "parts": parts}}]}
        if finish:
            chunk["candidates"][0]["finishReason"] = finish
        accumulator.add(types.GenerateContentResponse._from_response(response=chunk, kwargs={}))
    read = accumulator.response()
    assert [(c.name, c.arguments) for c in read.tool_calls] == [("get_weather", WEATHER_ARGS)]
    assert read.reasoning == THOUGHT and read.text is None
    assert read.usage is not None and read.usage.output_tokens == 110


def _raises_error_chunks() -> bool:
    from google.genai import _api_client

    return '{"error":' in inspect.getsource(_api_client.BaseApiClient.request_streamed)


@pytest.mark.skipif(not _raises_error_chunks(), reason="older SDKs yield an error chunk as data")
def test_error_chunk_mid_stream(telemetry: Telemetry) -> None:
    client, _ = gemini(ok("stream_error_mid.sse"))
    stream = client.models.generate_content_stream(model=MODEL, contents=PROMPT)
    seen: list[bool | None] = []
    with pytest.raises(errors.ServerError) as caught:
        for chunk in stream:
            seen.append(chunk.candidates[0].content.parts[0].thought)  # type: ignore[index, union-attr]
    assert seen == [True, True] and caught.value.code == 503
    span = only_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    a = attrs(span)
    assert a[sc.ERROR_TYPE] == "google.genai.errors.ServerError"
    assert a[sc.GEN_AI_RESPONSE_ID] == "4J1xaI2qMYqExN8Pxr2K-Q0"  # what arrived is kept
