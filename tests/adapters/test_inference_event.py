"""The conventions' `gen_ai.client.inference.operation.details` event: a log-based event
(Logs API, `event_name`), once per inference call, with the call's attributes and its
content in structured form; a span event only when no LoggerProvider is set up."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from agents_testing import Telemetry, instrumented
from wire import ScriptedResponse, ScriptedTransport, anthropic_client, openai_client

from otel_agents import semconv as sc

EVENT = sc.EVENT_GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS
CONTENT_KEYS = (
    sc.GEN_AI_INPUT_MESSAGES,
    sc.GEN_AI_OUTPUT_MESSAGES,
    sc.GEN_AI_SYSTEM_INSTRUCTIONS,
    sc.GEN_AI_TOOL_DEFINITIONS,
)
MESSAGES: list[Any] = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
]


def scripted(*names: str) -> ScriptedTransport:
    return ScriptedTransport([ScriptedResponse.fixture(name) for name in names])


@pytest.fixture
def event_telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    yield from instrumented(monkeypatch, with_logs=True, capture_content="EVENT_ONLY")


@pytest.fixture
def both_telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    yield from instrumented(monkeypatch, with_logs=True, capture_content="SPAN_AND_EVENT")


@pytest.fixture
def no_logs_telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    yield from instrumented(monkeypatch, capture_content="EVENT_ONLY")


def _chat(transport: ScriptedTransport) -> None:
    openai_client(transport).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, temperature=0.2
    )


def test_one_log_event_per_call_with_structured_content(event_telemetry: Telemetry) -> None:
    _chat(scripted("openai/chat_text.json"))

    (span,) = event_telemetry.spans()
    (log,) = event_telemetry.logs()
    record = log.log_record
    assert record.event_name == EVENT
    # In the call's span context, so a backend joins the event to its span.
    assert (record.trace_id, record.span_id) == (span.context.trace_id, span.context.span_id)
    a = dict(record.attributes or {})
    # The attributes the event requires, and the call's others (no `otel_agents.*`).
    assert a[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert a[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert a[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert a[sc.GEN_AI_RESPONSE_ID] == dict(span.attributes or {})[sc.GEN_AI_RESPONSE_ID]
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert not [key for key in a if key.startswith("otel_agents.")]
    # Content in structured form (not JSON strings), inputs and outputs in the one event.
    system, user = a[sc.GEN_AI_INPUT_MESSAGES]  # a system message in the chat history
    assert system["role"] == "system" and user["role"] == "user"
    assert user["parts"][0] == {"type": "text", "content": "What is the capital of France?"}
    (answer,) = a[sc.GEN_AI_OUTPUT_MESSAGES]
    assert answer["role"] == "assistant" and answer["parts"][0]["type"] == "text"
    # EVENT_ONLY: nothing on the span, no span event.
    assert not set(CONTENT_KEYS) & set(span.attributes or {})
    assert not span.events


def test_span_and_event_mode_sets_both(both_telemetry: Telemetry) -> None:
    _chat(scripted("openai/chat_text.json"))
    (span,) = both_telemetry.spans()
    assert sc.GEN_AI_INPUT_MESSAGES in (span.attributes or {})
    assert len(both_telemetry.logs()) == 1
    assert not span.events


def test_a_failed_call_still_gets_its_event_with_the_error_type(
    event_telemetry: Telemetry,
) -> None:
    import openai

    with pytest.raises(openai.BadRequestError):
        _chat(scripted("openai/error_400_invalid_request.json"))
    (log,) = event_telemetry.logs()
    a = dict(log.log_record.attributes or {})
    assert a[sc.ERROR_TYPE] == "openai.BadRequestError"
    assert sc.GEN_AI_INPUT_MESSAGES in a and sc.GEN_AI_OUTPUT_MESSAGES not in a


def test_anthropic_calls_emit_the_event_too(event_telemetry: Telemetry) -> None:
    anthropic_client(scripted("anthropic/message_thinking_tool_use.json")).messages.create(
        model="claude-sonnet-4-6",
        max_tokens=1024,
        system="Be brief.",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    (log,) = event_telemetry.logs()
    a = dict(log.log_record.attributes or {})
    assert a[sc.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert a[sc.GEN_AI_SYSTEM_INSTRUCTIONS][0]["content"] == "Be brief."


def test_no_event_without_content_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    for telemetry in instrumented(monkeypatch, with_logs=True):
        _chat(scripted("openai/chat_text.json"))
        assert telemetry.logs() == []


def test_without_a_logger_provider_the_event_is_one_span_event(
    no_logs_telemetry: Telemetry,
) -> None:
    """The documented fallback (an application with traces only, or the local store)."""
    _chat(scripted("openai/chat_text.json"))
    (span,) = no_logs_telemetry.spans()
    (event,) = span.events
    assert event.name == EVENT
    assert set(event.attributes or {}) == {sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES}
    assert no_logs_telemetry.logs() == []
