"""Detector thresholds: `instrument(detectors=...)` first, then `OTEL_AGENTS_*`, then defaults.

Every threshold is a field of `DetectorSettings`; its environment variable is
`OTEL_AGENTS_DETECTOR_<FIELD IN CAPITALS>` (for example `OTEL_AGENTS_DETECTOR_RUN_BUDGET_USD`).
`OTEL_AGENTS_DETECTORS` picks which detectors run: `all` (the default), `none`, or a
comma-separated list of detector names.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from otel_agents import semconv as sc
from otel_agents.config import ConfigError

DETECTORS_ENV = "OTEL_AGENTS_DETECTORS"
THRESHOLD_ENV_PREFIX = "OTEL_AGENTS_DETECTOR_"

ALL_DETECTORS = frozenset(
    {
        sc.DetectorNameValues.RETRY_LOOP,
        sc.DetectorNameValues.COST_SPIKE,
        sc.DetectorNameValues.BUDGET_EXCEEDED,
        sc.DetectorNameValues.HANDOFF_PING_PONG,
        sc.DetectorNameValues.SILENT_TOOL_FAILURE,
        sc.DetectorNameValues.RUNAWAY_RUN,
    }
)


@dataclass(frozen=True)
class DetectorSettings:
    """Which detectors run and where they draw the line. `None` switches a limit off."""

    enabled: frozenset[str] = field(default=ALL_DETECTORS)
    # retry_loop: the same call (tool + canonical arguments) this many times in one run ...
    retry_loop_calls: int = 5
    # ... or the same call failing this many times in one run ...
    retry_loop_failures: int = 3
    # ... or one tool failing this many times in a row, whatever the arguments.
    retry_loop_tool_failures: int = 5
    # cost_spike: an LLM call costing more than `factor` times the median of the last
    # `window` calls of the same agent and model (once `min_samples` are known), and at
    # least `min_usd` (tiny calls are noise).
    cost_spike_factor: float = 5.0
    cost_spike_min_usd: float = 0.01
    cost_spike_window: int = 50
    cost_spike_min_samples: int = 5
    # budget_exceeded: a run spending more (LLM cost plus declared tool costs), or using
    # more tokens, than this.
    run_budget_usd: float | None = None
    run_budget_tokens: int | None = None
    # handoff_ping_pong: this many handoffs in a row that bounce between the same two agents.
    ping_pong_handoffs: int = 4
    # silent_tool_failure: also flag empty results ("", [], {}); None is never flagged.
    silent_failure_empty: bool = True
    # runaway_run: more LLM calls, tool calls or seconds than this in one run.
    runaway_llm_calls: int | None = 50
    runaway_tool_calls: int | None = 100
    runaway_seconds: float | None = None

    def __post_init__(self) -> None:
        unknown = set(self.enabled) - ALL_DETECTORS
        if unknown:
            raise ConfigError(
                f"unknown detector(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(ALL_DETECTORS))}"
            )
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ConfigError(f"detector threshold {item.name} must be 0 or more, got {value}")

    def on(self, detector: str) -> bool:
        return detector in self.enabled

    @classmethod
    def load(
        cls,
        given: DetectorSettings | Mapping[str, Any] | bool | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> DetectorSettings:
        """Settings from an `instrument(detectors=...)` value and the environment.

        `False` turns every detector off; a `DetectorSettings` is taken as is; a mapping
        overrides single fields (and `enabled`) on top of the environment.
        """
        if isinstance(given, DetectorSettings):
            return given
        if given is False:
            return cls(enabled=frozenset())
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        selection = env.get(DETECTORS_ENV, "").strip()
        if selection:
            values["enabled"] = _selection(selection)
        for item in fields(cls):
            raw = env.get(THRESHOLD_ENV_PREFIX + item.name.upper(), "").strip()
            if raw and item.name != "enabled":
                values[item.name] = _parse(item, raw, THRESHOLD_ENV_PREFIX + item.name.upper())
        if isinstance(given, Mapping):
            known = {item.name for item in fields(cls)}
            for key, value in given.items():
                if key not in known:
                    raise ConfigError(f"unknown detector setting {key!r}")
                values[key] = frozenset(value) if key == "enabled" else value
        return cls(**values)


def _selection(raw: str) -> frozenset[str]:
    if raw.lower() == "all":
        return ALL_DETECTORS
    if raw.lower() == "none":
        return frozenset()
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def _parse(item: dataclasses.Field[Any], raw: str, name: str) -> Any:
    kind = str(item.type)
    if raw.lower() == "none":
        if "None" not in kind:
            raise ConfigError(f"{name} cannot be none")
        return None
    try:
        if kind.startswith("bool"):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1")
        if kind.startswith("int"):
            return int(raw)
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind}") from None
