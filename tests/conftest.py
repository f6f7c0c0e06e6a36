"""Shared fixtures: otel-agents on the real OpenTelemetry SDK with in-memory exporters."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest
from agents_testing import Telemetry, instrumented


@pytest.fixture
def telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    """otel-agents instrumented against in-memory exporters; content capture off."""
    yield from instrumented(monkeypatch)


@pytest.fixture
def content_telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    """As `telemetry`, with content captured on spans."""
    yield from instrumented(monkeypatch, capture_content="SPAN_ONLY")

def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


# google-genai 3.x needs Python 3.11: on 3.10 the extra installs nothing and its tests are
# not collected (the adapter itself is skipped by the registry when the SDK is missing).
collect_ignore = (
    []
    if _installed("google.genai")
    else ["adapters/test_google_genai.py", "adapters/test_google_genai_wire.py"]
)
