"""The `openai` adapter end to end: the real SDK over its real HTTP layer (`httpx2`, scripted
wire-format fixtures), patched by `otel_agents.instrument()`, recorded by the real
OpenTelemetry SDK into in-memory exporters."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import openai
import pydantic
import pytest
import wrapt
from agents_testing import Telemetry, instrumented
from genai_prices import Usage, calc_price
from openai._base_client import AsyncAPIClient, SyncAPIClient
from openai._legacy_response import LegacyAPIResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response
from opentelemetry.trace import SpanKind, StatusCode
from wire import (
    AZURE_OPENAI_ENDPOINT,
    ScriptedResponse,
    ScriptedTransport,
    async_azure_openai_client,
    async_openai_client,
    azure_openai_client,
    load_json_fixture,
    openai_client,
)

import otel_agents
from otel_agents import semconv as sc
from otel_agents.adapters import openai as adapter
from otel_agents.core.inference import LLMCall, LLMRequest
from otel_agents.runtime import Observer

CHAT_MODEL = "gpt-4o-mini"
MESSAGES: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER_MESSAGES: list[Any] = [{"role": "user", "content": "Weather and time in Paris?"}]
STREAM_TEXT = "The capital of France is Paris — «la Ville Lumière» 🗼."
WEATHER_ARGS = {"city": "Paris", "unit": "celsius"}
REASONING_SUMMARY = (
    "**Planning the weather lookup**\n\n"
    "The user asked about Paris, so I should call get_weather with the city and unit."
)
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city", "unit"],
        },
    },
}
CONTENT_KEYS = (
    sc.GEN_AI_INPUT_MESSAGES,
    sc.GEN_AI_OUTPUT_MESSAGES,
    sc.GEN_AI_SYSTEM_INSTRUCTIONS,
    sc.GEN_AI_TOOL_DEFINITIONS,
)


# -- helpers -------------------------------------------------------------------------------


def scripted(*names: str) -> ScriptedTransport:
    return ScriptedTransport([ScriptedResponse.fixture(name) for name in names])


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def llm_spans(telemetry: Telemetry) -> list[Any]:
    return [s for s in telemetry.spans() if attrs(s).get(sc.GEN_AI_OPERATION_NAME) == "chat"]


def the_llm_span(telemetry: Telemetry) -> Any:
    spans = llm_spans(telemetry)
    assert len(spans) == 1, [s.name for s in telemetry.spans()]
    return spans[0]


def content(span: Any, key: str) -> Any:
    return json.loads(attrs(span)[key])


class CallRecorder(Observer):
    """Sees every finished LLM call (so a test can count them and look at the exception)."""

    def __init__(self) -> None:
        self.calls: list[LLMCall] = []

    def on_llm_call_end(self, call: Any) -> None:
        self.calls.append(call)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Telemetry, CallRecorder]]:
    seen = CallRecorder()
    for telemetry in instrumented(monkeypatch, observers=[seen]):
        yield telemetry, seen


def expected_chat(name: str) -> dict[str, Any]:
    """What the SDK itself makes of a fixture, to compare results with."""
    return ChatCompletion.model_validate(load_json_fixture(name)).model_dump()


# -- patching ------------------------------------------------------------------------------


def test_instrument_patches_the_already_imported_sdk(telemetry: Telemetry) -> None:
    assert isinstance(SyncAPIClient.__dict__["request"], wrapt.FunctionWrapper)
    assert isinstance(AsyncAPIClient.__dict__["request"], wrapt.FunctionWrapper)
    assert isinstance(AsyncAPIClient.__dict__["_send_request"], wrapt.FunctionWrapper)


def test_an_sdk_imported_after_instrument_is_patched_on_import() -> None:
    script = """
import sys, wrapt, otel_agents
otel_agents.instrument(configure_sdk=False)
assert "openai" not in sys.modules
from openai._base_client import SyncAPIClient
assert isinstance(SyncAPIClient.__dict__["request"], wrapt.FunctionWrapper)
otel_agents.uninstrument()
assert not isinstance(SyncAPIClient.__dict__["request"], wrapt.FunctionWrapper)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_uninstrument_removes_the_patch_and_reinstrument_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transport = scripted(*["openai/chat_text.json"] * 3)
    client = openai_client(transport)
    try:
        telemetry = next(instrumented(monkeypatch))
        client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
        assert len(llm_spans(telemetry)) == 1

        otel_agents.uninstrument()
        assert not isinstance(SyncAPIClient.__dict__["request"], wrapt.FunctionWrapper)
        client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
        assert len(llm_spans(telemetry)) == 1  # nothing recorded while uninstrumented

        again = next(instrumented(monkeypatch))
        otel_agents.instrument(  # twice: still one wrapper, one span per call
            tracer_provider=again.tracer_provider,
            meter_provider=again.meter_provider,
            configure_sdk=False,
        )
        client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
        assert len(llm_spans(again)) == 1
    finally:
        otel_agents.uninstrument()
    transport.assert_done()


class PeerInstrumentation:
    """Another instrumentation that wraps the SDK's `request` with wrapt, as OpenInference
    does: it counts the calls it sees and opens a span of its own around them."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.calls = 0
        self.tracer = telemetry.tracer_provider.get_tracer("peer")

    def wrapper(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        self.calls += 1
        with self.tracer.start_as_current_span("peer request"):
            return wrapped(*args, **kwargs)

    def install(self) -> None:
        wrapt.wrap_function_wrapper(SyncAPIClient, "request", self.wrapper)


def _by_name(telemetry: Telemetry) -> dict[str, Any]:
    return {span.name: span for span in telemetry.spans()}


def test_a_peer_wrapping_request_first_keeps_working_and_so_do_we(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = SyncAPIClient.__dict__["request"]
    otel_agents.uninstrument()
    transport = scripted(*["openai/chat_text.json"] * 2)
    client = openai_client(transport)
    try:
        telemetry = next(instrumented(monkeypatch))
        otel_agents.uninstrument()
        peer = PeerInstrumentation(telemetry)
        peer.install()
        otel_agents.instrument(  # we come second: on top of the peer's wrapper
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
            configure_sdk=False,
        )
        client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
        spans = _by_name(telemetry)
        assert peer.calls == 1
        assert spans["peer request"].parent.span_id == spans["chat gpt-4o-mini"].context.span_id
        assert attrs(spans["chat gpt-4o-mini"])[sc.LLM_ATTEMPTS] == 1

        otel_agents.uninstrument()  # removes ours, leaves the peer's in place
        assert SyncAPIClient.__dict__["request"]._self_wrapper == peer.wrapper
        client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
        assert peer.calls == 2
    finally:
        otel_agents.uninstrument()
        SyncAPIClient.request = original  # type: ignore[method-assign]
    transport.assert_done()


def test_a_peer_wrapping_request_after_us_survives_uninstrument(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = SyncAPIClient.__dict__["request"]
    transport = scripted(*["openai/chat_text.json"] * 3)
    client = openai_client(transport)
    try:
        telemetry = next(instrumented(monkeypatch))
        peer = PeerInstrumentation(telemetry)
        peer.install()  # on top of ours
        client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
        spans = _by_name(telemetry)
        assert spans["chat gpt-4o-mini"].parent.span_id == spans["peer request"].context.span_id

        otel_agents.uninstrument()  # ours cannot be taken out from under the peer: it goes quiet
        assert SyncAPIClient.__dict__["request"]._self_wrapper == peer.wrapper
        client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
        assert peer.calls == 2
        assert len(llm_spans(telemetry)) == 1

        telemetry = next(instrumented(monkeypatch))  # ours, still in the chain, wakes up
        client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
        (span,) = llm_spans(telemetry)
        assert attrs(span)[sc.LLM_ATTEMPTS] == 1  # counted once, not once per wrapper
        assert peer.calls == 3
    finally:
        otel_agents.uninstrument()
        SyncAPIClient.request = original  # type: ignore[method-assign]
    transport.assert_done()


# -- chat completions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"max_tokens": 32}, 32),  # the legacy name alone
        ({"max_tokens": 32, "max_completion_tokens": 64}, 64),  # the new name wins
        ({"max_completion_tokens": 64, "max_tokens": 32}, 64),  # whatever the order
        ({}, None),
    ],
)
def test_max_tokens_by_either_name(
    telemetry: Telemetry, limits: dict[str, int], expected: int | None
) -> None:
    transport = scripted("openai/chat_text.json")
    openai_client(transport).chat.completions.create(
        model=CHAT_MODEL,
        messages=MESSAGES,
        **limits,  # type: ignore[arg-type]
    )
    assert attrs(the_llm_span(telemetry)).get(sc.GEN_AI_REQUEST_MAX_TOKENS) == expected


def test_chat_text_answer(telemetry: Telemetry) -> None:
    transport = scripted("openai/chat_text.json")
    completion = openai_client(transport).chat.completions.create(
        model=CHAT_MODEL,
        messages=MESSAGES,
        max_completion_tokens=64,
        temperature=0.2,
        top_p=0.9,
        frequency_penalty=0.1,
        presence_penalty=-0.5,
        seed=7,
        n=2,
        stop=["\n\n"],
        response_format={"type": "text"},
    )

    assert type(completion) is ChatCompletion
    assert completion.model_dump() == expected_chat("openai/chat_text.json")
    span = the_llm_span(telemetry)
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    a = attrs(span)
    assert a[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert a[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[sc.GEN_AI_REQUEST_MODEL] == CHAT_MODEL
    assert (a[sc.SERVER_ADDRESS], a[sc.SERVER_PORT]) == ("api.openai.test", 443)
    assert a[sc.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert a[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert a[sc.GEN_AI_REQUEST_TOP_P] == 0.9
    assert a[sc.GEN_AI_REQUEST_FREQUENCY_PENALTY] == 0.1
    assert a[sc.GEN_AI_REQUEST_PRESENCE_PENALTY] == -0.5
    assert a[sc.GEN_AI_REQUEST_SEED] == 7
    assert a[sc.GEN_AI_REQUEST_CHOICE_COUNT] == 2
    assert a[sc.GEN_AI_REQUEST_STOP_SEQUENCES] == ("\n\n",)
    assert a[sc.GEN_AI_OUTPUT_TYPE] == "text"
    assert sc.GEN_AI_REQUEST_STREAM not in a
    assert a[sc.GEN_AI_RESPONSE_ID] == "chatcmpl-BxT8qzYv3Jk1nWcLr5uH2aPmE0dQf"
    assert a[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (24, 8)
    assert sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS not in a  # zero cached tokens
    assert a[sc.LLM_ATTEMPTS] == 1
    assert not set(CONTENT_KEYS) & set(a)  # content is off by default
    transport.assert_done()


async def test_chat_async(telemetry: Telemetry) -> None:
    transport = scripted("openai/chat_tool_calls.json")
    client = async_openai_client(transport)
    completion = await client.chat.completions.create(
        model="o4-mini", messages=WEATHER_MESSAGES, reasoning_effort="high"
    )

    assert completion.model_dump() == expected_chat("openai/chat_tool_calls.json")
    a = attrs(the_llm_span(telemetry))
    assert a[sc.GEN_AI_REQUEST_REASONING_LEVEL] == "high"
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == 1430
    assert a[sc.LLM_ATTEMPTS] == 1


def test_chat_parallel_tool_calls_with_cached_and_reasoning_usage(
    content_telemetry: Telemetry,
) -> None:
    transport = scripted("openai/chat_tool_calls.json")
    openai_client(transport).chat.completions.create(
        model="o4-mini", messages=WEATHER_MESSAGES, tools=[WEATHER_TOOL]
    )

    span = the_llm_span(content_telemetry)
    a = attrs(span)
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == 1430  # cached tokens included, as the spec says
    assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1152
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 245
    assert a[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 192
    assert content(span, sc.GEN_AI_OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": "call_Xk2P9wQb7RmT4sVn1LcY8dHe",
                    "name": "get_weather",
                    "arguments": WEATHER_ARGS,
                },
                {
                    "type": "tool_call",
                    "id": "call_Jr5N3tGh8ZqW2pMx6FbK0aUs",
                    "name": "get_local_time",
                    "arguments": {"timezone": "Europe/Paris"},
                },
            ],
            "finish_reason": "tool_call",
        }
    ]


class City(pydantic.BaseModel):
    city: str
    country: str
    population_millions: float


def test_chat_parse_helper(telemetry: Telemetry) -> None:
    transport = scripted("openai/chat_parse_json.json")
    completion = openai_client(transport).chat.completions.parse(
        model="gpt-4o", messages=MESSAGES, response_format=City
    )

    assert completion.choices[0].message.parsed == City(
        city="Paris", country="France", population_millions=2.1
    )
    a = attrs(the_llm_span(telemetry))
    assert a[sc.GEN_AI_OUTPUT_TYPE] == "json"
    assert a[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-2024-08-06"
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (87, 19)
    assert transport.last_request.json["response_format"]["type"] == "json_schema"


def test_chat_stream_helper_final_completion(content_telemetry: Telemetry) -> None:
    transport = scripted("openai/chat_stream_text.sse")
    client = openai_client(transport)
    with client.chat.completions.stream(model=CHAT_MODEL, messages=MESSAGES) as stream:
        assert llm_spans(content_telemetry) == []  # open while the stream is read
        final = stream.get_final_completion()

    assert final.choices[0].message.content == STREAM_TEXT
    span = the_llm_span(content_telemetry)
    a = attrs(span)
    assert a[sc.GEN_AI_REQUEST_STREAM] is True
    assert a[sc.GEN_AI_RESPONSE_ID] == "chatcmpl-BxTAa7HcV2nLq9Wd3Ke5Rt1Ym8Uz0"
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert content(span, sc.GEN_AI_OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": STREAM_TEXT}],
            "finish_reason": "stop",
        }
    ]


def _check_streamed_tool_calls(telemetry: Telemetry, chunks: list[Any]) -> None:
    assert all(isinstance(chunk, ChatCompletionChunk) for chunk in chunks)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    span = the_llm_span(telemetry)
    a = attrs(span)
    assert a[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4.1-2025-04-14"
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (1287, 58)
    assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1024
    assert a[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    parts = content(span, sc.GEN_AI_OUTPUT_MESSAGES)[0]["parts"]
    assert parts == [
        {
            "type": "tool_call",
            "id": "call_Pq7Lm2Xv9Ns4Kd1Wb8Rt6Yh",
            "name": "get_weather",
            "arguments": WEATHER_ARGS,
        },
        {
            "type": "tool_call",
            "id": "call_Hs3Vc8Qe1Zn5Jm0Tb6Gk2Wx",
            "name": "get_local_time",
            "arguments": {"timezone": "Europe/Paris"},
        },
    ]


STREAM_REQUEST: dict[str, Any] = {
    "model": "gpt-4.1",
    "messages": WEATHER_MESSAGES,
    "stream": True,
    "stream_options": {"include_usage": True},
}


def test_chat_raw_stream_with_split_tool_calls_and_final_usage(
    content_telemetry: Telemetry,
) -> None:
    transport = scripted("openai/chat_stream_tool_calls.sse")
    stream = openai_client(transport).chat.completions.create(**STREAM_REQUEST)
    assert isinstance(stream, openai.Stream)
    assert isinstance(stream.response, httpx2.Response)
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert transport.streams[0].chunks_sent == 0  # still lazy

    chunks = list(stream)

    assert transport.streams[0].exhausted
    _check_streamed_tool_calls(content_telemetry, chunks)


def test_chunks_as_dicts_fold_like_sdk_models(telemetry: Telemetry) -> None:
    transport = scripted("openai/chat_stream_tool_calls.sse")
    models = list(openai_client(transport).chat.completions.create(**STREAM_REQUEST))
    endpoint = adapter.ChatCompletions()
    from_models, from_dicts = endpoint.new_accumulator(), endpoint.new_accumulator()
    for chunk in models:
        from_models.add(chunk)
        from_dicts.add(chunk.model_dump(exclude_none=True))  # absent, as a server may send
    expected = from_models.response()
    assert len(expected.tool_calls) == 2 and expected.usage is not None
    assert from_dicts.response() == expected


def test_a_tool_call_delta_without_index_counts_as_the_first(telemetry: Telemetry) -> None:
    # Some OpenAI-compatible servers leave out `index`, which the SDK declares required.
    chunks = [
        {"id": "c-1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
        {"choices": [{"delta": {"tool_calls": [{"id": "call_1", "function": {"name": "f"}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"function": {"arguments": '{"a": 1}'}}]}}]},
        {"choices": [{"delta": {}, "finish_reason": "tool_calls"}]},
    ]
    accumulator = adapter.ChatCompletions().new_accumulator()
    for chunk in chunks:
        accumulator.add(ChatCompletionChunk.construct(**chunk))  # as the SDK builds them
    response = accumulator.response()
    assert [(c.call_id, c.name, c.arguments) for c in response.tool_calls] == [
        ("call_1", "f", '{"a": 1}')
    ]
    assert response.finish_reasons == ["tool_calls"]


async def test_chat_async_raw_stream(content_telemetry: Telemetry) -> None:
    transport = scripted("openai/chat_stream_tool_calls.sse")
    stream = await async_openai_client(transport).chat.completions.create(**STREAM_REQUEST)
    assert isinstance(stream, openai.AsyncStream)

    chunks = [chunk async for chunk in stream]

    _check_streamed_tool_calls(content_telemetry, chunks)


def test_breaking_out_of_a_stream_ends_the_span_once_with_what_was_seen(
    recorder: tuple[Telemetry, CallRecorder],
) -> None:
    telemetry, seen = recorder
    transport = scripted("openai/chat_stream_tool_calls.sse")
    with openai_client(transport).chat.completions.create(**STREAM_REQUEST) as stream:
        for index, _chunk in enumerate(stream):
            if index == 2:  # role, first tool call's name, a few argument characters
                break
        assert llm_spans(telemetry) == []
    assert transport.streams[0].closed

    a = attrs(the_llm_span(telemetry))
    assert a[sc.GEN_AI_RESPONSE_ID] == "chatcmpl-BxTBf4QsL8vXe1Nm6Hj3Wc9Kp2Ra7"
    assert sc.GEN_AI_RESPONSE_FINISH_REASONS not in a  # never saw the end
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in a
    stream.close()
    del stream
    gc.collect()
    assert len(seen.calls) == 1
    assert [c.name for c in seen.calls[0].response.tool_calls] == ["get_weather"]


def test_closing_a_stream_ends_the_span(telemetry: Telemetry) -> None:
    transport = scripted("openai/chat_stream_text.sse")
    stream = openai_client(transport).chat.completions.create(
        model=CHAT_MODEL, messages=MESSAGES, stream=True
    )
    first = next(stream)
    assert first.choices[0].delta.role == "assistant"
    assert llm_spans(telemetry) == []

    stream.close()

    assert attrs(the_llm_span(telemetry))[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"


def test_a_dropped_stream_ends_its_span_when_collected(telemetry: Telemetry) -> None:
    transport = scripted("openai/chat_stream_text.sse")
    stream = openai_client(transport).chat.completions.create(
        model=CHAT_MODEL, messages=MESSAGES, stream=True
    )
    next(stream)
    next(stream)
    del stream
    gc.collect()

    a = attrs(the_llm_span(telemetry))
    assert a[sc.GEN_AI_RESPONSE_ID] == "chatcmpl-BxTAa7HcV2nLq9Wd3Ke5Rt1Ym8Uz0"
    assert sc.GEN_AI_RESPONSE_FINISH_REASONS not in a


def test_leaving_a_stream_helper_early_ends_the_span_at_once(
    recorder: tuple[Telemetry, CallRecorder],
) -> None:
    """The helper closes the HTTP response, not the stream: the span still ends there."""
    telemetry, seen = recorder
    transport = scripted("openai/chat_stream_tool_calls.sse")
    client = openai_client(transport)
    with client.chat.completions.stream(model="gpt-4.1", messages=WEATHER_MESSAGES) as stream:
        for event in stream:
            if event.type == "tool_calls.function.arguments.delta":
                break

    assert len(llm_spans(telemetry)) == 1
    assert len(seen.calls) == 1
    assert seen.calls[0].exception is None


def test_chat_with_raw_response(telemetry: Telemetry) -> None:
    transport = scripted("openai/chat_text.json")
    raw = openai_client(transport).chat.completions.with_raw_response.create(
        model=CHAT_MODEL, messages=MESSAGES
    )
    assert isinstance(raw, LegacyAPIResponse)
    assert raw.headers["x-request-id"] == "req_5f0c2a9e8b7d4c1e9a3b6d2f1e0c7a84"
    assert llm_spans(telemetry) == []  # the body is not read yet

    completion = raw.parse()

    assert type(completion) is ChatCompletion
    assert completion.model_dump() == expected_chat("openai/chat_text.json")
    assert attrs(the_llm_span(telemetry))[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 8


def test_chat_with_streaming_response(telemetry: Telemetry) -> None:
    transport = scripted("openai/chat_text.json", "openai/chat_stream_tool_calls.sse")
    client = openai_client(transport)
    with client.chat.completions.with_streaming_response.create(
        model=CHAT_MODEL, messages=MESSAGES
    ) as response:
        completion = response.parse()
    assert completion.choices[0].message.content == "The capital of France is Paris."

    with client.chat.completions.with_streaming_response.create(**STREAM_REQUEST) as response:
        chunks = list(response.parse())
    assert len(chunks) == 14

    first, second = llm_spans(telemetry)
    assert attrs(first)[sc.GEN_AI_RESPONSE_ID] == "chatcmpl-BxT8qzYv3Jk1nWcLr5uH2aPmE0dQf"
    assert attrs(second)[sc.GEN_AI_USAGE_INPUT_TOKENS] == 1287
    assert attrs(second)[sc.GEN_AI_REQUEST_STREAM] is True


async def test_async_with_raw_and_streaming_responses(telemetry: Telemetry) -> None:
    transport = scripted("openai/chat_text.json", "openai/chat_stream_text.sse")
    client = async_openai_client(transport)
    raw = await client.chat.completions.with_raw_response.create(
        model=CHAT_MODEL, messages=MESSAGES
    )
    assert raw.parse().choices[0].message.content == "The capital of France is Paris."

    async with client.chat.completions.with_streaming_response.create(
        model=CHAT_MODEL, messages=MESSAGES, stream=True
    ) as response:
        text = "".join(
            [c.choices[0].delta.content or "" async for c in await response.parse() if c.choices]
        )
    assert text == STREAM_TEXT
    assert [attrs(s)[sc.GEN_AI_RESPONSE_MODEL] for s in llm_spans(telemetry)] == [
        "gpt-4o-mini-2024-07-18"
    ] * 2


def test_azure_client(telemetry: Telemetry) -> None:
    transport = scripted("openai/chat_text.json")
    client = azure_openai_client(transport)
    completion = client.chat.completions.create(model="my-gpt-4o-mini", messages=MESSAGES)

    assert isinstance(client, openai.AzureOpenAI)
    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert transport.last_request.path == "/openai/deployments/my-gpt-4o-mini/chat/completions"
    span = the_llm_span(telemetry)
    assert span.name == "chat my-gpt-4o-mini"  # Azure's model is the deployment's name
    a = attrs(span)
    assert a[sc.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"
    assert a[sc.SERVER_ADDRESS] == httpx2.URL(AZURE_OPENAI_ENDPOINT).host
    assert a[sc.SERVER_PORT] == 443
    assert a[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"


async def test_async_azure_client_and_azure_hosts_behind_the_plain_client(
    telemetry: Telemetry,
) -> None:
    transport = scripted("openai/chat_text.json", "openai/chat_text.json")
    await async_azure_openai_client(transport).chat.completions.create(
        model="my-deployment", messages=MESSAGES
    )
    foundry = openai_client(transport, base_url="https://proj.services.ai.azure.com/openai/v1")
    foundry.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)

    providers = [attrs(s)[sc.GEN_AI_PROVIDER_NAME] for s in llm_spans(telemetry)]
    assert providers == ["azure.ai.openai", "azure.ai.openai"]
    assert attrs(llm_spans(telemetry)[1])[sc.SERVER_ADDRESS] == "proj.services.ai.azure.com"


# -- the Responses API ---------------------------------------------------------------------


def test_responses_previous_response_id(telemetry: Telemetry) -> None:
    transport = scripted("openai/responses_reasoning_function_call.json")
    openai_client(transport).responses.create(
        model="o4-mini", input="And tomorrow?", previous_response_id="resp_0123456789abcdef"
    )
    assert transport.last_request.json["previous_response_id"] == "resp_0123456789abcdef"
    a = attrs(the_llm_span(telemetry))
    assert a[sc.GEN_AI_REQUEST_PREVIOUS_RESPONSE_ID] == "resp_0123456789abcdef"
    assert sc.GEN_AI_CONVERSATION_ID not in a  # a previous response is not a conversation id


def test_responses_reasoning_and_function_call(content_telemetry: Telemetry) -> None:
    transport = scripted("openai/responses_reasoning_function_call.json")
    response = openai_client(transport).responses.create(
        model="o4-mini",
        input="Weather in Paris?",
        instructions="You are a concise travel assistant.",
        reasoning={"effort": "medium", "summary": "detailed"},
        max_output_tokens=2048,
        text={"format": {"type": "json_object"}},
        conversation="conv_68a1f2c3d4e5",
    )

    assert type(response) is Response
    span = the_llm_span(content_telemetry)
    assert span.name == "chat o4-mini"
    a = attrs(span)
    assert a[sc.GEN_AI_REQUEST_REASONING_LEVEL] == "medium"
    assert a[sc.GEN_AI_REQUEST_MAX_TOKENS] == 2048
    assert a[sc.GEN_AI_OUTPUT_TYPE] == "json"
    assert a[sc.GEN_AI_CONVERSATION_ID] == "conv_68a1f2c3d4e5"
    assert a[sc.GEN_AI_RESPONSE_ID] == "resp_68a1f2c3d4e5f60718293a4b5c6d7e8f0a1b2c3d4e5f6071"
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_call",)
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (312, 187)
    assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 256
    assert a[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 128
    assert content(span, sc.GEN_AI_SYSTEM_INSTRUCTIONS) == [
        {"type": "text", "content": "You are a concise travel assistant."}
    ]
    assert content(span, sc.GEN_AI_OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": REASONING_SUMMARY},
                {
                    "type": "tool_call",
                    "id": "call_W3nR8kQz1Lp5Xv7Tc2Md9Hs4",
                    "name": "get_weather",
                    "arguments": WEATHER_ARGS,
                },
            ],
            "finish_reason": "tool_call",
        }
    ]


def test_responses_raw_stream(content_telemetry: Telemetry) -> None:
    transport = scripted("openai/responses_stream_reasoning_function_call.sse")
    stream = openai_client(transport).responses.create(
        model="o4-mini", input="Weather in Paris?", stream=True
    )
    events = list(stream)

    assert events[-1].type == "response.completed"
    span = the_llm_span(content_telemetry)
    a = attrs(span)
    assert a[sc.GEN_AI_REQUEST_STREAM] is True
    assert a[sc.GEN_AI_RESPONSE_ID] == "resp_68a1f3a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0"
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (298, 203)
    assert a[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 146
    parts = content(span, sc.GEN_AI_OUTPUT_MESSAGES)[0]["parts"]
    assert [p["type"] for p in parts] == ["reasoning", "tool_call"]
    assert parts[1]["id"] == "call_Bv6Ty1Nq8Ke3Rx5Wm0Zp7Gc2"


async def test_responses_stream_helper(content_telemetry: Telemetry) -> None:
    transport = scripted(
        "openai/responses_stream_reasoning_function_call.sse",
        "openai/responses_stream_reasoning_function_call.sse",
    )
    with openai_client(transport).responses.stream(model="o4-mini", input="Weather?") as stream:
        final = stream.get_final_response()
    async with async_openai_client(transport).responses.stream(
        model="o4-mini", input="Weather?"
    ) as async_stream:
        async_final = await async_stream.get_final_response()

    assert final.usage is not None and final.usage.total_tokens == 501
    assert async_final.id == final.id
    for span in llm_spans(content_telemetry):
        a = attrs(span)
        assert a[sc.GEN_AI_RESPONSE_ID] == final.id
        assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_call",)
        assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 203
    assert len(llm_spans(content_telemetry)) == 2


def test_responses_stream_helper_left_early_keeps_the_partial_output(
    content_telemetry: Telemetry,
) -> None:
    transport = scripted("openai/responses_stream_reasoning_function_call.sse")
    with openai_client(transport).responses.stream(model="o4-mini", input="Weather?") as stream:
        for event in stream:
            if event.type == "response.function_call_arguments.delta":
                break

    span = the_llm_span(content_telemetry)
    assert sc.GEN_AI_RESPONSE_FINISH_REASONS not in attrs(span)
    (message,) = content(span, sc.GEN_AI_OUTPUT_MESSAGES)
    assert "finish_reason" not in message
    reasoning, call = message["parts"]
    assert reasoning == {"type": "reasoning", "content": REASONING_SUMMARY}
    assert (call["name"], call["arguments"]) == ("get_weather", '{"')  # as far as it got


def test_responses_stream_cut_by_max_output_tokens(content_telemetry: Telemetry) -> None:
    transport = scripted("openai/responses_stream_text_incomplete.sse")
    stream = openai_client(transport).responses.create(
        model="gpt-4.1-mini", input="Tell me about Paris.", max_output_tokens=16, stream=True
    )
    deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]

    span = the_llm_span(content_telemetry)
    a = attrs(span)
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("length",)
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 16
    assert content(span, sc.GEN_AI_OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "".join(deltas)}],
            "finish_reason": "length",
        }
    ]


def test_responses_stream_failed_response(telemetry: Telemetry) -> None:
    transport = scripted("openai/responses_stream_failed.sse")
    stream = openai_client(transport).responses.create(
        model="gpt-4.1-mini", input="Hello", stream=True
    )
    assert [e.type for e in stream][-1] == "response.failed"

    a = attrs(the_llm_span(telemetry))
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("error",)
    assert a[sc.ERROR_TYPE] == "server_error"


# -- errors and retries --------------------------------------------------------------------


def test_a_400_marks_the_span_and_the_same_exception_reaches_the_caller(
    recorder: tuple[Telemetry, CallRecorder],
) -> None:
    telemetry, seen = recorder
    transport = scripted("openai/error_400_invalid_request.json")
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client(transport, max_retries=2).chat.completions.create(
            model=CHAT_MODEL, messages=MESSAGES, temperature=3.5
        )

    assert caught.value.code == "invalid_value"
    assert seen.calls[0].exception is caught.value
    span = the_llm_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    a = attrs(span)
    assert a[sc.ERROR_TYPE] == "openai.BadRequestError"
    assert a[sc.LLM_ATTEMPTS] == 1  # a 400 is not retried
    (event,) = [e for e in span.events if e.name == "exception"]
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "openai.BadRequestError"


def test_a_429_then_200_is_one_span_with_two_attempts(telemetry: Telemetry) -> None:
    transport = scripted("openai/error_429_rate_limit.json", "openai/chat_text.json")
    completion = openai_client(transport, max_retries=2).chat.completions.create(
        model=CHAT_MODEL, messages=MESSAGES
    )

    assert completion.choices[0].message.content == "The capital of France is Paris."
    assert [r.retry_count for r in transport.requests] == [0, 1]
    span = the_llm_span(telemetry)
    assert span.status.status_code is StatusCode.UNSET
    assert attrs(span)[sc.LLM_ATTEMPTS] == 2
    transport.assert_done()


def _failing_transport(error: Callable[[httpx2.Request], Exception]) -> httpx2.MockTransport:
    def handle(request: httpx2.Request) -> httpx2.Response:
        raise error(request)

    return httpx2.MockTransport(handle)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (lambda r: httpx2.ConnectError("connection refused", request=r), openai.APIConnectionError),
        (lambda r: httpx2.ReadTimeout("timed out", request=r), openai.APITimeoutError),
    ],
)
def test_connection_errors_and_timeouts(
    telemetry: Telemetry,
    error: Callable[[httpx2.Request], Exception],
    expected: type[Exception],
) -> None:
    client = openai_client(_failing_transport(error))
    with pytest.raises(expected) as caught:
        client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)

    assert type(caught.value) is expected
    span = the_llm_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)[sc.ERROR_TYPE] == f"openai.{expected.__name__}"
    assert attrs(span)[sc.LLM_ATTEMPTS] == 1


async def test_async_errors(telemetry: Telemetry) -> None:
    transport = scripted("openai/error_400_invalid_request.json")
    with pytest.raises(openai.BadRequestError):
        await async_openai_client(transport).chat.completions.create(
            model=CHAT_MODEL, messages=MESSAGES
        )
    assert attrs(the_llm_span(telemetry))[sc.ERROR_TYPE] == "openai.BadRequestError"


# -- never harm the host -------------------------------------------------------------------


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("extractor bug")


def test_a_failing_response_reader_does_not_break_the_call(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adapter.ChatCompletions, "read_response", _boom)
    transport = scripted("openai/chat_text.json")
    completion = openai_client(transport).chat.completions.create(
        model=CHAT_MODEL, messages=MESSAGES
    )

    assert completion.model_dump() == expected_chat("openai/chat_text.json")
    span = the_llm_span(telemetry)  # still recorded and ended, without response details
    assert sc.GEN_AI_RESPONSE_ID not in attrs(span)
    assert span.status.status_code is StatusCode.UNSET


def test_a_failing_request_reader_lets_the_call_through(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adapter.ChatCompletions, "read_request", _boom)
    transport = scripted("openai/chat_text.json")
    completion = openai_client(transport).chat.completions.create(
        model=CHAT_MODEL, messages=MESSAGES
    )

    assert completion.model_dump() == expected_chat("openai/chat_text.json")
    assert llm_spans(telemetry) == []


def test_a_failing_stream_accumulator_does_not_disturb_the_stream(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adapter.ChatStreamAccumulator, "add", _boom)
    monkeypatch.setattr(adapter.ChatStreamAccumulator, "response", _boom)
    transport = scripted("openai/chat_stream_text.sse")
    stream = openai_client(transport).chat.completions.create(
        model=CHAT_MODEL, messages=MESSAGES, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream)

    assert text == STREAM_TEXT
    assert attrs(the_llm_span(telemetry))[sc.GEN_AI_REQUEST_STREAM] is True


def test_a_call_inside_one_of_our_llm_spans_gives_one_span(telemetry: Telemetry) -> None:
    """Two layers of ours (say a framework adapter around the SDK): the outer one records."""
    outer = LLMCall.start(LLMRequest(provider="openai", model=CHAT_MODEL))
    assert outer is not None
    token = outer.activate()
    try:
        openai_client(scripted("openai/chat_text.json")).chat.completions.create(
            model=CHAT_MODEL, messages=MESSAGES
        )
    finally:
        LLMCall.deactivate(token)
    outer.finish()

    span = the_llm_span(telemetry)
    assert span.context.span_id == outer.span.get_span_context().span_id


# -- content -------------------------------------------------------------------------------


def test_chat_content_in_the_conventions_shape(content_telemetry: Telemetry) -> None:
    transport = scripted("openai/chat_text_and_tool_call.json")
    messages: list[Any] = [
        {"role": "system", "content": "You are a weather assistant."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What's it like here?"},
                {"type": "image_url", "image_url": {"url": "https://example.org/paris.jpg"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "locate", "arguments": '{"photo": 1}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Paris"},
    ]
    openai_client(transport).chat.completions.create(
        model="gpt-4.1", messages=messages, tools=[WEATHER_TOOL]
    )

    span = the_llm_span(content_telemetry)
    assert content(span, sc.GEN_AI_INPUT_MESSAGES) == [
        {"role": "system", "parts": [{"type": "text", "content": "You are a weather assistant."}]},
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "What's it like here?"},
                {"type": "uri", "modality": "image", "uri": "https://example.org/paris.jpg"},
                {
                    "type": "blob",
                    "modality": "image",
                    "mime_type": "image/png",
                    "content": "iVBORw0K",
                },
            ],
        },
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": "call_1", "name": "locate", "arguments": {"photo": 1}}
            ],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": "call_1", "response": "Paris"}],
        },
    ]
    assert content(span, sc.GEN_AI_TOOL_DEFINITIONS) == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Get the current weather for a city.",
            "parameters": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    assert content(span, sc.GEN_AI_OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "text",
                    "content": "The user wants current conditions, so I'll look up the weather "
                    "in Paris in celsius first.",
                },
                {
                    "type": "tool_call",
                    "id": "call_Tq4Wn8Lx2Vb6Km1Rz9Hc3Jd",
                    "name": "get_weather",
                    "arguments": WEATHER_ARGS,
                },
            ],
            "finish_reason": "tool_call",
        }
    ]
    assert sc.GEN_AI_SYSTEM_INSTRUCTIONS not in attrs(span)  # chat keeps them in the history


def test_responses_content_in_the_conventions_shape(content_telemetry: Telemetry) -> None:
    transport = scripted("openai/responses_reasoning_function_call.json")
    openai_client(transport).responses.create(
        model="o4-mini",
        instructions="You are a concise travel assistant.",
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "Ask."}],
            },
            {"type": "function_call", "call_id": "call_0", "name": "get_city", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_0", "output": "Paris"},
        ],
        tools=[
            {
                "type": "function",
                "name": "get_weather",
                "parameters": {"type": "object"},
                "strict": False,
            },
            {"type": "web_search"},
        ],
    )

    span = the_llm_span(content_telemetry)
    assert content(span, sc.GEN_AI_INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": "Ask."},
                {"type": "tool_call", "id": "call_0", "name": "get_city", "arguments": {}},
            ],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": "call_0", "response": "Paris"}],
        },
    ]
    assert content(span, sc.GEN_AI_SYSTEM_INSTRUCTIONS) == [
        {"type": "text", "content": "You are a concise travel assistant."}
    ]
    assert content(span, sc.GEN_AI_TOOL_DEFINITIONS) == [
        {"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
        {"type": "web_search", "name": "web_search"},
    ]


def test_content_is_off_by_default_for_streams_and_responses(telemetry: Telemetry) -> None:
    transport = scripted(
        "openai/chat_stream_tool_calls.sse", "openai/responses_reasoning_function_call.json"
    )
    client = openai_client(transport)
    list(client.chat.completions.create(**STREAM_REQUEST, tools=[WEATHER_TOOL]))
    client.responses.create(model="o4-mini", input="Weather?", instructions="Be brief.")

    for span in llm_spans(telemetry):
        assert not set(CONTENT_KEYS) & set(attrs(span))
    assert len(llm_spans(telemetry)) == 2


# -- cost ----------------------------------------------------------------------------------


def test_cost_of_a_known_model_is_what_genai_prices_computes(telemetry: Telemetry) -> None:
    openai_client(scripted("openai/chat_tool_calls.json")).chat.completions.create(
        model="o4-mini", messages=WEATHER_MESSAGES
    )

    expected = calc_price(
        Usage(input_tokens=1430, output_tokens=245, cache_read_tokens=1152),
        model_ref="o4-mini-2025-04-16",
        provider_id="openai",
    ).total_price
    a = attrs(the_llm_span(telemetry))
    assert a[sc.COST_USD] == pytest.approx(float(expected), abs=1e-9)
    assert a[sc.COST_SOURCE] == "price_table"


def test_an_unknown_model_has_no_cost_and_no_error(telemetry: Telemetry) -> None:
    payload = {**load_json_fixture("openai/chat_text.json"), "model": "acme-llm-9000"}
    transport = ScriptedTransport([ScriptedResponse.json(payload)])
    completion = openai_client(transport).chat.completions.create(
        model="acme-llm-9000", messages=MESSAGES
    )

    assert completion.model == "acme-llm-9000"
    span = the_llm_span(telemetry)
    assert span.status.status_code is StatusCode.UNSET
    assert sc.COST_USD not in attrs(span) and sc.COST_SOURCE not in attrs(span)
    assert attrs(span)[sc.GEN_AI_USAGE_INPUT_TOKENS] == 24


@pytest.mark.parametrize(
    ("key", "make_client", "model"),
    [
        ("gpt-4o-mini-2024-07-18", openai_client, CHAT_MODEL),  # the model that answered
        ("gpt-4o-mini", openai_client, CHAT_MODEL),  # the name the application asked for
        ("openai/gpt-4o-mini", openai_client, CHAT_MODEL),
        ("my-gpt-4o-mini", azure_openai_client, "my-gpt-4o-mini"),  # an Azure deployment
    ],
)
def test_a_price_override_wins(
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    make_client: Callable[[ScriptedTransport], Any],
    model: str,
) -> None:
    telemetry = next(instrumented(monkeypatch, prices={key: {"input": 100.0, "output": 1000.0}}))
    try:
        make_client(scripted("openai/chat_text.json")).chat.completions.create(
            model=model, messages=MESSAGES
        )
    finally:
        otel_agents.uninstrument()

    a = attrs(the_llm_span(telemetry))
    assert a[sc.COST_USD] == pytest.approx((24 * 100.0 + 8 * 1000.0) / 1e6)
    assert a[sc.COST_SOURCE] == "override"


# -- metrics -------------------------------------------------------------------------------


def test_token_duration_and_cost_metrics(telemetry: Telemetry) -> None:
    openai_client(scripted("openai/chat_tool_calls.json")).chat.completions.create(
        model="o4-mini", messages=WEATHER_MESSAGES
    )
    cost = attrs(the_llm_span(telemetry))[sc.COST_USD]

    # Per-call token histograms (not split by modality) ...
    histograms = {
        name: telemetry.metric_points(name)
        for name in (
            sc.METRIC_GEN_AI_CLIENT_INFERENCE_OPERATION_INPUT_TOKENS,
            sc.METRIC_GEN_AI_CLIENT_INFERENCE_OPERATION_OUTPUT_TOKENS,
        )
    }
    sums = []
    for name, (point,) in histograms.items():
        assert tuple(point.explicit_bounds) == sc.METRIC_BUCKETS[name]
        assert point.attributes[sc.GEN_AI_PROVIDER_NAME] == "openai"
        assert point.attributes[sc.GEN_AI_RESPONSE_MODEL] == "o4-mini-2025-04-16"
        assert sc.GEN_AI_TOKEN_MODALITY not in point.attributes
        sums.append(point.sum)
    assert sums == [1430, 245]
    # ... and the usage counters, by modality (`unknown`: the API does not split it).
    (used_in,) = telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS)
    (used_out,) = telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_OUTPUT_TOKENS)
    assert (used_in.value, used_out.value) == (1430, 245)
    assert used_in.attributes[sc.GEN_AI_TOKEN_MODALITY] == sc.GenAiTokenModalityValues.UNKNOWN
    assert used_in.attributes[sc.GEN_AI_REQUEST_MODEL] == "o4-mini"
    # The v1.41 names are gone unless opted in.
    assert telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_TOKEN_USAGE) == []
    assert telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_OPERATION_DURATION) == []

    (duration,) = telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_DURATION)
    assert duration.count == 1 and duration.sum > 0
    assert (
        tuple(duration.explicit_bounds)
        == sc.METRIC_BUCKETS[sc.METRIC_GEN_AI_CLIENT_INFERENCE_DURATION]
    )
    assert duration.attributes[sc.GEN_AI_OPERATION_NAME] == "chat"

    (spent,) = telemetry.metric_points(sc.METRIC_LLM_COST)
    assert spent.value == pytest.approx(cost)
    assert spent.attributes[sc.GEN_AI_REQUEST_MODEL] == "o4-mini"


def test_failed_calls_are_counted_with_their_error_type(telemetry: Telemetry) -> None:
    with pytest.raises(openai.BadRequestError):
        openai_client(scripted("openai/error_400_invalid_request.json")).chat.completions.create(
            model=CHAT_MODEL, messages=MESSAGES
        )
    (duration,) = telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_DURATION)
    assert duration.attributes[sc.ERROR_TYPE] == "openai.BadRequestError"
    assert telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_OPERATION_INPUT_TOKENS) == []
    # The usage counters count failed calls too: 0 tokens, modality unknown.
    for name in (
        sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS,
        sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_OUTPUT_TOKENS,
    ):
        (point,) = telemetry.metric_points(name)
        assert point.value == 0
        assert point.attributes[sc.GEN_AI_TOKEN_MODALITY] == sc.GenAiTokenModalityValues.UNKNOWN


def test_stream_chunk_timing_metrics(telemetry: Telemetry) -> None:
    stream = openai_client(scripted("openai/chat_stream_text.sse")).chat.completions.create(
        model=CHAT_MODEL, messages=MESSAGES, stream=True
    )
    chunks = sum(1 for _ in stream)
    assert chunks > 2

    (first,) = telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_TIME_TO_FIRST_CHUNK)
    assert first.count == 1
    # One point per chunk after the first, with the conventions' bucket advice.
    (gaps,) = telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_TIME_PER_OUTPUT_CHUNK)
    assert gaps.count == chunks - 1
    name = sc.METRIC_GEN_AI_CLIENT_INFERENCE_TIME_PER_OUTPUT_CHUNK
    assert tuple(gaps.explicit_bounds) == sc.METRIC_BUCKETS[name]
    assert gaps.attributes[sc.GEN_AI_REQUEST_MODEL] == CHAT_MODEL


def test_non_streamed_calls_record_no_chunk_timing(telemetry: Telemetry) -> None:
    openai_client(scripted("openai/chat_text.json")).chat.completions.create(
        model=CHAT_MODEL, messages=MESSAGES
    )
    assert telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_TIME_TO_FIRST_CHUNK) == []
    assert telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_TIME_PER_OUTPUT_CHUNK) == []


@pytest.fixture
def dup_telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http, gen_ai/dup")
    yield from instrumented(monkeypatch)


def test_old_metric_names_only_when_opted_in(dup_telemetry: Telemetry) -> None:
    stream = openai_client(scripted("openai/chat_stream_tool_calls.sse")).chat.completions.create(
        model=CHAT_MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    for _ in stream:
        pass
    old_tokens = dup_telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_TOKEN_USAGE)
    assert {p.attributes[sc.GEN_AI_TOKEN_TYPE] for p in old_tokens} == {"input", "output"}
    (old_duration,) = dup_telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_OPERATION_DURATION)
    assert old_duration.attributes[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert dup_telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK)
    # The current names are recorded as well.
    assert dup_telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_DURATION)
    assert dup_telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_OPERATION_INPUT_TOKENS)


# -- the decision path end to end ----------------------------------------------------------


def _weather_tool() -> Callable[..., dict[str, Any]]:
    @otel_agents.tool
    def get_weather(city: str, unit: str) -> dict[str, Any]:
        return {"city": city, "unit": unit, "temperature": 18}

    return get_weather


def test_decision_path_from_chat_assistant_text_matched_by_arguments(
    content_telemetry: Telemetry,
) -> None:
    get_weather = _weather_tool()
    client = openai_client(scripted("openai/chat_text_and_tool_call.json"))
    with otel_agents.agent("weather-bot"):
        completion = client.chat.completions.create(
            model="gpt-4.1", messages=WEATHER_MESSAGES, tools=[WEATHER_TOOL]
        )
        call = completion.choices[0].message.tool_calls[0]
        get_weather(**json.loads(call.function.arguments))

    llm = the_llm_span(content_telemetry)
    tool = content_telemetry.span("execute_tool get_weather")
    a = attrs(tool)
    assert a[sc.GEN_AI_TOOL_CALL_ID] == "call_Tq4Wn8Lx2Vb6Km1Rz9Hc3Jd"
    assert a[sc.DECISION_MATCH] == "name_and_arguments"
    assert a[sc.DECISION_REASONING_SOURCE] == "assistant_text"
    assert a[sc.DECISION_REASONING] == completion.choices[0].message.content
    assert [link.context.span_id for link in tool.links] == [llm.context.span_id]
    assert tool.parent is not None and tool.parent.span_id != llm.context.span_id
    # The LLM span names its agent, so the collector can break cost down by agent.
    assert attrs(llm)[sc.GEN_AI_AGENT_NAME] == "weather-bot"
    # The agent span carries the tokens its invocation's model calls used.
    agent = attrs(content_telemetry.span("invoke_agent weather-bot"))
    llm_attributes = attrs(llm)
    for key in (sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_USAGE_OUTPUT_TOKENS):
        assert agent[key] == llm_attributes[key] > 0


def test_decision_path_from_a_reasoning_summary_matched_by_call_id(
    content_telemetry: Telemetry,
) -> None:
    get_weather = _weather_tool()
    client = openai_client(scripted("openai/responses_reasoning_function_call.json"))
    with otel_agents.agent("weather-bot"):
        response = client.responses.create(model="o4-mini", input="Weather in Paris?")
        call = response.output[1]
        assert call.type == "function_call"
        with otel_agents.tool_call_id(call.call_id):
            get_weather("Paris", unit="celsius")

    llm = the_llm_span(content_telemetry)
    a = attrs(content_telemetry.span("execute_tool get_weather"))
    assert a[sc.GEN_AI_TOOL_CALL_ID] == "call_W3nR8kQz1Lp5Xv7Tc2Md9Hs4"
    assert a[sc.DECISION_MATCH] == "call_id"
    assert a[sc.DECISION_REASONING_SOURCE] == "reasoning_summary"
    assert a[sc.DECISION_REASONING] == REASONING_SUMMARY
    assert [
        link.context.span_id for link in content_telemetry.span("execute_tool get_weather").links
    ] == [llm.context.span_id]


async def test_decision_path_from_an_async_stream(content_telemetry: Telemetry) -> None:
    get_weather = _weather_tool()
    client = async_openai_client(scripted("openai/responses_stream_reasoning_function_call.sse"))
    async with otel_agents.agent("weather-bot"):
        stream = await client.responses.create(model="o4-mini", input="Weather?", stream=True)
        arguments = "".join(
            [e.delta async for e in stream if e.type == "response.function_call_arguments.delta"]
        )
        await asyncio.to_thread(get_weather, **json.loads(arguments))

    a = attrs(content_telemetry.span("execute_tool get_weather"))
    assert a[sc.GEN_AI_TOOL_CALL_ID] == "call_Bv6Ty1Nq8Ke3Rx5Wm0Zp7Gc2"
    assert a[sc.DECISION_REASONING] == REASONING_SUMMARY
    run = content_telemetry.span("invoke_agent weather-bot")
    assert attrs(run)[sc.RUN_LLM_CALLS] == 1
    assert attrs(run)[sc.RUN_USAGE_INPUT_TOKENS] == 298


def test_leaving_a_streaming_response_early_ends_the_span_at_once(
    recorder: tuple[Telemetry, CallRecorder],
) -> None:
    telemetry, seen = recorder
    transport = scripted("openai/chat_stream_tool_calls.sse")
    client = openai_client(transport)
    with client.chat.completions.with_streaming_response.create(**STREAM_REQUEST) as response:
        stream = response.parse()
        for _chunk in stream:
            break

    assert transport.streams[0].closed
    assert isinstance(stream, openai.Stream)  # still referenced: the span ended on close
    assert len(llm_spans(telemetry)) == 1
    assert len(seen.calls) == 1


async def test_leaving_an_async_stream_helper_early_ends_the_span_at_once(
    recorder: tuple[Telemetry, CallRecorder],
) -> None:
    telemetry, seen = recorder
    transport = scripted("openai/chat_stream_tool_calls.sse")
    client = async_openai_client(transport)
    async with client.chat.completions.stream(model="gpt-4.1", messages=WEATHER_MESSAGES) as stream:
        async for event in stream:
            if event.type == "tool_calls.function.arguments.delta":
                break

    assert len(llm_spans(telemetry)) == 1
    assert len(seen.calls) == 1
