"""Helpers every recorder shares: errors on spans, content capture, the run id, frames."""

from __future__ import annotations

import functools
import inspect
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry.trace import Span, Status, StatusCode

from otel_agents import semconv as sc
from otel_agents.core.ledger import current_run_ledger
from otel_agents.errors import Intervention
from otel_agents.runtime import Runtime, report_internal_error

_AGENT_KEY = otel_context.create_key("otel_agents.agent")
_MAX_STACKTRACE = 16_384


@dataclass(frozen=True)
class AgentFrame:
    """The agent we are inside: its name and span. Lives in the OpenTelemetry context."""

    name: str
    span: Span


def current_agent(ctx: otel_context.Context | None = None) -> AgentFrame | None:
    value = otel_context.get_value(_AGENT_KEY, ctx)
    return value if isinstance(value, AgentFrame) else None


def context_with_agent(frame: AgentFrame, ctx: otel_context.Context) -> otel_context.Context:
    return otel_context.set_value(_AGENT_KEY, frame, ctx)


def error_type(exc: BaseException) -> str:
    """A low-cardinality name for the error: `KeyError`, `openai.RateLimitError`."""
    cls = type(exc)
    if cls.__module__ in ("builtins", "__main__"):
        return cls.__qualname__
    # Private modules are an implementation detail: openai._exceptions -> openai
    public = [part for part in cls.__module__.split(".") if not part.startswith("_")]
    return ".".join([*public, cls.__qualname__])


def record_error(span: Span, exc: BaseException, runtime: Runtime, name: str | None = None) -> None:
    """Mark the span failed: status, `error.type`, and a scrubbed `exception` event.

    The SDK's own `record_exception` would copy the message verbatim, and exception
    messages are a classic place for leaked API keys, so we build the event ourselves.
    """
    try:
        capturer = runtime.capturer
        message = capturer.scrub(str(exc))
        span.set_attribute(sc.ERROR_TYPE, name or error_type(exc))
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}"))
        stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        span.add_event(
            "exception",
            {
                "exception.type": error_type(exc),
                "exception.message": message,
                "exception.stacktrace": capturer.scrub(stack[-_MAX_STACKTRACE:]),
            },
        )
    except Exception as internal:
        report_internal_error("record_error", internal)


def capture_content(
    span: Span, runtime: Runtime, values: Mapping[str, Any], event_name: str = sc.EVENT_CONTENT
) -> None:
    """Set opt-in content attributes, honouring the capture mode; values are made safe.

    In the event modes the same content goes into one `otel_agents.content` span event
    instead of, or as well as, the attributes. (Inference calls use the conventions'
    log-based event instead: `core.inference.emit_operation_details`.)
    """
    mode = runtime.settings.capture_content
    if not mode.enabled or not values:
        return
    try:
        safe = {key: runtime.capturer.text(value) for key, value in values.items()}
        if mode.on_spans:
            span.set_attributes(safe)
        if mode.on_events:
            span.add_event(event_name, safe)
    except Exception as internal:
        report_internal_error("capture_content", internal)


def capture_on_span(span: Span, runtime: Runtime, values: Mapping[str, Any]) -> None:
    """Set opt-in content attributes when the capture mode puts content on spans."""
    if not runtime.settings.capture_content.on_spans or not values:
        return
    try:
        span.set_attributes({key: runtime.capturer.text(value) for key, value in values.items()})
    except Exception as internal:
        report_internal_error("capture_on_span", internal)


def run_id_attributes(ctx: otel_context.Context | None = None) -> dict[str, str]:
    ledger = current_run_ledger(ctx)
    return {sc.RUN_ID: ledger.run_id} if ledger is not None else {}


class Finishable(Protocol):
    def finish(self, exc: BaseException | None, result: Any = None) -> None: ...


class _NotRecorded:
    """The record of a call whose recording could not start: finishing it does nothing."""

    def finish(self, exc: BaseException | None, result: Any = None) -> None:
        return None


NOT_RECORDED = _NotRecorded()
F = TypeVar("F", bound=Callable[..., Any])


def _not_recorded(exc: BaseException) -> Finishable:
    return NOT_RECORDED


def wrap_callable(
    func: F,
    begin: Callable[[tuple[Any, ...], dict[str, Any]], Finishable],
    unchecked: Callable[[BaseException], Finishable] = _not_recorded,
) -> F:
    """Wrap `func` (sync or async) so that `begin` opens a record and its `finish` closes it.

    The wrapper keeps the function's name, signature, docstring and coroutine-ness, returns
    exactly what the function returns and lets its exceptions through unchanged. It is a
    boundary between the application and us: whatever of ours fails in it is reported, not
    raised (only a deliberate `Intervention` from `begin` or `unchecked`, which decides
    what a failed `begin` means, goes through), and the context is left as it was found.
    """
    # Both wrappers are boundaries: every call into our code in them is guarded here, in
    # line (a helper of ours could fail too), and the context is put back if ours failed.
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            entry = otel_context.get_current()
            try:
                record = begin(args, kwargs)
            except Intervention:
                if otel_context.get_current() is not entry:
                    otel_context.attach(entry)
                raise
            except Exception as exc:
                report_internal_error("begin", exc)
                if otel_context.get_current() is not entry:
                    otel_context.attach(entry)
                record = unchecked(exc)  # may raise the refusal
            try:
                result = await func(*args, **kwargs)
            except BaseException as exc:
                try:
                    record.finish(exc)
                except Exception as internal:
                    report_internal_error("finish", internal)
                if otel_context.get_current() is not entry:
                    otel_context.attach(entry)
                raise
            try:
                record.finish(None, result)
            except Exception as internal:
                report_internal_error("finish", internal)
            if otel_context.get_current() is not entry:
                otel_context.attach(entry)
            return result

        return cast(F, async_wrapper)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        entry = otel_context.get_current()
        try:
            record = begin(args, kwargs)
        except Intervention:
            if otel_context.get_current() is not entry:
                otel_context.attach(entry)
            raise
        except Exception as exc:
            report_internal_error("begin", exc)
            if otel_context.get_current() is not entry:
                otel_context.attach(entry)
            record = unchecked(exc)  # may raise the refusal
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            try:
                record.finish(exc)
            except Exception as internal:
                report_internal_error("finish", internal)
            if otel_context.get_current() is not entry:
                otel_context.attach(entry)
            raise
        try:
            record.finish(None, result)
        except Exception as internal:
            report_internal_error("finish", internal)
        if otel_context.get_current() is not entry:
            otel_context.attach(entry)
        return result

    return cast(F, wrapper)
