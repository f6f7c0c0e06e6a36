"""Shared fixtures: otel-agents on the real OpenTelemetry SDK with in-memory exporters."""

from __future__ import annotations

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

