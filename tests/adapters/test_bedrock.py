"""The Bedrock adapter: boto3's real `bedrock-runtime` client on botocore's real request path
(serializer, signer, parser, event stream decoder), answered from recorded wire bytes at
`before-send` (see `wire/aws.py`), and the real OpenTelemetry SDK."""

from __future__ import annotations

import dataclasses
import gc
import json
from typing import Any

import boto3
import pytest
import wrapt
from agents_testing import Telemetry, instrumented
from botocore.config import Config
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError
from genai_prices import Usage, calc_price
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from wire import load_json_fixture
from wire.aws import AwsResponder, Recorded, event_stream

import otel_agents
from otel_agents import semconv as sc
from otel_agents.adapters import bedrock as adapter

MODEL = "us.anthropic.claude-sonnet-4-20250514-v1:0"
REASONING = "The user wants Paris weather; get_weather takes a city and a unit. Celsius."
# Recorded wire payloads: a Converse result, and the events of a ConverseStream (framed by
# `wire.aws.event_stream` into the binary event stream AWS sends).
TOOL_USE_RESULT: dict[str, Any] = load_json_fixture("bedrock/converse_reasoning_tool_use.json")
STREAM_EVENTS: list[Any] = load_json_fixture(
    "bedrock/converse_stream_reasoning_tool_use.events.json"
)
TOOLS = {
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
MESSAGES = [{"role": "user", "content": [{"text": "What's the weather in Paris?"}]}]


def bedrock(*responses: Recorded) -> tuple[Any, AwsResponder]:
    responder = AwsResponder(list(responses))
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )
    return responder.attach(client), responder


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def only_span(telemetry: Telemetry) -> ReadableSpan:
    spans = telemetry.spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


# -- the wire helper and the readers ------------------------------------------------------


def test_the_event_stream_framing_is_what_botocore_decodes() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(event_stream(STREAM_EVENTS[:2]))
    messages = list(buffer)
    assert [m.headers[":event-type"] for m in messages] == ["messageStart", "contentBlockDelta"]
    assert json.loads(messages[0].payload) == {"role": "assistant"}


def test_the_response_reader_reads_tool_use_reasoning_and_usage() -> None:
    response = adapter.read_response(TOOL_USE_RESULT)
    assert [(c.call_id, c.name, c.arguments) for c in response.tool_calls] == [
        ("tooluse_paris_1", "get_weather", {"city": "Paris", "unit": "celsius"})
    ]
    assert response.reasoning == REASONING
    assert response.text == "Let me check."
    assert response.finish_reasons == ["tool_use"]
    assert response.usage is not None
    assert response.usage.input_tokens == 120 + 40 + 8
    assert (response.usage.cache_read_tokens, response.usage.cache_write_tokens) == (40, 8)


def test_the_accumulator_folds_events_into_the_shape_of_a_result() -> None:
    accumulator = adapter.EventAccumulator()
    for event in STREAM_EVENTS:
        accumulator.add(event)
    response = accumulator.response()
    assert response.reasoning == "Need the weather."
    assert [(c.call_id, c.arguments) for c in response.tool_calls] == [
        ("tooluse_s1", {"city": "Paris"})
    ]
    assert response.usage is not None and response.usage.output_tokens == 25


# -- the real client ------------------------------------------------------------------------


def test_converse_is_one_client_span_with_usage_cost_and_the_result_unchanged(
    telemetry: Telemetry,
) -> None:
    client, responder = bedrock(Recorded.json(TOOL_USE_RESULT))
    result = client.converse(
        modelId=MODEL,
        messages=MESSAGES,
        toolConfig=TOOLS,
        inferenceConfig={"maxTokens": 512, "temperature": 0.3},
    )
    assert result["output"] == TOOL_USE_RESULT["output"]
    assert result["ResponseMetadata"]["RequestId"] == "req-1"
    assert responder.requests[0].url.endswith(
        "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse"
    )
    span = only_span(telemetry)
    a = attrs(span)
    assert (span.name, span.kind) == (f"chat {MODEL}", SpanKind.CLIENT)
    assert a[sc.GEN_AI_PROVIDER_NAME] == sc.GenAiProviderNameValues.AWS_BEDROCK
    assert (a[sc.SERVER_ADDRESS], a[sc.SERVER_PORT]) == (
        "bedrock-runtime.us-east-1.amazonaws.com",
        443,
    )
    assert (a[sc.GEN_AI_REQUEST_MAX_TOKENS], a[sc.GEN_AI_REQUEST_TEMPERATURE]) == (512, 0.3)
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (168, 64)
    expected = calc_price(
        Usage(input_tokens=168, cache_read_tokens=40, cache_write_tokens=8, output_tokens=64),
        MODEL,
        provider_id="aws",
    ).total_price
    assert a[sc.COST_USD] == pytest.approx(float(expected))
    assert sc.GEN_AI_INPUT_MESSAGES not in a


def test_the_tool_use_is_the_decision_behind_the_tool_that_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for telemetry in instrumented(monkeypatch, capture_content="SPAN_ONLY"):

        @otel_agents.tool
        def get_weather(city: str, unit: str) -> str:
            return "18°C"

        client, _ = bedrock(Recorded.json(TOOL_USE_RESULT))
        with otel_agents.agent("forecaster"):
            result = client.converse(modelId=MODEL, messages=MESSAGES, toolConfig=TOOLS)
            use = result["output"]["message"]["content"][2]["toolUse"]
            with otel_agents.tool_call_id(use["toolUseId"]):
                get_weather(**use["input"])
        llm = telemetry.span(f"chat {MODEL}")
        tool = telemetry.span("execute_tool get_weather")
        assert attrs(tool)[sc.GEN_AI_TOOL_CALL_ID] == "tooluse_paris_1"
        assert attrs(tool)[sc.DECISION_REASONING] == REASONING
        assert [link.context.span_id for link in tool.links] == [llm.context.span_id]
        definitions = json.loads(str(attrs(llm)[sc.GEN_AI_TOOL_DEFINITIONS]))
        assert definitions[0]["name"] == "get_weather"


def test_converse_stream_is_wrapped_in_place_and_ends_its_span_when_read(
    telemetry: Telemetry,
) -> None:
    client, _ = bedrock(Recorded.events(STREAM_EVENTS))
    result = client.converse_stream(modelId=MODEL, messages=MESSAGES)
    assert set(result) == {"ResponseMetadata", "stream"}
    assert telemetry.spans() == []
    events = list(result["stream"])
    assert events == STREAM_EVENTS
    a = attrs(only_span(telemetry))
    assert a[sc.GEN_AI_REQUEST_STREAM] is True
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (30, 25)
    assert sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in a


def test_an_error_event_mid_stream_reaches_the_reader_and_fails_the_span(
    telemetry: Telemetry,
) -> None:
    events = [*STREAM_EVENTS[:2], ("exception", "throttlingException", {"message": "slow down"})]
    client, _ = bedrock(Recorded.events(events))
    seen: list[Any] = []
    with pytest.raises(EventStreamError):
        for event in client.converse_stream(modelId=MODEL, messages=MESSAGES)["stream"]:
            seen.append(event)
    assert len(seen) == 2
    span = only_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    # The API's error code, spelled as the same error is unstreamed (`throttlingException`).
    assert attrs(span)[sc.ERROR_TYPE] == "ThrottlingException"


def test_a_stream_dropped_unread_still_ends_its_span(telemetry: Telemetry) -> None:
    client, _ = bedrock(Recorded.events(STREAM_EVENTS))
    result = client.converse_stream(modelId=MODEL, messages=MESSAGES)
    del result
    gc.collect()
    assert len(telemetry.spans()) == 1


def test_an_api_error_reaches_the_caller_unchanged(telemetry: Telemetry) -> None:
    client, _ = bedrock(
        Recorded.json(
            {"message": "Malformed input request"},
            status=400,
            **{"x-amzn-errortype": "ValidationException"},
        )
    )
    with pytest.raises(ClientError) as raised:
        client.converse(modelId=MODEL, messages=MESSAGES)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    span = only_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    # The API's error code, as the conventions prefer, not botocore's generated class.
    assert attrs(span)[sc.ERROR_TYPE] == "ValidationException"
    durations = telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_DURATION)
    assert [dict(getattr(p, "attributes", {})).get(sc.ERROR_TYPE) for p in durations] == [
        "ValidationException"
    ]


def test_a_failing_error_reader_falls_back_to_the_exception_class(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(exc: BaseException) -> str | None:
        raise RuntimeError("reader bug")

    readers = dataclasses.replace(adapter.CONVERSE, error_type=broken)
    monkeypatch.setitem(adapter._OPERATIONS, "Converse", readers)
    client, _ = bedrock(
        Recorded.json({"message": "bad"}, status=400, **{"x-amzn-errortype": "ValidationException"})
    )
    with pytest.raises(client.exceptions.ValidationException):
        client.converse(modelId=MODEL, messages=MESSAGES)
    assert attrs(only_span(telemetry))[sc.ERROR_TYPE] == "botocore.errorfactory.ValidationException"


def test_botocores_retries_are_counted_as_attempts(telemetry: Telemetry) -> None:
    responder = AwsResponder(
        [
            Recorded.json(
                {"message": "Too many requests"},
                status=429,
                **{"x-amzn-errortype": "ThrottlingException"},
            ),
            Recorded.json(TOOL_USE_RESULT),
        ]
    )
    client = responder.attach(
        boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="secret",
            config=Config(retries={"mode": "standard", "total_max_attempts": 2}),
        )
    )
    result = client.converse(modelId=MODEL, messages=MESSAGES)
    assert result["ResponseMetadata"]["RetryAttempts"] == 1
    assert len(responder.requests) == 2
    assert attrs(only_span(telemetry))[sc.LLM_ATTEMPTS] == 2


def test_other_operations_and_services_are_not_recorded(telemetry: Telemetry) -> None:
    client, _ = bedrock(Recorded.json({"completion": "hi"}))
    answer = client.invoke_model(modelId=MODEL, body=b"{}")
    assert json.loads(answer["body"].read()) == {"completion": "hi"}
    s3 = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    AwsResponder([Recorded(200, b"<ListAllMyBucketsResult/>", "application/xml")]).attach(s3)
    s3.list_buckets()
    assert telemetry.spans() == []


def test_uninstrument_restores_botocore(telemetry: Telemetry) -> None:
    from botocore.client import BaseClient

    otel_agents.uninstrument()
    assert not isinstance(BaseClient.__dict__["_make_api_call"], wrapt.FunctionWrapper)
    client, _ = bedrock(Recorded.json(TOOL_USE_RESULT))
    client.converse(modelId=MODEL, messages=MESSAGES)
    assert telemetry.spans() == []


def test_it_can_be_switched_off_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "otel_agents_bedrock")
    for telemetry in instrumented(monkeypatch):
        client, _ = bedrock(Recorded.json(TOOL_USE_RESULT))
        client.converse(modelId=MODEL, messages=MESSAGES)
        assert telemetry.spans() == []
