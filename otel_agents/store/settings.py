"""Where the local store lives and how much it keeps, from `OTEL_AGENTS_STORE*` variables.

- `OTEL_AGENTS_STORE`: `auto` (default; the store is the exporter when no other one is
  configured), `always` (also next to OTLP or console), `off` (never).
- `OTEL_AGENTS_STORE_PATH`: the file; default
  `${XDG_DATA_HOME:-~/.local/share}/otel-agents/traces.db`.
- `OTEL_AGENTS_STORE_MAX_AGE_DAYS`: default `30` (`0`: keep forever).
- `OTEL_AGENTS_STORE_MAX_MB`: default `512` (`0`: no size limit).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from otel_agents.config import ConfigError

STORE_ENV = "OTEL_AGENTS_STORE"
STORE_PATH_ENV = "OTEL_AGENTS_STORE_PATH"
MAX_AGE_DAYS_ENV = "OTEL_AGENTS_STORE_MAX_AGE_DAYS"
MAX_MB_ENV = "OTEL_AGENTS_STORE_MAX_MB"

DEFAULT_MAX_AGE_DAYS = 30.0
DEFAULT_MAX_MB = 512.0
STORE_FILE_NAME = "traces.db"


class StoreMode(enum.Enum):
    AUTO = "auto"  # the store is the default exporter: used when nothing else is configured
    ALWAYS = "always"  # in addition to OTLP (or console)
    OFF = "off"

    @classmethod
    def parse(cls, raw: str | None) -> StoreMode:
        text = (raw or "").strip().lower()
        aliases = {"": "auto", "on": "always", "true": "always", "false": "off", "none": "off"}
        try:
            return cls(aliases.get(text, text))
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise ConfigError(f"{STORE_ENV}={raw!r} is not one of {choices}") from None


def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$OTEL_AGENTS_STORE_PATH`, else `${XDG_DATA_HOME:-~/.local/share}/otel-agents/traces.db`."""
    env = os.environ if environ is None else environ
    explicit = env.get(STORE_PATH_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    data_home = env.get("XDG_DATA_HOME", "").strip()
    base = Path(data_home) if data_home else Path.home() / ".local" / "share"
    return base / "otel-agents" / STORE_FILE_NAME


@dataclass(frozen=True)
class StoreSettings:
    path: Path
    mode: StoreMode = StoreMode.AUTO
    max_age_days: float = DEFAULT_MAX_AGE_DAYS  # 0: no age limit
    max_mb: float = DEFAULT_MAX_MB  # 0: no size limit

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StoreSettings:
        env = os.environ if environ is None else environ
        return cls(
            path=default_store_path(env),
            mode=StoreMode.parse(env.get(STORE_ENV)),
            max_age_days=_non_negative(env, MAX_AGE_DAYS_ENV, DEFAULT_MAX_AGE_DAYS),
            max_mb=_non_negative(env, MAX_MB_ENV, DEFAULT_MAX_MB),
        )

    @property
    def max_bytes(self) -> int | None:
        return int(self.max_mb * 1024 * 1024) if self.max_mb > 0 else None

    @property
    def max_age_seconds(self) -> float | None:
        return self.max_age_days * 86_400 if self.max_age_days > 0 else None


def _non_negative(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ConfigError(f"{name}={raw!r} must be 0 (no limit) or more")
    return value
