"""Settings, from `instrument()` arguments first, then the environment, then defaults.

Standard OpenTelemetry variables (`OTEL_*`) keep their standard meaning; ours start with
`OTEL_AGENTS_`. Every setting is read once, when `instrument()` runs, so the hot path
never touches `os.environ`.
"""

from __future__ import annotations

import enum
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otel_agents.pricing import ModelPrice

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
MAX_CONTENT_LENGTH_ENV = "OTEL_AGENTS_MAX_CONTENT_LENGTH"
REDACT_PATTERNS_ENV = "OTEL_AGENTS_REDACT_PATTERNS"
REDACT_KEYS_ENV = "OTEL_AGENTS_REDACT_KEYS"
REDACT_PII_ENV = "OTEL_AGENTS_REDACT_PII"
DISABLED_ENV = "OTEL_AGENTS_DISABLED"
POLICY_FILE_ENV = "OTEL_AGENTS_POLICY_FILE"
POLICY_MODE_ENV = "OTEL_AGENTS_POLICY_MODE"
# The standard switch for semantic-convention transitions: `gen_ai/dup` also emits the GenAI
# metric names of semantic conventions v1.41 that upstream has since removed or renamed.
STABILITY_OPT_IN_ENV = "OTEL_SEMCONV_STABILITY_OPT_IN"
GENAI_DUP = "gen_ai/dup"

DEFAULT_MAX_CONTENT_LENGTH = 8192


class ConfigError(ValueError):
    """A setting has a value we cannot use. The message names the setting and the value."""


class ContentCapture(enum.Enum):
    """Where content goes: `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`."""

    NO_CONTENT = "NO_CONTENT"
    SPAN_ONLY = "SPAN_ONLY"
    EVENT_ONLY = "EVENT_ONLY"
    SPAN_AND_EVENT = "SPAN_AND_EVENT"

    @property
    def on_spans(self) -> bool:
        return self in (ContentCapture.SPAN_ONLY, ContentCapture.SPAN_AND_EVENT)

    @property
    def on_events(self) -> bool:
        return self in (ContentCapture.EVENT_ONLY, ContentCapture.SPAN_AND_EVENT)

    @property
    def enabled(self) -> bool:
        return self is not ContentCapture.NO_CONTENT

    @classmethod
    def parse(cls, value: str | bool | ContentCapture | None) -> ContentCapture:
        """Accept the standard mode names and the older `true`/`false` spelling."""
        if isinstance(value, ContentCapture):
            return value
        if value is None:
            return cls.NO_CONTENT
        if isinstance(value, bool):
            return cls.SPAN_ONLY if value else cls.NO_CONTENT
        text = value.strip()
        if text.lower() in ("true", "1", "yes", "on"):
            return cls.SPAN_ONLY
        if text.lower() in ("", "false", "0", "no", "off"):
            return cls.NO_CONTENT
        try:
            return cls(text.upper())
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise ConfigError(
                f"{CAPTURE_CONTENT_ENV}={value!r} is not one of {choices} (or true/false)"
            ) from None


@dataclass(frozen=True)
class Settings:
    """Everything otel-agents reads at start-up. Build with `Settings.load(...)`."""

    capture_content: ContentCapture = ContentCapture.NO_CONTENT
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH
    redact_patterns: tuple[str, ...] = ()
    redact_keys: tuple[str, ...] = ()
    redact_pii: bool = False
    disabled: bool = False
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)
    # `OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai/dup`: old metric names as well as the current ones.
    legacy_genai_metrics: bool = False

    @classmethod
    def load(
        cls,
        *,
        capture_content: str | bool | ContentCapture | None = None,
        max_content_length: int | None = None,
        redact_patterns: Sequence[str] | None = None,
        redact_keys: Sequence[str] | None = None,
        redact_pii: bool | None = None,
        prices: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        from otel_agents.pricing import load_overrides

        env = os.environ if environ is None else environ
        capture = ContentCapture.parse(
            capture_content if capture_content is not None else env.get(CAPTURE_CONTENT_ENV)
        )
        length = (
            max_content_length
            if max_content_length is not None
            else _env_int(env, MAX_CONTENT_LENGTH_ENV, DEFAULT_MAX_CONTENT_LENGTH)
        )
        if length < 16:
            raise ConfigError(f"max content length must be at least 16, got {length}")
        patterns = tuple(redact_patterns or ()) + _env_list(env, REDACT_PATTERNS_ENV)
        for pattern in patterns:
            _check_regex(pattern)
        keys = tuple(redact_keys or ()) + _env_list(env, REDACT_KEYS_ENV)
        return cls(
            capture_content=capture,
            max_content_length=length,
            redact_patterns=patterns,
            redact_keys=keys,
            redact_pii=redact_pii if redact_pii is not None else _env_flag(env, REDACT_PII_ENV),
            disabled=env.get(DISABLED_ENV, "").strip().lower() in ("1", "true", "yes"),
            prices=load_overrides(prices, env),
            legacy_genai_metrics=GENAI_DUP in _opt_ins(env),
        )

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _opt_ins(env: Mapping[str, str]) -> set[str]:
    """The comma-separated values of `OTEL_SEMCONV_STABILITY_OPT_IN`, lower-cased."""
    return {part.strip().lower() for part in env.get(STABILITY_OPT_IN_ENV, "").split(",")}


def _env_flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name}={raw!r} is not true or false")


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None


def _env_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A JSON array of strings, or a single string."""
    raw = env.get(name, "").strip()
    if not raw:
        return ()
    if raw.startswith("["):
        try:
            items = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{name} is not a valid JSON array: {exc}") from None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"{name} must be a JSON array of strings")
        return tuple(items)
    return (raw,)


def _check_regex(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"redaction pattern {pattern!r} is not a valid regex: {exc}") from None
