"""Overhead of otel-agents on an OpenAI Agents SDK run: one agent step (a model call that
asks for a tool, the tool call, the model's answer), against the same run uninstrumented.

    python benchmarks/bench_openai_agents.py [--runs N] [--repeat R]

The real SDK and the real `openai` client over an in-process mock transport; the real
OpenTelemetry SDK with a span processor that keeps nothing. Every variant runs with the SDK's
own trace export off (`set_trace_processors`), so only our processor differs. Each row is the
best of R repeats of N runs, in wall-clock and CPU milliseconds per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx2
import openai
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_trace_processors
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import otel_agents
from otel_agents.integrations import openai_agents


class DiscardingExporter(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _body(output: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "resp_1", "object": "response", "created_at": 0, "status": "completed",
        "model": "gpt-4o-mini", "output": output, "parallel_tool_calls": True,
        "tool_choice": "auto", "tools": [],
        "usage": {"input_tokens": 20, "output_tokens": 5, "total_tokens": 25,
                  "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens_details": {"reasoning_tokens": 0}},
    }  # fmt: skip


TOOL_CALL = _body(
    [{"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
      "arguments": json.dumps({"city": "Paris"}), "status": "completed"}]
)  # fmt: skip
ANSWER = _body(
    [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
      "content": [{"type": "output_text", "text": "Sunny.", "annotations": []}]}]
)  # fmt: skip


def scripted(request: httpx2.Request) -> httpx2.Response:
    asked_tool = b"function_call_output" in request.content
    return httpx2.Response(200, json=ANSWER if asked_tool else TOOL_CALL)


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


def make_agent() -> Agent[Any]:
    client = openai.AsyncOpenAI(
        api_key="sk-bench",
        base_url="https://api.openai.test/v1",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(scripted)),
    )
    return Agent(
        name="weather",
        tools=[get_weather],
        model=OpenAIResponsesModel(model="gpt-4o-mini", openai_client=client),
    )


def measure(agent: Agent[Any], runs: int, repeat: int) -> tuple[float, float]:
    """Milliseconds per run, wall clock and CPU: the best of `repeat` loops."""

    async def loop() -> None:
        for _ in range(runs):
            result = await Runner.run(agent, "Weather in Paris?")
            assert result.final_output == "Sunny."

    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        asyncio.run(loop())
        walls.append((time.perf_counter() - wall) / runs * 1e3)
        cpus.append((time.process_time() - cpu) / runs * 1e3)
    return min(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    agent = make_agent()

    set_trace_processors([])
    bare = measure(agent, options.runs, options.repeat)

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(DiscardingExporter()))
    otel_agents.instrument(
        tracer_provider=provider, meter_provider=MeterProvider(), configure_sdk=False
    )
    ours = openai_agents.processor()
    assert ours is not None
    set_trace_processors([ours])  # type: ignore[list-item]
    instrumented = measure(agent, options.runs, options.repeat)
    otel_agents.uninstrument()

    print(f"{'variant':<28}{'wall ms/run':>12}{'CPU ms/run':>12}")
    for name, (wall, cpu) in (("SDK, no tracing processor", bare), ("otel-agents", instrumented)):
        print(f"{name:<28}{wall:>12.2f}{cpu:>12.2f}")
    print(f"{'overhead':<28}{instrumented[0] - bare[0]:>12.2f}{instrumented[1] - bare[1]:>12.2f}")


if __name__ == "__main__":
    main()
