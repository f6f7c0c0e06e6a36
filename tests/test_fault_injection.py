"""No internal fault escapes or lingers: every internal function of otel_agents on the call
paths of the core API (agent, tool, handoff, decision) and of the real `openai` and
`anthropic` SDKs (sync, async, streaming, over wire fixtures) is made to raise, one at a
time, and the application must see nothing: the same results, exceptions and stream chunks
as without otel-agents, the context as it was, and a later clean call recorded normally.

The functions are found by introspection (see `fault_injection.py`): a clean run of each
scenario under a profiler lists the package's functions it calls; those called straight
from application or SDK code are the boundaries (whose bodies are the guards) and are not
injected; every other one is. Under enforce + fail_closed, a fault while a tool call is
being opened must instead refuse that call (the governance verdict failing closed).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from agents_testing import Telemetry, make_telemetry
from fault_injection import WINDOW, CallPaths, FunctionIndex, InjectedFault, profile
from opentelemetry import context as otel_context
from opentelemetry import trace
from wire import (
    ScriptedResponse,
    ScriptedTransport,
    anthropic_client,
    async_anthropic_client,
    async_openai_client,
    openai_client,
)

import otel_agents
from otel_agents import semconv as sc
from otel_agents.policy import Defaults, Mode, OnError, Policy, ToolCallDenied, Verdict
from otel_agents.policy.evaluator import RULE_INTERNAL_ERROR
from otel_agents.runtime import Observer, get_runtime

OBSERVED_POLICY = """
version: 1
mode: observe
limits: {retries: {max_failures: 2, verdict: escalate}}
rules:
  - id: no-admin
    verdict: deny
    match: {tool: lookup, arguments: {vendor: admin}}
"""
OPENAI_CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Weather?"}]}
ANTHROPIC_REQUEST = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "Weather?"}],
}


# -- the application -----------------------------------------------------------------------


@otel_agents.tool(tags=["reads:vendors"])
def lookup(vendor: str) -> dict[str, str]:
    WINDOW.open = False  # the tool body runs: its opening is over
    return {"vendor": vendor, "status": "verified"}


@otel_agents.tool
def flaky(item: str) -> str:
    WINDOW.open = False
    raise ValueError(f"flaky {item}")


@otel_agents.tool
async def fetch(vendor: str) -> str:
    WINDOW.open = False
    await asyncio.sleep(0)
    return f"fetched {vendor}"


@otel_agents.agent("decorated")
def decorated_agent(value: int) -> int:
    return lookup(f"V-{value}")["vendor"].count("V")


def outcome_of(action: Callable[[], Any]) -> Any:
    """What the application sees: the value, or the exception's type and message."""
    try:
        return ("ok", action())
    except Exception as exc:
        return ("raised", type(exc).__qualname__, str(exc))


def in_window(call: Callable[[], Any]) -> Any:
    """Call a tool with the opening window marked (a fault in it must refuse the call)."""
    WINDOW.open = True
    try:
        return outcome_of(call)
    finally:
        WINDOW.open = False


def core_sync() -> Any:
    results = []
    with otel_agents.agent("planner", description="plans") as run:
        run.set_attribute("app.step", 1)
        otel_agents.decision("the vendor must be verified first", tool_name="lookup")
        results.append(in_window(lambda: lookup("V-1")))
        results.append(in_window(lambda: flaky("x")))
        results.append(in_window(lambda: flaky("x")))
        with otel_agents.tool_call_id("call_1"):
            results.append(in_window(lambda: lookup("V-2")))
        payload = {"vendor": "V-1"}
        with otel_agents.handoff(
            to="worker", payload=payload, checks={"has_vendor": lambda p: "vendor" in p}
        ) as boundary:
            with otel_agents.agent("worker"):
                results.append(in_window(lambda: lookup("V-3")))
            results.append(boundary.check("screened", True))
            boundary.accept("complete")
    results.append(outcome_of(lambda: decorated_agent(7)))
    return results


def core_async() -> Any:
    async def main() -> Any:
        results = []
        async with otel_agents.agent("async-planner"):
            WINDOW.open = True
            results.append(await fetch("V-1"))
            WINDOW.open = True
            results.append(await fetch("V-1"))
            async with otel_agents.handoff(to="async-worker", payload="text") as boundary:
                async with otel_agents.agent("async-worker"):
                    WINDOW.open = True
                    results.append(await fetch("V-2"))
                boundary.reject("not needed")
        return results

    return outcome_of(lambda: asyncio.run(main()))


def decorate_and_call() -> Any:
    def create(name: str, plan: str = "basic") -> str:
        WINDOW.open = False
        return f"{name}:{plan}"

    made = otel_agents.tool(name="create", reversible=False)(create)
    with otel_agents.agent("maker"):
        return in_window(lambda: made("acme", plan="pro"))


def scripted(*responses: ScriptedResponse) -> ScriptedTransport:
    return ScriptedTransport(list(responses))


def openai_tool_calls() -> Any:
    client = openai_client(scripted(ScriptedResponse.fixture("openai/chat_tool_calls.json")))
    with otel_agents.agent("openai-agent"):
        completion = client.chat.completions.create(**OPENAI_CHAT)
        results = [completion.__class__, completion.model_dump()]
        for call in completion.choices[0].message.tool_calls or []:
            with otel_agents.tool_call_id(call.id):
                results.append(in_window(lambda name=call.function.name: lookup(name)))
    return results


def openai_stream() -> Any:
    client = openai_client(scripted(ScriptedResponse.fixture("openai/chat_stream_tool_calls.sse")))
    with otel_agents.agent("openai-streamer"):
        stream = client.chat.completions.create(**OPENAI_CHAT, stream=True)
        with stream:
            chunks = [chunk.model_dump() for chunk in stream]
    return [stream.__class__, chunks]


def openai_raw_response() -> Any:
    transport = scripted(ScriptedResponse.fixture("openai/chat_text.json"))
    raw = openai_client(transport).chat.completions.with_raw_response.create(**OPENAI_CHAT)
    completion = raw.parse()
    return [raw.__class__, raw.headers.get("content-type"), completion.model_dump()]


def openai_streaming_response() -> Any:
    transport = scripted(ScriptedResponse.fixture("openai/chat_stream_text.sse"))
    client = openai_client(transport)
    with client.chat.completions.with_streaming_response.create(
        **OPENAI_CHAT, stream=True
    ) as response:
        stream = response.parse()
        chunks = [chunk.model_dump() for chunk in stream]
        closed_early = stream.response.is_closed
    return [stream.__class__, chunks, closed_early]


def openai_error() -> Any:
    error = ScriptedResponse.fixture("openai/error_400_invalid_request.json")
    client = openai_client(scripted(error))
    return outcome_of(lambda: client.chat.completions.create(**OPENAI_CHAT))


def openai_async_stream() -> Any:
    async def main() -> Any:
        transport = scripted(ScriptedResponse.fixture("openai/chat_stream_text.sse"))
        client = async_openai_client(transport)
        async with otel_agents.agent("async-openai"):
            stream = await client.chat.completions.create(**OPENAI_CHAT, stream=True)
            chunks = [chunk.model_dump() async for chunk in stream]
            await stream.close()
        return [stream.__class__, chunks]

    return outcome_of(lambda: asyncio.run(main()))


def anthropic_tool_use() -> Any:
    transport = scripted(ScriptedResponse.fixture("anthropic/message_thinking_tool_use.json"))
    client = anthropic_client(transport)
    with otel_agents.agent("claude-agent"):
        message = client.messages.create(**ANTHROPIC_REQUEST)
        results = [message.__class__, message.model_dump()]
        for block in message.content:
            if block.type == "tool_use":
                with otel_agents.tool_call_id(block.id):
                    results.append(in_window(lambda name=block.name: lookup(name)))
    return results


def anthropic_stream() -> Any:
    transport = scripted(ScriptedResponse.fixture("anthropic/stream_thinking_text_tool_use.sse"))
    client = anthropic_client(transport)
    with otel_agents.agent("claude-streamer"):
        stream = client.messages.create(**ANTHROPIC_REQUEST, stream=True)
        events = [event.model_dump() for event in stream]
    return [stream.__class__, events]


def anthropic_async() -> Any:
    async def main() -> Any:
        transport = scripted(ScriptedResponse.fixture("anthropic/message_thinking_tool_use.json"))
        client = async_anthropic_client(transport)
        async with otel_agents.agent("async-claude"):
            message = await client.messages.create(**ANTHROPIC_REQUEST)
        return [message.__class__, message.model_dump()]

    return outcome_of(lambda: asyncio.run(main()))


def gemini_models(*fixtures: str) -> Any:
    import httpx2
    from google import genai
    from google.genai import types

    transport = scripted(*(ScriptedResponse.fixture(name) for name in fixtures))
    return genai.Client(
        api_key="test-key",
        http_options=types.HttpOptions(
            base_url="https://generativelanguage.googleapis.com",
            httpx_client=httpx2.Client(transport=transport),
        ),
    ).models


def google_genai_function_call() -> Any:
    from google.genai import types

    models = gemini_models("google_genai/generate_thought_function_call.json")
    config = types.GenerateContentConfig(
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
    )
    with otel_agents.agent("gemini-agent"):
        response = models.generate_content(model="gemini-2.5-flash", contents="?", config=config)
        results = [response.__class__, response.model_dump()]
        for call in response.function_calls or []:
            with otel_agents.tool_call_id(call.id):
                results.append(in_window(lambda name=call.name: lookup(str(name))))
    return results


def google_genai_stream() -> Any:
    models = gemini_models("google_genai/stream_text.sse")
    with otel_agents.agent("gemini-streamer"):
        chunks = [c.model_dump() for c in models.generate_content_stream(model="m", contents="?")]
    return chunks


def bedrock_stream() -> Any:
    import boto3
    from wire import load_json_fixture
    from wire.aws import AwsResponder, Recorded

    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    fixture = "bedrock/converse_stream_reasoning_tool_use.events.json"
    AwsResponder([Recorded.events(load_json_fixture(fixture))]).attach(client)
    with otel_agents.agent("bedrock-streamer"):
        result = client.converse_stream(
            modelId="anthropic.claude-sonnet-4-20250514-v1:0",
            messages=[{"role": "user", "content": [{"text": "?"}]}],
        )
        events = list(result["stream"])
    return [sorted(result), events]


SCENARIOS: dict[str, Callable[[], Any]] = {
    "core, sync": core_sync,
    "core, async": core_async,
    "core, decorating a tool": decorate_and_call,
    "openai, tool calls": openai_tool_calls,
    "openai, stream": openai_stream,
    "openai, error": openai_error,
    "openai, raw response": openai_raw_response,
    "openai, streaming response": openai_streaming_response,
    "openai, async stream": openai_async_stream,
    "anthropic, tool use": anthropic_tool_use,
    "anthropic, stream": anthropic_stream,
    "anthropic, async": anthropic_async,
    "bedrock, stream": bedrock_stream,
}
if importlib.util.find_spec("google") is not None and importlib.util.find_spec("google.genai"):
    # google-genai 3.x needs Python 3.11
    SCENARIOS["google-genai, function call"] = google_genai_function_call
    SCENARIOS["google-genai, stream"] = google_genai_stream
TOOL_SCENARIOS = ("core, sync", "core, async", "core, decorating a tool", "openai, tool calls")


# -- the checks ----------------------------------------------------------------------------


def probe(telemetry: Telemetry) -> None:
    """A clean run after a fault: recorded normally, at the root, with its own ledger."""
    telemetry.exporter.clear()
    client = openai_client(scripted(ScriptedResponse.fixture("openai/chat_text.json")))
    with otel_agents.agent("probe"):
        client.chat.completions.create(**OPENAI_CHAT)
        lookup("probe")
    spans = {s.name: s for s in telemetry.spans()}
    root = spans["invoke_agent probe"]
    assert root.parent is None, "a later run nested under a leaked span"
    for name in ("chat gpt-4o-mini", "execute_tool lookup"):
        assert name in spans, f"a later call went unrecorded: {sorted(spans)}"
        assert spans[name].parent is not None
        assert spans[name].parent.span_id == root.context.span_id
    tool = dict(spans["execute_tool lookup"].attributes or {})
    assert tool[sc.TOOL_CALL_ATTEMPT] == 1, "a later run shared a leaked ledger"
    assert sc.POLICY_RULE not in tool or tool[sc.POLICY_RULE] != "limits.retries"


@dataclass
class Sweep:
    telemetry: Telemetry
    index: FunctionIndex
    baselines: dict[str, Any]
    paths: dict[str, CallPaths]


def instrument(telemetry: Telemetry, policy: Any) -> None:
    otel_agents.instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        configure_sdk=False,
        capture_content="SPAN_AND_EVENT",
        policy=policy,
    )


@pytest.fixture(scope="module")
def sweep() -> Iterator[Sweep]:
    otel_agents.uninstrument()
    baselines = {name: scenario() for name, scenario in SCENARIOS.items()}  # without us
    telemetry = make_telemetry()
    instrument(telemetry, OBSERVED_POLICY)
    try:
        paths = {name: profile(scenario) for name, scenario in SCENARIOS.items()}
        index = FunctionIndex()
        for found in paths.values():
            index.refresh(found.internal | found.entries)
        yield Sweep(telemetry, index, baselines, paths)
    finally:
        otel_agents.uninstrument()


def run_checked(sweep: Sweep, name: str, code: Any) -> Any:
    before = otel_context.get_current()
    WINDOW.fired.clear()
    WINDOW.fired_in_window = False
    with sweep.index.injected(code):
        try:
            seen = SCENARIOS[name]()
        except InjectedFault as fault:
            pytest.fail(f"{fault} reached the application in scenario {name!r}")
    assert otel_context.get_current() is before, f"{code.co_name} left the context changed"
    assert trace.get_current_span() is trace.INVALID_SPAN
    return seen


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
        try:
            seen = run_checked(sweep, name, code)
            assert seen == sweep.baselines[name], "the application saw a different outcome"
            probe(sweep.telemetry)
        except AssertionError as failure:
            failures.append(f"{where}: {str(failure).splitlines()[0]}")
        except pytest.fail.Exception as failure:
            failures.append(f"{where}: {failure}")
    assert not failures, f"{len(failures)} of {len(injected)} faults showed:\n" + "\n".join(
        failures
    )


ENFORCED_POLICY = Policy(
    mode=Mode.ENFORCE,
    on_error=OnError.FAIL_CLOSED,
    defaults=Defaults(irreversible=Verdict.ALLOW, over_max_records=Verdict.ALLOW),
)


class VerdictMarker(Observer):
    """Runs right after the gate: the call's verdict is in, so its opening is over."""

    def on_tool_start(self, invocation: Any) -> None:
        WINDOW.open = False


def refused(outcome: Any) -> bool:
    return outcome[:2] == ("raised", ToolCallDenied.__qualname__)


@pytest.mark.parametrize("name", ["core, sync", "core, decorating a tool", "openai, tool calls"])
def test_under_fail_closed_a_fault_before_the_verdict_refuses_the_call(
    sweep: Sweep, name: str
) -> None:
    """Each fault: a tool call opened while it fired is refused (and its body never runs);
    every other call, and everything else, is unchanged."""
    instrument(sweep.telemetry, ENFORCED_POLICY)
    get_runtime().add_observers([VerdictMarker()], at=1)  # observers[0] is the gate
    failures = []
    try:
        for code in sweep.paths[name].injectable:
            where = f"{code.co_filename.rsplit('otel_agents', 1)[-1]}:{code.co_name}"
            try:
                seen = run_checked(sweep, name, code)
                _compare_with_refusals(seen, sweep.baselines[name], WINDOW.fired_in_window)
                probe(sweep.telemetry)
            except AssertionError as failure:
                failures.append(f"{where}: {str(failure).splitlines()[0]}")
            except pytest.fail.Exception as failure:
                failures.append(f"{where}: {failure}")
    finally:
        instrument(sweep.telemetry, OBSERVED_POLICY)
    assert not failures, "\n".join(failures)


def _compare_with_refusals(seen: Any, baseline: Any, fired_in_window: bool) -> None:
    """Tool-call outcomes may differ from the baseline only by a refusal, and only when
    the fault fired while a call was being opened; then at least one call is refused."""
    seen_list = seen if isinstance(seen, list) else [seen]
    base_list = baseline if isinstance(baseline, list) else [baseline]
    assert len(seen_list) == len(base_list)
    refusals = 0
    for got, expected in zip(seen_list, base_list, strict=True):
        if got != expected:
            assert fired_in_window and isinstance(got, tuple) and refused(got), (
                f"{got!r} instead of {expected!r}"
            )
            assert RULE_INTERNAL_ERROR in got[2]
            refusals += 1
    if fired_in_window:
        assert refusals, "a fault while a call was opened, and no call was refused"


def test_a_fault_after_the_llm_span_is_made_current_does_not_leave_it_attached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The case that once left an LLM span current forever: later spans nested under it,
    later LLM calls went unrecorded, unrelated tool calls shared its trace's ledger."""
    from otel_agents.core.inference import LLMCall

    def broken(token: object) -> None:
        raise InjectedFault("deactivate")

    telemetry = make_telemetry()
    instrument(telemetry, OBSERVED_POLICY)
    try:
        monkeypatch.setattr(LLMCall, "deactivate", staticmethod(broken))
        client = openai_client(scripted(ScriptedResponse.fixture("openai/chat_text.json")))
        client.chat.completions.create(**OPENAI_CHAT)
        assert trace.get_current_span() is trace.INVALID_SPAN
        monkeypatch.undo()
        lookup("same")
        lookup("same")
        attempts = [
            dict(s.attributes or {}).get(sc.TOOL_CALL_ATTEMPT, 1)
            for s in telemetry.spans()
            if s.name == "execute_tool lookup"
        ]
        assert attempts == [1, 1]
        probe(telemetry)
    finally:
        otel_agents.uninstrument()
