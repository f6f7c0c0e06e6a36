"""Context across threads and tasks; instrumentation that never harms the host."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from agents_testing import Telemetry
from opentelemetry.trace import get_current_span

import otel_agents
from otel_agents import semconv as sc
from otel_agents.runtime import Observer, get_runtime


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


@otel_agents.tool
def work(item: int) -> int:
    return item * 2


def test_thread_pool_tools_nest_under_the_agent(telemetry: Telemetry) -> None:
    with otel_agents.agent("fanout") as run, ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(work, range(8))) == [i * 2 for i in range(8)]
    agent_span = telemetry.span("invoke_agent fanout")
    tools = [s for s in telemetry.spans() if s.name == "execute_tool work"]
    assert len(tools) == 8
    assert all(s.parent and s.parent.span_id == agent_span.context.span_id for s in tools)
    assert all(attrs(s)[sc.RUN_ID] == run.run_id for s in tools)
    assert attrs(agent_span)[sc.RUN_TOOL_CALLS] == 8


def test_plain_threads_carry_the_run(telemetry: Telemetry) -> None:
    with otel_agents.agent("threaded") as run:
        thread = threading.Thread(target=work, args=(1,))
        thread.start()
        thread.join()
    (tool_span,) = [s for s in telemetry.spans() if s.name == "execute_tool work"]
    assert attrs(tool_span)[sc.RUN_ID] == run.run_id


async def test_concurrent_async_runs_do_not_cross_talk(telemetry: Telemetry) -> None:
    @otel_agents.tool
    async def step(name: str, index: int) -> str:
        await asyncio.sleep(0.001)
        return f"{name}-{index}"

    async def one_run(name: str) -> str | None:
        async with otel_agents.agent(name) as run:
            for index in range(5):
                await step(name, index)
            return run.run_id

    run_ids = await asyncio.gather(*(one_run(f"agent-{i}") for i in range(20)))
    assert len(set(run_ids)) == 20
    for i, run_id in enumerate(run_ids):
        root = telemetry.span(f"invoke_agent agent-{i}")
        assert attrs(root)[sc.RUN_ID] == run_id
        assert attrs(root)[sc.RUN_TOOL_CALLS] == 5
        assert attrs(root)[sc.RUN_RETRIES] == 0
    tool_spans = [s for s in telemetry.spans() if s.name == "execute_tool step"]
    roots = {s.context.span_id: attrs(s)[sc.RUN_ID] for s in telemetry.spans() if s.parent is None}
    assert all(roots[s.parent.span_id] == attrs(s)[sc.RUN_ID] for s in tool_spans)  # type: ignore[union-attr]


def test_threads_of_many_runs(telemetry: Telemetry) -> None:
    def one_run(i: int) -> tuple[str | None, int]:
        with otel_agents.agent(f"worker-{i}") as run:
            return run.run_id, sum(work(j) for j in range(3))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one_run, range(32)))
    assert len({run_id for run_id, _ in results}) == 32
    for i in range(32):
        assert attrs(telemetry.span(f"invoke_agent worker-{i}"))[sc.RUN_TOOL_CALLS] == 3


class BrokenObserver(Observer):
    def on_tool_start(self, invocation: Any) -> None:
        raise RuntimeError("observer bug")

    def on_tool_end(self, invocation: Any) -> None:
        raise ValueError("another observer bug")


def test_a_failing_observer_does_not_reach_the_application(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    get_runtime().add_observers([BrokenObserver()])
    assert work(21) == 42
    assert work(21) == 42
    assert telemetry.span  # spans still recorded
    assert len([s for s in telemetry.spans() if s.name == "execute_tool work"]) == 2
    warnings = [r for r in caplog.records if "observer BrokenObserver.on_tool_start" in r.message]
    assert len(warnings) == 1  # logged once, not per call


def test_broken_tracer_does_not_reach_the_application(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    class ExplodingTracer:
        def start_span(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("tracer exploded")

    monkeypatch.setattr(get_runtime(), "tracer", ExplodingTracer())
    assert work(2) == 4
    with otel_agents.agent("still-works"), otel_agents.handoff(to="other") as boundary:
        boundary.accept()
    assert telemetry.spans() == []


def test_instrument_is_idempotent_and_reversible(telemetry: Telemetry) -> None:
    assert otel_agents.is_instrumented()
    otel_agents.instrument(tracer_provider=telemetry.tracer_provider, configure_sdk=False)
    assert otel_agents.is_instrumented()
    otel_agents.uninstrument()
    otel_agents.uninstrument()
    assert not otel_agents.is_instrumented()
    assert work(1) == 2  # decorated code keeps working without instrument()


def test_uninstrument_gives_threads_back_their_own_methods(telemetry: Telemetry) -> None:
    import threading
    from concurrent import futures

    def methods() -> list[object]:
        return [
            threading.Thread.__dict__["start"],
            threading.Thread.__dict__["run"],
            threading.Timer.__dict__["run"],
            futures.ThreadPoolExecutor.__dict__["submit"],
        ]

    patched = methods()
    originals = [getattr(method, "__wrapped__", None) for method in patched]
    assert all(originals), "every method wrapped"
    otel_agents.instrument(tracer_provider=telemetry.tracer_provider, configure_sdk=False)
    assert methods() == patched  # instrumenting again does not wrap twice
    otel_agents.uninstrument()
    assert methods() == originals


def test_our_thread_wrappers_under_another_instrumentation_go_quiet_and_come_back(
    telemetry: Telemetry,
) -> None:
    """Another instrumentation wraps `Thread.run` over ours: uninstrument leaves its wrapper
    in place (ours under it passes calls through), instrument again reuses ours."""
    import threading

    import wrapt

    seen: list[object] = []

    def theirs(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return wrapped(*args, **kwargs)

    ours = threading.Thread.__dict__["run"]
    wrapt.wrap_function_wrapper(threading.Thread, "run", theirs)
    try:
        otel_agents.uninstrument()
        assert threading.Thread.__dict__["run"].__wrapped__ is ours  # left in place
        with otel_agents.agent("outside"):
            thread = threading.Thread(target=lambda: seen.append(get_current_span()))
            thread.start()
            thread.join()
        assert not seen[-1].get_span_context().is_valid  # ours passed the run through
        otel_agents.instrument(tracer_provider=telemetry.tracer_provider, configure_sdk=False)
        assert threading.Thread.__dict__["run"].__wrapped__ is ours  # not wrapped twice
        with otel_agents.agent("inside") as run:
            thread = threading.Thread(target=lambda: seen.append(get_current_span()))
            thread.start()
            thread.join()
        assert seen[-1].get_span_context().span_id == run.span.get_span_context().span_id
    finally:
        threading.Thread.run = threading.Thread.__dict__["run"].__wrapped__
