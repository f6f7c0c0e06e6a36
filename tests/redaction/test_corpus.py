"""No secret shape leaks, through every path that carries user data out of the process:
span attributes, span events, exception events (content capture off too), the local store,
the audit export and our own log lines; near-miss strings stay readable."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from corpus import NEAR_MISSES, SHAPES, Shape
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_agents
from otel_agents.capture import REDACTED, Capturer, Redactor
from otel_agents.cli import main as cli_main
from otel_agents.runtime import report_internal_error
from otel_agents.store.exporter import StoreSpanProcessor
from otel_agents.store.settings import StoreSettings

MODES = ["NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT"]


def leaked(shape: Shape, text: str) -> bool:
    """The secret, or a recognisable piece of either end of it, is still in `text`."""
    secret = shape.secret
    pieces = {secret} if len(secret) < 16 else {secret, secret[:12], secret[-12:]}
    return any(piece in text for piece in pieces)


def test_the_corpus_is_broad() -> None:
    assert len(SHAPES) >= 100
    assert len({shape.provider for shape in SHAPES}) >= 50
    assert len(NEAR_MISSES) >= 25


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s.provider}: {s.kind}")
def test_every_shape_is_masked(shape: Shape) -> None:
    masked = Redactor().scrub(shape.text)
    assert not leaked(shape, masked), masked
    assert REDACTED in masked


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_stay_readable(text: str) -> None:
    assert Redactor().scrub(text) == text
    if "@" not in text:  # git@github.com is an e-mail address to the PII rules
        assert Redactor(pii=True).scrub(text) == text


def test_shapes_inside_structures_are_masked() -> None:
    capturer = Capturer(100_000, Redactor())
    value = {"notes": [shape.text for shape in SHAPES], "env": {"config": SHAPES[0].text}}
    text = capturer.text(value)
    assert [shape.kind for shape in SHAPES if leaked(shape, text)] == []


# -- through the real paths ------------------------------------------------------------------


@otel_agents.tool
def remember(note: str) -> str:
    return f"stored: {note}"


@otel_agents.tool
def call_service(note: str) -> None:
    raise PermissionError(f"401 Unauthorized for request with {note}")


def _story() -> None:
    for shape in SHAPES:
        with otel_agents.agent("secretive"):
            otel_agents.decision(f"I will store {shape.text}", tool_name="remember")
            remember(shape.text)
            with contextlib.suppress(PermissionError):
                call_service(shape.text)


@contextlib.contextmanager
def _instrumented(store: Path, mode: str) -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(StoreSpanProcessor(StoreSettings(path=store)))
    otel_agents.instrument(
        tracer_provider=provider, configure_sdk=False, capture_content=mode, detectors=False
    )
    try:
        yield memory
    finally:
        otel_agents.uninstrument()
        provider.shutdown()


def _span_texts(span: ReadableSpan) -> list[str]:
    texts = [span.name, span.status.description or ""]
    texts += [str(v) for v in (span.attributes or {}).values()]
    for event in span.events:
        texts += [str(v) for v in (event.attributes or {}).values()]
    return texts


def _store_text(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        return "\n".join(connection.iterdump())
    finally:
        connection.close()


def _audit_export(store: Path, tmp_path: Path) -> str:
    target = tmp_path / "audit.jsonl"
    assert cli_main(["--store", str(store), "audit", "export", "-o", str(target)]) == 0
    return target.read_text()


@pytest.mark.parametrize("mode", MODES)
def test_no_shape_leaks_through_spans_store_or_audit_export(mode: str, tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    with _instrumented(store, mode) as memory:
        _story()
    spans = memory.get_finished_spans()
    span_text = "\n".join(text for span in spans for text in _span_texts(span))
    stored = _store_text(store)
    exported = _audit_export(store, tmp_path)
    assert exported.count("\n") >= 2 * len(SHAPES)  # every tool call is in the audit log
    assert REDACTED in span_text  # the exception events carry the masked message
    leaks: dict[str, list[str]] = {}
    for where, text in (("spans", span_text), ("store", stored), ("audit", exported)):
        leaks[where] = [f"{s.provider}: {s.kind}" for s in SHAPES if leaked(s, text)]
    assert leaks == {"spans": [], "store": [], "audit": []}


def test_internal_error_log_lines_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="otel_agents")
    for index, shape in enumerate(SHAPES):
        try:
            raise ValueError(f"could not parse {shape.text}")
        except ValueError as exc:
            report_internal_error(f"corpus test {index}", exc)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert len(caplog.records) == len(SHAPES)
    assert [f"{s.provider}: {s.kind}" for s in SHAPES if leaked(s, logged)] == []


# -- personal data ----------------------------------------------------------------------------

PII_VALUES: list[tuple[str, str]] = [
    ("e-mail", "jane.doe+billing@example.co.uk"),
    ("e-mail", "ops@sub.example.org"),
    ("IBAN", "DE89 3704 0044 0532 0130 00"),
    ("IBAN", "GB82WEST12345698765432"),
    ("IBAN", "FR1420041010050500013M02606"),
    ("card", "4111 1111 1111 1111"),
    ("card", "5500-0000-0000-0004"),
    ("card", "378282246310005"),
    ("phone", "+1 415-555-0132"),
    ("phone", "+44 20 7946 0958"),
    ("phone", "+49 (30) 901820"),
    ("phone", "(415) 555-0132"),
]
PII_NEAR_MISSES = [
    "order 4111111111111112 (not a valid card number)",
    "IBAN-like DE00 3704 0044 0532 0130 00 with a bad checksum",
    "at 2026-12-04 16:25:05 after 1234 ms",
    "version 10.2.3.4 build 20261204",
    "call +1 for later",
]


@pytest.mark.parametrize(("kind", "value"), PII_VALUES)
def test_personal_data_is_masked_when_asked(kind: str, value: str) -> None:
    text = f"customer {kind}: {value}, thanks"
    assert value not in Redactor(pii=True).scrub(text)
    assert Redactor().scrub(text) == text  # off by default


@pytest.mark.parametrize("text", PII_NEAR_MISSES)
def test_personal_data_near_misses_stay(text: str) -> None:
    assert Redactor(pii=True).scrub(text) == text


def test_pii_switch_by_variable_and_option(monkeypatch: pytest.MonkeyPatch) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))

    def arguments_after(**options: Any) -> str:
        memory.clear()
        otel_agents.instrument(
            tracer_provider=provider, configure_sdk=False, capture_content="SPAN_ONLY", **options
        )
        try:
            remember("mail jane@example.com")
        finally:
            otel_agents.uninstrument()
        [span] = memory.get_finished_spans()
        return str(dict(span.attributes or {}))

    monkeypatch.delenv("OTEL_AGENTS_REDACT_PII", raising=False)
    assert "jane@example.com" in arguments_after()
    assert "jane@example.com" not in arguments_after(redact_pii=True)
    monkeypatch.setenv("OTEL_AGENTS_REDACT_PII", "true")
    assert "jane@example.com" not in arguments_after()
    assert "jane@example.com" in arguments_after(redact_pii=False)


def test_a_cut_off_private_key_is_masked_to_the_end() -> None:
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" + "A" * 300
    text = Capturer(120, Redactor()).text(f"key: -----BEGIN PRIVATE KEY-----\n{body}\n-----END")
    assert "MIIEvQ" not in text and "AAAA" not in text


def test_building_a_redactor_compiles_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """`instrument()` builds one per call: its patterns compile on first use instead."""
    import re

    compiled: list[str] = []
    real_compile = re.compile

    def counting(pattern: Any, flags: int = 0) -> Any:
        compiled.append(str(pattern))
        return real_compile(pattern, flags)

    monkeypatch.setattr(re, "compile", counting)
    redactor = Redactor(extra_patterns=[r"ACME-\d+"], extra_keys=[r"^ssn$"], pii=True)
    assert compiled == []
    assert redactor.scrub("ticket ACME-123") == f"ticket {REDACTED}"
    assert compiled  # compiled now, when first needed
