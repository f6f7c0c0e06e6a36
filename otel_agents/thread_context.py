"""Carry the OpenTelemetry context (and with it the run ledger) into threads and pools.

`threading.Thread.start` notes the starting thread's context and `run` attaches it in
the new thread; `ThreadPoolExecutor.submit` runs the function in the submitter's context.
This is what `opentelemetry-instrumentation-threading` does; doing it here spares
`instrument()` importing the instrumentation framework (package metadata, `packaging`),
about half of its start-up time. When that instrumentor is already on, we leave threads
to it.

The methods are replaced by plain wrappers, not wrapt's: `instrument()` patches these at
once, and importing wrapt would cost it asyncio, ssl and `importlib.metadata`. The rules
are the adapters' (`patching.Patcher`): never wrap twice, find ours under another
instrumentation's wrapper, undo only what is still ours on top, and pass calls straight
through once stopped.
"""

from __future__ import annotations

import functools
import sys
import threading
import types
from collections.abc import Callable
from concurrent import futures
from typing import Any

from opentelemetry import context as otel_context

from otel_agents.patching import wrapper_in_chain
from otel_agents.runtime import report_internal_error

_CONTEXT_ATTRIBUTE = "_otel_agents_context"
_MARK = "_otel_agents_thread_context"  # on our wrappers
_state = {"active": False}
_replaced: list[tuple[type, str, Callable[..., Any]]] = []  # (owner, name, our wrapper)


def propagate_context_to_threads() -> None:
    """Patch thread start/run and pool submission (idempotent)."""
    if _threading_instrumentor_is_on():
        return
    _state["active"] = True
    _replace(threading.Thread, "start", _noting_context)
    for cls in (threading.Thread, threading.Timer):
        _replace(cls, "run", _running_in_noted_context)
    _replace(futures.ThreadPoolExecutor, "submit", _submitting_in_context)


def stop_propagating() -> None:
    _state["active"] = False  # a wrapper of ours left under someone else's passes through
    for owner, name, ours in reversed(_replaced):
        if owner.__dict__.get(name) is ours:
            setattr(owner, name, ours.__wrapped__)
    _replaced.clear()


def _replace(
    owner: type, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> None:
    current = owner.__dict__.get(name)
    if current is None:
        return
    found = _ours_in(current)
    if found is None:
        found = make(current)
        setattr(found, _MARK, True)
        setattr(owner, name, found)
    if not any(ours is found for _, _, ours in _replaced):
        _replaced.append((owner, name, found))


def _ours_in(method: Any) -> Any:
    """Our wrapper, if it is `method` or under it in a chain of wrappers; else None."""
    return wrapper_in_chain(
        method, lambda found: isinstance(found, types.FunctionType) and _MARK in found.__dict__
    )


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


def _noting_context(start: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(start)
    def start_noting_context(thread: Any, *args: Any, **kwargs: Any) -> Any:
        if _state["active"]:
            try:
                setattr(thread, _CONTEXT_ATTRIBUTE, otel_context.get_current())
            except Exception as exc:
                report_internal_error("thread context", exc)
        return start(thread, *args, **kwargs)

    return start_noting_context


def _running_in_noted_context(run: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(run)
    def run_in_noted_context(thread: Any, *args: Any, **kwargs: Any) -> Any:
        token = None
        try:
            noted = getattr(thread, _CONTEXT_ATTRIBUTE, None)
            if noted is not None and _state["active"]:
                token = otel_context.attach(noted)
        except Exception as exc:
            report_internal_error("thread context", exc)
        try:
            return run(thread, *args, **kwargs)
        finally:
            if token is not None:
                try:
                    otel_context.detach(token)
                except Exception as exc:
                    report_internal_error("thread context", exc)

    return run_in_noted_context


def _submitting_in_context(submit: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(submit)
    def submit_in_context(pool: Any, *args: Any, **kwargs: Any) -> Any:
        if not args or not _state["active"]:
            return submit(pool, *args, **kwargs)  # a wrong call: let the pool say so
        try:
            function, submitted = args[0], otel_context.get_current()
        except Exception as exc:
            report_internal_error("thread pool context", exc)
            return submit(pool, *args, **kwargs)

        def in_context(*call_args: Any, **call_kwargs: Any) -> Any:
            token = otel_context.attach(submitted)
            try:
                return function(*call_args, **call_kwargs)
            finally:
                otel_context.detach(token)

        return submit(pool, in_context, *args[1:], **kwargs)

    return submit_in_context


__all__ = ["propagate_context_to_threads", "stop_propagating"]
