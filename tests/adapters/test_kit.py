"""The adapter kit on its own: every method shape it wraps (sync, async, a returned stream, an
async stream, a stream inside the result), calls it lets through, and patching that can be
undone. The client here is a small module of this test; the real SDKs are in the adapter
tests next to it (openai and anthropic are users of the kit too)."""

from __future__ import annotations

import sys
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import wrapt
from agents_testing import Telemetry
from opentelemetry.sdk.trace import ReadableSpan

from otel_agents import semconv as sc
from otel_agents.adapters.kit import ClientAdapter, Hook, Readers, StreamSlot
from otel_agents.core.inference import LLMRequest, LLMResponse
from otel_agents.pricing import TokenUsage

MODULE = "kit_test_client"


class ClientError(Exception):
    pass


class Client:
    """Shaped like an LLM SDK: each method answers from `prompt`."""

    def generate(self, prompt: str, *, model: str = "m1") -> dict[str, Any]:
        if prompt == "fail":
            raise ClientError("rate limited")
        return {"text": prompt.upper(), "model": model, "usage": (3, 4)}

    async def agenerate(self, prompt: str, *, model: str = "m1") -> dict[str, Any]:
        return self.generate(prompt, model=model)

    def stream(self, prompt: str, *, model: str = "m1") -> Iterator[str]:
        for word in prompt.split():
            if word == "boom":
                raise ClientError("stream broke")
            yield word

    async def astream(self, prompt: str, *, model: str = "m1") -> AsyncIterator[str]:
        async def words() -> AsyncIterator[str]:
            for word in prompt.split():
                yield word

        return words()

    def stream_in_result(self, prompt: str, *, model: str = "m1") -> dict[str, Any]:
        return {"metadata": {"id": "r1"}, "stream": iter(prompt.split())}

    def embeddings(self, text: str) -> list[float]:
        return [0.0]


# -- the adapter: readers and hooks -----------------------------------------------------------


def read_request(client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> LLMRequest:
    prompt = args[0] if args else kwargs["prompt"]
    return LLMRequest(
        provider="kit-test",
        model=kwargs.get("model", "m1"),
        stream=not isinstance(prompt, str) or " " in prompt,
    )


def read_plain(client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> LLMRequest:
    if kwargs.get("model") == "breaks-the-reader":
        raise ValueError("a bug in the reader")
    return LLMRequest(provider="kit-test", model=kwargs.get("model", "m1"))


def read_response(result: Any) -> LLMResponse:
    usage = TokenUsage(input_tokens=result["usage"][0], output_tokens=result["usage"][1])
    return LLMResponse(response_model=result["model"], usage=usage, finish_reasons=["stop"])


class Words:
    def __init__(self) -> None:
        self.words: list[str] = []

    def add(self, chunk: Any) -> None:
        self.words.append(chunk)

    def response(self) -> LLMResponse:
        return LLMResponse(
            usage=TokenUsage(input_tokens=1, output_tokens=len(self.words)),
            finish_reasons=["stop"],
        )


PLAIN = Readers(read_plain, read_response)
STREAMING = Readers(read_request, read_response, new_accumulator=Words)
IN_RESULT = Readers(
    read_request,
    read_response,
    new_accumulator=Words,
    stream_slot=StreamSlot(
        get=lambda result: result.get("stream"),
        put=lambda result, stream: {**result, "stream": stream},
    ),
)
HOOKS = (
    Hook(MODULE, "Client.generate", PLAIN),
    Hook(MODULE, "Client.agenerate", PLAIN),
    Hook(MODULE, "Client.stream", STREAMING),
    Hook(MODULE, "Client.astream", STREAMING),
    Hook(MODULE, "Client.stream_in_result", IN_RESULT),
    Hook(MODULE, "Client.embeddings", route=lambda client, args, kwargs: None),
)


@pytest.fixture
def adapter(telemetry: Telemetry) -> Iterator[ClientAdapter]:
    module = types.ModuleType(MODULE)
    module.Client = Client  # type: ignore[attr-defined]
    sys.modules[MODULE] = module
    originals = dict(Client.__dict__)
    kit = ClientAdapter("kit-test", HOOKS)
    kit.patch()
    yield kit
    kit.unpatch()
    sys.modules.pop(MODULE, None)
    for name in ("generate", "agenerate", "stream", "astream", "stream_in_result", "embeddings"):
        assert Client.__dict__[name] is originals[name], f"{name} left patched"


def only(telemetry: Telemetry) -> ReadableSpan:
    spans = telemetry.spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


# -- the shapes ---------------------------------------------------------------------------------


def test_a_sync_call_is_one_span_with_what_the_readers_read(
    adapter: ClientAdapter, telemetry: Telemetry
) -> None:
    assert Client().generate("hi", model="m2") == {"text": "HI", "model": "m2", "usage": (3, 4)}
    span = only(telemetry)
    assert span.name == "chat m2"
    assert attrs(span)[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 4


async def test_an_async_call_is_awaited_through(
    adapter: ClientAdapter, telemetry: Telemetry
) -> None:
    assert (await Client().agenerate("hi"))["text"] == "HI"
    assert attrs(only(telemetry))[sc.GEN_AI_RESPONSE_MODEL] == "m1"


def test_an_exception_reaches_the_caller_unchanged_and_marks_the_span(
    adapter: ClientAdapter, telemetry: Telemetry
) -> None:
    with pytest.raises(ClientError, match="rate limited"):
        Client().generate("fail")
    assert attrs(only(telemetry))[sc.ERROR_TYPE].endswith("ClientError")


def test_a_returned_stream_ends_its_span_when_exhausted(
    adapter: ClientAdapter, telemetry: Telemetry
) -> None:
    stream = Client().stream("a b c")
    assert telemetry.spans() == []  # open while the application reads
    assert list(stream) == ["a", "b", "c"]
    span = only(telemetry)
    assert attrs(span)[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in attrs(span)


def test_an_error_mid_stream_reaches_the_reader_and_ends_the_span(
    adapter: ClientAdapter, telemetry: Telemetry
) -> None:
    seen: list[str] = []
    with pytest.raises(ClientError, match="stream broke"):
        for word in Client().stream("a boom c"):
            seen.append(word)
    assert seen == ["a"]
    assert attrs(only(telemetry))[sc.ERROR_TYPE].endswith("ClientError")


async def test_an_async_stream_is_wrapped_after_the_await(
    adapter: ClientAdapter, telemetry: Telemetry
) -> None:
    stream = await Client().astream("x y")
    assert [word async for word in stream] == ["x", "y"]
    assert attrs(only(telemetry))[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 2


def test_a_stream_inside_the_result_is_wrapped_in_place(
    adapter: ClientAdapter, telemetry: Telemetry
) -> None:
    result = Client().stream_in_result("p q r s")
    assert result["metadata"] == {"id": "r1"}
    assert list(result["stream"]) == ["p", "q", "r", "s"]
    assert attrs(only(telemetry))[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 4


def test_a_call_no_reader_understands_passes_through_unrecorded(
    adapter: ClientAdapter, telemetry: Telemetry
) -> None:
    assert Client().embeddings("t") == [0.0]
    assert telemetry.spans() == []


def test_patching_twice_wraps_once_even_under_another_wrapper(
    adapter: ClientAdapter, telemetry: Telemetry
) -> None:
    calls: list[str] = []

    def theirs(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        calls.append("theirs")
        return wrapped(*args, **kwargs)

    wrapt.wrap_function_wrapper(Client, "generate", theirs)
    try:
        adapter.unpatch()
        adapter.patch()  # ours is still under theirs: found there, not wrapped again
        Client().generate("hi")
        assert calls == ["theirs"] and len(telemetry.spans()) == 1
    finally:
        Client.generate = Client.__dict__["generate"].__wrapped__  # type: ignore[method-assign]


def test_a_failing_reader_leaves_the_call_alone(
    adapter: ClientAdapter, telemetry: Telemetry
) -> None:
    result = Client().generate("hi", model="breaks-the-reader")
    assert result == {"text": "HI", "model": "breaks-the-reader", "usage": (3, 4)}
    assert telemetry.spans() == []
