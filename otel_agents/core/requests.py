"""Tool calls a model asked for, and the board where they wait for their executions.

`ToolCallRequest` is the one type for "a tool call the model requested": an adapter reads
it from a response (call id, name, arguments); the inference invocation adds the reasoning
behind it and the span that asked; the run's `RequestBoard` keeps it until a tool
execution claims it (by call id, by name and arguments, or by name), which is how an
`execute_tool` span knows who asked for it and why.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.trace import SpanContext

from otel_agents.core.arguments import canonical_arguments

_MAX_WAITING = 512


@dataclass
class ToolCallRequest:
    """A tool call a model asked for (or the application declared with `decision()`)."""

    call_id: str | None
    name: str | None  # None: whatever tool runs next (an application's `decision()`)
    arguments: object = None  # a JSON string as the model sent it, or a parsed object
    reasoning: str | None = None
    reasoning_source: str | None = None  # a DecisionReasoningSourceValues member
    requested_by: SpanContext | None = None  # the span that asked (an inference span)
    arguments_key: str | None = None  # `canonical_arguments(arguments)`, set on the board


MatchRule = Callable[[ToolCallRequest], bool]


class RequestBoard:
    """The requested tool calls of one run (or trace) that no execution has claimed yet.
    Bounded: the oldest go first."""

    def __init__(self) -> None:
        self._waiting: OrderedDict[int, ToolCallRequest] = OrderedDict()
        self._next_key = 0
        self._lock = threading.Lock()

    def post(self, request: ToolCallRequest) -> None:
        """Put up a request (its arguments keyed here, off the adapter's path)."""
        if request.arguments_key is None and request.arguments is not None:
            request.arguments_key = canonical_arguments(request.arguments)
        with self._lock:
            self._waiting[self._next_key] = request
            self._next_key += 1
            while len(self._waiting) > _MAX_WAITING:
                self._waiting.popitem(last=False)

    def claim(
        self, call_id: str | None, name: str, arguments_key: str | None
    ) -> tuple[ToolCallRequest | None, str | None]:
        """Find (and take down) the request behind a tool execution.

        Returns the request and how it matched: by call id, by name and arguments, by name
        alone (oldest first), or an unnamed request the application attached to "the next
        action". Returns (None, None) when nothing matches.
        """

        def by_id(request: ToolCallRequest) -> bool:
            return call_id is not None and request.call_id == call_id

        def by_arguments(request: ToolCallRequest) -> bool:
            return (
                request.name == name
                and arguments_key is not None
                and request.arguments_key == arguments_key
            )

        def by_name(request: ToolCallRequest) -> bool:
            return request.name == name and call_id is None

        def next_action(request: ToolCallRequest) -> bool:
            return request.name is None and request.call_id is None

        rules: tuple[tuple[str, MatchRule], ...] = (
            ("call_id", by_id),
            ("name_and_arguments", by_arguments),
            ("name", by_name),
            ("name", next_action),
        )
        with self._lock:
            for match, test in rules:
                for key, request in self._waiting.items():
                    if test(request):
                        del self._waiting[key]
                        return request, match
        return None, None

    def __len__(self) -> int:
        return len(self._waiting)


__all__ = ["RequestBoard", "ToolCallRequest"]
