"""Shapes that recorded real traffic showed and the adapters got wrong: legacy OpenAI
`functions` calls, a Responses API result that failed, an Anthropic stream closed early,
an error object in an HTTP 200 body, OpenAI-compatible providers known by their base URL,
and service tiers. Each goes through the real SDK over its real HTTP layer."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from agents_testing import Telemetry
from genai_prices import Usage, calc_price
from opentelemetry.trace import StatusCode
from wire import (
    ScriptedResponse,
    ScriptedTransport,
    anthropic_client,
    load_json_fixture,
    openai_client,
)

import otel_agents
from otel_agents import semconv as sc

WEATHER_FUNCTION = {
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
MESSAGES: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]


def scripted(*names: str) -> ScriptedTransport:
    return ScriptedTransport([ScriptedResponse.fixture(name) for name in names])


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def llm_span(telemetry: Telemetry) -> Any:
    [span] = [s for s in telemetry.spans() if s.name.startswith("chat")]
    return span


def tool_span(telemetry: Telemetry) -> Any:
    [span] = [s for s in telemetry.spans() if s.name.startswith("execute_tool")]
    return span


@otel_agents.tool
def get_weather(city: str, unit: str) -> str:
    return f"18 degrees {unit} in {city}"


# -- legacy `functions` / `function_call` ------------------------------------------------------


def _run_the_requested_function(arguments: str) -> None:
    get_weather(**json.loads(arguments))


@pytest.mark.parametrize("stream", [False, True], ids=["response", "stream"])
def test_a_legacy_function_call_is_a_tool_call_on_the_decision_path(
    content_telemetry: Telemetry, stream: bool
) -> None:
    name = "chat_stream_legacy_function_call.sse" if stream else "chat_legacy_function_call.json"
    client = openai_client(scripted(f"openai/{name}"))
    with otel_agents.agent("forecaster"):
        result: Any = client.chat.completions.create(
            model="gpt-3.5-turbo-0613", messages=MESSAGES, functions=[WEATHER_FUNCTION],
            stream=stream,
        )  # fmt: skip
        if stream:
            pieces = [c.choices[0].delta.function_call for c in result if c.choices]
            arguments = "".join(p.arguments for p in pieces if p is not None and p.arguments)
        else:
            arguments = result.choices[0].message.function_call.arguments
        _run_the_requested_function(arguments)

    llm = llm_span(content_telemetry)
    [output] = json.loads(attrs(llm)[sc.GEN_AI_OUTPUT_MESSAGES])
    assert output["finish_reason"] == "tool_call"
    assert output["parts"] == [
        {
            "type": "tool_call",
            "id": None,
            "name": "get_weather",
            "arguments": {"city": "Paris", "unit": "celsius"},
        }
    ]
    [definition] = json.loads(attrs(llm)[sc.GEN_AI_TOOL_DEFINITIONS])
    assert definition["name"] == "get_weather"
    tool = tool_span(content_telemetry)
    assert attrs(tool)[sc.DECISION_MATCH] == "name_and_arguments"  # no id in the legacy API
    assert [link.context.span_id for link in tool.links] == [llm.context.span_id]


# -- failures reported in a successful response --------------------------------------------------


def test_a_responses_result_with_status_failed_is_an_error(telemetry: Telemetry) -> None:
    result = openai_client(scripted("openai/responses_failed.json")).responses.create(
        model="gpt-4.1-mini", input="Hello"
    )
    assert result.status == "failed"  # the caller gets the result as the SDK made it
    span = llm_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "The model failed to generate a response."
    assert attrs(span)[sc.ERROR_TYPE] == "server_error"
    assert attrs(span)[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("error",)


def test_an_error_object_in_an_http_200_body_is_an_error(telemetry: Telemetry) -> None:
    client = openai_client(
        scripted("openai/chat_error_in_200_body.json"), base_url="https://openrouter.ai/api/v1"
    )
    completion = client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES)
    assert completion.choices is None or completion.choices == []  # the SDK's own reading
    span = llm_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert "upstream model overloaded" in (span.status.description or "")
    assert attrs(span)[sc.ERROR_TYPE] == "502"
    [duration] = telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_DURATION)
    assert duration.attributes[sc.ERROR_TYPE] == "502"  # type: ignore[attr-defined]


def test_an_anthropic_error_object_in_an_http_200_body_is_an_error(telemetry: Telemetry) -> None:
    client = anthropic_client(scripted("anthropic/message_error_in_200_body.json"))
    client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES)
    [span] = telemetry.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "Overloaded"
    assert attrs(span)[sc.ERROR_TYPE] == "overloaded_error"


# -- an Anthropic stream closed early ---------------------------------------------------------


def test_an_anthropic_stream_closed_early_reports_no_placeholder_output_tokens(
    telemetry: Telemetry,
) -> None:
    client = anthropic_client(scripted("anthropic/stream_thinking_text_tool_use.sse"))
    stream = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=2048, messages=MESSAGES, stream=True
    )
    for event in stream:
        if event.type == "content_block_delta":
            break  # before `message_delta`, which carries the real output count
    stream.close()
    [span] = telemetry.spans()
    a = attrs(span)
    # message_start said output_tokens=3: a placeholder, neither reported nor priced
    assert sc.GEN_AI_USAGE_OUTPUT_TOKENS not in a
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == 472 + 2048
    expected = calc_price(
        Usage(input_tokens=472 + 2048, cache_read_tokens=2048, output_tokens=0),
        model_ref="claude-sonnet-4-6",
        provider_id="anthropic",
    )
    assert a[sc.COST_USD] == pytest.approx(float(expected.total_price))


# -- OpenAI-compatible providers and service tiers ------------------------------------------


def test_an_openai_compatible_provider_is_named_and_priced_by_its_base_url(
    telemetry: Telemetry,
) -> None:
    client = openai_client(
        scripted("openai/chat_text_groq.json"), base_url="https://api.groq.com/openai/v1"
    )
    client.chat.completions.create(model="llama-3.3-70b-versatile", messages=MESSAGES)
    a = attrs(llm_span(telemetry))
    assert a[sc.GEN_AI_PROVIDER_NAME] == "groq"
    assert a[sc.SERVER_ADDRESS] == "api.groq.com"
    expected = calc_price(
        Usage(input_tokens=44, output_tokens=8),
        model_ref="llama-3.3-70b-versatile",
        provider_id="groq",
    )
    assert a[sc.COST_USD] == pytest.approx(float(expected.total_price))


@pytest.mark.parametrize(
    ("url", "provider"),
    [
        ("https://api.groq.com/openai/v1", "groq"),
        ("https://api.together.xyz/v1", "together"),
        ("https://api.deepseek.com/v1", "deepseek"),
        ("https://api.mistral.ai/v1", "mistral_ai"),
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("https://api.x.ai/v1", "x_ai"),
        ("https://api.fireworks.ai/inference/v1", "fireworks"),
        ("https://api.openai.com/v1", None),  # the SDK's own: stays `openai`
        ("http://127.0.0.1:8000/v1", None),
    ],
)
def test_providers_known_by_their_api_address(url: str, provider: str | None) -> None:
    from otel_agents.pricing import provider_from_url

    assert provider_from_url(url) == provider


def test_the_service_tier_is_recorded_and_priced(telemetry: Telemetry) -> None:
    client = openai_client(scripted("openai/chat_text_flex.json"))
    client.chat.completions.create(model="gpt-5-mini", messages=MESSAGES, service_tier="flex")
    a = attrs(llm_span(telemetry))
    assert a[sc.OPENAI_REQUEST_SERVICE_TIER] == "flex"
    assert a[sc.OPENAI_RESPONSE_SERVICE_TIER] == "flex"
    usage = Usage(input_tokens=24_000, output_tokens=8_000)
    flex = calc_price(
        usage,
        model_ref="gpt-5-mini-2025-08-07",
        provider_id="openai",
        price_context={"service_tier": "flex"},
    )
    standard = calc_price(usage, model_ref="gpt-5-mini-2025-08-07", provider_id="openai")
    assert flex.total_price < standard.total_price  # the tier's rates apply
    assert a[sc.COST_USD] == pytest.approx(float(flex.total_price))


def test_the_service_tier_of_a_stream_is_recorded(telemetry: Telemetry) -> None:
    client = openai_client(scripted("openai/chat_stream_tool_calls.sse"))
    list(client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True))
    assert attrs(llm_span(telemetry))[sc.OPENAI_RESPONSE_SERVICE_TIER] == "default"


def test_fixtures_are_wire_shapes_the_sdk_reads() -> None:
    completion = openai.types.chat.ChatCompletion.model_validate(
        load_json_fixture("openai/chat_legacy_function_call.json")
    )
    assert completion.choices[0].message.function_call is not None
