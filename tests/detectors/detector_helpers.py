"""Helpers for the detector tests (a uniquely named module: tests/ has several conftests)."""

from __future__ import annotations

import copy
from typing import Any

import otel_agents
from otel_agents import semconv as sc

MODEL = "priced-test-model"
# USD per million tokens: $1 per thousand tokens keeps the arithmetic readable.
PRICES = {MODEL: {"input": 1000.0, "output": 1000.0}}


def reinstrument(telemetry: Any, **options: Any) -> None:
    """Instrument again against the `telemetry` fixture's providers, with options."""
    options.setdefault("prices", PRICES)
    otel_agents.instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        configure_sdk=False,
        **options,
    )


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def anomaly_events(span: Any) -> list[dict[str, Any]]:
    return [dict(e.attributes or {}) for e in span.events if e.name == sc.EVENT_ANOMALY]


def flagged(telemetry: Any, detector: str) -> list[Any]:
    """The finished spans that carry `detector` in their `otel_agents.anomaly` attribute."""
    return [s for s in telemetry.spans() if detector in attrs(s).get(sc.ANOMALY, ())]


def anomaly_counts(telemetry: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for point in telemetry.metric_points(sc.METRIC_ANOMALIES):
        name = point.attributes[sc.DETECTOR_NAME]
        counts[name] = counts.get(name, 0) + point.value
    return counts


def chat_completion(tokens: int) -> dict[str, Any]:
    """An OpenAI chat completion (the recorded fixture) that used `tokens` tokens: $tokens/1000."""
    from wire import load_json_fixture

    body = copy.deepcopy(load_json_fixture("openai/chat_text.json"))
    body["model"] = MODEL
    prompt = tokens // 2
    body["usage"].update(
        prompt_tokens=prompt, completion_tokens=tokens - prompt, total_tokens=tokens
    )
    return dict(body)


def llm_client(*token_counts: int) -> Any:
    """A real `openai.OpenAI` client that will answer with completions of these sizes."""
    from wire import ScriptedResponse, ScriptedTransport, openai_client

    transport = ScriptedTransport([ScriptedResponse.json(chat_completion(n)) for n in token_counts])
    return openai_client(transport)


def ask(client: Any) -> Any:
    return client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Summarize the vendor."}]
    )
