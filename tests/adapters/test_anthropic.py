"""The `anthropic` adapter: the real SDK over its real HTTP layer (httpx2, scripted wire-format
fixtures) and the real OpenTelemetry SDK with in-memory exporters."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest
import wrapt
from agents_testing import Telemetry, instrumented
from anthropic.types import Message, RawMessageStreamEvent
from genai_prices import Usage, calc_price
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from wire import (
    ScriptedResponse,
    ScriptedTransport,
    anthropic_client,
    async_anthropic_client,
    load_json_fixture,
)

import otel_agents
from otel_agents import semconv as sc
from otel_agents.adapters import anthropic as adapter
from otel_agents.runtime import Observer

MODEL = "claude-sonnet-4-6"
MESSAGES: list[Any] = [{"role": "user", "content": "What's the weather in Paris?"}]
REQUEST: dict[str, Any] = {"model": MODEL, "max_tokens": 2048, "messages": MESSAGES}
WEATHER_ARGS = {"city": "Paris", "unit": "celsius"}
THINKING = (
    "The user wants the weather in Paris. I have a get_weather tool that takes a city and a unit;"
    " Europe uses Celsius, so I'll ask for celsius."
)
STREAM_TEXT = "I'll check the current weather in Paris — one moment ☀️."

THINKING_TOOL_USE = "anthropic/message_thinking_tool_use.json"
STREAM_TOOL_USE = "anthropic/stream_thinking_text_tool_use.sse"
CONTENT_KEYS = (
    sc.GEN_AI_INPUT_MESSAGES,
    sc.GEN_AI_OUTPUT_MESSAGES,
    sc.GEN_AI_SYSTEM_INSTRUCTIONS,
    sc.GEN_AI_TOOL_DEFINITIONS,
)


# -- helpers ------------------------------------------------------------------------------


def scripted(*names: str) -> ScriptedTransport:
    return ScriptedTransport([ScriptedResponse.fixture(name) for name in names])


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def scope(span: ReadableSpan) -> str | None:
    return span.instrumentation_scope.name if span.instrumentation_scope else None


def only_span(telemetry: Telemetry) -> ReadableSpan:
    """The one span the test made: ours (not the SDK's own)."""
    spans = telemetry.spans()
    found = [(s.name, scope(s)) for s in spans]
    assert len(spans) == 1 and scope(spans[0]) == "otel_agents", found
    return spans[0]


def content(span: ReadableSpan, key: str) -> Any:
    return json.loads(attrs(span)[key])


def traceparent(request: Any) -> tuple[int, int] | None:
    """(trace id, span id) of a request's W3C `traceparent` header."""
    value = request.headers.get("traceparent")
    if value is None:
        return None
    _, trace_id, span_id, _ = value.split("-")
    return int(trace_id, 16), int(span_id, 16)


def ids(span: ReadableSpan) -> tuple[int, int]:
    assert span.context is not None
    return span.context.trace_id, span.context.span_id


def message_json(name: str, **changes: Any) -> ScriptedResponse:
    """A JSON message fixture with some fields changed (still the API's wire format)."""
    return ScriptedResponse.json({**load_json_fixture(name), **changes})


def sdk_message(name: str) -> Message:
    """What the SDK makes of a fixture on its own."""
    return Message.model_validate(load_json_fixture(name))


@pytest.fixture
def global_provider(telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch) -> Telemetry:
    """The in-memory provider registered as the global one, as `instrument()` does in an
    application: the SDK's own tracing then turns itself on for clients without options."""
    monkeypatch.setattr(otel_trace, "_TRACER_PROVIDER", telemetry.tracer_provider)
    return telemetry


class Recorder(Observer):
    """Keeps every finished LLM call."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def on_llm_call_end(self, call: Any) -> None:
        self.calls.append(call)


@pytest.fixture
def observed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Telemetry, Recorder]]:
    recorder = Recorder()
    for built in instrumented(monkeypatch, observers=[recorder]):
        yield built, recorder


# -- patching -----------------------------------------------------------------------------


def test_instrument_patches_the_already_imported_sdk(telemetry: Telemetry) -> None:
    base = anthropic._base_client
    for owner in (base.SyncAPIClient, base.AsyncAPIClient):
        assert isinstance(owner.__dict__["request"], wrapt.FunctionWrapper)
        assert isinstance(owner.__dict__["_attempt_request"], wrapt.FunctionWrapper)
    assert isinstance(base.__dict__["start_api_call_span"], wrapt.FunctionWrapper)


IMPORTED_AFTER_INSTRUMENT = """
import sys
from opentelemetry.sdk.trace import TracerProvider
import otel_agents
otel_agents.instrument(tracer_provider=TracerProvider(), configure_sdk=False)
assert "anthropic" not in sys.modules
import anthropic
import wrapt
request = anthropic._base_client.SyncAPIClient.__dict__["request"]
print(isinstance(request, wrapt.FunctionWrapper))
"""


def test_an_sdk_imported_later_is_patched_on_import() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORTED_AFTER_INSTRUMENT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_uninstrument_removes_every_patch_and_the_sdk_traces_itself_again(
    telemetry: Telemetry,
) -> None:
    otel_agents.uninstrument()
    base = anthropic._base_client
    for owner in (base.SyncAPIClient, base.AsyncAPIClient):
        assert not isinstance(owner.__dict__["request"], wrapt.FunctionWrapper)
        assert not isinstance(owner.__dict__["_attempt_request"], wrapt.FunctionWrapper)
    assert not isinstance(base.__dict__["start_api_call_span"], wrapt.FunctionWrapper)

    transport = scripted(THINKING_TOOL_USE)
    client = anthropic_client(
        transport, open_telemetry={"tracer_provider": telemetry.tracer_provider}
    )
    client.messages.create(**REQUEST)
    (span,) = telemetry.spans()
    assert span.name == "anthropic.messages.create"
    assert scope(span) == "com.anthropic.sdk.python"
    assert traceparent(transport.last_request) == ids(span)


# -- messages.create ----------------------------------------------------------------------


def test_create_records_a_chat_span(telemetry: Telemetry) -> None:
    transport = scripted(THINKING_TOOL_USE)
    message = anthropic_client(transport).messages.create(**REQUEST)

    assert isinstance(message, Message)
    assert message.model_dump() == sdk_message(THINKING_TOOL_USE).model_dump()
    assert message._request_id == "req_011CSHoEeqs5C35K2UUqR7Fy"
    span = only_span(telemetry)
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    a = attrs(span)
    assert a[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert a[sc.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert a[sc.GEN_AI_REQUEST_MODEL] == MODEL
    assert a[sc.GEN_AI_REQUEST_MAX_TOKENS] == 2048
    assert sc.GEN_AI_REQUEST_STREAM not in a
    assert (a[sc.SERVER_ADDRESS], a[sc.SERVER_PORT]) == ("api.anthropic.test", 443)
    assert a[sc.GEN_AI_RESPONSE_ID] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert a[sc.GEN_AI_RESPONSE_MODEL] == MODEL
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)
    # input tokens include cache reads and writes: 472 + 2048 + 1536
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == 4056
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 162
    assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 2048
    assert a[sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] == 1536
    assert a[sc.LLM_ATTEMPTS] == 1
    assert sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK not in a
    assert not set(CONTENT_KEYS) & set(a), "content is off by default"
    transport.assert_done()


async def test_async_create_records_a_chat_span(telemetry: Telemetry) -> None:
    client = async_anthropic_client(scripted(THINKING_TOOL_USE))
    message = await client.messages.create(**REQUEST)

    assert message.model_dump() == sdk_message(THINKING_TOOL_USE).model_dump()
    a = attrs(only_span(telemetry))
    assert a[sc.GEN_AI_RESPONSE_ID] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == 4056
    assert a[sc.LLM_ATTEMPTS] == 1


def test_request_parameters_including_extra_body(telemetry: Telemetry) -> None:
    transport = scripted(THINKING_TOOL_USE)
    anthropic_client(transport).messages.create(
        **REQUEST,
        stop_sequences=["\n\nHuman:", "END"],
        output_config={"effort": "high"},
        # parameters this SDK version has no argument for still reach the API
        extra_body={"temperature": 0.2, "top_p": 0.9, "top_k": 40},
    )

    assert transport.last_request.json["temperature"] == 0.2
    a = attrs(only_span(telemetry))
    assert a[sc.GEN_AI_REQUEST_STOP_SEQUENCES] == ("\n\nHuman:", "END")
    assert a[sc.GEN_AI_REQUEST_REASONING_LEVEL] == "high"
    assert a[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert a[sc.GEN_AI_REQUEST_TOP_P] == 0.9
    # An int, as the conventions type it (it was a double before PR #217).
    assert a[sc.GEN_AI_REQUEST_TOP_K] == 40 and type(a[sc.GEN_AI_REQUEST_TOP_K]) is int


def test_beta_messages_are_recorded_too(telemetry: Telemetry) -> None:
    message = anthropic_client(scripted(THINKING_TOOL_USE)).beta.messages.create(**REQUEST)

    assert message.stop_reason == "tool_use"
    a = attrs(only_span(telemetry))
    assert a[sc.GEN_AI_RESPONSE_ID] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 162


def test_conversation_id_from_the_sdk_option(telemetry: Telemetry) -> None:
    client = anthropic_client(
        scripted(THINKING_TOOL_USE), open_telemetry={"traces": False, "conversation_id": "c-42"}
    )
    client.messages.create(**REQUEST)
    assert attrs(only_span(telemetry))[sc.GEN_AI_CONVERSATION_ID] == "c-42"


def test_platform_clients_name_their_provider(telemetry: Telemetry) -> None:
    # The transport answers in process: nothing reaches the real Vertex host.
    transport = scripted(THINKING_TOOL_USE)
    client = anthropic.AnthropicVertex(
        region="us-east5",
        project_id="demo-project",
        access_token="test-token",
        http_client=httpx2.Client(transport=transport),
        max_retries=0,
    )
    client.messages.create(**REQUEST)

    assert transport.last_request.path.endswith(f"/models/{MODEL}:rawPredict")
    a = attrs(only_span(telemetry))
    assert a[sc.GEN_AI_PROVIDER_NAME] == "gcp.vertex_ai"
    assert a[sc.GEN_AI_REQUEST_MODEL] == MODEL  # read before the SDK moves it into the URL
    assert a[sc.SERVER_ADDRESS] == "us-east5-aiplatform.googleapis.com"


# -- content ------------------------------------------------------------------------------


def test_content_captured_in_the_conventions_shape(content_telemetry: Telemetry) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "What's the weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Use the tool.", "signature": "EqQBCkYI"},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"c": 1}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C, sunny"},
                {
                    "type": "image",
                    "source": {"type": "url", "url": "https://example.org/paris.png"},
                },
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"},
                },
                {"type": "document", "source": {"type": "file", "file_id": "file_011"}},
            ],
        },
    ]
    tools: list[Any] = [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    ]
    system: list[Any] = [
        {"type": "text", "text": "You are a weather bot.", "cache_control": {"type": "ephemeral"}}
    ]
    anthropic_client(scripted(THINKING_TOOL_USE)).messages.create(
        model=MODEL, max_tokens=2048, messages=messages, tools=tools, system=system
    )

    span = only_span(content_telemetry)
    assert content(span, sc.GEN_AI_SYSTEM_INSTRUCTIONS) == [
        {"type": "text", "content": "You are a weather bot."}
    ]
    assert content(span, sc.GEN_AI_TOOL_DEFINITIONS) == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    ]
    assert content(span, sc.GEN_AI_INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "What's the weather in Paris?"}]},
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": "Use the tool."},
                {"type": "reasoning", "content": "[redacted]", "redacted": True},
                {
                    "type": "tool_call",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "arguments": {"c": 1},
                },
            ],
        },
        {
            "role": "user",
            "parts": [
                {"type": "tool_call_response", "id": "toolu_1", "response": "18°C, sunny"},
                {"type": "uri", "modality": "image", "uri": "https://example.org/paris.png"},
                {
                    "type": "blob",
                    "modality": "image",
                    "mime_type": "image/png",
                    "content": "iVBORw0K",
                },
                {"type": "file", "modality": "document", "file_id": "file_011"},
            ],
        },
    ]
    assert content(span, sc.GEN_AI_OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": THINKING},
                {"type": "text", "content": "I'll check the current weather in Paris for you."},
                {
                    "type": "tool_call",
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "name": "get_weather",
                    "arguments": WEATHER_ARGS,
                },
            ],
            "finish_reason": "tool_use",
        }
    ]


def test_system_prompt_as_a_string(content_telemetry: Telemetry) -> None:
    anthropic_client(scripted(THINKING_TOOL_USE)).messages.create(**REQUEST, system="Be brief.")
    span = only_span(content_telemetry)
    assert content(span, sc.GEN_AI_SYSTEM_INSTRUCTIONS) == [
        {"type": "text", "content": "Be brief."}
    ]
    assert sc.GEN_AI_TOOL_DEFINITIONS not in attrs(span)


def test_redacted_thinking_is_a_redacted_reasoning_part(content_telemetry: Telemetry) -> None:
    name = "anthropic/message_redacted_thinking.json"
    message = anthropic_client(scripted(name)).messages.create(**REQUEST)

    assert message.model_dump() == sdk_message(name).model_dump()
    span = only_span(content_telemetry)
    (output,) = content(span, sc.GEN_AI_OUTPUT_MESSAGES)
    assert output["parts"] == [
        {"type": "reasoning", "content": "[redacted]", "redacted": True},
        {"type": "reasoning", "content": "[redacted]", "redacted": True},
        {
            "type": "reasoning",
            "content": "Both pieces of context agree, so the answer is straightforward.",
        },
        {"type": "text", "content": "Based on the documents, the launch date is 14 March."},
    ]
    assert "EmwK" not in attrs(span)[sc.GEN_AI_OUTPUT_MESSAGES]  # never the encrypted data
    assert attrs(span)[sc.GEN_AI_RESPONSE_MODEL] == "claude-opus-4-7"


def test_server_tools_are_server_tool_parts_not_tool_calls(content_telemetry: Telemetry) -> None:
    name = "anthropic/message_web_search.json"
    message = anthropic_client(scripted(name)).messages.create(**REQUEST)

    assert message.model_dump() == sdk_message(name).model_dump()
    assert adapter.read_response(message).tool_calls == []
    span = only_span(content_telemetry)
    (output,) = content(span, sc.GEN_AI_OUTPUT_MESSAGES)
    assert [p["type"] for p in output["parts"]] == [
        "text",
        "server_tool_call",
        "server_tool_call_response",
        "text",
    ]
    assert output["parts"][1] == {
        "type": "server_tool_call",
        "id": "srvtoolu_01WYG3ziw53XMcoyKL4XcZmE",
        "name": "web_search",
        "server_tool_call": {"type": "web_search", "arguments": {"query": "Louvre opening hours"}},
    }
    response = output["parts"][2]
    assert response["id"] == "srvtoolu_01WYG3ziw53XMcoyKL4XcZmE"
    results = response["server_tool_call_response"]
    assert results["type"] == "web_search_tool_result"
    assert [r["url"] for r in results["content"]] == [
        "https://www.example.org/louvre/hours",
        "https://www.example.com/guides/louvre",
    ]
    assert "encrypted_content" not in json.dumps(results)
    assert attrs(span)[sc.GEN_AI_USAGE_INPUT_TOKENS] == 6039


# -- streaming ----------------------------------------------------------------------------


def _event_dumps(events: list[RawMessageStreamEvent]) -> list[dict[str, Any]]:
    return [event.model_dump() for event in events]


def _assert_stream_span(span: ReadableSpan) -> None:
    a = attrs(span)
    assert a[sc.GEN_AI_REQUEST_STREAM] is True
    assert a[sc.GEN_AI_RESPONSE_ID] == "msg_01R8nKq5vTx3Lm9Wc2Hs7Yp4"
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == 472 + 2048
    assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 2048
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 214  # the final count, from message_delta
    assert span.start_time is not None and span.end_time is not None
    assert 0 <= a[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] <= (span.end_time - span.start_time) / 1e9
    assert a[sc.LLM_ATTEMPTS] == 1


def test_stream_true_is_transparent_and_recorded(content_telemetry: Telemetry) -> None:
    transport = scripted(STREAM_TOOL_USE, STREAM_TOOL_USE)
    client = anthropic_client(transport)
    stream = client.messages.create(**REQUEST, stream=True)
    assert isinstance(stream, anthropic.Stream)
    assert transport.streams[0].chunks_sent == 0  # still lazy
    assert content_telemetry.spans() == []  # open until the stream is read
    events = list(stream)

    span = only_span(content_telemetry)
    _assert_stream_span(span)
    (output,) = content(span, sc.GEN_AI_OUTPUT_MESSAGES)
    assert output["parts"] == [
        {"type": "reasoning", "content": THINKING},
        {"type": "text", "content": STREAM_TEXT},
        {
            "type": "tool_call",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "arguments": WEATHER_ARGS,  # reassembled from JSON split across events
        },
    ]

    otel_agents.uninstrument()  # the same stream without us: the same events
    assert _event_dumps(events) == _event_dumps(
        list(client.messages.create(**REQUEST, stream=True))
    )


async def test_async_stream_true(telemetry: Telemetry) -> None:
    client = async_anthropic_client(scripted(STREAM_TOOL_USE))
    stream = await client.messages.create(**REQUEST, stream=True)
    assert isinstance(stream, anthropic.AsyncStream)
    types = [event.type async for event in stream]

    assert types[0] == "message_start" and types[-1] == "message_stop"
    _assert_stream_span(only_span(telemetry))


def test_stream_helper_text_stream_and_final_message(telemetry: Telemetry) -> None:
    transport = scripted(STREAM_TOOL_USE)
    with anthropic_client(transport).messages.stream(**REQUEST) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == STREAM_TEXT
    assert final.content[2].type == "tool_use" and final.content[2].input == WEATHER_ARGS
    assert (final.usage.input_tokens, final.usage.output_tokens) == (472, 214)
    _assert_stream_span(only_span(telemetry))


async def test_async_stream_helper_text_stream_and_final_message(telemetry: Telemetry) -> None:
    client = async_anthropic_client(scripted(STREAM_TOOL_USE))
    async with client.messages.stream(**REQUEST) as stream:
        text = "".join([chunk async for chunk in stream.text_stream])
        final = await stream.get_final_message()

    assert text == STREAM_TEXT
    assert final.stop_reason == "tool_use"
    _assert_stream_span(only_span(telemetry))


def test_stream_web_search_with_citations(content_telemetry: Telemetry) -> None:
    with anthropic_client(scripted("anthropic/stream_web_search.sse")).messages.stream(
        **REQUEST
    ) as stream:
        final = stream.get_final_message()

    answer = final.content[3]
    assert answer.type == "text" and answer.citations  # the SDK's own accumulation is intact
    span = only_span(content_telemetry)
    (output,) = content(span, sc.GEN_AI_OUTPUT_MESSAGES)
    assert output["parts"][1] == {
        "type": "server_tool_call",
        "id": "srvtoolu_01Kq8Xt3Vn6Wb2Rm9Lc5Hz7J",
        "name": "web_search",
        "server_tool_call": {"type": "web_search", "arguments": {"query": "Louvre opening hours"}},
    }
    assert output["parts"][2]["type"] == "server_tool_call_response"
    assert output["parts"][3] == {
        "type": "text",
        "content": "The Louvre is open from 9 a.m. to 6 p.m. and is closed on Tuesdays.",
    }
    assert output["finish_reason"] == "end_turn"
    assert attrs(span)[sc.GEN_AI_USAGE_INPUT_TOKENS] == 6039  # message_delta's final count


def test_break_then_close_ends_the_span_with_what_arrived(content_telemetry: Telemetry) -> None:
    transport = scripted(STREAM_TOOL_USE)
    stream = anthropic_client(transport).messages.create(**REQUEST, stream=True)
    for event in stream:
        # stop inside the tool call's arguments
        delta = event.delta if event.type == "content_block_delta" else None
        if delta is not None and delta.type == "input_json_delta" and delta.partial_json:
            break
    assert content_telemetry.spans() == []
    stream.close()

    span = only_span(content_telemetry)
    a = attrs(span)
    assert a[sc.GEN_AI_RESPONSE_ID] == "msg_01R8nKq5vTx3Lm9Wc2Hs7Yp4"
    assert sc.GEN_AI_RESPONSE_FINISH_REASONS not in a  # message_delta never came
    assert span.status.status_code is StatusCode.UNSET
    (output,) = content(span, sc.GEN_AI_OUTPUT_MESSAGES)
    assert output["parts"][2]["arguments"] == '{"city": "Pa'  # cut off: kept as it arrived
    assert transport.streams[0].closed and not transport.streams[0].exhausted


def test_helper_left_early_ends_the_span_at_once(telemetry: Telemetry) -> None:
    with anthropic_client(scripted(STREAM_TOOL_USE)).messages.stream(**REQUEST) as stream:
        for _ in stream.text_stream:
            break
    span = only_span(telemetry)  # ended by the `with` exit, not by the garbage collector
    assert attrs(span)[sc.GEN_AI_RESPONSE_ID] == "msg_01R8nKq5vTx3Lm9Wc2Hs7Yp4"


def test_stream_closed_before_reading(telemetry: Telemetry) -> None:
    stream = anthropic_client(scripted(STREAM_TOOL_USE)).messages.create(**REQUEST, stream=True)
    stream.close()
    span = only_span(telemetry)
    assert span.status.status_code is StatusCode.UNSET
    assert sc.GEN_AI_RESPONSE_ID not in attrs(span)


def test_stream_dropped_without_closing_ends_on_gc(telemetry: Telemetry) -> None:
    stream = anthropic_client(scripted(STREAM_TOOL_USE)).messages.create(**REQUEST, stream=True)
    assert next(stream).type == "message_start"
    assert telemetry.spans() == []
    del stream
    gc.collect()
    span = only_span(telemetry)
    assert attrs(span)[sc.GEN_AI_RESPONSE_ID] == "msg_01R8nKq5vTx3Lm9Wc2Hs7Yp4"


def test_error_event_mid_stream(observed: tuple[Telemetry, Recorder]) -> None:
    telemetry, recorder = observed
    stream = anthropic_client(scripted("anthropic/stream_error_overloaded.sse")).messages.create(
        **REQUEST, stream=True
    )
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        for event in stream:
            seen.append(event.type)

    assert seen == ["message_start", "content_block_start", "content_block_delta"]
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    (call,) = recorder.calls
    assert call.exception is caught.value  # the very exception the caller got
    span = only_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    a = attrs(span)
    assert a[sc.ERROR_TYPE] == "anthropic.APIStatusError"
    assert a[sc.GEN_AI_RESPONSE_ID] == "msg_01Ew9Hq2Zp6Vc4Kd8Ls1Tn3B"


# -- raw responses ------------------------------------------------------------------------


def test_with_raw_response(telemetry: Telemetry) -> None:
    client = anthropic_client(scripted(THINKING_TOOL_USE, STREAM_TOOL_USE))
    raw = client.messages.with_raw_response.create(**REQUEST)
    assert raw.headers["request-id"] == "req_011CSHoEeqs5C35K2UUqR7Fy"
    assert telemetry.spans() == []  # finished when the body is parsed
    message = raw.parse()
    assert isinstance(message, Message)
    assert attrs(only_span(telemetry))[sc.GEN_AI_RESPONSE_ID] == message.id

    telemetry.exporter.clear()
    raw_stream = client.messages.with_raw_response.create(**REQUEST, stream=True)
    events = list(raw_stream.parse())
    assert events[-1].type == "message_stop"
    _assert_stream_span(only_span(telemetry))


def test_with_streaming_response(telemetry: Telemetry) -> None:
    client = anthropic_client(scripted(THINKING_TOOL_USE, STREAM_TOOL_USE))
    with client.messages.with_streaming_response.create(**REQUEST) as response:
        assert response.status_code == 200
        message = response.parse()
    assert message.stop_reason == "tool_use"
    assert attrs(only_span(telemetry))[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 162

    telemetry.exporter.clear()
    with client.messages.with_streaming_response.create(**REQUEST, stream=True) as response:
        types = [event.type for event in response.parse()]
    assert types[-1] == "message_stop"
    _assert_stream_span(only_span(telemetry))


# -- errors and retries -------------------------------------------------------------------


def test_400_is_recorded_and_the_same_exception_reaches_the_caller(
    observed: tuple[Telemetry, Recorder],
) -> None:
    telemetry, recorder = observed
    client = anthropic_client(scripted("anthropic/error_400_invalid_request.json"), max_retries=2)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(**REQUEST)

    assert recorder.calls[0].exception is caught.value
    span = only_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    a = attrs(span)
    assert a[sc.ERROR_TYPE] == "anthropic.BadRequestError"
    assert a[sc.LLM_ATTEMPTS] == 1
    assert [e.name for e in span.events] == ["exception"]


def test_529_then_success_is_one_span_with_two_attempts(telemetry: Telemetry) -> None:
    transport = scripted("anthropic/error_529_overloaded.json", THINKING_TOOL_USE)
    message = anthropic_client(transport, max_retries=2).messages.create(**REQUEST)

    assert message.id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert [r.retry_count for r in transport.requests] == [0, 1]
    span = only_span(telemetry)
    assert span.status.status_code is StatusCode.UNSET
    assert attrs(span)[sc.LLM_ATTEMPTS] == 2
    assert sc.ERROR_TYPE not in attrs(span)


def test_connection_error(telemetry: Telemetry) -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    client = anthropic_client(httpx2.MockTransport(refuse))
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(**REQUEST)

    span = only_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)[sc.ERROR_TYPE] == "anthropic.APIConnectionError"
    assert attrs(span)[sc.LLM_ATTEMPTS] == 1


# -- a bug of ours never breaks the call ---------------------------------------------------


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("extractor bug")


def test_failing_response_extractor_leaves_the_call_alone(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adapter.MESSAGES, "read_response", _boom)
    message = anthropic_client(scripted(THINKING_TOOL_USE)).messages.create(**REQUEST)

    assert message.model_dump() == sdk_message(THINKING_TOOL_USE).model_dump()
    a = attrs(only_span(telemetry))  # still ended, just without the response
    assert sc.GEN_AI_RESPONSE_ID not in a
    assert a[sc.GEN_AI_REQUEST_MODEL] == MODEL


def test_failing_request_extractor_leaves_the_call_alone(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adapter.MESSAGES, "read_request", _boom)
    message = anthropic_client(scripted(THINKING_TOOL_USE)).messages.create(**REQUEST)

    assert message.model_dump() == sdk_message(THINKING_TOOL_USE).model_dump()
    assert telemetry.spans() == []


def test_failing_stream_accumulator_leaves_the_stream_alone(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adapter.MessageStreamAccumulator, "add", _boom)
    monkeypatch.setattr(adapter.MessageStreamAccumulator, "response", _boom)
    with anthropic_client(scripted(STREAM_TOOL_USE)).messages.stream(**REQUEST) as stream:
        assert "".join(stream.text_stream) == STREAM_TEXT
    only_span(telemetry)


# -- cost and metrics ---------------------------------------------------------------------


def _table_price(model: str, usage: Usage) -> float:
    return float(calc_price(usage, model_ref=model, provider_id="anthropic").total_price)


def test_cost_of_a_known_model_includes_cache_reads_and_writes(telemetry: Telemetry) -> None:
    anthropic_client(scripted(THINKING_TOOL_USE)).messages.create(**REQUEST)

    expected = _table_price(
        MODEL,
        Usage(
            input_tokens=472 + 2048 + 1536,
            output_tokens=162,
            cache_read_tokens=2048,
            cache_write_tokens=1536,
        ),
    )
    a = attrs(only_span(telemetry))
    assert a[sc.COST_USD] == pytest.approx(expected, rel=1e-9)
    assert a[sc.COST_SOURCE] == sc.CostSourceValues.PRICE_TABLE
    # cache reads cost less than plain input: pricing them as input would be wrong
    assert expected < _table_price(MODEL, Usage(input_tokens=4056, output_tokens=162))


def test_unknown_model_has_no_cost(telemetry: Telemetry) -> None:
    response = message_json(THINKING_TOOL_USE, model="claude-unreleased-9")
    message = anthropic_client(ScriptedTransport([response])).messages.create(
        **{**REQUEST, "model": "claude-unreleased-9"}
    )
    assert message.model == "claude-unreleased-9"
    a = attrs(only_span(telemetry))
    assert sc.COST_USD not in a and sc.COST_SOURCE not in a
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 162


OVERRIDE = {MODEL: {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75}}


@pytest.fixture
def priced_telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    yield from instrumented(monkeypatch, prices=OVERRIDE)


def test_price_override_wins(priced_telemetry: Telemetry) -> None:
    anthropic_client(scripted(THINKING_TOOL_USE)).messages.create(**REQUEST)

    a = attrs(only_span(priced_telemetry))
    expected = (472 * 3.0 + 2048 * 0.3 + 1536 * 3.75 + 162 * 15.0) / 1_000_000
    assert a[sc.COST_USD] == pytest.approx(expected)
    assert a[sc.COST_SOURCE] == sc.CostSourceValues.OVERRIDE


def test_metrics(telemetry: Telemetry) -> None:
    anthropic_client(scripted(THINKING_TOOL_USE)).messages.create(**REQUEST)

    (tokens_in,) = telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_OPERATION_INPUT_TOKENS)
    (tokens_out,) = telemetry.metric_points(
        sc.METRIC_GEN_AI_CLIENT_INFERENCE_OPERATION_OUTPUT_TOKENS
    )
    assert (tokens_in.sum, tokens_out.sum) == (4056, 162)  # type: ignore[attr-defined]
    assert tokens_in.attributes[sc.GEN_AI_PROVIDER_NAME] == "anthropic"  # type: ignore[attr-defined]
    assert tokens_in.attributes[sc.GEN_AI_RESPONSE_MODEL] == MODEL  # type: ignore[attr-defined]
    # The usage counters: cache reads and writes are subsets of the input tokens.
    used = {
        name: telemetry.metric_points(name)[0].value  # type: ignore[attr-defined]
        for name in (
            sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS,
            sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS,
            sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS,
            sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_OUTPUT_TOKENS,
        )
    }
    assert list(used.values()) == [4056, 2048, 1536, 162]
    (duration,) = telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_DURATION)
    assert duration.count == 1  # type: ignore[attr-defined]
    assert duration.attributes[sc.GEN_AI_REQUEST_MODEL] == MODEL  # type: ignore[attr-defined]


# -- the decision path, end to end --------------------------------------------------------


def _weather_tool() -> Any:
    @otel_agents.tool
    def get_weather(city: str, unit: str) -> str:
        return f"18 degrees {unit} in {city}"

    return get_weather


def _assert_decision(
    telemetry: Telemetry, *, call_id: str, reasoning: str, source: str, match: str
) -> None:
    llm = telemetry.span(f"chat {MODEL}")
    tool = telemetry.span("execute_tool get_weather")
    a = attrs(tool)
    assert a[sc.GEN_AI_TOOL_CALL_ID] == call_id
    assert a[sc.DECISION_MATCH] == match
    assert a[sc.DECISION_REASONING_SOURCE] == source
    assert a[sc.DECISION_REASONING] == reasoning
    assert [link.context.span_id for link in tool.links] == [ids(llm)[1]]


def test_decision_path_by_tool_call_id(content_telemetry: Telemetry) -> None:
    get_weather = _weather_tool()
    client = anthropic_client(scripted(THINKING_TOOL_USE))
    with otel_agents.agent("weather"):
        message = client.messages.create(**REQUEST)
        for block in message.content:
            if block.type == "tool_use":
                with otel_agents.tool_call_id(block.id):
                    get_weather(**block.input)

    _assert_decision(
        content_telemetry,
        call_id="toolu_01A09q90qw90lq917835lq9",
        reasoning=THINKING,
        source=sc.DecisionReasoningSourceValues.THINKING,
        match=sc.DecisionMatchValues.CALL_ID,
    )


def test_decision_path_by_name_and_arguments_from_a_stream(content_telemetry: Telemetry) -> None:
    get_weather = _weather_tool()
    client = anthropic_client(scripted(STREAM_TOOL_USE))
    with otel_agents.agent("weather"):
        with client.messages.stream(**REQUEST) as stream:
            final = stream.get_final_message()
        tool_use = final.content[2]
        assert tool_use.type == "tool_use"
        get_weather(city="Paris", unit="celsius")

    _assert_decision(
        content_telemetry,
        call_id="toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        reasoning=THINKING,
        source=sc.DecisionReasoningSourceValues.THINKING,
        match=sc.DecisionMatchValues.NAME_AND_ARGUMENTS,
    )


def test_redacted_thinking_gives_no_reasoning_text_so_the_text_explains(
    content_telemetry: Telemetry,
) -> None:
    get_weather = _weather_tool()
    client = anthropic_client(scripted("anthropic/message_redacted_thinking_tool_use.json"))
    with otel_agents.agent("weather"):
        message = client.messages.create(**REQUEST)
        tool_use = message.content[2]
        assert tool_use.type == "tool_use"
        get_weather(**tool_use.input)

    _assert_decision(
        content_telemetry,
        call_id="toolu_01Rd5Kx8Wm2Qz7Lv3Nc9Ht4B",
        reasoning="Paris is in Europe, so I'll ask for the temperature in Celsius.",
        source=sc.DecisionReasoningSourceValues.ASSISTANT_TEXT,
        match=sc.DecisionMatchValues.NAME_AND_ARGUMENTS,
    )


def test_server_tool_calls_are_not_offered_to_application_tools(telemetry: Telemetry) -> None:
    @otel_agents.tool
    def web_search(query: str) -> str:
        return "nothing"

    client = anthropic_client(scripted("anthropic/message_web_search.json"))
    with otel_agents.agent("research"):
        client.messages.create(**REQUEST)
        web_search(query="Louvre opening hours")

    a = attrs(telemetry.span("execute_tool web_search"))
    assert sc.DECISION_MATCH not in a and sc.GEN_AI_TOOL_CALL_ID not in a
    assert telemetry.span("execute_tool web_search").links == ()


# -- the SDK's own span -------------------------------------------------------------------


def _native(telemetry: Telemetry) -> dict[str, Any]:
    return {"open_telemetry": {"tracer_provider": telemetry.tracer_provider}}


def test_native_tracing_on_one_span_ours_and_traceparent_on_every_attempt(
    telemetry: Telemetry,
) -> None:
    transport = scripted("anthropic/error_529_overloaded.json", THINKING_TOOL_USE)
    client = anthropic_client(transport, max_retries=2, **_native(telemetry))
    client.messages.create(**REQUEST)

    span = only_span(telemetry)
    assert span.name == f"chat {MODEL}"
    assert attrs(span)[sc.LLM_ATTEMPTS] == 2  # the SDK's http.request.resend_count + 1
    assert [traceparent(r) for r in transport.requests] == [ids(span), ids(span)]


async def test_native_tracing_on_async_stream(telemetry: Telemetry) -> None:
    transport = scripted(STREAM_TOOL_USE)
    client = async_anthropic_client(transport, **_native(telemetry))
    async with client.messages.stream(**REQUEST) as stream:
        await stream.get_final_message()

    span = only_span(telemetry)
    _assert_stream_span(span)
    assert traceparent(transport.last_request) == ids(span)


def test_native_tracing_on_through_the_global_provider(global_provider: Telemetry) -> None:
    transport = scripted(THINKING_TOOL_USE, STREAM_TOOL_USE)
    client = anthropic_client(transport)  # no option: on, because a provider is registered
    client.messages.create(**REQUEST)
    with client.messages.with_raw_response.create(**REQUEST, stream=True).parse() as stream:
        list(stream)

    first, second = global_provider.spans()
    assert {scope(first), scope(second)} == {"otel_agents"}
    assert [traceparent(r) for r in transport.requests] == [ids(first), ids(second)]


def test_native_tracing_off_by_client_option(global_provider: Telemetry) -> None:
    transport = scripted(THINKING_TOOL_USE)
    anthropic_client(transport, open_telemetry=False).messages.create(**REQUEST)

    assert only_span(global_provider).name == f"chat {MODEL}"
    assert traceparent(transport.last_request) is None  # as the SDK does without us


def test_native_tracing_off_by_environment(
    global_provider: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")
    transport = scripted(STREAM_TOOL_USE)
    with anthropic_client(transport).messages.stream(**REQUEST) as stream:
        stream.until_done()

    _assert_stream_span(only_span(global_provider))
    assert traceparent(transport.last_request) is None


def test_native_propagation_off_sends_no_trace_context(telemetry: Telemetry) -> None:
    transport = scripted(THINKING_TOOL_USE)
    option = {"tracer_provider": telemetry.tracer_provider, "propagation": False}
    anthropic_client(transport, open_telemetry=option).messages.create(**REQUEST)

    only_span(telemetry)
    assert traceparent(transport.last_request) is None


def test_endpoints_we_do_not_record_keep_the_native_span(telemetry: Telemetry) -> None:
    transport = ScriptedTransport(
        [
            ScriptedResponse.fixture("anthropic/count_tokens.json"),
            ScriptedResponse.fixture(THINKING_TOOL_USE),
        ]
    )
    client = anthropic_client(transport, **_native(telemetry))
    assert client.messages.count_tokens(model=MODEL, messages=MESSAGES).input_tokens == 2095
    client.messages.create(**REQUEST)

    native, ours = telemetry.spans()
    assert (native.name, scope(native)) == (
        "anthropic.messages.count_tokens",
        "com.anthropic.sdk.python",
    )
    assert scope(ours) == "otel_agents"
    assert [traceparent(r) for r in transport.requests] == [ids(native), ids(ours)]


# -- readers on their own -----------------------------------------------------------------


def test_stream_accumulator_matches_the_sdk_final_message() -> None:
    """The accumulator reads what the SDK's own accumulation makes of the same events."""
    for name in (STREAM_TOOL_USE, "anthropic/stream_web_search.sse"):
        transport = scripted(name, name)
        client = anthropic_client(transport)
        accumulator = adapter.MESSAGES.new_accumulator()
        for event in client.messages.create(**REQUEST, stream=True):
            accumulator.add(event)
        with client.messages.stream(**REQUEST) as stream:
            final = stream.get_final_message()
        streamed, whole = accumulator.response(), adapter.read_response(final)
        assert streamed == whole
