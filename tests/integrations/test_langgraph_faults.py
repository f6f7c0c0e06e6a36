"""No internal fault of the LangGraph integration escapes or lingers: every otel_agents
function on the call paths of real LangGraph runs (a tool-using prebuilt agent, sync and
async; a graph with a handoff, an interrupt and its resume) is made to raise, one at a time
(see `fault_injection.py`), and the application must see nothing: the same messages and
outcome as without otel-agents, the context as it was, and a later clean run recorded
normally."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("langgraph.pregel")

from agents_testing import Telemetry, make_telemetry
from fault_injection import CallPaths, FunctionIndex, InjectedFault, profile
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.types import Command, interrupt
from opentelemetry import context as otel_context
from opentelemetry import trace
from test_langgraph import (
    CHAT,
    ScriptedChatModel,
    _calc_agent,
    _call,
    _text,
    _tree,
    add,
    create_react_agent,
)

import otel_agents

_threads = itertools.count()


def _outcome(result: Any) -> list[tuple[str, Any]]:
    """What the application sees, without LangChain's random message ids."""
    return [(m.type, m.content) for m in result["messages"]]


def react_sync() -> Any:
    return _outcome(_calc_agent().invoke({"messages": [("user", "1+2?")]}))


def react_async() -> Any:
    return _outcome(asyncio.run(_calc_agent().ainvoke({"messages": [("user", "1+2?")]})))


def handoff_interrupt_resume() -> Any:
    def plan(state: MessagesState) -> Command[str]:
        return Command(goto="approve", update={"messages": [("ai", "planned")]})

    def approve(state: MessagesState) -> dict[str, Any]:
        return {"messages": [("ai", f"approved: {interrupt('ok?')}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("plan", plan, destinations=("approve",))
    builder.add_node("approve", approve)
    builder.add_edge(START, "plan")
    graph = builder.compile(name="desk", checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": f"faults-{next(_threads)}"}}
    paused = graph.invoke({"messages": [("user", "go")]}, config)
    resumed = graph.invoke(Command(resume="yes"), config)
    return [sorted(paused), _outcome(resumed)]


def tool_in_tool() -> Any:
    """A tool whose body calls a model: the tool span is current while it runs."""
    inner = ScriptedChatModel(responses=[_text("inner")])
    model = ScriptedChatModel(responses=[_call("add", {"a": 1, "b": 1}, "call_f1"), _text("2")])
    agent = create_react_agent(model, [add], name="calc")
    first = _outcome(agent.invoke({"messages": [("user", "1+1?")]}))
    return [first, inner.invoke("hi").content]


@tool
async def double(x: int) -> int:
    """Double a number (a coroutine tool: it runs on the event loop, not in a worker
    thread, so the profiler sees our tool wrapper)."""
    return 2 * x


def async_tool() -> Any:
    model = ScriptedChatModel(responses=[_call("double", {"x": 4}, "call_d1"), _text("8")])
    agent = create_react_agent(model, [double], name="calc")
    return _outcome(asyncio.run(agent.ainvoke({"messages": [("user", "4 doubled?")]})))


SCENARIOS: dict[str, Callable[[], Any]] = {
    "async tool": async_tool,
    "react agent, sync": react_sync,
    "react agent, async": react_async,
    "handoff, interrupt, resume": handoff_interrupt_resume,
    "tool and bare model": tool_in_tool,
}


def probe(telemetry: Telemetry) -> None:
    """A clean run after a fault: recorded normally, at the root, with its own ledger."""
    telemetry.exporter.clear()
    _calc_agent().invoke({"messages": [("user", "1+2?")]})
    assert _tree(telemetry) == [
        (CHAT, "invoke_agent calc"),
        (CHAT, "invoke_agent calc"),
        ("execute_tool add", "invoke_agent calc"),
        ("invoke_agent calc", None),
    ], "a later run was not recorded normally"


class Sweep:
    def __init__(
        self, telemetry: Telemetry, index: FunctionIndex, baselines: Any, paths: Any
    ) -> None:
        self.telemetry = telemetry
        self.index = index
        self.baselines: dict[str, Any] = baselines
        self.paths: dict[str, CallPaths] = paths


@pytest.fixture(scope="module")
def sweep() -> Iterator[Sweep]:
    otel_agents.uninstrument()
    baselines = {name: scenario() for name, scenario in SCENARIOS.items()}  # without us
    telemetry = make_telemetry()
    otel_agents.instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        configure_sdk=False,
        capture_content="SPAN_AND_EVENT",
    )
    try:
        paths = {name: profile(scenario) for name, scenario in SCENARIOS.items()}
        # A boundary in any scenario is a boundary: a wrapper of ours reached through the
        # standard library from another wrapper (a thread pool's `submit` starting a
        # thread) looks internal there.
        boundaries = set().union(*(found.entries for found in paths.values()))
        for found in paths.values():
            found.internal -= boundaries
        index = FunctionIndex()
        for found in paths.values():
            index.refresh(found.internal | found.entries)
        yield Sweep(telemetry, index, baselines, paths)
    finally:
        otel_agents.uninstrument()


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_scenario_is_transparent_without_faults(sweep: Sweep, name: str) -> None:
    assert SCENARIOS[name]() == sweep.baselines[name]
    assert sweep.paths[name].injectable, "the profiler found no internal function"


@pytest.mark.parametrize("name", SCENARIOS)
def test_no_internal_fault_reaches_the_application_or_lingers(sweep: Sweep, name: str) -> None:
    failures = []
    injected = sweep.paths[name].injectable
    for code in injected:
        where = f"{code.co_filename.rsplit('otel_agents', 1)[-1]}:{code.co_name}"
        before = otel_context.get_current()
        try:
            with sweep.index.injected(code):
                try:
                    seen = SCENARIOS[name]()
                except InjectedFault as fault:
                    pytest.fail(f"{fault} reached the application")
            assert otel_context.get_current() is before, "the context was left changed"
            assert trace.get_current_span() is trace.INVALID_SPAN
            assert seen == sweep.baselines[name], "the application saw a different outcome"
            probe(sweep.telemetry)
        except AssertionError as failure:
            failures.append(f"{where}: {str(failure).splitlines()[0]}")
        except pytest.fail.Exception as failure:
            failures.append(f"{where}: {failure}")
    assert not failures, f"{len(failures)} of {len(injected)} faults showed:\n" + "\n".join(
        failures
    )
