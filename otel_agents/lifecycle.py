"""`instrument()` and `uninstrument()`: turning otel-agents on and off for a process."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry._logs import LoggerProvider
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from otel_agents.config import POLICY_FILE_ENV, POLICY_MODE_ENV, ContentCapture, Settings
from otel_agents.runtime import Observer, Runtime, report_internal_error, set_runtime

if TYPE_CHECKING:
    from otel_agents.detectors import DetectorSettings
    from otel_agents.policy.loader import PolicySource
    from otel_agents.policy.model import Mode
    from otel_agents.policy.setup import ApproverLike
    from otel_agents.sdk_setup import BoundedCall, ExportCounts

_logger = logging.getLogger("otel_agents")
_lock = threading.RLock()
_instrumented = False
_owned: Any = None
_governance: list[Observer] = []  # the policy gate and detectors we built (closed on reconfigure)
_foreign_flusher: BoundedCall | None = None  # flushes providers the application owns


def instrument(
    *,
    capture_content: str | bool | ContentCapture | None = None,
    max_content_length: int | None = None,
    redact_patterns: Sequence[str] | None = None,
    redact_keys: Sequence[str] | None = None,
    redact_pii: bool | None = None,
    prices: Mapping[str, Any] | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    logger_provider: LoggerProvider | None = None,
    configure_sdk: bool = True,
    observers: Sequence[Observer] = (),
    policy: PolicySource | None = None,
    policy_mode: Mode | str | None = None,
    approver: ApproverLike | None = None,
    detectors: DetectorSettings | Mapping[str, Any] | bool | None = None,
) -> None:
    """Turn otel-agents on. Call once at start-up; calling again reconfigures.

    Arguments override the environment (see the README's configuration table). Unless
    `tracer_provider` is given or the application already registered global providers,
    the OpenTelemetry SDK is set up from the standard `OTEL_*` variables. `logger_provider`
    receives the log-based `gen_ai.client.inference.operation.details` events (else the
    global one; with none, they are span events).

    `redact_pii` (else `OTEL_AGENTS_REDACT_PII`) also masks e-mail addresses, IBANs,
    payment card numbers and phone numbers in captured content and error messages.

    `policy` (a file path, YAML text or a `Policy`; else `OTEL_AGENTS_POLICY_FILE`) is
    evaluated before every tool call, in `policy_mode` (`observe` or `enforce`; else
    `OTEL_AGENTS_POLICY_MODE`, else the policy's own). `approver` answers approval
    requests (an `Approver` or a function). `detectors`: `False` turns them off, a mapping
    or `DetectorSettings` sets thresholds. See docs/policy.md.
    """
    global _instrumented, _owned
    from otel_agents.detectors import DetectorSettings

    settings = Settings.load(
        capture_content=capture_content,
        max_content_length=max_content_length,
        redact_patterns=redact_patterns,
        redact_keys=redact_keys,
        redact_pii=redact_pii,
        prices=prices,
    )
    if settings.disabled:
        _logger.info("otel-agents is disabled by OTEL_AGENTS_DISABLED")
        return
    # Read and check before changing anything: a bad policy fails here, at start-up.
    policy_setup = _load_policy_setup(policy, policy_mode, approver)
    detector_settings = DetectorSettings.load(detectors)
    with _lock:
        if configure_sdk and tracer_provider is None and _owned is None:
            from otel_agents.sdk_setup import configure_sdk as _configure

            _owned = _configure()
        runtime = Runtime.build(settings, tracer_provider, meter_provider, logger_provider)
        _close_governance()
        _governance.extend(_build_governance(runtime, policy_setup, detector_settings))
        # The gate first: it may stop a call, and it checks outputs before detectors look.
        runtime.add_observers([*_governance, *observers])
        set_runtime(runtime)
        if not _instrumented:
            runtime.prices.load_in_background()  # the table is process-wide: load it once
            _propagate_context_to_threads()
            from otel_agents.adapters import instrument_adapters

            instrument_adapters()
            _instrumented = True


def uninstrument() -> None:
    """Undo `instrument()`: unpatch every client. Decorated code keeps its plain spans."""
    global _instrumented
    with _lock:
        if not _instrumented:
            return
        from otel_agents.adapters import uninstrument_adapters

        uninstrument_adapters()
        _close_governance()
        from otel_agents.thread_context import stop_propagating

        stop_propagating()
        set_runtime(None)
        _instrumented = False


def _load_policy_setup(
    policy: PolicySource | None, policy_mode: Mode | str | None, approver: ApproverLike | None
) -> Any:
    """The checked policy configuration, or None when nothing about decision rights is
    configured: the policy package is then not imported (see `policy.idle`)."""
    configured = (policy, policy_mode, approver) != (None, None, None) or any(
        os.environ.get(name, "").strip() for name in (POLICY_FILE_ENV, POLICY_MODE_ENV)
    )
    if not configured:
        return None
    from otel_agents.policy.setup import PolicySetup

    return PolicySetup.load(policy, policy_mode, approver)


def _build_governance(
    runtime: Runtime, policy_setup: Any, detector_settings: Any
) -> list[Observer]:
    from otel_agents.detectors import build_detectors

    if policy_setup is None:
        from otel_agents.policy.idle import IdleGate

        return [IdleGate(runtime.meter), *build_detectors(detector_settings, runtime.meter)]
    gate: Observer = policy_setup.build(runtime.meter)
    return [gate, *policy_setup.checks(), *build_detectors(detector_settings, runtime.meter)]


def _close_governance() -> None:
    """Stop what the previous gate started (an approval HTTP endpoint, say)."""
    for observer in _governance:
        close = getattr(observer, "close", None)
        if callable(close):
            try:
                close()
            except Exception as exc:
                report_internal_error("closing the policy gate", exc)
    _governance.clear()


def is_instrumented() -> bool:
    return _instrumented


def flush(timeout_millis: int = 5_000) -> bool:
    """Export what is buffered now (useful before a short script exits).

    Returns within `timeout_millis` whatever the backend does (a dead or silent one
    included): True if everything was exported in time, False if not (what is still
    queued goes on being exported in the background, or is dropped and counted).
    """
    if _owned is not None:
        return bool(_owned.force_flush(timeout_millis))
    providers = [trace.get_tracer_provider(), metrics.get_meter_provider()]
    flushes = [f for f in (getattr(p, "force_flush", None) for p in providers) if callable(f)]
    if not flushes:
        return True
    global _foreign_flusher
    if _foreign_flusher is None:
        from otel_agents.sdk_setup import BoundedCall

        _foreign_flusher = BoundedCall("otel-agents flush")
    return _foreign_flusher.run(
        lambda: all([f(timeout_millis) is not False for f in flushes]), timeout_millis / 1000
    )


def export_counts() -> list[ExportCounts]:
    """What the span processors otel-agents set up exported so far (none if it set up none)."""
    return _owned.export_counts() if _owned is not None else []


def _propagate_context_to_threads() -> None:
    """Carry the OpenTelemetry context (and so the run ledger) into threads and pools."""
    from otel_agents.thread_context import propagate_context_to_threads

    propagate_context_to_threads()
