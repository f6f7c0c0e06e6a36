"""Streams, wrapped transparently: the application iterates the client's stream as before
(same type behaviour, `with` and iteration semantics, the same exceptions), each chunk is
time-stamped and handed to the adapter's accumulator, and the inference call finishes
exactly once: when the stream is exhausted, closed, fails, or is garbage-collected.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import wrapt

from otel_agents.runtime import report_internal_error

if TYPE_CHECKING:
    from otel_agents.core.inference import LLMCall, StreamAccumulator


class _StreamState:
    """Shared by a stream proxy and its GC finalizer: ends the call exactly once."""

    def __init__(self, call: LLMCall, accumulator: StreamAccumulator) -> None:
        self.call = call
        self.accumulator = accumulator
        self.add = accumulator.add  # bound once: it runs for every chunk
        self.stamp = call.chunk_times.append

    def on_chunk(self, chunk: Any) -> None:
        """The per-chunk path, kept to a timestamp and the accumulator's own `add`."""
        try:
            self.stamp(time.monotonic())
            self.add(chunk)
        except Exception as exc:
            report_internal_error("stream chunk", exc)

    def end(self, exc: BaseException | None = None) -> None:
        try:
            response = self.accumulator.response()
        except Exception as internal:
            report_internal_error("stream response", internal)
            response = None
        self.call.finish(response, exc)


# The proxies' methods are boundaries (the application calls them): each guards, in line,
# every call into our code, so that a fault of ours never changes what the stream does.


class SyncStreamProxy(wrapt.ObjectProxy[Any]):
    """Looks and behaves like the client's stream; records chunks as they pass."""

    def __init__(self, stream: Any, call: LLMCall, accumulator: StreamAccumulator) -> None:
        super().__init__(stream)
        state = _StreamState(call, accumulator)
        self._self_state = state
        # Ends the span if the application drops the stream without finishing it.
        self._self_finalizer = weakref.finalize(self, state.end, None)

    def __iter__(self) -> Iterator[Any]:
        # A generator over the stream's own iterator: a `for` loop then costs one generator
        # resumption per chunk, not two Python-level `__next__` calls (ours, the SDK's).
        try:
            return self._chunks()
        except Exception as exc:
            report_internal_error("stream iteration", exc)
            return iter(self.__wrapped__)

    def _chunks(self) -> Iterator[Any]:
        state = self._self_state
        add, stamp, now = state.add, state.stamp, time.monotonic
        try:
            for chunk in self.__wrapped__:
                # `on_chunk`, inlined: this loop body is the whole per-chunk cost.
                stamp(now())
                try:
                    add(chunk)
                except Exception as exc:
                    report_internal_error("stream chunk", exc)
                yield chunk
        except GeneratorExit:  # the loop was left early: the stream's close or GC ends it
            raise
        except BaseException as exc:
            try:
                state.end(exc)
                self._self_finalizer.detach()
            except Exception as internal:
                report_internal_error("stream end", internal)
            raise
        try:
            self._self_finalizer()
        except Exception as internal:
            report_internal_error("stream end", internal)

    def __next__(self) -> Any:
        try:
            chunk = next(self.__wrapped__)
        except StopIteration:
            try:
                self._self_finalizer()
            except Exception as internal:
                report_internal_error("stream end", internal)
            raise
        except BaseException as exc:
            try:
                self._self_state.end(exc)
                self._self_finalizer.detach()
            except Exception as internal:
                report_internal_error("stream end", internal)
            raise
        try:
            self._self_state.on_chunk(chunk)
        except Exception as internal:
            report_internal_error("stream chunk", internal)
        return chunk

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            try:
                self._end_with(exc_info[1] if len(exc_info) > 1 else None)
            except Exception as internal:
                report_internal_error("stream end", internal)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            try:
                self._self_finalizer()
            except Exception as internal:
                report_internal_error("stream end", internal)

    def _end_with(self, exc: BaseException | None) -> None:
        if exc is None:
            self._self_finalizer()
        else:
            self._self_state.end(exc)
            self._self_finalizer.detach()


class AsyncStreamProxy(wrapt.ObjectProxy[Any]):
    """The async twin of `SyncStreamProxy`."""

    def __init__(self, stream: Any, call: LLMCall, accumulator: StreamAccumulator) -> None:
        super().__init__(stream)
        state = _StreamState(call, accumulator)
        self._self_state = state
        self._self_finalizer = weakref.finalize(self, state.end, None)

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            try:
                self._self_finalizer()
            except Exception as internal:
                report_internal_error("stream end", internal)
            raise
        except BaseException as exc:
            try:
                self._self_state.end(exc)
                self._self_finalizer.detach()
            except Exception as internal:
                report_internal_error("stream end", internal)
            raise
        try:
            self._self_state.on_chunk(chunk)
        except Exception as internal:
            report_internal_error("stream chunk", internal)
        return chunk

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            try:
                exc = exc_info[1] if len(exc_info) > 1 else None
                if exc is None:
                    self._self_finalizer()
                else:
                    self._self_state.end(exc)
                    self._self_finalizer.detach()
            except Exception as internal:
                report_internal_error("stream end", internal)

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            try:
                self._self_finalizer()
            except Exception as internal:
                report_internal_error("stream end", internal)


def wrap_stream(stream: Any, call: LLMCall, accumulator: StreamAccumulator) -> Any:
    """Wrap a client stream (sync or async) so its span ends exactly once."""
    if hasattr(stream, "__anext__") or hasattr(stream, "__aiter__"):
        return AsyncStreamProxy(stream, call, accumulator)
    return SyncStreamProxy(stream, call, accumulator)


__all__ = ["AsyncStreamProxy", "SyncStreamProxy", "wrap_stream"]
