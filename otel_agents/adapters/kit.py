"""The adapter kit: wraps any SDK method that makes an LLM call, for any client.

A client adapter declares `Hook`s: which method to wrap and three pure readers over the SDK's
own types (request -> `LLMRequest`, response -> `LLMResponse`, stream chunks -> an
accumulator). The kit does everything else, once for every client: patching and unpatching
(idempotent, safe beside other instrumentations' wrappers), sync and async methods, methods
that return a stream (an iterator, an async iterator, or a stream inside the result), the
inference invocation's life (`core.inference`), and the rule that a fault of ours never
reaches the application: the call goes on untouched, with the context it found.

    CONTENT = Readers(read_request, read_response)
    STREAM = Readers(read_request, read_response, new_accumulator=ChunkAccumulator)
    HOOKS = (
        Hook("google.genai.models", "Models.generate_content", CONTENT),
        Hook("google.genai.models", "Models.generate_content_stream", STREAM),
    )
    patch, unpatch = ClientAdapter("google-genai", HOOKS).functions()

A request reader returning None lets the call through unrecorded (an endpoint the adapter
does not understand); a `route` picks the readers per call when one method serves many
endpoints (the Stainless clients' `request`). See docs/adding-a-client.md for a walk-through.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from opentelemetry import context as otel_context

from otel_agents.core.inference import (
    LLMCall,
    LLMRequest,
    LLMResponse,
    StreamAccumulator,
    current_call,
)
from otel_agents.core.streams import wrap_stream
from otel_agents.patching import Patcher
from otel_agents.runtime import report_internal_error

# (the SDK object the method is bound to, positional args, keyword args) -> the request
RequestReader = Callable[[Any, tuple[Any, ...], dict[str, Any]], LLMRequest | None]
ResponseReader = Callable[[Any], LLMResponse]


@dataclass(frozen=True)
class StreamSlot:
    """Where a method's result keeps its stream, when the result is not the stream itself
    (boto3's `converse_stream` returns a dict whose `stream` is the event stream)."""

    get: Callable[[Any], Any]  # result -> the stream (None: no stream in this result)
    put: Callable[[Any, Any], Any]  # (result, wrapped stream) -> the result to return


@dataclass(frozen=True)
class Readers:
    """How to read one kind of call: pure functions over the SDK's own types."""

    request: RequestReader  # None from it: not a call we record, let it through
    response: ResponseReader
    # Set for calls that may return a stream: a fresh accumulator per stream. The result is
    # a stream when the request said so (`LLMRequest.stream`).
    new_accumulator: Callable[[], StreamAccumulator] | None = None
    stream_slot: StreamSlot | None = None  # None: the result is the stream
    # Everything else about a result (raw responses, SDK-specific stream types): return what
    # the application gets, and see that `call` is finished once, now or later.
    handle_result: Callable[[Any, LLMCall, Readers], Any] | None = None
    # The client's low-cardinality name for an exception (its API error code) as
    # `error.type`; None from it, or no reader: the exception's class name.
    error_type: Callable[[BaseException], str | None] | None = None


# (the SDK object, positional args, keyword args) -> the readers for this call, or None
Router = Callable[[Any, tuple[Any, ...], dict[str, Any]], "Readers | None"]


@dataclass(frozen=True)
class Hook:
    """One SDK method the kit wraps: where it is, and the readers for what goes through it
    (fixed, or chosen per call by `route` when one method serves many endpoints)."""

    module: str  # the module that defines the owner: "google.genai.models"
    target: str  # "Class.method" (or "function") in that module
    readers: Readers | None = None
    route: Router | None = None


@dataclass
class ClientAdapter:
    """Patches a client's hooks and records the calls that go through them."""

    package: str  # for error reports: "google-genai"
    hooks: Sequence[Hook]
    before_call: Callable[[Any], None] | None = None  # e.g. switch off the SDK's own span
    active: bool = False  # our wrappers pass calls straight through while False
    patcher: Patcher = field(default_factory=lambda: Patcher())
    # One wrapper per hook, made once: the same wrapper on every patch lets the patcher
    # recognise it under another instrumentation's wrapper, after an unpatch and a patch.
    _wrappers: dict[int, Callable[..., Any]] = field(default_factory=dict, repr=False)

    def functions(self) -> tuple[Callable[[ModuleType], None], Callable[[], None]]:
        """`patch(module)` and `unpatch()`, as the adapter registry calls them."""
        return self.patch, self.unpatch

    def patch(self, client_module: ModuleType | None = None) -> None:
        self.active = True
        for index, hook in enumerate(self.hooks):
            owner, name = _resolve(hook)
            self.hook_into(owner, name, index)

    def hook_into(self, owner: Any, name: str, index: int) -> None:
        """Wrap `owner.name` as hook `index` says (also for a subclass's own override)."""
        self.patcher.wrap(owner, name, self._wrapper(index, getattr(owner, name)))

    def _wrapper(self, index: int, method: Any) -> Callable[..., Any]:
        wrappers = self._wrappers
        if index not in wrappers:
            hook = self.hooks[index]
            is_async = inspect.iscoroutinefunction(method)
            wrappers[index] = self._async_wrapper(hook) if is_async else self._sync_wrapper(hook)
        return wrappers[index]

    def unpatch(self) -> None:
        self.active = False
        self.patcher.unwrap_all()

    # -- one call ------------------------------------------------------------------------

    def begin(
        self, hook: Hook, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> _Started | None:
        """Open the inference for a call we understand; None to pass it through."""
        if not self.active or current_call() is not None:
            return None  # an outer layer of ours records this call: one span per call
        call: LLMCall | None = None
        try:
            route = hook.route
            readers = hook.readers if route is None else route(instance, args, kwargs)
            request = readers.request(instance, args, kwargs) if readers is not None else None
            if readers is None or request is None:
                return None
            call = LLMCall.start(request)
            if call is None:
                return None
            call.name_error = readers.error_type
            if self.before_call is not None:
                self.before_call(instance)
            return _Started(call, readers, call.activate())
        except Exception as exc:
            report_internal_error(f"{self.package} request", exc)
            if call is not None:
                call.abandon()
            return None

    # The wrappers are boundaries (the SDK calls them): every call into our code in them is
    # guarded in line (a helper of ours could fail too: tests/test_fault_injection.py makes
    # each one fail in turn), and the context they found is put back if ours failed to.

    def _sync_wrapper(self, hook: Hook) -> Callable[..., Any]:
        def wrapper(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            entry = otel_context.get_current()
            try:
                started = self.begin(hook, instance, args, kwargs)
            except Exception as internal:
                report_internal_error(f"{self.package} request", internal)
                started = None
            if started is None:
                if otel_context.get_current() is not entry:
                    otel_context.attach(entry)
                return wrapped(*args, **kwargs)
            try:
                result = wrapped(*args, **kwargs)
            except BaseException as exc:
                try:
                    started.call.finish(None, exc)
                except Exception as internal:
                    report_internal_error("llm finish", internal)
                raise
            finally:
                try:
                    LLMCall.deactivate(started.token)
                except Exception as internal:
                    report_internal_error("llm call detach", internal)
                if otel_context.get_current() is not entry:
                    otel_context.attach(entry)
            try:
                return started.result(result)
            except Exception as internal:
                report_internal_error("llm result", internal)
                return result

        return wrapper

    def _async_wrapper(self, hook: Hook) -> Callable[..., Any]:
        async def wrapper(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            entry = otel_context.get_current()
            try:
                started = self.begin(hook, instance, args, kwargs)
            except Exception as internal:
                report_internal_error(f"{self.package} request", internal)
                started = None
            if started is None:
                if otel_context.get_current() is not entry:
                    otel_context.attach(entry)
                return await wrapped(*args, **kwargs)
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:
                try:
                    started.call.finish(None, exc)
                except Exception as internal:
                    report_internal_error("llm finish", internal)
                raise
            finally:
                try:
                    LLMCall.deactivate(started.token)
                except Exception as internal:
                    report_internal_error("llm call detach", internal)
                if otel_context.get_current() is not entry:
                    otel_context.attach(entry)
            try:
                return started.result(result)
            except Exception as internal:
                report_internal_error("llm result", internal)
                return result

        return wrapper


@dataclass
class _Started:
    """A call we are recording, between the SDK method's start and its return."""

    call: LLMCall
    readers: Readers
    token: object

    def result(self, result: Any) -> Any:
        """What the application gets: the result, its stream wrapped when it has one."""
        try:
            if self.readers.handle_result is not None:
                return self.readers.handle_result(result, self.call, self.readers)
            return finish_with(result, self.call, self.readers)
        except Exception as internal:
            report_internal_error("llm result", internal)
            self.call.abandon()
            return result


def finish_with(result: Any, call: LLMCall, readers: Readers) -> Any:
    """The default result handling: wrap the stream of a streaming call (its span ends with
    the stream), finish any other call with the response read from the result."""
    if call.request.stream and readers.new_accumulator is not None:
        slot = readers.stream_slot
        stream = result if slot is None else slot.get(result)
        if stream is not None:
            wrapped = wrap_stream(stream, call, readers.new_accumulator())
            return wrapped if slot is None else slot.put(result, wrapped)
    call.finish(read_response(readers, result))
    return result


def read_response(readers: Readers, result: Any) -> LLMResponse | None:
    try:
        return readers.response(result)
    except Exception as exc:
        report_internal_error("read response", exc)
        return None


def _resolve(hook: Hook) -> tuple[Any, str]:
    """(the object that owns the method, the method's name)."""
    owner: Any = importlib.import_module(hook.module)
    *path, name = hook.target.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, name


__all__ = [
    "ClientAdapter",
    "Hook",
    "Patcher",
    "Readers",
    "RequestReader",
    "ResponseReader",
    "Router",
    "StreamSlot",
    "finish_with",
    "read_response",
]
