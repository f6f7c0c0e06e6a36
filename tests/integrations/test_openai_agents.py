"""The OpenAI Agents SDK, run for real over the real `openai` client and a scripted
Responses API (tests/wire), traced by the real OpenTelemetry SDK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("agents")

import agents
from agents import (
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    input_guardrail,
)
from agents_testing import Telemetry, instrumented
from opentelemetry.sdk.trace import ReadableSpan
from wire import AsyncScriptedTransport, ScriptedResponse, async_openai_client

from otel_agents import semconv as sc
from otel_agents.integrations import openai_agents as integration

MODEL = "gpt-4o-mini"


@pytest.fixture
def telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    yield from _instrumented(monkeypatch)


def _instrumented(monkeypatch: pytest.MonkeyPatch, **options: object) -> Iterator[Telemetry]:
    for built in instrumented(monkeypatch, **options):
        ours = integration.processor()
        assert ours is not None
        # Ours only: the SDK's default processor would export to OpenAI.
        agents.set_trace_processors([ours])  # type: ignore[list-item]
        yield built


def _response(number: int, output: list[dict[str, Any]]) -> ScriptedResponse:
    return ScriptedResponse.json(
        {
            "id": f"resp_{number}",
            "object": "response",
            "created_at": 1755500000,
            "status": "completed",
            "model": MODEL,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": 20,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 5,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 25,
            },
        }
    )


def _streamed(number: int, output: list[dict[str, Any]]) -> ScriptedResponse:
    """The same response as a Responses API event stream (created, then completed)."""
    completed = json.loads(_response(number, output).body)
    created = {**completed, "status": "in_progress", "output": [], "usage": None}
    events = [
        (
            "response.created",
            {"type": "response.created", "sequence_number": 0, "response": created},
        ),
        (
            "response.completed",
            {"type": "response.completed", "sequence_number": 1, "response": completed},
        ),
    ]
    return ScriptedResponse.sse(
        "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
    )


def _call(name: str, arguments: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {
        "id": f"fc_{call_id}",
        "type": "function_call",
        "status": "completed",
        "name": name,
        "arguments": json.dumps(arguments),
        "call_id": call_id,
    }


def _reasoning(text: str) -> dict[str, Any]:
    return {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}


def _text(text: str) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def _model(transport: AsyncScriptedTransport) -> OpenAIResponsesModel:
    return OpenAIResponsesModel(model=MODEL, openai_client=async_openai_client(transport))


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


@function_tool
def delete_records(table: str) -> str:
    """Delete every record of a table."""
    raise AssertionError("a denied tool must not run")


FLAKY_CALLS: list[str] = []


@function_tool
def flaky_lookup(key: str) -> str:
    """A lookup that always fails."""
    FLAKY_CALLS.append(key)
    raise RuntimeError("backend unavailable")


def _parent(span: ReadableSpan, telemetry: Telemetry) -> ReadableSpan | None:
    if span.parent is None:
        return None
    found = [s for s in telemetry.spans() if s.context.span_id == span.parent.span_id]
    return found[0] if found else None


def _tree(telemetry: Telemetry) -> list[tuple[str, str | None]]:
    return sorted(
        (span.name, (parent.name if (parent := _parent(span, telemetry)) else None))
        for span in telemetry.spans()
    )


def test_tool_using_agent_span_tree_and_decision_path(telemetry: Telemetry) -> None:
    transport = AsyncScriptedTransport(
        [
            _response(
                1,
                [
                    _reasoning("The user asked about Paris: look the weather up."),
                    _call("get_weather", {"city": "Paris"}, "call_w1"),
                ],
            ),
            _response(2, [_text("It is sunny in Paris.")]),
        ]
    )
    agent = Agent(name="weather", tools=[get_weather], model=_model(transport))

    result = asyncio.run(Runner.run(agent, "Weather in Paris?"))

    assert result.final_output == "It is sunny in Paris."
    assert _tree(telemetry) == sorted(
        [
            ("invoke_agent Agent workflow", None),
            ("invoke_agent weather", "invoke_agent Agent workflow"),
            (f"chat {MODEL}", "invoke_agent weather"),
            (f"chat {MODEL}", "invoke_agent weather"),
            ("execute_tool get_weather", "invoke_agent weather"),
        ]
    )
    tool = telemetry.span("execute_tool get_weather")
    chats = [s for s in telemetry.spans() if s.name == f"chat {MODEL}"]
    requester = next(s for s in chats if s.attributes.get(sc.GEN_AI_RESPONSE_ID) == "resp_1")
    assert tool.attributes[sc.GEN_AI_TOOL_CALL_ID] == "call_w1"
    assert tool.attributes[sc.GEN_AI_AGENT_NAME] == "weather"
    assert [link.context.span_id for link in tool.links] == [requester.context.span_id]
    assert tool.attributes[sc.DECISION_REASONING_SOURCE] == "reasoning_summary"
    root = telemetry.span("invoke_agent Agent workflow")
    assert root.attributes[sc.RUN_LLM_CALLS] == 2
    assert root.attributes[sc.RUN_TOOL_CALLS] == 1
    assert len({s.context.trace_id for s in telemetry.spans()}) == 1


def test_streamed_run_has_the_same_tree(telemetry: Telemetry) -> None:
    transport = AsyncScriptedTransport(
        [
            _streamed(1, [_call("get_weather", {"city": "Oslo"}, "call_s1")]),
            _streamed(2, [_text("Sunny in Oslo.")]),
        ]
    )
    agent = Agent(name="weather", tools=[get_weather], model=_model(transport))

    async def consume() -> Any:
        result = Runner.run_streamed(agent, "Weather in Oslo?")
        async for _ in result.stream_events():
            pass
        return result

    result = asyncio.run(consume())

    assert result.final_output == "Sunny in Oslo."
    assert _tree(telemetry) == sorted(
        [
            ("invoke_agent Agent workflow", None),
            ("invoke_agent weather", "invoke_agent Agent workflow"),
            (f"chat {MODEL}", "invoke_agent weather"),
            (f"chat {MODEL}", "invoke_agent weather"),
            ("execute_tool get_weather", "invoke_agent weather"),
        ]
    )
    tool = telemetry.span("execute_tool get_weather")
    requester = next(
        s for s in telemetry.spans() if s.attributes.get(sc.GEN_AI_RESPONSE_ID) == "resp_1"
    )
    assert requester.attributes[sc.GEN_AI_REQUEST_STREAM] is True
    assert [link.context.span_id for link in tool.links] == [requester.context.span_id]


def test_two_agent_handoff_is_a_boundary_in_one_run(telemetry: Telemetry) -> None:
    transport = AsyncScriptedTransport(
        [
            _response(1, [_call("transfer_to_billing", {}, "call_h1")]),
            _response(2, [_text("Your invoice is paid.")]),
        ]
    )
    billing = Agent(name="billing", model=_model(transport))
    triage = Agent(name="triage", handoffs=[billing], model=_model(transport))

    result = asyncio.run(Runner.run(triage, "Is my invoice paid?"))

    assert result.final_output == "Your invoice is paid."
    handoff = telemetry.span("handoff billing")
    assert handoff.attributes[sc.HANDOFF_FROM] == "triage"
    assert handoff.attributes[sc.HANDOFF_TO] == "billing"
    assert handoff.attributes[sc.HANDOFF_ACCEPTED] is True
    tree = _tree(telemetry)
    assert ("invoke_agent triage", "invoke_agent Agent workflow") in tree
    assert ("invoke_agent billing", "invoke_agent Agent workflow") in tree
    assert tree.count((f"chat {MODEL}", "invoke_agent triage")) == 1
    assert tree.count((f"chat {MODEL}", "invoke_agent billing")) == 1
    root = telemetry.span("invoke_agent Agent workflow")
    assert root.attributes[sc.RUN_HANDOFFS] == 1
    run_ids = {s.attributes.get(sc.RUN_ID) for s in telemetry.spans() if "invoke_agent" in s.name}
    assert len(run_ids) == 1


def test_second_handoff_in_one_turn_is_a_rejected_boundary(telemetry: Telemetry) -> None:
    transport = AsyncScriptedTransport(
        [
            _response(
                1,
                [
                    _call("transfer_to_billing", {}, "call_h1"),
                    _call("transfer_to_support", {}, "call_h2"),
                ],
            ),
            _response(2, [_text("Billing here.")]),
        ]
    )
    billing = Agent(name="billing", model=_model(transport))
    support = Agent(name="support", model=_model(transport))
    triage = Agent(name="triage", handoffs=[billing, support], model=_model(transport))

    result = asyncio.run(Runner.run(triage, "Help"))

    assert result.final_output == "Billing here."
    taken = telemetry.span("handoff billing")
    ignored = telemetry.span("handoff support")
    assert taken.attributes[sc.HANDOFF_ACCEPTED] is True
    assert ignored.attributes[sc.HANDOFF_ACCEPTED] is False
    assert ignored.attributes[sc.HANDOFF_FROM] == "triage"
    assert "Multiple handoffs" in str(ignored.attributes[sc.HANDOFF_REASON])
    assert "invoke_agent support" not in [s.name for s in telemetry.spans()]


def test_tripped_input_guardrail_is_a_deny_verdict_on_the_agent(telemetry: Telemetry) -> None:
    @input_guardrail
    def no_secrets(ctx: Any, agent: Any, text: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered="password" in text)

    transport = AsyncScriptedTransport([_response(1, [_text("ok")])])
    agent = Agent(name="guarded", input_guardrails=[no_secrets], model=_model(transport))

    with pytest.raises(InputGuardrailTripwireTriggered):
        asyncio.run(Runner.run(agent, "my password is hunter2"))

    governed = telemetry.span("invoke_agent guarded")
    assert governed.attributes[sc.POLICY_VERDICT] == "deny"
    assert governed.attributes[sc.POLICY_RULE] == "no_secrets"
    assert governed.attributes[sc.GUARDRAIL_TRIPPED] is True
    [event] = [e for e in governed.events if e.name == sc.EVENT_GUARDRAIL]
    assert event.attributes is not None
    assert event.attributes[sc.GUARDRAIL_TRIPPED] is True


def test_passing_guardrail_leaves_an_allow_event_only(telemetry: Telemetry) -> None:
    @input_guardrail
    def no_secrets(ctx: Any, agent: Any, text: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered=False)

    transport = AsyncScriptedTransport([_response(1, [_text("ok")])])
    agent = Agent(name="guarded", input_guardrails=[no_secrets], model=_model(transport))

    asyncio.run(Runner.run(agent, "hello"))

    governed = telemetry.span("invoke_agent guarded")
    assert sc.POLICY_VERDICT not in governed.attributes
    [event] = [e for e in governed.events if e.name == sc.EVENT_GUARDRAIL]
    assert event.attributes is not None
    assert event.attributes[sc.POLICY_VERDICT] == "allow"


DENY_POLICY = """
version: 1
mode: enforce
rules:
  - id: no-deletes
    match:
      tool: delete_records
    verdict: deny
    reason: Agents never delete records.
"""


def test_tool_denied_by_policy_never_runs_and_the_model_sees_a_tool_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for telemetry in _instrumented(monkeypatch, policy=DENY_POLICY):
        transport = AsyncScriptedTransport(
            [
                _response(1, [_call("delete_records", {"table": "users"}, "call_d1")]),
                _response(2, [_text("I may not delete records.")]),
            ]
        )
        agent = Agent(name="janitor", tools=[delete_records], model=_model(transport))

        result = asyncio.run(Runner.run(agent, "Clean the users table"))

        assert result.final_output == "I may not delete records."
        tool = telemetry.span("execute_tool delete_records")
        assert tool.attributes[sc.POLICY_VERDICT] == "deny"
        assert tool.attributes[sc.GEN_AI_TOOL_CALL_ID] == "call_d1"
        second_request = transport.requests[1].json
        [output] = [i for i in second_request["input"] if i.get("type") == "function_call_output"]
        assert output["call_id"] == "call_d1"
        assert "denied" in output["output"] and "no-deletes" in output["output"]


def test_agent_retrying_a_failing_tool_trips_the_retry_detector(telemetry: Telemetry) -> None:
    FLAKY_CALLS.clear()
    script = [
        _response(n, [_call("flaky_lookup", {"key": "acct-7"}, f"call_r{n}")]) for n in range(4)
    ]
    transport = AsyncScriptedTransport([*script, _response(9, [_text("Giving up.")])])
    agent = Agent(name="stubborn", tools=[flaky_lookup], model=_model(transport))

    result = asyncio.run(Runner.run(agent, "Look acct-7 up"))

    assert result.final_output == "Giving up."
    assert FLAKY_CALLS == ["acct-7"] * 4
    tools = [s for s in telemetry.spans() if s.name == "execute_tool flaky_lookup"]
    assert sorted(s.attributes[sc.TOOL_CALL_ATTEMPT] for s in tools) == [1, 2, 3, 4]
    flagged = [s for s in tools if "retry_loop" in (s.attributes.get(sc.ANOMALY) or ())]
    assert flagged, [dict(s.attributes) for s in tools]
    assert telemetry.span("invoke_agent Agent workflow").attributes[sc.RUN_ANOMALIES] >= 1


def test_concurrent_async_runs_do_not_cross_talk(telemetry: Telemetry) -> None:
    async def one(city: str) -> Any:
        transport = AsyncScriptedTransport(
            [
                _response(1, [_call("get_weather", {"city": city}, f"call_{city}")]),
                _response(2, [_text(f"done {city}")]),
            ]
        )
        agent = Agent(name=f"agent_{city}", tools=[get_weather], model=_model(transport))
        return await Runner.run(agent, city)

    async def both() -> list[Any]:
        return list(await asyncio.gather(one("Paris"), one("Oslo")))

    results = asyncio.run(both())

    assert [r.final_output for r in results] == ["done Paris", "done Oslo"]
    for city in ("Paris", "Oslo"):
        agent_span = telemetry.span(f"invoke_agent agent_{city}")
        children = [
            s
            for s in telemetry.spans()
            if s.parent and s.parent.span_id == agent_span.context.span_id
        ]
        assert sorted(s.name for s in children) == sorted(
            [f"chat {MODEL}", f"chat {MODEL}", "execute_tool get_weather"]
        )
        tool = next(s for s in children if s.name == "execute_tool get_weather")
        assert tool.attributes[sc.GEN_AI_TOOL_CALL_ID] == f"call_{city}"


def test_disabled_by_the_standard_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "otel_agents_openai_agents")
    for telemetry in instrumented(monkeypatch):
        processor = integration.processor()
        if processor is not None:
            agents.set_trace_processors([processor])  # type: ignore[list-item]
        transport = AsyncScriptedTransport([_response(1, [_text("hi")])])
        agent = Agent(name="plain", model=_model(transport))
        asyncio.run(Runner.run(agent, "hello"))
        assert [s.name for s in telemetry.spans()] == [f"chat {MODEL}"]


def test_the_docs_example_runs_as_written(tmp_path: Any) -> None:
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    docs = (Path(__file__).parents[2] / "docs" / "frameworks.md").read_text()
    section = docs.split("### Example", 1)[1].split("\n## ", 1)[0]  # this section only
    [code] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {
        **os.environ,
        "OTEL_AGENTS_STORE_PATH": str(tmp_path / "traces.db"),
        "OPENAI_AGENTS_DISABLE_TRACING": "0",
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Sunny in Paris."
    shown = subprocess.run(
        [sys.executable, "-m", "otel_agents.cli", "show"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line.strip(" │├└─") for line in shown.stdout.splitlines()]
    assert any(line.startswith("agent    weather") for line in lines), shown.stdout
    assert any(line.startswith("tool     get_weather ✓") for line in lines), shown.stdout


def test_uninstrument_restores_the_tool_invoker_and_stops_recording(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agents.run_internal import tool_execution

    before = tool_execution._invoke_function_tool_with_metadata
    assert not hasattr(before, "__otel_agents_original__")
    session = _instrumented(monkeypatch)
    telemetry = next(session)
    patched = tool_execution._invoke_function_tool_with_metadata
    assert hasattr(patched, "__otel_agents_original__")
    with pytest.raises(StopIteration):
        next(session)  # uninstrument()
    assert tool_execution._invoke_function_tool_with_metadata is before
    transport = AsyncScriptedTransport(
        [
            _response(1, [_call("get_weather", {"city": "Rome"}, "call_u1")]),
            _response(2, [_text("done")]),
        ]
    )
    agent = Agent(name="weather", tools=[get_weather], model=_model(transport))
    assert asyncio.run(Runner.run(agent, "Rome?")).final_output == "done"
    assert telemetry.spans() == []


def agents_names_run() -> None:
    """For tests/test_emitted_names.py (already instrumented): one run with a tool, a
    handoff and a tripped guardrail, so every name this integration emits is checked."""

    @input_guardrail
    def no_secrets(ctx: Any, agent: Any, text: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered="password" in text)

    ours = integration.processor()
    assert ours is not None
    agents.set_trace_processors([ours])  # type: ignore[list-item]
    transport = AsyncScriptedTransport(
        [
            _response(1, [_reasoning("Look it up."), _call("get_weather", {"city": "Rome"}, "c1")]),
            _response(2, [_call("transfer_to_billing", {}, "c2")]),
            _response(3, [_text("done")]),
        ]
    )
    billing = Agent(name="billing", model=_model(transport))
    triage = Agent(name="triage", tools=[get_weather], handoffs=[billing], model=_model(transport))
    asyncio.run(Runner.run(triage, "Weather in Rome?"))
    guarded = Agent(name="guarded", input_guardrails=[no_secrets], model=_model(transport))
    with pytest.raises(InputGuardrailTripwireTriggered):
        asyncio.run(Runner.run(guarded, "my password"))
