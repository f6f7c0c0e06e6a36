"""The scripted server and the fixtures, checked against the real SDKs with no instrumentation."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest
from anthropic.types import (
    RedactedThinkingBlock,
    ServerToolUseBlock,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    WebSearchToolResultBlock,
)
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import ResponseFunctionToolCall, ResponseReasoningItem

from . import (
    FAKE_API_KEY,
    FIXTURES_DIR,
    ScriptedResponse,
    ScriptedTransport,
    anthropic_client,
    async_anthropic_client,
    async_openai_client,
    azure_openai_client,
    fixture_meta,
    load_fixture,
    load_json_fixture,
    openai_client,
    split_chunks,
)

CHAT_MODEL = "gpt-4o-mini"
CLAUDE_MODEL = "claude-sonnet-4-6"
MESSAGES: list[Any] = [{"role": "user", "content": "What's the weather in Paris?"}]
STREAM_TEXT = "The capital of France is Paris — «la Ville Lumière» 🗼."
WEATHER_ARGS = {"city": "Paris", "unit": "celsius"}
TIME_ARGS = {"timezone": "Europe/Paris"}
REASONING_SUMMARY = (
    "**Planning the weather lookup**\n\n"
    "The user asked about Paris, so I should call get_weather with the city and unit."
)
THINKING = (
    "The user wants the weather in Paris. I have a get_weather tool that takes a city and a unit;"
    " Europe uses Celsius, so I'll ask for celsius."
)


def _scripted(*names: str) -> ScriptedTransport:
    return ScriptedTransport([ScriptedResponse.fixture(name) for name in names])


CLAUDE_REQUEST: dict[str, Any] = {"model": CLAUDE_MODEL, "max_tokens": 2048, "messages": MESSAGES}


# ------------------------------------------------------------------------------ fixtures, harness


ALL_FIXTURES = sorted(
    str(p.relative_to(FIXTURES_DIR))
    for p in FIXTURES_DIR.rglob("*")
    if p.suffix in (".json", ".sse") and not p.name.endswith(".meta.json")
)


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_fixture_is_well_formed(name: str) -> None:
    if name.endswith(".events.json"):  # an AWS event stream, as the events it frames
        events = load_json_fixture(name)
        assert isinstance(events, list) and all(isinstance(e, dict) and len(e) == 1 for e in events)
        return
    if name.endswith(".json"):
        assert isinstance(load_json_fixture(name), dict)
        return
    data = load_fixture(name)
    text = data.decode()
    assert text.endswith("\n\n"), "an event stream ends with a blank line"
    for block in text.split("\n\n")[:-1]:
        lines = block.split("\n")
        data_lines = [line for line in lines if line.startswith("data: ")]
        assert len(data_lines) == 1, block
        payload = data_lines[0].removeprefix("data: ")
        if payload == "[DONE]":
            continue
        event = json.loads(payload)
        event_lines = [line for line in lines if line.startswith("event: ")]
        if name.startswith("anthropic/") or "responses" in name:
            # Anthropic and the Responses API name every event, and the name is the data's type.
            assert event_lines == [f"event: {event['type']}"], block


def test_fixture_meta_defaults_and_sidecars() -> None:
    assert fixture_meta("openai/chat_tool_calls.json") == (
        200,
        {"content-type": "application/json"},
    )
    status, headers = fixture_meta("openai/error_429_rate_limit.json")
    assert status == 429
    assert headers["retry-after"] == "1"
    status, headers = fixture_meta("openai/chat_stream_text.sse")
    assert (status, headers["content-type"]) == (200, "text/event-stream; charset=utf-8")


def test_sse_chunks_split_lines_and_events() -> None:
    data = load_fixture("openai/chat_stream_text.sse")
    chunks = split_chunks(data)
    assert b"".join(chunks) == data
    assert len(chunks) > 20
    assert any(not chunk.endswith(b"\n") for chunk in chunks)
    assert any(b"\n\n" in chunk.strip(b"\n") for chunk in chunks)


def _splits_a_character(chunks: tuple[bytes, ...]) -> bool:
    try:
        for chunk in chunks:
            chunk.decode()
    except UnicodeDecodeError:
        return True
    return False


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 53, 1 << 20])
def test_streams_decode_whatever_the_chunking(chunk_size: int) -> None:
    data = load_fixture("openai/chat_stream_text.sse")
    if chunk_size < 4:
        assert _splits_a_character(split_chunks(data, chunk_size))
    transport = ScriptedTransport(
        [
            ScriptedResponse.fixture("openai/chat_stream_text.sse", chunk_size=chunk_size),
            ScriptedResponse.fixture(
                "anthropic/stream_thinking_text_tool_use.sse", chunk_size=chunk_size
            ),
        ]
    )
    stream = openai_client(transport).chat.completions.create(
        model=CHAT_MODEL, messages=MESSAGES, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == STREAM_TEXT

    client = anthropic_client(transport)
    with client.messages.stream(**CLAUDE_REQUEST) as helper:
        assert helper.get_final_text() == "I'll check the current weather in Paris — one moment ☀️."
    assert [s.exhausted for s in transport.streams] == [True, True]


def test_retryable_fixture_gets_fast_retry_header() -> None:
    scripted = ScriptedResponse.fixture("openai/error_429_rate_limit.json")
    assert scripted.status == 429
    assert scripted.headers["retry-after"] == "1"
    assert scripted.headers["retry-after-ms"] == "1"
    slow = ScriptedResponse.fixture("openai/error_429_rate_limit.json", fast_retry=False)
    assert "retry-after-ms" not in slow.headers


def test_exhausted_script_answers_500_without_retry() -> None:
    transport = ScriptedTransport()
    client = openai_client(transport, max_retries=3)
    with pytest.raises(openai.InternalServerError, match="no response left"):
        client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    assert transport.unexpected == 1
    assert len(transport.requests) == 1
    with pytest.raises(AssertionError):
        transport.assert_done()


# ----------------------------------------------------------------------------- openai chat


def test_openai_chat_text() -> None:
    transport = _scripted("openai/chat_text.json")
    client = openai_client(transport)

    completion = client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)

    assert isinstance(completion, ChatCompletion)
    assert completion.id == "chatcmpl-BxT8qzYv3Jk1nWcLr5uH2aPmE0dQf"
    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "The capital of France is Paris."
    assert completion.choices[0].message.tool_calls is None
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (24, 8)
    assert completion._request_id == "req_5f0c2a9e8b7d4c1e9a3b6d2f1e0c7a84"

    transport.assert_done()
    request = transport.last_request
    assert request.method == "POST"
    assert str(request.url) == "https://api.openai.test/v1/chat/completions"
    assert request.json == {"model": CHAT_MODEL, "messages": MESSAGES}
    assert request.headers["authorization"] == f"Bearer {FAKE_API_KEY}"
    assert request.retry_count == 0


def test_openai_chat_parallel_tool_calls_and_usage_details() -> None:
    transport = _scripted("openai/chat_tool_calls.json")
    completion = openai_client(transport).chat.completions.create(
        model="o4-mini", messages=MESSAGES
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    tool_calls = choice.message.tool_calls or []
    assert [(c.id, c.type) for c in tool_calls] == [
        ("call_Xk2P9wQb7RmT4sVn1LcY8dHe", "function"),
        ("call_Jr5N3tGh8ZqW2pMx6FbK0aUs", "function"),
    ]
    functions = [c.function for c in tool_calls if c.type == "function"]
    assert [f.name for f in functions] == ["get_weather", "get_local_time"]
    assert [json.loads(f.arguments) for f in functions] == [WEATHER_ARGS, TIME_ARGS]

    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1430, 245, 1675)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 1152
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 192


def test_openai_chat_parse_helper() -> None:
    transport = _scripted("openai/chat_tool_calls.json")
    parsed = openai_client(transport).chat.completions.parse(model="o4-mini", messages=MESSAGES)

    tool_calls = parsed.choices[0].message.tool_calls or []
    assert [c.function.name for c in tool_calls] == ["get_weather", "get_local_time"]
    assert transport.last_request.headers["x-stainless-helper-method"] == "chat.completions.parse"


def test_openai_raw_and_streaming_response_wrappers() -> None:
    transport = _scripted("openai/chat_text.json", "openai/chat_text.json")
    client = openai_client(transport)

    raw = client.chat.completions.with_raw_response.create(model=CHAT_MODEL, messages=MESSAGES)
    assert raw.headers["x-request-id"] == "req_5f0c2a9e8b7d4c1e9a3b6d2f1e0c7a84"
    assert raw.retries_taken == 0
    assert raw.parse().choices[0].message.content == "The capital of France is Paris."
    assert transport.requests[0].headers["x-stainless-raw-response"] == "true"

    with client.chat.completions.with_streaming_response.create(
        model=CHAT_MODEL, messages=MESSAGES
    ) as response:
        assert response.status_code == 200
        assert response.parse().id == "chatcmpl-BxT8qzYv3Jk1nWcLr5uH2aPmE0dQf"
    assert transport.requests[1].headers["x-stainless-raw-response"] == "stream"


def test_openai_chat_stream_text_is_streamed_lazily() -> None:
    transport = _scripted("openai/chat_stream_text.sse")
    stream = openai_client(transport).chat.completions.create(
        model=CHAT_MODEL, messages=MESSAGES, stream=True
    )
    assert isinstance(stream, openai.Stream)
    body = transport.streams[0]
    assert body.chunks_sent == 0

    chunks = iter(stream)
    first = next(chunks)
    assert first.choices[0].delta.role == "assistant"
    assert 0 < body.chunks_sent < body.total_chunks

    rest = list(chunks)
    text = "".join(c.choices[0].delta.content or "" for c in [first, *rest])
    assert text == STREAM_TEXT
    assert rest[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in [first, *rest])
    assert body.exhausted
    assert stream.response.is_closed
    assert transport.last_request.json["stream"] is True


def test_openai_chat_stream_helper_text() -> None:
    transport = _scripted("openai/chat_stream_text.sse")
    client = openai_client(transport)

    with client.chat.completions.stream(model=CHAT_MODEL, messages=MESSAGES) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()

    assert "".join(deltas) == STREAM_TEXT
    assert final.choices[0].message.content == STREAM_TEXT
    assert final.choices[0].finish_reason == "stop"
    assert transport.last_request.headers["x-stainless-helper-method"] == "chat.completions.stream"
    assert transport.last_request.json["stream"] is True


def _tool_call_arguments(chunks: list[ChatCompletionChunk]) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += delta.id or ""
                if delta.function is not None:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""
    return calls


def test_openai_chat_stream_tool_call_deltas_and_final_usage() -> None:
    transport = _scripted("openai/chat_stream_tool_calls.sse")
    stream = openai_client(transport).chat.completions.create(
        model="gpt-4.1",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    calls = _tool_call_arguments(chunks)
    assert calls == {
        0: {
            "id": "call_Pq7Lm2Xv9Ns4Kd1Wb8Rt6Yh",
            "name": "get_weather",
            "arguments": '{"city": "Paris", "unit": "celsius"}',
        },
        1: {
            "id": "call_Hs3Vc8Qe1Zn5Jm0Tb6Gk2Wx",
            "name": "get_local_time",
            "arguments": '{"timezone": "Europe/Paris"}',
        },
    }
    # Arguments really arrive split over several chunks.
    argument_deltas = [
        d for c in chunks for ch in c.choices for d in ch.delta.tool_calls or [] if d.id is None
    ]
    assert len(argument_deltas) == 9

    assert chunks[-2].choices[0].finish_reason == "tool_calls"
    assert all(c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (1287, 58)
    assert last.usage.prompt_tokens_details is not None
    assert last.usage.prompt_tokens_details.cached_tokens == 1024
    assert transport.last_request.json["stream_options"] == {"include_usage": True}


def test_openai_chat_stream_helper_tool_calls() -> None:
    transport = _scripted("openai/chat_stream_tool_calls.sse")
    with openai_client(transport).chat.completions.stream(
        model="gpt-4.1", messages=MESSAGES, stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()

    tool_calls = final.choices[0].message.tool_calls or []
    assert [c.id for c in tool_calls] == [
        "call_Pq7Lm2Xv9Ns4Kd1Wb8Rt6Yh",
        "call_Hs3Vc8Qe1Zn5Jm0Tb6Gk2Wx",
    ]
    assert [json.loads(c.function.arguments) for c in tool_calls] == [WEATHER_ARGS, TIME_ARGS]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None
    assert final.usage.total_tokens == 1345


@pytest.mark.asyncio
async def test_async_openai_chat_stream() -> None:
    transport = _scripted("openai/chat_stream_text.sse", "openai/chat_stream_tool_calls.sse")
    client = async_openai_client(transport)

    stream = await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.AsyncStream)
    assert transport.streams[0].chunks_sent == 0
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == STREAM_TEXT
    assert transport.streams[0].exhausted

    async with client.chat.completions.stream(
        model="gpt-4.1", messages=MESSAGES, stream_options={"include_usage": True}
    ) as helper:
        final = await helper.get_final_completion()
    tool_calls = final.choices[0].message.tool_calls or []
    assert [json.loads(c.function.arguments) for c in tool_calls] == [WEATHER_ARGS, TIME_ARGS]
    assert final.usage is not None
    assert final.usage.prompt_tokens == 1287
    transport.assert_done()


def test_azure_openai_client_routes_to_deployment() -> None:
    transport = _scripted("openai/chat_text.json")
    client = azure_openai_client(transport)
    assert isinstance(client, openai.AzureOpenAI)
    assert client.base_url.host == "example-resource.openai.azure.com"

    client.chat.completions.create(model="my-gpt-4o-mini", messages=MESSAGES)

    request = transport.last_request
    assert request.url.host == "example-resource.openai.azure.com"
    assert request.path == "/openai/deployments/my-gpt-4o-mini/chat/completions"
    assert request.url.params["api-version"] == "2024-10-21"
    assert request.headers["api-key"] == FAKE_API_KEY


# ------------------------------------------------------------------------- openai responses API


def test_openai_responses_reasoning_then_function_call() -> None:
    transport = _scripted("openai/responses_reasoning_function_call.json")
    response = openai_client(transport).responses.create(model="o4-mini", input="Weather in Paris?")

    assert response.id == "resp_68a1f2c3d4e5f60718293a4b5c6d7e8f0a1b2c3d4e5f6071"
    assert response.status == "completed"
    reasoning, call = response.output
    assert isinstance(reasoning, ResponseReasoningItem)
    assert [s.text for s in reasoning.summary] == [REASONING_SUMMARY]
    assert isinstance(call, ResponseFunctionToolCall)
    assert (call.call_id, call.name) == ("call_W3nR8kQz1Lp5Xv7Tc2Md9Hs4", "get_weather")
    assert json.loads(call.arguments) == WEATHER_ARGS

    usage = response.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (312, 187, 499)
    assert usage.input_tokens_details.cached_tokens == 256
    assert usage.output_tokens_details.reasoning_tokens == 128
    assert transport.last_request.path == "/v1/responses"


def test_openai_responses_stream_events() -> None:
    transport = _scripted("openai/responses_stream_reasoning_function_call.sse")
    stream = openai_client(transport).responses.create(
        model="o4-mini", input="Weather in Paris?", stream=True
    )
    events = list(stream)

    types = [e.type for e in events]
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))

    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert summary == REASONING_SUMMARY
    arguments = "".join(
        e.delta for e in events if e.type == "response.function_call_arguments.delta"
    )
    assert json.loads(arguments) == WEATHER_ARGS
    assert types.count("response.function_call_arguments.delta") == 9

    added = [e.item for e in events if e.type == "response.output_item.added"]
    assert [item.type for item in added] == ["reasoning", "function_call"]
    assert isinstance(added[1], ResponseFunctionToolCall)
    assert added[1].call_id == "call_Bv6Ty1Nq8Ke3Rx5Wm0Zp7Gc2"

    completed = events[-1]
    assert completed.type == "response.completed"
    usage = completed.response.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == (298, 203)
    assert usage.output_tokens_details.reasoning_tokens == 146
    assert events[0].type == "response.created"
    assert events[0].response.usage is None


def test_openai_responses_stream_helper() -> None:
    transport = _scripted("openai/responses_stream_reasoning_function_call.sse")
    with openai_client(transport).responses.stream(
        model="o4-mini", input="Weather in Paris?"
    ) as stream:
        final = stream.get_final_response()

    reasoning, call = final.output
    assert reasoning.type == "reasoning"
    assert [s.text for s in reasoning.summary] == [REASONING_SUMMARY]
    assert call.type == "function_call"
    assert json.loads(call.arguments) == WEATHER_ARGS
    assert final.usage is not None
    assert final.usage.total_tokens == 501
    assert transport.last_request.json["stream"] is True


# ----------------------------------------------------------------------------- openai errors


def test_openai_400_raises_bad_request() -> None:
    transport = _scripted("openai/error_400_invalid_request.json")
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client(transport, max_retries=2).chat.completions.create(
            model=CHAT_MODEL, messages=MESSAGES
        )
    error = caught.value
    assert error.status_code == 400
    assert (error.type, error.code, error.param) == (
        "invalid_request_error",
        "invalid_value",
        "temperature",
    )
    assert error.request_id == "req_0b8e4c2d6a1f4e3b9c7d5a2e8f1b6c30"
    assert len(transport.requests) == 1


def test_openai_429_then_200_uses_the_sdk_retry() -> None:
    transport = _scripted("openai/error_429_rate_limit.json", "openai/chat_text.json")
    client = openai_client(transport, max_retries=2)

    raw = client.chat.completions.with_raw_response.create(model=CHAT_MODEL, messages=MESSAGES)

    assert raw.parse().choices[0].message.content == "The capital of France is Paris."
    assert raw.retries_taken == 1
    assert [r.retry_count for r in transport.requests] == [0, 1]
    transport.assert_done()


def test_openai_429_without_retries_raises_rate_limit() -> None:
    transport = _scripted("openai/error_429_rate_limit.json")
    with pytest.raises(openai.RateLimitError) as caught:
        openai_client(transport).chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "1"


# ---------------------------------------------------------------------------------- anthropic


def test_anthropic_message_thinking_text_tool_use() -> None:
    transport = _scripted("anthropic/message_thinking_tool_use.json")
    client = anthropic_client(transport)
    message = client.messages.create(**CLAUDE_REQUEST)

    assert message.id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert message.model == "claude-sonnet-4-6"
    assert message.stop_reason == "tool_use"
    thinking, text, tool_use = message.content
    assert isinstance(thinking, ThinkingBlock)
    assert thinking.thinking == THINKING
    assert thinking.signature.startswith("EqQBCkYI")
    assert isinstance(text, TextBlock)
    assert text.text == "I'll check the current weather in Paris for you."
    assert isinstance(tool_use, ToolUseBlock)
    assert (tool_use.id, tool_use.name) == ("toolu_01A09q90qw90lq917835lq9", "get_weather")
    assert tool_use.input == WEATHER_ARGS

    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (472, 162)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (2048, 1536)
    assert message._request_id == "req_011CSHoEeqs5C35K2UUqR7Fy"

    request = transport.last_request
    assert str(request.url) == "https://api.anthropic.test/v1/messages"
    # This SDK version sends the API key as a bearer token.
    assert request.headers["authorization"] == f"Bearer {FAKE_API_KEY}"
    assert "anthropic-version" in request.headers
    assert request.json == {"model": CLAUDE_MODEL, "max_tokens": 2048, "messages": MESSAGES}


def test_anthropic_message_redacted_thinking() -> None:
    transport = _scripted("anthropic/message_redacted_thinking.json")
    client = anthropic_client(transport)
    message = client.messages.create(**CLAUDE_REQUEST)

    assert [block.type for block in message.content] == [
        "redacted_thinking",
        "redacted_thinking",
        "thinking",
        "text",
    ]
    redacted = message.content[0]
    assert isinstance(redacted, RedactedThinkingBlock)
    assert redacted.data.startswith("EmwKAhgBEgy3va3pzix")
    assert message.stop_reason == "end_turn"


def test_anthropic_message_web_search_server_tool() -> None:
    transport = _scripted("anthropic/message_web_search.json")
    client = anthropic_client(transport)
    message = client.messages.create(**CLAUDE_REQUEST)

    _, server_tool_use, result, answer = message.content
    assert isinstance(server_tool_use, ServerToolUseBlock)
    assert server_tool_use.name == "web_search"
    assert server_tool_use.input == {"query": "Louvre opening hours"}
    assert isinstance(result, WebSearchToolResultBlock)
    assert result.tool_use_id == server_tool_use.id
    assert isinstance(result.content, list)
    assert [r.url for r in result.content] == [
        "https://www.example.org/louvre/hours",
        "https://www.example.com/guides/louvre",
    ]
    assert isinstance(answer, TextBlock)
    assert answer.citations is not None
    assert answer.citations[0].type == "web_search_result_location"
    assert message.usage.server_tool_use is not None
    assert message.usage.server_tool_use.web_search_requests == 1


def test_anthropic_raw_stream_events() -> None:
    transport = _scripted("anthropic/stream_thinking_text_tool_use.sse")
    client = anthropic_client(transport)
    stream = client.messages.create(**CLAUDE_REQUEST, stream=True)
    assert isinstance(stream, anthropic.Stream)
    body = transport.streams[0]
    assert body.chunks_sent == 0

    events = list(stream)

    assert body.exhausted
    types = [e.type for e in events]
    assert types[0] == "message_start"
    assert types[-2:] == ["message_delta", "message_stop"]
    assert "ping" not in types  # the SDK drops `ping` events

    deltas: dict[str, str] = {}
    for event in events:
        if event.type == "content_block_delta":
            delta = event.delta
            if delta.type == "thinking_delta":
                deltas["thinking"] = deltas.get("thinking", "") + delta.thinking
            elif delta.type == "signature_delta":
                deltas["signature"] = deltas.get("signature", "") + delta.signature
            elif delta.type == "text_delta":
                deltas["text"] = deltas.get("text", "") + delta.text
            elif delta.type == "input_json_delta":
                deltas["json"] = deltas.get("json", "") + delta.partial_json
    assert deltas["thinking"] == THINKING
    assert deltas["signature"].startswith("EqQBCkYI")
    assert deltas["text"] == "I'll check the current weather in Paris — one moment ☀️."
    assert json.loads(deltas["json"]) == WEATHER_ARGS

    starts = [e.content_block.type for e in events if e.type == "content_block_start"]
    assert starts == ["thinking", "text", "tool_use"]
    message_delta = events[-2]
    assert message_delta.type == "message_delta"
    assert message_delta.delta.stop_reason == "tool_use"
    assert message_delta.usage.output_tokens == 214
    message_start = events[0]
    assert message_start.type == "message_start"
    assert message_start.message.usage.input_tokens == 472
    assert message_start.message.usage.cache_read_input_tokens == 2048


def test_anthropic_stream_helper_final_message() -> None:
    transport = _scripted("anthropic/stream_thinking_text_tool_use.sse")
    client = anthropic_client(transport)

    with client.messages.stream(**CLAUDE_REQUEST) as stream:
        assert transport.streams[0].chunks_sent == 0
        final = stream.get_final_message()

    thinking, text, tool_use = final.content
    assert isinstance(thinking, ThinkingBlock)
    assert thinking.thinking == THINKING
    assert thinking.signature.startswith("EqQBCkYI")
    assert isinstance(text, TextBlock)
    assert text.text == "I'll check the current weather in Paris — one moment ☀️."
    assert isinstance(tool_use, ToolUseBlock)
    assert tool_use.input == WEATHER_ARGS
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (472, 214)
    assert transport.last_request.json["stream"] is True
    assert transport.last_request.headers["x-stainless-helper-method"] == "stream"


def test_anthropic_stream_error_event_raises() -> None:
    transport = _scripted("anthropic/stream_error_overloaded.sse")
    client = anthropic_client(transport)
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        for event in client.messages.create(**CLAUDE_REQUEST, stream=True):
            seen.append(event.type)
    assert seen == ["message_start", "content_block_start", "content_block_delta"]
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "overloaded_error"


@pytest.mark.asyncio
async def test_async_anthropic_streams() -> None:
    transport = _scripted(
        "anthropic/stream_thinking_text_tool_use.sse",
        "anthropic/stream_thinking_text_tool_use.sse",
    )
    client = async_anthropic_client(transport)

    async with client.messages.stream(**CLAUDE_REQUEST) as stream:
        text = "".join([chunk async for chunk in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "I'll check the current weather in Paris — one moment ☀️."
    assert isinstance(final.content[2], ToolUseBlock)
    assert final.content[2].input == WEATHER_ARGS

    raw = await client.messages.create(**CLAUDE_REQUEST, stream=True)
    assert isinstance(raw, anthropic.AsyncStream)
    types = [event.type async for event in raw]
    assert types[-1] == "message_stop"
    transport.assert_done()


def test_anthropic_400_raises_bad_request() -> None:
    transport = _scripted("anthropic/error_400_invalid_request.json")
    client = anthropic_client(transport, max_retries=2)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(**CLAUDE_REQUEST)
    assert caught.value.status_code == 400
    assert caught.value.type == "invalid_request_error"
    assert len(transport.requests) == 1


def test_anthropic_529_overloaded_without_retries() -> None:
    transport = _scripted("anthropic/error_529_overloaded.json")
    client = anthropic_client(transport)
    with pytest.raises(anthropic.OverloadedError) as caught:
        client.messages.create(**CLAUDE_REQUEST)
    assert caught.value.status_code == 529
    assert caught.value.type == "overloaded_error"


def test_anthropic_overloaded_then_429_then_200_uses_the_sdk_retry() -> None:
    transport = ScriptedTransport(
        [
            ScriptedResponse.fixture("anthropic/error_529_overloaded.json"),
            ScriptedResponse.error(
                429,
                {"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down"}},
                headers={"retry-after": "1"},
            ),
            ScriptedResponse.fixture("anthropic/message_thinking_tool_use.json"),
        ]
    )
    client = anthropic_client(transport, max_retries=2)

    raw = client.messages.with_raw_response.create(**CLAUDE_REQUEST)

    assert raw.retries_taken == 2
    assert raw.parse().stop_reason == "tool_use"
    assert [r.retry_count for r in transport.requests] == [0, 1, 2]
    transport.assert_done()
