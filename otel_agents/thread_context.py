"""Carry the OpenTelemetry context (and with it the run ledger) into threads and pools.

`threading.Thread.start` notes the starting thread's context and `run` attaches it in
the new thread; `ThreadPoolExecutor.submit` runs the function in the submitter's context.
This is what `opentelemetry-instrumentation-threading` does; doing it here spares
`instrument()` importing the instrumentation framework (package metadata, `packaging`),
about half of its start-up time. When that instrumentor is already on, we leave threads
to it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any

from opentelemetry import context as otel_context

from otel_agents.patching import Patcher
from otel_agents.runtime import report_internal_error

_CONTEXT_ATTRIBUTE = "_otel_agents_context"
_patcher = Patcher()


def propagate_context_to_threads() -> None:
    """Patch thread start/run and pool submission (idempotent)."""
    if _threading_instrumentor_is_on():
        return
    for cls in (threading.Thread, threading.Timer):
        _patcher.wrap(cls, "start", _note_context)
        _patcher.wrap(cls, "run", _run_in_noted_context)
    _patcher.wrap(futures.ThreadPoolExecutor, "submit", _submit_in_context)


def stop_propagating() -> None:
    _patcher.unwrap_all()


def _threading_instrumentor_is_on() -> bool:
    module = sys.modules.get("opentelemetry.instrumentation.threading")
    if module is None:
        return False  # not imported: nobody turned it on
    try:
        return bool(module.ThreadingInstrumentor().is_instrumented_by_opentelemetry)
    except Exception:
        return False


# The wrappers are boundaries (threading calls them): our part is guarded in line, and the
# thread's own work runs whatever happened to ours.


def _note_context(
    wrapped: Callable[..., Any], thread: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    try:
        setattr(thread, _CONTEXT_ATTRIBUTE, otel_context.get_current())
    except Exception as exc:
        report_internal_error("thread context", exc)
    return wrapped(*args, **kwargs)


def _run_in_noted_context(
    wrapped: Callable[..., Any], thread: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    token = None
    try:
        noted = getattr(thread, _CONTEXT_ATTRIBUTE, None)
        if noted is not None:
            token = otel_context.attach(noted)
    except Exception as exc:
        report_internal_error("thread context", exc)
    try:
        return wrapped(*args, **kwargs)
    finally:
        if token is not None:
            try:
                otel_context.detach(token)
            except Exception as exc:
                report_internal_error("thread context", exc)


def _submit_in_context(
    wrapped: Callable[..., Any], pool: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if not args:
        return wrapped(*args, **kwargs)  # the call is wrong; let the pool say so
    try:
        function, submitted = args[0], otel_context.get_current()
    except Exception as exc:
        report_internal_error("thread pool context", exc)
        return wrapped(*args, **kwargs)

    def in_context(*call_args: Any, **call_kwargs: Any) -> Any:
        token = otel_context.attach(submitted)
        try:
            return function(*call_args, **call_kwargs)
        finally:
            otel_context.detach(token)

    return wrapped(in_context, *args[1:], **kwargs)


__all__ = ["propagate_context_to_threads", "stop_propagating"]
