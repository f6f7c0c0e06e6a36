"""LangGraph / LangChain, run for real (graphs, `create_react_agent`, `ToolNode`, `@tool`,
`Command`, `interrupt()` with a checkpointer) with a scripted chat model behind LangChain's
real model interface, and `ChatOpenAI` over the real `openai` client and a scripted HTTP
transport; traced by the real OpenTelemetry SDK."""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import pytest

pytest.importorskip("langgraph.pregel")

from agents_testing import DENY_POLICY, Telemetry, instrumented, run_docs_example
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool, InjectedToolCallId, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command, interrupt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from pydantic import Field

from otel_agents import semconv as sc
from otel_agents.errors import Intervention
from otel_agents.integrations import langgraph as integration


def create_react_agent(*args: Any, **kwargs: Any) -> Any:
    """The prebuilt agent (deprecated in favour of `langchain.agents.create_agent`, which
    is built on it; `langchain` is not a dependency here)."""
    from langgraph.prebuilt import create_react_agent as prebuilt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prebuilt(*args, **kwargs)


class ScriptedChatModel(BaseChatModel):
    """Answers with the scripted messages in turn and keeps what it was sent."""

    responses: list[AIMessage]
    seen: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(list(messages))
        message = self.responses[len(self.seen) - 1]
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override]
        return self


class GroqLikeChatModel(ScriptedChatModel):
    """Says it is Groq's (LangChain's `ls_provider`): a provider the conventions name and
    no adapter of ours traces, so its calls are recorded from the callbacks."""

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        return {**params, "ls_provider": "groq", "ls_temperature": 0.2, "ls_max_tokens": 64}


def _call(name: str, args: dict[str, Any], call_id: str, text: str = "") -> AIMessage:
    return AIMessage(
        text,
        tool_calls=[{"name": name, "args": args, "id": call_id}],
        usage_metadata={"input_tokens": 10, "output_tokens": 3, "total_tokens": 13},
    )


def _text(text: str) -> AIMessage:
    return AIMessage(
        text, usage_metadata={"input_tokens": 12, "output_tokens": 1, "total_tokens": 13}
    )


@pytest.fixture
def telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    yield from instrumented(monkeypatch)


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


DELETED: list[str] = []


@tool
def delete_records(table: str) -> str:
    """Delete every record of a table."""
    DELETED.append(table)
    return "deleted"


FLAKY_CALLS: list[str] = []


@tool
def flaky_lookup(key: str) -> str:
    """A lookup that always fails."""
    FLAKY_CALLS.append(key)
    raise RuntimeError("backend unavailable")


def _by_id(telemetry: Telemetry) -> dict[int, ReadableSpan]:
    return {span.context.span_id: span for span in telemetry.spans()}


def _parent_name(span: ReadableSpan, telemetry: Telemetry) -> str | None:
    parent = _by_id(telemetry).get(span.parent.span_id) if span.parent else None
    return parent.name if parent is not None else None


def _tree(telemetry: Telemetry) -> list[tuple[str, str | None]]:
    return sorted((span.name, _parent_name(span, telemetry)) for span in telemetry.spans())


def _calc_agent() -> Any:
    model = ScriptedChatModel(
        responses=[_call("add", {"a": 1, "b": 2}, "call_1", "I will add them."), _text("3")]
    )
    return create_react_agent(model, [add], name="calc")


CHAT = "chat scripted"
REACT_TREE = [
    (CHAT, "invoke_agent calc"),
    (CHAT, "invoke_agent calc"),
    ("execute_tool add", "invoke_agent calc"),
    ("invoke_agent calc", None),
]


def _assert_react_run(telemetry: Telemetry) -> None:
    assert _tree(telemetry) == REACT_TREE
    tool_span = telemetry.span("execute_tool add")
    assert tool_span.attributes[sc.GEN_AI_TOOL_CALL_ID] == "call_1"
    first_chat = min(
        (s for s in telemetry.spans() if s.name == CHAT), key=lambda s: s.start_time or 0
    )
    assert [link.context.span_id for link in tool_span.links] == [first_chat.context.span_id]
    assert first_chat.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 10
    root = telemetry.span("invoke_agent calc")
    assert root.attributes[sc.RUN_LLM_CALLS] == 2
    assert root.attributes[sc.RUN_TOOL_CALLS] == 1
    assert root.attributes[sc.RUN_USAGE_INPUT_TOKENS] == 22
    assert root.attributes[sc.RUN_USAGE_OUTPUT_TOKENS] == 4
    run_ids = {s.attributes[sc.RUN_ID] for s in telemetry.spans()}
    assert run_ids == {root.attributes[sc.RUN_ID]}


def test_react_agent_span_tree_and_decision_path(telemetry: Telemetry) -> None:
    result = _calc_agent().invoke({"messages": [("user", "1+2?")]})

    assert result["messages"][-1].content == "3"
    assert result["messages"][-2].content == "3"  # the tool's answer, untouched
    _assert_react_run(telemetry)


def test_async_run_has_the_same_tree(telemetry: Telemetry) -> None:
    result = asyncio.run(_calc_agent().ainvoke({"messages": [("user", "1+2?")]}))

    assert result["messages"][-1].content == "3"
    _assert_react_run(telemetry)


def test_concurrent_async_runs_do_not_cross_talk(telemetry: Telemetry) -> None:
    def agent(name: str, call_id: str) -> Any:
        model = ScriptedChatModel(
            responses=[_call("add", {"a": 1, "b": 1}, call_id), _text(f"done {name}")]
        )
        return create_react_agent(model, [add], name=name)

    async def both() -> list[Any]:
        runs = [agent(n, f"call_{n}").ainvoke({"messages": [("user", n)]}) for n in "xy"]
        return list(await asyncio.gather(*runs))

    results = asyncio.run(both())

    assert [r["messages"][-1].content for r in results] == ["done x", "done y"]
    for name in "xy":
        root = telemetry.span(f"invoke_agent {name}")
        children = [
            s for s in telemetry.spans() if s.parent and s.parent.span_id == root.context.span_id
        ]
        assert sorted(s.name for s in children) == [CHAT, CHAT, "execute_tool add"]
        [tool_span] = [s for s in children if s.name == "execute_tool add"]
        assert tool_span.attributes[sc.GEN_AI_TOOL_CALL_ID] == f"call_{name}"


def test_tool_body_runs_with_its_span_current(telemetry: Telemetry) -> None:
    inner_model = ScriptedChatModel(responses=[_text("a summary")])
    seen_in_body: list[str] = []

    @tool
    def summarize(topic: str) -> str:
        """Summarize a topic with a second model."""
        seen_in_body.append(getattr(trace.get_current_span(), "name", ""))
        return str(inner_model.invoke(topic).content)

    model = ScriptedChatModel(
        responses=[_call("summarize", {"topic": "otel"}, "call_s"), _text("done")]
    )
    create_react_agent(model, [summarize], name="writer").invoke({"messages": [("user", "go")]})

    assert seen_in_body == ["execute_tool summarize"]
    inner = [s for s in telemetry.spans() if _parent_name(s, telemetry) == "execute_tool summarize"]
    assert [s.name for s in inner] == [CHAT]


def test_subgraph_and_marked_node_are_nested_agents(telemetry: Telemetry) -> None:
    researcher = create_react_agent(
        ScriptedChatModel(responses=[_text("found it")]), [], name="researcher"
    )
    reviewer_model = ScriptedChatModel(responses=[_text("looks good")])

    # Chains in chains inside the node all inherit its metadata: only the node is the agent.
    ask = RunnableLambda(lambda messages: reviewer_model.invoke(messages))
    review_chain = RunnableLambda(lambda messages: ask.invoke(messages))

    def review(state: MessagesState) -> dict[str, Any]:
        return {"messages": [review_chain.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("research", researcher)
    builder.add_node("review", review, metadata={integration.AGENT_METADATA_KEY: "reviewer"})
    builder.add_node("format", lambda state: {"messages": []})
    builder.add_edge(START, "research")
    builder.add_edge("research", "review")
    builder.add_edge("review", "format")
    builder.add_edge("format", END)
    builder.compile(name="team").invoke({"messages": [("user", "check this")]})

    assert _tree(telemetry) == [
        (CHAT, "invoke_agent researcher"),
        (CHAT, "invoke_agent reviewer"),
        ("invoke_agent researcher", "invoke_agent team"),
        ("invoke_agent reviewer", "invoke_agent team"),
        ("invoke_agent team", None),
    ]
    assert telemetry.span("invoke_agent team").attributes[sc.RUN_LLM_CALLS] == 2



def test_tool_denied_by_policy_never_runs_and_the_model_sees_a_tool_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    DELETED.clear()
    for telemetry in instrumented(monkeypatch, policy=DENY_POLICY):
        model = ScriptedChatModel(
            responses=[
                _call("delete_records", {"table": "users"}, "call_d1"),
                _text("I may not delete records."),
            ]
        )
        agent = create_react_agent(model, [delete_records], name="janitor")

        result = agent.invoke({"messages": [("user", "Clean the users table")]})

        assert DELETED == []
        assert result["messages"][-1].content == "I may not delete records."
        [answer] = [m for m in model.seen[1] if isinstance(m, ToolMessage)]
        assert answer.status == "error" and answer.tool_call_id == "call_d1"
        assert "not run" in str(answer.content) and "no-deletes" in str(answer.content)
        tool_span = telemetry.span("execute_tool delete_records")
        assert tool_span.attributes[sc.POLICY_VERDICT] == "deny"
        assert tool_span.attributes[sc.GEN_AI_TOOL_CALL_ID] == "call_d1"


def test_denied_tool_called_directly_raises_the_intervention(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    DELETED.clear()
    for _ in instrumented(monkeypatch, policy=DENY_POLICY):
        with pytest.raises(Intervention):
            delete_records.invoke({"table": "users"})
        assert DELETED == []


def test_agent_retrying_a_failing_tool_trips_the_retry_detector(telemetry: Telemetry) -> None:
    FLAKY_CALLS.clear()
    script = [_call("flaky_lookup", {"key": "acct-7"}, f"call_r{n}") for n in range(4)]
    model = ScriptedChatModel(responses=[*script, _text("Giving up.")])
    tools = ToolNode([flaky_lookup], handle_tool_errors=True)
    agent = create_react_agent(model, tools, name="stubborn")

    result = agent.invoke({"messages": [("user", "Look acct-7 up")]})

    assert result["messages"][-1].content == "Giving up."
    assert FLAKY_CALLS == ["acct-7"] * 4
    spans = [s for s in telemetry.spans() if s.name == "execute_tool flaky_lookup"]
    assert sorted(s.attributes[sc.TOOL_CALL_ATTEMPT] for s in spans) == [1, 2, 3, 4]
    assert all(s.status.status_code == trace.StatusCode.ERROR for s in spans)
    flagged = [s for s in spans if "retry_loop" in (s.attributes.get(sc.ANOMALY) or ())]
    assert flagged, [dict(s.attributes) for s in spans]
    root = telemetry.span("invoke_agent stubborn")
    assert root.attributes[sc.RUN_TOOL_FAILURES] == 4
    assert root.attributes[sc.RUN_ANOMALIES] >= 1


class Bounces(MessagesState):
    bounces: int


def test_command_goto_between_nodes_is_a_handoff_and_ping_pong_is_found(
    telemetry: Telemetry,
) -> None:
    def bounce(to: str) -> Any:
        def node(state: Bounces) -> Command[str]:
            done = state.get("bounces", 0) >= 5
            return Command(
                goto=END if done else to, update={"bounces": state.get("bounces", 0) + 1}
            )

        return node

    builder = StateGraph(Bounces)
    builder.add_node("planner", bounce("critic"), destinations=("critic", END))
    builder.add_node("critic", bounce("planner"), destinations=("planner", END))
    builder.add_edge(START, "planner")
    builder.compile(name="loop").invoke({"messages": [], "bounces": 0})

    handoffs = [s for s in telemetry.spans() if s.name.startswith("handoff ")]
    pairs = [(s.attributes[sc.HANDOFF_FROM], s.attributes[sc.HANDOFF_TO]) for s in handoffs]
    assert sorted(pairs) == sorted(
        [("planner", "critic"), ("critic", "planner")] * 2 + [("planner", "critic")]
    )
    assert all(s.attributes[sc.HANDOFF_ACCEPTED] is True for s in handoffs)
    assert {_parent_name(s, telemetry) for s in handoffs} == {"invoke_agent loop"}
    flagged = [s for s in handoffs if "handoff_ping_pong" in (s.attributes.get(sc.ANOMALY) or ())]
    assert len(flagged) == 1
    root = telemetry.span("invoke_agent loop")
    assert root.attributes[sc.RUN_HANDOFFS] == 5


def test_handoff_tool_to_a_sibling_agent_is_a_boundary(telemetry: Telemetry) -> None:
    @tool
    def transfer_to_billing(tool_call_id: Annotated[str, InjectedToolCallId]) -> Command[str]:
        """Hand the customer over to billing."""
        answer = ToolMessage("Transferred to billing", tool_call_id=tool_call_id)
        return Command(goto="billing", graph=Command.PARENT, update={"messages": [answer]})

    triage = create_react_agent(
        ScriptedChatModel(responses=[_call("transfer_to_billing", {}, "call_h1")]),
        [transfer_to_billing],
        name="triage",
    )
    billing = create_react_agent(
        ScriptedChatModel(responses=[_text("Your invoice is paid.")]), [], name="billing"
    )
    builder = StateGraph(MessagesState)
    builder.add_node("triage", triage, destinations=("billing",))
    builder.add_node("billing", billing)
    builder.add_edge(START, "triage")
    result = builder.compile(name="desk").invoke({"messages": [("user", "my invoice?")]})

    assert result["messages"][-1].content == "Your invoice is paid."
    handoff = telemetry.span("handoff billing")
    assert handoff.attributes[sc.HANDOFF_FROM] == "triage"
    assert handoff.attributes[sc.HANDOFF_PAYLOAD_SUMMARY] == "dict with 1 key: messages"
    assert handoff.attributes[sc.HANDOFF_ACCEPTED] is True
    assert _parent_name(handoff, telemetry) == "invoke_agent triage"
    triage_span = telemetry.span("invoke_agent triage")
    assert triage_span.status.status_code != trace.StatusCode.ERROR
    assert (
        telemetry.span("execute_tool transfer_to_billing").attributes[sc.GEN_AI_TOOL_CALL_ID]
        == "call_h1"
    )
    assert _parent_name(telemetry.span("invoke_agent billing"), telemetry) == "invoke_agent desk"


def test_interrupt_waits_for_a_human_and_the_resume_continues_the_run(
    telemetry: Telemetry,
) -> None:
    def draft(state: MessagesState) -> dict[str, Any]:
        return {"messages": [("ai", "draft ready")]}

    def approve(state: MessagesState) -> dict[str, Any]:
        answer = interrupt("Send the draft?")
        return {"messages": [("ai", f"approved: {answer}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("draft", draft)
    builder.add_node("approve", approve)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "approve")
    graph = builder.compile(name="mailer", checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "thread-1"}}

    paused = graph.invoke({"messages": [("user", "write it")]}, config)
    assert "__interrupt__" in paused
    [first] = telemetry.spans()
    assert first.attributes[sc.APPROVAL_STATUS] == "pending"
    assert first.status.status_code != trace.StatusCode.ERROR
    assert sc.RUN_RESUMED not in first.attributes

    resumed = graph.invoke(Command(resume="yes"), config)

    assert resumed["messages"][-1].content == "approved: yes"
    second = [s for s in telemetry.spans() if s is not first and s.name == "invoke_agent mailer"]
    assert len(second) == 1
    assert second[0].attributes[sc.RUN_ID] == first.attributes[sc.RUN_ID]
    assert second[0].attributes[sc.RUN_RESUMED] is True
    assert sc.APPROVAL_STATUS not in second[0].attributes
    assert first.attributes[sc.GEN_AI_CONVERSATION_ID] == "thread-1"

    graph.invoke({"messages": [("user", "another")]}, {"configurable": {"thread_id": "t2"}})
    third = [s for s in telemetry.spans() if s.name == "invoke_agent mailer"][-1]
    assert third.attributes[sc.RUN_ID] != first.attributes[sc.RUN_ID]


def test_uninstrument_restores_every_hook_and_stops_recording(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langchain_core.callbacks.base import BaseCallbackManager

    before = (BaseTool.__dict__["run"], BaseCallbackManager.__dict__["__init__"])
    session = instrumented(monkeypatch)
    telemetry = next(session)
    assert BaseTool.__dict__["run"] is not before[0]
    with pytest.raises(StopIteration):
        next(session)  # uninstrument()
    assert (BaseTool.__dict__["run"], BaseCallbackManager.__dict__["__init__"]) == before
    result = _calc_agent().invoke({"messages": [("user", "1+2?")]})
    assert result["messages"][-1].content == "3"
    assert telemetry.spans() == []


def test_disabled_by_the_standard_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "otel_agents_langgraph")
    for telemetry in instrumented(monkeypatch):
        _calc_agent().invoke({"messages": [("user", "1+2?")]})
        assert telemetry.spans() == []


# -- ChatOpenAI over the real openai client: the openai adapter's one span per call -------


def _completion(number: int, message: dict[str, Any], finish: str) -> Any:
    from wire import ScriptedResponse

    return ScriptedResponse.json(
        {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "created": 1753948861,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57},
        }
    )


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_chat_openai_calls_are_recorded_once_by_the_openai_adapter(
    telemetry: Telemetry, mode: str
) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    from wire import AsyncScriptedTransport, ScriptedTransport, async_openai_client, openai_client

    tool_call = {
        "id": "call_w1",
        "type": "function",
        "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'},
    }
    replies = [
        _completion(
            1, {"role": "assistant", "content": None, "tool_calls": [tool_call]}, "tool_calls"
        ),
        _completion(2, {"role": "assistant", "content": "5"}, "stop"),
    ]
    if mode == "sync":
        client = openai_client(ScriptedTransport(replies))
        clients = {"client": client.chat.completions, "root_client": client}
    else:
        aclient = async_openai_client(AsyncScriptedTransport(replies))
        clients = {"async_client": aclient.chat.completions, "root_async_client": aclient}
    model = langchain_openai.ChatOpenAI(model="gpt-4o-mini", api_key="test", **clients)
    agent = create_react_agent(model, [add], name="calc")
    question = {"messages": [("user", "2+3")]}

    result = agent.invoke(question) if mode == "sync" else asyncio.run(agent.ainvoke(question))

    assert result["messages"][-1].content == "5"
    assert _tree(telemetry) == [
        ("chat gpt-4o-mini", "invoke_agent calc"),
        ("chat gpt-4o-mini", "invoke_agent calc"),
        ("execute_tool add", "invoke_agent calc"),
        ("invoke_agent calc", None),
    ]
    chats = sorted(
        (s for s in telemetry.spans() if s.name == "chat gpt-4o-mini"),
        key=lambda s: s.start_time or 0,
    )
    assert [s.attributes[sc.GEN_AI_RESPONSE_ID] for s in chats] == ["chatcmpl-1", "chatcmpl-2"]
    tool_span = telemetry.span("execute_tool add")
    assert tool_span.attributes[sc.GEN_AI_TOOL_CALL_ID] == "call_w1"
    assert [link.context.span_id for link in tool_span.links] == [chats[0].context.span_id]
    assert telemetry.span("invoke_agent calc").attributes[sc.RUN_LLM_CALLS] == 2


def test_the_docs_example_runs_as_written(tmp_path: Path) -> None:
    said, lines = run_docs_example(
        "frameworks.md", "## LangGraph and LangChain", "### Example", tmp_path=tmp_path
    )
    assert said.strip() == "Sunny in Paris."
    assert any(line.startswith("agent    weather") for line in lines), lines
    assert any(line.startswith("tool     get_weather ✓") for line in lines), lines
    llm_lines = [line for line in lines if line.startswith("llm ")]
    assert len(llm_lines) == 2 and "20→5 tok" in llm_lines[0], lines


def test_content_is_captured_when_asked_and_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"
    for telemetry in instrumented(monkeypatch, capture_content="SPAN_ONLY"):
        model = ScriptedChatModel(
            responses=[_call("add", {"a": 1, "b": 2}, "call_c1", "Adding."), _text("3")]
        )
        agent = create_react_agent(model, [add], prompt="You add numbers.", name="calc")
        agent.invoke({"messages": [("user", f"1+2? my key is {secret}")]})

        first, second = sorted(
            (s for s in telemetry.spans() if s.name == CHAT), key=lambda s: s.start_time or 0
        )
        sent = json.loads(str(first.attributes[sc.GEN_AI_INPUT_MESSAGES]))
        assert sent == [
            {"role": "user", "parts": [{"type": "text", "content": "1+2? my key is [REDACTED]"}]}
        ]
        system = json.loads(str(first.attributes[sc.GEN_AI_SYSTEM_INSTRUCTIONS]))
        assert system == [{"type": "text", "content": "You add numbers."}]
        answered = json.loads(str(first.attributes[sc.GEN_AI_OUTPUT_MESSAGES]))
        assert answered == [
            {
                "role": "assistant",
                "parts": [
                    {"type": "text", "content": "Adding."},
                    {
                        "type": "tool_call",
                        "id": "call_c1",
                        "name": "add",
                        "arguments": {"a": 1, "b": 2},
                    },
                ],
                "finish_reason": "tool_calls",
            }
        ]
        history = json.loads(str(second.attributes[sc.GEN_AI_INPUT_MESSAGES]))
        assert history[-1] == {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": "call_c1", "response": "3"}],
        }
        assert secret not in str([dict(s.attributes) for s in telemetry.spans()])


def test_content_is_not_built_when_capture_is_off(telemetry: Telemetry) -> None:
    _calc_agent().invoke({"messages": [("user", "1+2?")]})
    for span in telemetry.spans():
        assert sc.GEN_AI_INPUT_MESSAGES not in span.attributes
        assert sc.GEN_AI_OUTPUT_MESSAGES not in span.attributes


def test_streamed_messages_give_the_same_tree_sync_and_async(telemetry: Telemetry) -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    def streaming_graph() -> Any:
        model = GenericFakeChatModel(messages=iter([AIMessage("three words here")]))

        def answer(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
            # `config` passed on: on Python 3.10 LangGraph cannot hand it to a call made in
            # an async run by itself (its documented requirement), and the call would then
            # be no part of the graph's run, for LangChain and so for us.
            return {"messages": [model.invoke(state["messages"], config)]}

        builder = StateGraph(MessagesState)
        builder.add_node("answer", answer)
        builder.add_edge(START, "answer")
        return builder.compile(name="streamer")

    chunks = [
        chunk.content
        for chunk, _ in streaming_graph().stream(
            {"messages": [("user", "hi")]}, stream_mode="messages"
        )
    ]

    async def streamed() -> list[Any]:
        graph = streaming_graph()
        stream = graph.astream({"messages": [("user", "hi")]}, stream_mode="messages")
        return [chunk.content async for chunk, _ in stream]

    async_chunks = asyncio.run(streamed())

    assert "".join(chunks) == "".join(async_chunks) == "three words here"
    assert len(chunks) > 1  # streamed token by token, as without us
    assert _tree(telemetry) == [
        ("chat generic-fake-chat-model", "invoke_agent streamer"),
        ("chat generic-fake-chat-model", "invoke_agent streamer"),
        ("invoke_agent streamer", None),
        ("invoke_agent streamer", None),
    ]


def test_interrupt_inside_a_tool_is_not_a_tool_failure(telemetry: Telemetry) -> None:
    @tool
    def wire_money(amount: int) -> str:
        """Wire money, after a human said yes."""
        answer = interrupt(f"Wire {amount}?")
        return f"wired: {answer}"

    model = ScriptedChatModel(
        responses=[_call("wire_money", {"amount": 5}, "call_m1"), _text("Done.")]
    )
    agent = create_react_agent(model, [wire_money], name="payer", checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "pay-1"}}

    agent.invoke({"messages": [("user", "pay 5")]}, config)
    paused_tool = telemetry.span("execute_tool wire_money")
    assert paused_tool.status.status_code != trace.StatusCode.ERROR
    root = telemetry.span("invoke_agent payer")
    assert root.attributes[sc.APPROVAL_STATUS] == "pending"
    assert root.attributes[sc.RUN_TOOL_FAILURES] == 0

    result = agent.invoke(Command(resume="approved"), config)

    assert result["messages"][-1].content == "Done."
    tools = [s for s in telemetry.spans() if s.name == "execute_tool wire_money"]
    assert len(tools) == 2 and all(s.attributes[sc.GEN_AI_TOOL_CALL_ID] == "call_m1" for s in tools)
    roots = [s for s in telemetry.spans() if s.name == "invoke_agent payer"]
    assert {s.attributes[sc.RUN_ID] for s in roots} == {root.attributes[sc.RUN_ID]}


def test_a_plain_chain_is_no_agent_and_nests_under_the_current_one(telemetry: Telemetry) -> None:
    from langchain_core.prompts import ChatPromptTemplate

    import otel_agents

    model = ScriptedChatModel(responses=[_call("add", {"a": 2, "b": 2}, "call_p1")])
    chain = ChatPromptTemplate.from_messages([("user", "{question}")]) | model

    with otel_agents.agent("app"):
        message = chain.invoke({"question": "2+2?"})
        answer = add.invoke(message.tool_calls[0])

    assert answer.content == "4" and answer.tool_call_id == "call_p1"
    assert _tree(telemetry) == [
        (CHAT, "invoke_agent app"),
        ("execute_tool add", "invoke_agent app"),
        ("invoke_agent app", None),
    ]
    tool_span = telemetry.span("execute_tool add")
    assert [link.context.span_id for link in tool_span.links] == [
        telemetry.span(CHAT).context.span_id
    ]


def test_a_failing_node_raises_unchanged_and_the_run_is_an_error(telemetry: Telemetry) -> None:
    failure = ValueError("no vendor record")

    def broken(state: MessagesState) -> dict[str, Any]:
        raise failure

    builder = StateGraph(MessagesState)
    builder.add_node("broken", broken)
    builder.add_edge(START, "broken")

    with pytest.raises(ValueError) as raised:
        builder.compile(name="fragile").invoke({"messages": [("user", "go")]})

    assert raised.value is failure
    root = telemetry.span("invoke_agent fragile")
    assert root.status.status_code == trace.StatusCode.ERROR
    assert root.attributes[sc.ERROR_TYPE] == "ValueError"


def test_parallel_tool_calls_each_get_their_span_and_call_id(telemetry: Telemetry) -> None:
    calls = [{"name": "add", "args": {"a": n, "b": n}, "id": f"call_{n}"} for n in range(1, 4)]
    first = AIMessage("", tool_calls=calls, usage_metadata=_text("").usage_metadata)
    model = ScriptedChatModel(responses=[first, _text("done")])

    create_react_agent(model, [add], name="calc").invoke({"messages": [("user", "go")]})

    tools = [s for s in telemetry.spans() if s.name == "execute_tool add"]
    assert sorted(str(s.attributes[sc.GEN_AI_TOOL_CALL_ID]) for s in tools) == [
        "call_1",
        "call_2",
        "call_3",
    ]
    assert {_parent_name(s, telemetry) for s in tools} == {"invoke_agent calc"}
    first_chat = min(
        (s for s in telemetry.spans() if s.name == CHAT), key=lambda s: s.start_time or 0
    )
    assert all(
        [link.context.span_id for link in s.links] == [first_chat.context.span_id] for s in tools
    )


def test_a_stream_abandoned_early_still_ends_the_run(telemetry: Telemetry) -> None:
    stream = _calc_agent().stream({"messages": [("user", "1+2?")]}, stream_mode="updates")
    next(iter(stream))
    stream.close()

    root = telemetry.span("invoke_agent calc")
    assert root.end_time is not None
    assert root.status.status_code != trace.StatusCode.ERROR  # the consumer stopped: no failure


def langgraph_names_run() -> None:
    """For tests/test_emitted_names.py (already instrumented): a tool-using agent nested in
    a graph, a handoff tool, an interrupt and its resume, so every name this integration
    emits is checked."""

    @tool
    def transfer_to_billing(tool_call_id: Annotated[str, InjectedToolCallId]) -> Command[str]:
        """Hand the customer over to billing."""
        answer = ToolMessage("Transferred to billing", tool_call_id=tool_call_id)
        return Command(goto="billing", graph=Command.PARENT, update={"messages": [answer]})

    triage_model = GroqLikeChatModel(
        responses=[
            _call("add", {"a": 1, "b": 2}, "call_n1", "Adding first."),
            _call("transfer_to_billing", {}, "call_n2"),
        ]
    )
    triage = create_react_agent(triage_model, [add, transfer_to_billing], name="triage")

    def billing(state: MessagesState) -> dict[str, Any]:
        return {"messages": [("ai", f"approved: {interrupt('Refund?')}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("triage", triage, destinations=("billing",))
    builder.add_node("billing", billing, metadata={integration.AGENT_METADATA_KEY: "billing"})
    builder.add_edge(START, "triage")
    graph = builder.compile(name="desk", checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "names-1"}}
    graph.invoke({"messages": [("user", "refund me")]}, config)
    graph.invoke(Command(resume="yes"), config)


def test_the_provider_is_named_as_the_conventions_name_it(telemetry: Telemetry) -> None:
    GroqLikeChatModel(responses=[_text("hi")]).invoke("hello")
    ScriptedChatModel(responses=[_text("hi")]).invoke("hello")

    providers = sorted(str(s.attributes[sc.GEN_AI_PROVIDER_NAME]) for s in telemetry.spans())
    assert providers == ["groq", "scriptedchatmodel"]  # LangChain's own name when unknown
    [groq] = [s for s in telemetry.spans() if s.attributes[sc.GEN_AI_PROVIDER_NAME] == "groq"]
    assert groq.attributes[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert groq.attributes[sc.GEN_AI_REQUEST_MAX_TOKENS] == 64


def test_a_static_breakpoint_is_a_wait_and_the_resume_continues_the_run(
    telemetry: Telemetry,
) -> None:
    pytest.importorskip("langgraph.callbacks")  # lifecycle events: langgraph 1.2 and later

    builder = StateGraph(MessagesState)
    builder.add_node("draft", lambda state: {"messages": [("ai", "draft ready")]})
    builder.add_node("send", lambda state: {"messages": [("ai", "sent")]})
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "send")
    graph = builder.compile(name="outbox", checkpointer=InMemorySaver(), interrupt_before=["send"])
    config: Any = {"configurable": {"thread_id": "outbox-1"}}

    graph.invoke({"messages": [("user", "write it")]}, config)
    [paused] = telemetry.spans()
    assert paused.attributes[sc.APPROVAL_STATUS] == "pending"

    assert graph.invoke(None, config)["messages"][-1].content == "sent"
    resumed = [s for s in telemetry.spans() if s is not paused]
    assert [s.attributes[sc.RUN_ID] for s in resumed] == [paused.attributes[sc.RUN_ID]]
    assert resumed[0].attributes[sc.RUN_RESUMED] is True


def test_langgraph_lifecycle_events_reach_our_handler_without_errors(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    builder = StateGraph(MessagesState)
    builder.add_node("ask", lambda state: {"messages": [("ai", interrupt("ok?"))]})
    builder.add_edge(START, "ask")
    graph = builder.compile(name="asker", checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "ask-1"}}

    graph.invoke({"messages": [("user", "go")]}, config)
    graph.invoke(Command(resume="yes"), config)

    assert not [r for r in caplog.records if "OtelAgentsCallbackHandler" in r.getMessage()]


APPROVAL_POLICY = """
version: 1
mode: enforce
rules:
  - id: deletes-need-approval
    match:
      tool: delete_records
    verdict: require_approval
    reason: A human signs off deletions.
"""


@pytest.mark.parametrize("approved", [True, False])
def test_a_tool_waiting_for_approval_runs_only_when_approved(
    monkeypatch: pytest.MonkeyPatch, approved: bool
) -> None:
    from otel_agents.policy import ApprovalDecision

    DELETED.clear()
    asked: list[str] = []

    def approver(request: Any) -> ApprovalDecision:
        asked.append(request.tool)
        return ApprovalDecision(approved, approver="alice", reason="checked")

    for telemetry in instrumented(monkeypatch, policy=APPROVAL_POLICY, approver=approver):
        model = ScriptedChatModel(
            responses=[_call("delete_records", {"table": "tmp"}, "call_a1"), _text("ok")]
        )
        create_react_agent(model, [delete_records], name="janitor").invoke(
            {"messages": [("user", "drop tmp")]}
        )

        assert asked == ["delete_records"]
        assert (["tmp"] if approved else []) == DELETED
        [answer] = [m for m in model.seen[1] if isinstance(m, ToolMessage)]
        assert answer.tool_call_id == "call_a1"
        assert (answer.status == "error") is not approved
        wait = telemetry.span("await_approval delete_records")
        assert _parent_name(wait, telemetry) == "execute_tool delete_records"
        assert wait.attributes[sc.APPROVAL_STATUS] == ("approved" if approved else "rejected")


def test_agents_handing_work_back_and_forth_trip_the_ping_pong_detector(
    telemetry: Telemetry,
) -> None:
    """Swarm style: two prebuilt agents, each with a handoff tool to the other."""

    def transfer_to(agent: str) -> BaseTool:
        @tool(f"transfer_to_{agent}")
        def transfer(tool_call_id: Annotated[str, InjectedToolCallId]) -> Command[str]:
            """Hand the conversation over."""
            answer = ToolMessage(f"Transferred to {agent}", tool_call_id=tool_call_id)
            return Command(goto=agent, graph=Command.PARENT, update={"messages": [answer]})

        return transfer

    def bouncing(name: str, other: str, turns: int) -> Any:
        script = [_call(f"transfer_to_{other}", {}, f"call_{name}{n}") for n in range(turns)]
        model = ScriptedChatModel(responses=[*script, _text(f"{name} is done")])
        return create_react_agent(model, [transfer_to(other)], name=name)

    builder = StateGraph(MessagesState)
    builder.add_node("sales", bouncing("sales", "support", 3), destinations=("support",))
    builder.add_node("support", bouncing("support", "sales", 2), destinations=("sales",))
    builder.add_edge(START, "sales")
    result = builder.compile(name="swarm").invoke({"messages": [("user", "help")]})

    assert result["messages"][-1].content == "support is done"
    handoffs = sorted(
        (s for s in telemetry.spans() if s.name.startswith("handoff ")),
        key=lambda s: s.start_time or 0,
    )
    assert [s.attributes[sc.HANDOFF_FROM] for s in handoffs] == [
        "sales",
        "support",
        "sales",
        "support",
        "sales",
    ]
    assert [_parent_name(s, telemetry) for s in handoffs] == [
        "invoke_agent sales",
        "invoke_agent support",
    ] * 2 + ["invoke_agent sales"]
    flagged = [s for s in handoffs if "handoff_ping_pong" in (s.attributes.get(sc.ANOMALY) or ())]
    assert len(flagged) == 1
    assert telemetry.span("invoke_agent swarm").attributes[sc.RUN_HANDOFFS] == 5


def test_concurrent_sync_runs_in_threads_do_not_cross_talk(telemetry: Telemetry) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def run(name: str) -> str:
        model = ScriptedChatModel(
            responses=[_call("add", {"a": 2, "b": 2}, f"call_{name}"), _text(f"done {name}")]
        )
        agent = create_react_agent(model, [add], name=name)
        return str(agent.invoke({"messages": [("user", name)]})["messages"][-1].content)

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(run, ["t1", "t2", "t3", "t4"]))

    assert answers == ["done t1", "done t2", "done t3", "done t4"]
    for name in ("t1", "t2", "t3", "t4"):
        root = telemetry.span(f"invoke_agent {name}")
        children = [
            s for s in telemetry.spans() if s.parent and s.parent.span_id == root.context.span_id
        ]
        assert sorted(s.name for s in children) == [CHAT, CHAT, "execute_tool add"]
        assert {s.attributes[sc.RUN_ID] for s in children} == {root.attributes[sc.RUN_ID]}
        [tool_span] = [s for s in children if s.name == "execute_tool add"]
        assert tool_span.attributes[sc.GEN_AI_TOOL_CALL_ID] == f"call_{name}"


def test_a_resume_in_another_process_continues_the_run(telemetry: Telemetry) -> None:
    """The paused run's id is in LangGraph's checkpoint (the run's metadata): a resume from
    that checkpoint by an instrumentation that never saw the pause (another process, here
    a handler whose memory of the pause is gone) continues the same run; a new run on the
    thread gets a new id."""

    def approve(state: MessagesState) -> dict[str, Any]:
        answer = interrupt("Send it?")
        return {"messages": [("ai", f"approved: {answer}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("approve", approve)
    builder.add_edge(START, "approve")
    saver = InMemorySaver()  # what a database checkpointer keeps across processes
    config: Any = {"configurable": {"thread_id": "thread-9"}}

    graph = builder.compile(name="mailer", checkpointer=saver)
    graph.invoke({"messages": [("user", "go")]}, config)
    [first] = telemetry.spans()
    handler = integration.callback_handler()
    assert handler is not None
    handler._paused_threads.clear()  # another process: no memory of the pause
    graph = builder.compile(name="mailer", checkpointer=saver)
    resumed = graph.invoke(Command(resume="yes"), config)
    again = graph.invoke({"messages": [("user", "and again")]}, config)

    assert resumed["messages"][-1].content == "approved: yes"
    assert "__interrupt__" in again  # a new run on the thread, paused anew
    _, second, third = [s for s in telemetry.spans() if s.name == "invoke_agent mailer"]
    assert second.attributes[sc.RUN_ID] == first.attributes[sc.RUN_ID]
    assert second.attributes[sc.RUN_RESUMED] is True
    assert third.attributes[sc.RUN_ID] != first.attributes[sc.RUN_ID]
    assert sc.RUN_RESUMED not in third.attributes


def test_what_a_node_calls_outside_langchain_is_part_of_the_run(telemetry: Telemetry) -> None:
    """A node's own code runs with its agent current: an `@otel_agents.tool` it calls (as
    an SDK client our adapters trace would) nests under the agent and counts in the run,
    sync and async, in parallel branches too; the context is as it was afterwards."""
    import otel_agents

    @otel_agents.tool
    def lookup(vendor: str) -> str:
        return vendor.upper()

    def sync_node(state: MessagesState) -> dict[str, Any]:
        return {"messages": [("ai", lookup("sync"))]}

    async def async_node(state: MessagesState) -> dict[str, Any]:
        return {"messages": [("ai", lookup("async"))]}

    def graph(node: Any) -> Any:
        builder = StateGraph(MessagesState)
        builder.add_node("left", node)
        builder.add_node("right", node)
        builder.add_edge(START, "left")
        builder.add_edge(START, "right")
        return builder.compile(name="desk")

    before = otel_context.get_current()
    graph(sync_node).invoke({"messages": [("user", "go")]})
    asyncio.run(graph(async_node).ainvoke({"messages": [("user", "go")]}))
    assert otel_context.get_current() is before

    roots = [s for s in telemetry.spans() if s.name == "invoke_agent desk"]
    tools = [s for s in telemetry.spans() if s.name == "execute_tool lookup"]
    assert len(roots) == 2 and len(tools) == 4
    assert all(_parent_name(tool, telemetry) == "invoke_agent desk" for tool in tools)
    assert [root.attributes[sc.RUN_TOOL_CALLS] for root in roots] == [2, 2]
