"""The Bedrock adapter: boto3's `bedrock-runtime` Converse / ConverseStream through botocore's
real request path (serialiser, signer, send, parser) answered from recorded wire bytes, and the
real OpenTelemetry SDK with in-memory exporters. Reader unit tests run on the same payloads."""

from __future__ import annotations

import dataclasses
import gc
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import botocore.client
import pytest
import wrapt
from agents_testing import Telemetry, instrumented
from botocore.eventstream import ChecksumMismatch, EventStream, EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError
from genai_prices import Usage, calc_price
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from wire import load_json_fixture
from wire.bedrock import REQUEST_ID, Reply, Responder, bedrock_client, encode_events, frame

import otel_agents
from otel_agents import semconv as sc
from otel_agents.adapters import bedrock as adapter

MODEL = "us.anthropic.claude-sonnet-4-20250514-v1:0"
TOOL_CALL = "converse_tool_call.json"
TEXT = "converse_text.json"
STREAM = "converse_stream_tool.json"
THROTTLED_STREAM = "converse_stream_throttled.json"
MESSAGES = [{"role": "user", "content": [{"text": "What's the weather in Paris?"}]}]
TOOL_CONFIG = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "inputSchema": {
                    "json": {"type": "object", "properties": {"city": {"type": "string"}}}
                },
            }
        }
    ]
}
CALL: dict[str, Any] = {
    "modelId": MODEL,
    "messages": MESSAGES,
    "system": [{"text": "You are a weather assistant."}],
    "inferenceConfig": {
        "maxTokens": 512,
        "temperature": 0.2,
        "topP": 0.9,
        "stopSequences": ["END"],
    },
    "toolConfig": TOOL_CONFIG,
}


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def only_span(telemetry: Telemetry) -> ReadableSpan:
    spans = telemetry.spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def client_for(*replies: Reply) -> Any:
    return bedrock_client(Responder(list(replies)))


@pytest.fixture
def content_telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    yield from instrumented(monkeypatch, capture_content="SPAN_ONLY")


# -- the test encoder is checked against botocore's own decoder -----------------------------


def test_the_fixture_framing_is_what_botocores_decoder_reads() -> None:
    decoder = EventStreamBuffer()
    decoder.add_data(encode_events(load_json_fixture(f"bedrock/{STREAM}")))
    messages = list(decoder)
    assert len(messages) == 14
    first = messages[0]
    assert first.headers == {
        ":event-type": "messageStart",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert json.loads(first.payload) == {"role": "assistant"}
    # A corrupted byte fails botocore's CRC check: the framing really carries the CRCs.
    broken = bytearray(frame({":event-type": "messageStop"}, b"{}"))
    broken[-6] ^= 0xFF
    bad = EventStreamBuffer()
    bad.add_data(bytes(broken))
    with pytest.raises(ChecksumMismatch):
        list(bad)


# -- readers, on recorded payloads ---------------------------------------------------------


def test_the_response_reader_reads_tool_calls_reasoning_and_usage() -> None:
    response = adapter.read_response(load_json_fixture(f"bedrock/{TOOL_CALL}"))
    assert [(c.call_id, c.name, c.arguments) for c in response.tool_calls] == [
        ("tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "get_weather", {"city": "Paris", "unit": "celsius"})
    ]
    assert response.reasoning and response.reasoning.startswith("The user wants the weather")
    assert response.reasoning_source == sc.DecisionReasoningSourceValues.THINKING
    assert response.text == "Let me check the weather in Paris."
    assert response.finish_reasons == ["tool_use"]
    usage = response.usage
    assert usage is not None
    # Input includes the cached tokens, as the conventions ask.
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (1436, 1024, 96)


def test_redacted_reasoning_is_marked_never_copied(telemetry: Telemetry) -> None:
    part = adapter.content_part({"reasoningContent": {"redactedContent": b"\x00secret"}})
    assert part == {"type": "reasoning", "content": "[redacted]", "redacted": True}


def test_the_accumulator_folds_events_into_the_shape_of_a_whole_response() -> None:
    accumulator = adapter.EventAccumulator()
    for event in load_json_fixture(f"bedrock/{STREAM}"):
        accumulator.add({event["event"]: event["payload"]})
    response = accumulator.response()
    assert response.text == "Checking Paris."
    assert response.reasoning == "The user wants the weather. I will call get_weather."
    assert [(c.call_id, c.name, c.arguments) for c in response.tool_calls] == [
        ("tooluse_stream_1", "get_weather", {"city": "Paris"})
    ]
    assert response.finish_reasons == ["tool_use"]
    assert response.usage is not None and response.usage.input_tokens == 800
    assert response.output_tokens_known


def test_request_parameters_follow_the_conventions() -> None:
    assert adapter.request_parameters(CALL["inferenceConfig"]) == {
        sc.GEN_AI_REQUEST_MAX_TOKENS: 512,
        sc.GEN_AI_REQUEST_TEMPERATURE: 0.2,
        sc.GEN_AI_REQUEST_TOP_P: 0.9,
        sc.GEN_AI_REQUEST_STOP_SEQUENCES: ["END"],
    }


# -- the real SDK -----------------------------------------------------------------------------


def test_a_call_is_one_client_span_with_usage_cost_and_the_result_unchanged(
    telemetry: Telemetry,
) -> None:
    responder = Responder([Reply.fixture(TOOL_CALL)])
    result = bedrock_client(responder).converse(**CALL)
    assert type(result) is dict
    assert result["output"]["message"]["content"][2]["toolUse"]["name"] == "get_weather"
    assert result["ResponseMetadata"]["RequestId"] == REQUEST_ID
    assert unquote(responder.requests[0].url).endswith(f"/model/{MODEL}/converse")
    span = only_span(telemetry)
    a = attrs(span)
    assert (span.name, span.kind) == (f"chat {MODEL}", SpanKind.CLIENT)
    assert a[sc.GEN_AI_PROVIDER_NAME] == sc.GenAiProviderNameValues.AWS_BEDROCK == "aws.bedrock"
    assert a[sc.GEN_AI_REQUEST_MODEL] == MODEL  # as given: an inference profile
    assert (a[sc.SERVER_ADDRESS], a[sc.SERVER_PORT]) == (
        "bedrock-runtime.us-east-1.amazonaws.com",
        443,
    )
    assert (a[sc.GEN_AI_REQUEST_TEMPERATURE], a[sc.GEN_AI_REQUEST_MAX_TOKENS]) == (0.2, 512)
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (1436, 96)
    assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1024
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)
    assert a[sc.LLM_ATTEMPTS] == 1
    expected = calc_price(
        Usage(input_tokens=1436, cache_read_tokens=1024, output_tokens=96),
        MODEL,
        provider_id="aws",
    ).total_price
    assert a[sc.COST_USD] > 0
    assert a[sc.COST_USD] == pytest.approx(float(expected))
    assert sc.GEN_AI_INPUT_MESSAGES not in a  # content capture is off by default
    assert sc.GEN_AI_OUTPUT_MESSAGES not in a
    durations = telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_DURATION)
    assert [getattr(p, "count", None) for p in durations] == [1]
    input_tokens = telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS)
    assert sum(getattr(p, "value", 0) for p in input_tokens) == 1436


@pytest.mark.parametrize(
    "model_id",
    [
        "amazon.nova-lite-v1:0",
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0",
    ],
)
def test_bare_ids_and_arns_are_recorded_as_given_and_priced(
    telemetry: Telemetry, model_id: str
) -> None:
    client_for(Reply.fixture(TEXT)).converse(modelId=model_id, messages=MESSAGES)
    a = attrs(only_span(telemetry))
    assert a[sc.GEN_AI_REQUEST_MODEL] == model_id
    expected = calc_price(Usage(input_tokens=25, output_tokens=12), model_id, provider_id="aws")
    assert a[sc.COST_USD] == pytest.approx(float(expected.total_price))


def test_the_tool_use_is_the_decision_behind_the_tool_that_runs(
    content_telemetry: Telemetry,
) -> None:
    @otel_agents.tool
    def get_weather(city: str, unit: str) -> str:
        return "18°C"

    with otel_agents.agent("forecaster"):
        result = client_for(Reply.fixture(TOOL_CALL)).converse(**CALL)
        use = result["output"]["message"]["content"][2]["toolUse"]
        with otel_agents.tool_call_id(use["toolUseId"]):
            get_weather(**use["input"])
    llm = content_telemetry.span(f"chat {MODEL}")
    executed = content_telemetry.span("execute_tool get_weather")
    tool = attrs(executed)
    assert tool[sc.GEN_AI_TOOL_CALL_ID] == "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"
    assert tool[sc.DECISION_REASONING_SOURCE] == sc.DecisionReasoningSourceValues.THINKING
    assert str(tool[sc.DECISION_REASONING]).startswith("The user wants the weather")
    assert [link.context.span_id for link in executed.links] == [llm.context.span_id]
    a = attrs(llm)
    captured = json.loads(str(a[sc.GEN_AI_OUTPUT_MESSAGES]))
    assert [p["type"] for p in captured[0]["parts"]] == ["reasoning", "text", "tool_call"]
    assert captured[0]["finish_reason"] == "tool_use"
    assert json.loads(str(a[sc.GEN_AI_SYSTEM_INSTRUCTIONS])) == [
        {"type": "text", "content": "You are a weather assistant."}
    ]
    assert json.loads(str(a[sc.GEN_AI_INPUT_MESSAGES])) == [
        {"role": "user", "parts": [{"type": "text", "content": "What's the weather in Paris?"}]}
    ]
    definitions = json.loads(str(a[sc.GEN_AI_TOOL_DEFINITIONS]))
    assert definitions[0]["name"] == "get_weather" and definitions[0]["type"] == "function"


def _stream_call(*replies: Reply) -> Any:
    return client_for(*replies).converse_stream(**CALL)


def test_a_stream_is_one_span_ended_when_exhausted(telemetry: Telemetry) -> None:
    result = _stream_call(Reply.events(STREAM))
    assert type(result) is dict and list(result) == ["ResponseMetadata", "stream"]
    assert isinstance(result["stream"], EventStream)
    assert telemetry.spans() == []  # open until the stream ends
    events = list(result["stream"])
    plain = _stream_call_uninstrumented(Reply.events(STREAM))
    assert events == plain  # the same events as without us
    a = attrs(only_span(telemetry))
    assert a[sc.GEN_AI_REQUEST_STREAM] is True
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (800, 54)
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)
    assert sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in a
    first_chunk = telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_TIME_TO_FIRST_CHUNK)
    assert [getattr(p, "count", None) for p in first_chunk] == [1]


def _stream_call_uninstrumented(reply: Reply) -> list[Any]:
    otel_agents.uninstrument()
    try:
        return list(client_for(reply).converse_stream(**CALL)["stream"])
    finally:
        otel_agents.instrument()


def test_a_stream_closed_early_ends_its_span_once(telemetry: Telemetry) -> None:
    stream = _stream_call(Reply.events(STREAM))["stream"]
    for _ in stream:
        break
    stream.close()
    assert len(telemetry.spans()) == 1
    stream.close()
    assert len(telemetry.spans()) == 1


def test_a_dropped_stream_ends_its_span_once(telemetry: Telemetry) -> None:
    result = _stream_call(Reply.events(STREAM))
    next(iter(result["stream"]))
    del result
    gc.collect()
    assert len(telemetry.spans()) == 1


def test_an_error_mid_stream_reaches_the_caller_and_fails_the_span(telemetry: Telemetry) -> None:
    stream = _stream_call(Reply.events(THROTTLED_STREAM))["stream"]
    seen = []
    with pytest.raises(EventStreamError) as raised:
        for event in stream:
            seen.append(event)
    assert raised.value.response["Error"]["Code"] == "throttlingException"
    assert len(seen) == 2
    span = only_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)[sc.ERROR_TYPE] == "ThrottlingException"  # the code, as unstreamed


def test_an_api_error_reaches_the_caller_unchanged(telemetry: Telemetry) -> None:
    client = client_for(Reply.error(400, "ValidationException", "The model is not supported."))
    with pytest.raises(ClientError) as raised:
        client.converse(**CALL)
    assert type(raised.value) is client.exceptions.ValidationException
    span = only_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)[sc.ERROR_TYPE] == "ValidationException"
    durations = telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_DURATION)
    assert [dict(getattr(p, "attributes", {})).get(sc.ERROR_TYPE) for p in durations] == [
        "ValidationException"
    ]


def test_botocores_retries_are_counted_as_attempts(telemetry: Telemetry) -> None:
    responder = Responder(
        [Reply.error(429, "ThrottlingException", "Too many requests."), Reply.fixture(TEXT)]
    )
    client = bedrock_client(responder, retries={"mode": "standard", "total_max_attempts": 2})
    result = client.converse(modelId=MODEL, messages=MESSAGES)
    assert result["ResponseMetadata"]["RetryAttempts"] == 1
    assert attrs(only_span(telemetry))[sc.LLM_ATTEMPTS] == 2


def test_other_calls_pass_through_unrecorded(telemetry: Telemetry) -> None:
    s3 = bedrock_client(Responder([Reply(200, b"", "application/xml")]), service="s3")
    s3.delete_object(Bucket="bucket", Key="key")
    runtime = client_for(Reply(200, b'{"tags": []}'))
    runtime.list_async_invokes()
    assert telemetry.spans() == []


def _patched() -> bool:
    return isinstance(botocore.client.BaseClient.__dict__["_make_api_call"], wrapt.FunctionWrapper)


def test_uninstrument_restores_the_sdk(telemetry: Telemetry) -> None:
    assert _patched()
    otel_agents.uninstrument()
    assert not _patched()
    client_for(Reply.fixture(TEXT)).converse(modelId=MODEL, messages=MESSAGES)
    assert telemetry.spans() == []


def test_it_can_be_switched_off_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "otel_agents_bedrock")
    for telemetry in instrumented(monkeypatch):
        client_for(Reply.fixture(TEXT)).converse(modelId=MODEL, messages=MESSAGES)
        assert telemetry.spans() == []
        assert not _patched()


def test_a_failing_error_reader_falls_back_to_the_exception_class(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(exc: BaseException) -> str | None:
        raise RuntimeError("reader bug")

    readers = dataclasses.replace(adapter.CONVERSE_READERS, error_type=broken)
    monkeypatch.setitem(adapter._READERS, adapter.CONVERSE, readers)
    client = client_for(Reply.error(400, "ValidationException", "The model is not supported."))
    with pytest.raises(client.exceptions.ValidationException):
        client.converse(**CALL)
    assert attrs(only_span(telemetry))[sc.ERROR_TYPE] == "botocore.errorfactory.ValidationException"
