"""Helpers for the store tests: a real SDK provider writing into a real store file, and
traced programs run in their own processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

import otel_agents
from otel_agents.store.exporter import StoreSpanProcessor
from otel_agents.store.reader import Store
from otel_agents.store.settings import StoreSettings

ROOT = Path(__file__).resolve().parents[2]


def store_provider(
    path: Path, max_age_days: float = 0, max_mb: float = 0, **batch: Any
) -> tuple[TracerProvider, StoreSpanProcessor]:
    """A TracerProvider whose only processor is the store's (retention off by default)."""
    settings = StoreSettings(path=path, max_age_days=max_age_days, max_mb=max_mb)
    processor = StoreSpanProcessor(settings, **batch)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return provider, processor


@contextlib.contextmanager
def instrumented(provider: TracerProvider, capture: str = "SPAN_ONLY") -> Iterator[None]:
    """otel-agents on, writing into `provider`; built-in detectors off (fixed stories)."""
    otel_agents.instrument(
        tracer_provider=provider, configure_sdk=False, capture_content=capture, detectors=False
    )
    try:
        yield
    finally:
        otel_agents.uninstrument()


def read(path: Path) -> Store:
    return Store.open(path)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run_python(
    code: str, timeout: float = 120, check: bool = True, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run a small program in a fresh process with a clean OTEL_* environment."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result
