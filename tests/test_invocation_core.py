"""The invocation core driven the way callback frameworks drive it: started without becoming
current, children started under a parent they only know as an object or an id, finished
later from other threads; finishing exactly once; the registry by id."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agents_testing import Telemetry
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan

from otel_agents import semconv as sc
from otel_agents.core import handler
from otel_agents.core.agent import AgentRun, AgentSpec
from otel_agents.core.inference import LLMCall, LLMRequest, LLMResponse
from otel_agents.core.invocation import Invocations
from otel_agents.core.requests import ToolCallRequest
from otel_agents.core.tool import ToolInvocation, ToolSpec
from otel_agents.pricing import TokenUsage


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def in_empty_context(work: Any) -> Any:
    token = otel_context.attach(otel_context.Context())
    try:
        return work()
    finally:
        otel_context.detach(token)


def on_other_thread(work: Any) -> Any:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(in_empty_context, work).result()


def test_a_run_driven_by_callbacks_keeps_its_tree_and_its_decision_path(
    telemetry: Telemetry,
) -> None:
    entry = otel_context.get_current()
    run = handler.start_agent(AgentSpec("planner"))
    assert otel_context.get_current() is entry  # started, not made current

    def model_call() -> LLMCall:
        call = handler.start_inference(LLMRequest(provider="openai", model="gpt-4o-mini"), run)
        assert call is not None
        return call

    call = on_other_thread(model_call)
    answer = LLMResponse(
        response_model="gpt-4o-mini",
        usage=TokenUsage(input_tokens=10, output_tokens=5),
        tool_calls=[ToolCallRequest("call_1", "lookup", '{"vendor": "acme"}')],
        reasoning="Need the vendor record first.",
        reasoning_source=sc.DecisionReasoningSourceValues.THINKING,
    )
    on_other_thread(lambda: handler.stop_inference(call, answer))  # from yet another thread

    spec = ToolSpec("lookup")

    def tool_call() -> ToolInvocation:
        return handler.start_tool(spec, {"vendor": "acme"}, parent=run)

    tool = on_other_thread(tool_call)
    on_other_thread(lambda: handler.stop_tool(tool, {"id": 7}))
    boundary = on_other_thread(
        lambda: handler.start_handoff("planner", "executor", {"vendor": "acme"}, run)
    )
    on_other_thread(lambda: handler.stop_handoff(boundary, accepted=True))
    on_other_thread(lambda: handler.stop_agent(run))
    assert otel_context.get_current() is entry
    assert trace.get_current_span() is trace.INVALID_SPAN

    agent = telemetry.span("invoke_agent planner")
    llm = telemetry.span("chat gpt-4o-mini")
    executed = telemetry.span("execute_tool lookup")
    boundary = telemetry.span("handoff executor")
    root_id = agent.context.span_id
    for child in (llm, executed, boundary):
        assert child.parent is not None and child.parent.span_id == root_id
        assert child.context.trace_id == agent.context.trace_id
        assert attrs(child)[sc.RUN_ID] == attrs(agent)[sc.RUN_ID]
    assert attrs(llm)[sc.GEN_AI_AGENT_NAME] == "planner"
    # The decision path across threads: the tool answers the model's call, by its id.
    tool_attrs = attrs(executed)
    assert tool_attrs[sc.GEN_AI_TOOL_CALL_ID] == "call_1"
    assert tool_attrs[sc.DECISION_MATCH] == "name_and_arguments"
    assert [link.context.span_id for link in executed.links] == [llm.context.span_id]
    # The run's totals, kept by its ledger and reported by the root span.
    totals = attrs(agent)
    assert (totals[sc.RUN_LLM_CALLS], totals[sc.RUN_TOOL_CALLS], totals[sc.RUN_HANDOFFS]) == (
        1,
        1,
        1,
    )
    assert totals[sc.RUN_USAGE_INPUT_TOKENS] == 10
    assert attrs(boundary)[sc.HANDOFF_ACCEPTED] is True


def test_failing_an_invocation_records_the_error_and_leaves_the_caller_alone(
    telemetry: Telemetry,
) -> None:
    run = handler.start_agent(AgentSpec("worker"))
    tool = handler.start_tool(ToolSpec("flaky"), {"n": 1}, parent=run)
    handler.fail_tool(tool, TimeoutError("upstream timed out"))
    handler.fail_agent(run, RuntimeError("gave up"))
    assert attrs(telemetry.span("execute_tool flaky"))[sc.ERROR_TYPE] == "TimeoutError"
    root = attrs(telemetry.span("invoke_agent worker"))
    assert (root[sc.ERROR_TYPE], root[sc.RUN_TOOL_FAILURES]) == ("RuntimeError", 1)


def test_finish_counts_once_whoever_calls_it_and_however_often(telemetry: Telemetry) -> None:
    call = LLMCall.start(LLMRequest(provider="openai", model="m"))
    assert call is not None
    barrier = threading.Barrier(8)

    def finish() -> None:
        barrier.wait()
        call.finish(LLMResponse(usage=TokenUsage(input_tokens=1, output_tokens=1)))

    threads = [threading.Thread(target=finish) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    call.finish(None, RuntimeError("late"))  # too late: the first outcome stands
    assert [s.name for s in telemetry.spans()] == ["chat m"]
    assert sc.ERROR_TYPE not in attrs(telemetry.spans()[0])
    durations = telemetry.metric_points(sc.METRIC_GEN_AI_CLIENT_INFERENCE_DURATION)
    assert [getattr(p, "count", None) for p in durations] == [1]


def test_make_current_is_separate_from_start_and_undone_by_its_token(
    telemetry: Telemetry,
) -> None:
    run = AgentRun.start(AgentSpec("a"), make_current=False)
    token = run.make_current()
    try:
        with_current = ToolInvocation.start(ToolSpec("t"), {})  # parent: the current context
        with_current.finish(None, None)
    finally:
        run.stop_current(token)
    assert trace.get_current_span() is trace.INVALID_SPAN
    run.finish()
    tool = telemetry.span("execute_tool t")
    assert tool.parent is not None
    assert tool.parent.span_id == telemetry.span("invoke_agent a").context.span_id


def test_open_invocations_by_id_are_bounded_and_the_evicted_are_ended(
    telemetry: Telemetry,
) -> None:
    registry: Invocations[AgentRun] = Invocations(limit=2)
    runs = [AgentRun.start(AgentSpec(f"r{i}"), make_current=False) for i in range(3)]
    for run in runs:
        registry.add(run.id, run)
    assert len(registry) == 2 and registry.get(runs[0].id) is None
    assert runs[0].finished  # abandoned: its span ended, recording nothing more
    assert [s.name for s in telemetry.spans()] == ["invoke_agent r0"]
    popped = registry.pop(runs[2].id)
    assert popped is runs[2] and registry.pop(runs[2].id) is None
    popped.finish()
    assert {s.name for s in telemetry.spans()} == {"invoke_agent r0", "invoke_agent r2"}
