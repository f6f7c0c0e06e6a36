"""Scripted agent runs for the backend end-to-end test, sent over OTLP by `instrument()`.

    python fleet_runs.py clean N       N ordinary runs: one tool call each, cheap, no findings
    python fleet_runs.py anomalous     one run of each kind the backend must keep and flag

The agents use the real `openai` SDK against the demo's scripted model server on
127.0.0.1; the OTEL_* variables (set by the test) point the exporters at the collector.
Prints one JSON line per run: {"run": key, "agent": name, "run_id": ...}.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import openai
from opentelemetry import trace

import otel_agents
from otel_agents.demo.scripted_model import Script, ScriptedModelServer, ToolCall, Turn
from otel_agents.errors import Intervention

POLICY = """
version: 1
name: fleet-test
mode: enforce
defaults:
  verdict: allow
rules:
  - id: never-delete-customers
    match:
      tool: delete_customer
    verdict: deny
    reason: Agents never delete customers.
"""
MODEL = "gpt-4.1-mini"


@otel_agents.tool
def get_report(region: str) -> dict[str, Any]:
    return {"region": region, "revenue": 1200}


@otel_agents.tool
def charge_card(customer: str, amount: int) -> dict[str, Any]:
    raise TimeoutError("payment gateway timed out")


@otel_agents.tool
def delete_customer(customer: str) -> dict[str, Any]:
    return {"deleted": customer}


TOOLS = {"get_report": get_report, "charge_card": charge_card, "delete_customer": delete_customer}


def ask(name: str, calls: list[ToolCall] | None = None, **usage: int) -> Turn:
    return Turn(text=f"{name}: next step", tool_calls=calls or [], **usage)


def script(clean_runs: int) -> Script:
    turns: dict[str, list[Turn]] = {
        f"clean-{i}": [ask("report", [ToolCall("get_report", {"region": "emea"})]), Turn(text="ok")]
        for i in range(clean_runs)
    }
    charge = ToolCall("charge_card", {"customer": "c-7", "amount": 40})
    turns["retry-loop"] = [ask("charge", [charge]) for _ in range(3)] + [Turn(text="giving up")]
    turns["cost-spike"] = [
        Turn(text="a very long answer", prompt_tokens=400_000, completion_tokens=8_000)
    ]
    turns["denied"] = [
        ask("cleanup", [ToolCall("delete_customer", {"customer": "c-9"})]),
        Turn(text="ok"),
    ]
    turns["crash"] = [Turn(text="about to fail")]
    # Six model calls, each asking for a different report: no retries, just too many steps.
    regions = ["emea", "apac", "amer", "latam", "nordics", "dach"]
    turns["runaway"] = [ask("crawl", [ToolCall("get_report", {"region": r})]) for r in regions]
    return Script(turns=turns)


def leaky_span() -> None:
    """A span as another, careless instrumentation might write it: credentials in its
    attributes, next to token counts that must survive the collector's masking."""
    tracer = trace.get_tracer("another-instrumentation")
    with tracer.start_as_current_span("POST /v1/completions") as span:
        span.set_attributes(
            {
                "http.request.header.authorization": "Bearer 7d3f9a1c5e2b8d4f6a0c9e1b3d5f7a9c",
                "url.full": "https://svc-user:hunter2-Pa55@internal.example.com/v1/completions",
                "app.note": "retrying with key sk-proj-4Fq9Zt2LmN8xWc3VbR7yKp1QsD6hJg0TuE5aXo",
                "gen_ai.usage.input_tokens": 1234,
                "gen_ai.usage.output_tokens": 56,
            }
        )


def run_agent(client: Any, agent: str, key: str) -> str | None:
    """The agent loop: call the model, run what it asks for, stop when it only talks."""
    run_id = None
    try:
        with otel_agents.agent(agent) as run:
            run_id = run.run_id
            for _ in range(8):
                completion = client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": "go"}], user=key
                )
                message = completion.choices[0].message
                if not message.tool_calls:
                    break
                for call in message.tool_calls:
                    try:
                        with otel_agents.tool_call_id(call.id):
                            TOOLS[call.function.name](**json.loads(call.function.arguments))
                    except (Intervention, TimeoutError):
                        pass  # reported back to the model; the run carries on
            if key == "crash":
                leaky_span()
                raise RuntimeError("the agent crashed")
    except RuntimeError:
        pass
    return run_id


def main() -> None:
    kind = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    otel_agents.instrument(policy=POLICY)
    with ScriptedModelServer(script(count)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        if kind == "clean":
            runs = [("reporting", f"clean-{i}") for i in range(count)]
        else:
            runs = [
                ("billing", "retry-loop"),
                ("research", "cost-spike"),
                ("cleanup", "denied"),
                ("ops", "crash"),
                ("crawler", "runaway"),
            ]
        for agent, key in runs:
            run_id = run_agent(client, agent, key)
            print(json.dumps({"run": key, "agent": agent, "run_id": run_id}), flush=True)
    otel_agents.flush()


if __name__ == "__main__":
    main()
