"""Detectors that watch tool calls: retry loops and silent failures."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import StatusCode

from otel_agents import semconv as sc
from otel_agents.core.ledger import RunLedger
from otel_agents.detectors.base import Detector

if TYPE_CHECKING:
    from otel_agents.core.tool import ToolInvocation

_RETRY = sc.DetectorNameValues.RETRY_LOOP
_SILENT = sc.DetectorNameValues.SILENT_TOOL_FAILURE
_STREAKS_KEY = "detectors:tool-failure-streaks"


class RetryLoopDetector(Detector):
    """The same call again and again, the same failing call repeated, or one tool failing
    over and over with varied arguments, within one run."""

    name = _RETRY

    def on_tool_end(self, invocation: ToolInvocation) -> None:
        ledger: RunLedger | None = invocation.ledger
        if ledger is None:
            return
        settings = self.settings
        tool: str = invocation.spec.name
        failed = invocation.exception is not None
        # Attempt numbers and failure counts only go up, so `==` fires exactly once.
        if invocation.attempt == settings.retry_loop_calls:
            self._report(
                invocation,
                ledger,
                f"{tool} was called {invocation.attempt} times with identical arguments",
                settings.retry_loop_calls,
                invocation.attempt,
            )
        if failed and invocation.fingerprint:
            failures = ledger.attempts.failures(invocation.fingerprint)
            if failures == settings.retry_loop_failures:
                self._report(
                    invocation,
                    ledger,
                    f"{tool} failed {failures} times with identical arguments",
                    settings.retry_loop_failures,
                    failures,
                )
        streak = ledger.observer_state(_STREAKS_KEY, _Streaks).update(tool, failed)
        if streak == settings.retry_loop_tool_failures:
            self._report(
                invocation, ledger, f"{tool} failed {streak} times in a row", streak, streak
            )

    def _report(
        self, invocation: Any, ledger: RunLedger, message: str, threshold: int, observed: int
    ) -> None:
        self.reporter.report(
            invocation.span,
            ledger,
            _RETRY,
            message,
            threshold=threshold,
            observed=observed,
            agent=invocation.agent_name,
        )


class _Streaks:
    """Consecutive failures per tool in one run."""

    def __init__(self) -> None:
        self._streaks: dict[str, int] = {}
        self._lock = threading.Lock()

    def update(self, tool: str, failed: bool) -> int:
        with self._lock:
            streak = self._streaks.get(tool, 0) + 1 if failed else 0
            self._streaks[tool] = streak
            return streak


# -- silent failures -------------------------------------------------------------------

_ERROR_TEXT = re.compile(
    r"^\s*(?:error|exception|fatal|failed|failure)\b\s*[:!\-]|^\s*traceback \(most recent call",
    re.IGNORECASE,
)
_ERROR_KEYS = ("error", "errors", "exception", "error_message", "errorMessage")
_FLAG_KEYS = ("success", "ok", "succeeded")
_STATUS_KEYS = ("status", "state", "result")
_FAILED_STATUSES = frozenset({"error", "failed", "failure", "fail", "errored"})
_CODE_KEYS = ("status_code", "statusCode")
_TELLING_KEYS = frozenset(_ERROR_KEYS + _FLAG_KEYS + _STATUS_KEYS + _CODE_KEYS)
_PLAIN_VALUES = (bool, int, float, bytes, list, tuple)


def error_shape(result: Any) -> str | None:
    """Why `result` looks like an error although no exception was raised, or None."""
    if isinstance(result, str):
        return "the result text reads as an error" if _ERROR_TEXT.search(result) else None
    if result is None or isinstance(result, _PLAIN_VALUES):
        return None
    if type(result) is not dict:  # a plain dict has no such flags; probing costs an exception
        if getattr(result, "isError", None) is True or getattr(result, "is_error", None) is True:
            return "the result is marked as an error"  # e.g. an MCP CallToolResult
        if not isinstance(result, Mapping):
            return None
    if result.keys().isdisjoint(_TELLING_KEYS):  # the usual result: one set operation
        return None
    for key in _ERROR_KEYS:
        if result.get(key):
            return f"the result has a non-empty {key!r} field"
    for key in _FLAG_KEYS:
        if result.get(key) is False:
            return f"the result says {key}: false"
    for key in _STATUS_KEYS:
        value = result.get(key)
        if isinstance(value, str) and value.lower() in _FAILED_STATUSES:
            return f"the result has {key}: {value.lower()}"
    for key in _CODE_KEYS:
        value = result.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 400:
            return f"the result has {key} {value}"
    return None


def is_empty(result: Any) -> bool:
    if isinstance(result, str):
        return not result.strip()
    if isinstance(result, (list, tuple, dict, set, frozenset, bytes)):
        return len(result) == 0
    return False


class SilentFailureDetector(Detector):
    """A tool that returned normally (its span says OK) but whose result is error-shaped,
    empty, or breaks the tool's output contract."""

    name = _SILENT

    def on_tool_end(self, invocation: ToolInvocation) -> None:
        if invocation.exception is not None:
            return
        span = invocation.span
        status = getattr(span, "status", None)
        if status is not None and status.status_code is StatusCode.ERROR:
            return  # someone already marked it failed: not silent
        why = self._why(invocation)
        if why is None:
            return
        self.reporter.report(
            span,
            invocation.ledger,
            _SILENT,
            f"{invocation.spec.name} returned without raising, but {why}",
            agent=invocation.agent_name,
        )

    def _why(self, invocation: Any) -> str | None:
        if invocation.contract_status == sc.ContractStatusValues.OUTPUT_VIOLATION:
            return "its result breaks the tool's output contract"
        result = invocation.result
        shape = error_shape(result)
        if shape is not None:
            return shape
        if self.settings.silent_failure_empty and is_empty(result):
            return "the result is empty"
        return None
