"""Overhead of otel-agents on a LangGraph run: one agent step (a model call that asks for a
tool, the tool call through `ToolNode`, the model's answer) in a `create_react_agent` graph,
against the same run uninstrumented and, when installed, under the peers' LangChain
instrumentations (OpenInference, OpenLLMetry).

    python benchmarks/bench_langgraph.py [--runs N] [--repeat R] [--peers]
    python benchmarks/bench_langgraph.py --callgrind 5,25 [--peers]

The real langgraph and langchain-core with a scripted chat model behind LangChain's model
interface (no HTTP: the graph and the callbacks are what is measured); the real
OpenTelemetry SDK with a span processor that keeps nothing. Each row is the best of R repeats
of N runs, in wall-clock and CPU milliseconds per run. `--peers` adds the peers' rows (run
it in the peer virtualenv, see README.md); each peer runs alone, then beside otel-agents,
and the run's cost on our root span is checked to be the same as with otel-agents alone.

With `--callgrind N1,N2` it counts instructions per run instead (what the machine's load does
not move): each variant in a fresh process under valgrind's callgrind, once with N1 and once
with N2 runs after the same warm-up (`callgrind.instructions_per_call`).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import otel_agents
from otel_agents import semconv as sc

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from langgraph.prebuilt import create_react_agent


class RootCostExporter(SpanExporter):
    """Keeps the run cost of the last root agent span, and the last run's span tree."""

    def __init__(self) -> None:
        self.run_cost: object = None
        self.tree: list[tuple[str, str | None]] = []
        self._open: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._open.extend(spans)
        for span in spans:
            if span.attributes and sc.RUN_COST_USD in span.attributes:
                self.run_cost = span.attributes[sc.RUN_COST_USD]
                names = {s.context.span_id: s.name for s in self._open}
                self.tree = sorted(
                    (s.name, names.get(s.parent.span_id) if s.parent else None) for s in self._open
                )
                self._open = []
        return SpanExportResult.SUCCESS


TOOL_CALL = AIMessage(
    "",
    tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}],
    usage_metadata={"input_tokens": 20, "output_tokens": 5, "total_tokens": 25},
)
ANSWER = AIMessage(
    "Sunny.",
    usage_metadata={"input_tokens": 30, "output_tokens": 2, "total_tokens": 32},
)


class ScriptedModel(BaseChatModel):
    """A tool call first, the answer once the tool has answered; priced by an override
    (`PRICES`), recorded from LangChain's callbacks (no client underneath)."""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        return {"ls_provider": "scripted", "ls_model_name": "scripted-1"}

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> ChatResult:
        message = ANSWER if messages[-1].type == "tool" else TOOL_CALL
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:  # type: ignore[override]
        return self


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


def make_graph() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_react_agent(ScriptedModel(), [get_weather], name="weather")


class NoOpHandler(BaseCallbackHandler):
    """A callback handler that does nothing: what LangChain itself spends once any handler
    listens (it builds run managers and reports every run), which every tracer pays."""

    run_inline = True


def measure(graph: Any, runs: int, repeat: int, config: Any = None) -> tuple[float, float]:
    """Milliseconds per run, wall clock and CPU: the best of `repeat` loops."""
    question = {"messages": [("user", "Weather in Paris?")]}
    for _ in range(5):  # warm up: first calls compile schemas and fill caches
        graph.invoke(question, config)
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(runs):
            result = graph.invoke(question, config)
            assert result["messages"][-1].content == "Sunny."
        walls.append((time.perf_counter() - wall) / runs * 1e3)
        cpus.append((time.process_time() - cpu) / runs * 1e3)
    return min(walls), min(cpus)


def _provider(exporter: SpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _peers() -> list[tuple[str, Callable[[TracerProvider], Any]]]:
    """(name, instrument(provider) -> instrumentor) for each installed peer."""
    found: list[tuple[str, Callable[[TracerProvider], Any]]] = []
    try:
        from openinference.instrumentation.langchain import LangChainInstrumentor

        def openinference(provider: TracerProvider) -> Any:
            instrumentor = LangChainInstrumentor()
            instrumentor.instrument(tracer_provider=provider)
            return instrumentor

        found.append(("OpenInference", openinference))
    except ImportError:
        print("OpenInference (openinference-instrumentation-langchain): not installed")
    try:
        from opentelemetry.instrumentation.langchain import LangchainInstrumentor

        def openllmetry(provider: TracerProvider) -> Any:
            instrumentor = LangchainInstrumentor()
            instrumentor.instrument(tracer_provider=provider)
            return instrumentor

        found.append(("OpenLLMetry", openllmetry))
    except ImportError:
        print("OpenLLMetry (opentelemetry-instrumentation-langchain): not installed")
    return found


PRICES = {"scripted-1": {"input": 0.15, "output": 0.60}}  # USD per million tokens


def _ours(exporter: RootCostExporter) -> None:
    otel_agents.instrument(
        tracer_provider=_provider(exporter),
        meter_provider=MeterProvider(),
        configure_sdk=False,
        prices=PRICES,
    )


PEERS = ("OpenInference", "OpenLLMetry")
VARIANTS = ("uninstrumented", "a no-op callback handler", "otel-agents")


def _single(variant: str, runs: int) -> None:
    """A child under callgrind: set `variant` up, warm up, make `runs` runs. Exits 2 (the
    benchmarks' "not installed") when a peer is missing."""
    graph, config = make_graph(), None
    if variant == "a no-op callback handler":
        config = {"callbacks": [NoOpHandler()]}
    peer = variant.split(" + ")[0]
    if peer in PEERS:
        installed = dict(_peers())
        if peer not in installed:
            sys.exit(2)
        installed[peer](_provider(RootCostExporter()))
    if variant.endswith("otel-agents"):
        _ours(RootCostExporter())
    question = {"messages": [("user", "Weather in Paris?")]}
    for _ in range(5 + runs):
        graph.invoke(question, config)


def _instructions(n1: int, n2: int, peers: bool) -> None:
    from callgrind import instructions_per_call

    variants = [*VARIANTS, *(v for p in PEERS for v in (p, f"{p} + otel-agents") if peers)]
    counts: dict[str, float | None] = {}
    for variant in variants:
        counts[variant] = instructions_per_call(
            lambda runs, v=variant: [sys.executable, __file__, "--single", v, "--runs", str(runs)],
            n1,
            n2,
        )
    base = counts["uninstrumented"]
    assert base is not None
    print("| variant | instructions/run | added over uninstrumented | x uninstrumented |")
    print("|---|---:|---:|---:|")
    for variant, count in counts.items():
        if count is None:
            print(f"| {variant} | not installed | | |")
        else:
            print(f"| {variant} | {count:,.0f} | {count - base:,.0f} | {count / base:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--peers", action="store_true")
    parser.add_argument("--callgrind", metavar="N1,N2", help="count instructions instead")
    parser.add_argument("--single", help=argparse.SUPPRESS)  # a child under callgrind
    options = parser.parse_args()
    if options.single:
        _single(options.single, options.runs)
        return
    if options.callgrind:
        n1, n2 = (int(n) for n in options.callgrind.split(","))
        _instructions(n1, n2, options.peers)
        return
    graph = make_graph()
    rows: list[tuple[str, tuple[float, float]]] = []

    rows.append(("langgraph, uninstrumented", measure(graph, options.runs, options.repeat)))
    listening = {"callbacks": [NoOpHandler()]}
    rows.append(
        ("a no-op callback handler", measure(graph, options.runs, options.repeat, listening))
    )
    alone = RootCostExporter()
    _ours(alone)
    rows.append(("otel-agents", measure(graph, options.runs, options.repeat)))
    otel_agents.uninstrument()
    print(f"otel-agents: run cost on the root span {alone.run_cost} USD, spans {alone.tree}")

    for name, instrument in _peers() if options.peers else []:
        peer = instrument(_provider(RootCostExporter()))
        rows.append((name, measure(graph, options.runs, options.repeat)))
        beside = RootCostExporter()
        _ours(beside)
        rows.append((f"{name} + otel-agents", measure(graph, options.runs, options.repeat)))
        otel_agents.uninstrument()
        peer.uninstrument()
        same = beside.run_cost == alone.run_cost and beside.tree == alone.tree
        print(f"{name} beside otel-agents: run cost {beside.run_cost} (alone {alone.run_cost}),"
              f" our span tree {'the same' if same else f'DIFFERENT: {beside.tree}'}")  # fmt: skip

    bare = rows[0][1]
    print(f"{'variant':<36}{'wall ms/run':>12}{'CPU ms/run':>12}{'CPU over bare':>15}")
    for name, (wall, cpu) in rows:
        print(f"{name:<36}{wall:>12.2f}{cpu:>12.2f}{cpu - bare[1]:>15.2f}")


if __name__ == "__main__":
    main()
