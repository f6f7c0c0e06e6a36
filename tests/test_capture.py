"""Safe capture of arbitrary content: serialization, truncation, secrets."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
from typing import Any

import pytest
from agents_testing import Telemetry

import otel_agents
from otel_agents import semconv as sc
from otel_agents.capture import REDACTED, Capturer, Redactor, summarize
from otel_agents.config import ConfigError, ContentCapture, Settings

CAPTURER = Capturer(max_length=200, redactor=Redactor())


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Vendor:
    name: str
    since: datetime.date


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_values_json_cannot_hold_are_described() -> None:
    value = {
        "vendor": Vendor("Acme", datetime.date(2024, 5, 1)),
        "color": Color.RED,
        "blob": b"\x00\x01" * 10,
        "set": {1},
        "weird": Unprintable(),
        "nan": float("nan"),
    }
    parsed = json.loads(CAPTURER.text(value))
    assert parsed["vendor"] == {"name": "Acme", "since": "2024-05-01"}
    assert parsed["color"] == "red"
    assert parsed["blob"] == "<20 bytes>"
    assert parsed["set"] == [1]
    assert parsed["weird"] == "<unrepresentable Unprintable>"
    assert parsed["nan"] == "nan"


def test_cycles_are_cut() -> None:
    a: dict[str, Any] = {"name": "a"}
    a["self"] = a
    items: list[Any] = [1]
    items.append(items)
    assert json.loads(CAPTURER.text(a)) == {"name": "a", "self": "<cycle>"}
    assert json.loads(CAPTURER.text(items)) == [1, "<cycle>"]


class CountingRedactor(Redactor):
    """Counts the characters it is asked to scrub: the work a capture does, without a clock."""

    scrubbed = 0

    def scrub(self, text: str) -> str:
        self.scrubbed += len(text)
        return super().scrub(text)


def test_ten_megabytes_are_cut_before_any_work_with_the_original_size() -> None:
    redactor = CountingRedactor()
    capturer = Capturer(max_length=200, redactor=redactor)
    huge = "x" * 10_000_000
    text = capturer.text({"document": huge})
    assert len(text) < 300
    assert "truncated from" in text and "10000" in text
    plain = capturer.text(huge)
    assert plain.endswith("…[truncated from 10000000 chars]")
    assert redactor.scrubbed < 2 * (200 + 256) * 2  # each capture scrubbed a bounded head


def test_huge_collections_stop_early(monkeypatch: pytest.MonkeyPatch) -> None:
    from otel_agents import capture

    visited = 0
    convert = capture._Walk.convert

    def counting(self: Any, value: Any, depth: int) -> Any:
        nonlocal visited
        visited += 1
        return convert(self, value, depth)

    monkeypatch.setattr(capture._Walk, "convert", counting)
    text = CAPTURER.text(list(range(2_000_000)))
    assert "truncated from more than" in text
    assert visited < 1_000  # the walk stopped at the character budget, not at the end


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789-_ABC",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "xoxb-1234567890-abcdefghij",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
        "hf_abcdefghijklmnopqrstuvwxyz01234567",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----",
    ],
)
def test_provider_keys_are_masked_anywhere(secret: str) -> None:
    nested = {"config": {"notes": [f"use {secret} for prod"]}}
    text = CAPTURER.text(nested)
    assert secret not in text
    assert REDACTED in text


def test_secret_keys_headers_and_urls() -> None:
    value = {
        "api_key": "abc123",
        "headers": {"Authorization": "Bearer abcdefghijkl", "Cookie": "session=xyz"},
        "db": "postgres://admin:hunter2@db.internal:5432/app",
        "max_tokens": 100,
        "usage": {"input_tokens": 5},
    }
    parsed = json.loads(CAPTURER.text(value))
    assert parsed["api_key"] == REDACTED
    assert parsed["headers"] == {"Authorization": REDACTED, "Cookie": REDACTED}
    assert parsed["db"] == f"postgres://admin:{REDACTED}@db.internal:5432/app"
    assert parsed["max_tokens"] == 100 and parsed["usage"] == {"input_tokens": 5}
    text = CAPTURER.scrub("curl -H 'Authorization: Bearer abc.def.ghi123' -d password=s3cret!")
    assert "abc.def.ghi123" not in text and "s3cret" not in text


def test_secret_at_the_truncation_boundary_is_still_masked() -> None:
    key = "sk-abcdefghijklmnopqrstuvwxyz0123456789"
    text = Capturer(max_length=50, redactor=Redactor()).text("a" * 40 + key)
    assert "sk-abcdefghij" not in text


def test_custom_patterns_and_keys() -> None:
    redactor = Redactor(extra_patterns=[r"ACME-\d{6}"], extra_keys=[r"^ssn$"])
    capturer = Capturer(200, redactor)
    parsed = json.loads(capturer.text({"ssn": "123-45-6789", "note": "ticket ACME-123456"}))
    assert parsed == {"ssn": REDACTED, "note": f"ticket {REDACTED}"}


def test_summary_has_no_content() -> None:
    assert summarize({"a": 1, "b": 2}) == "dict with 2 keys: a, b"
    assert summarize("secret text") == "str of 11 chars"
    assert (
        summarize(Vendor("x", datetime.date.today()))
        == "Vendor (dataclass) with 2 fields: name, since"
    )


def test_capture_mode_parsing() -> None:
    assert ContentCapture.parse(None) is ContentCapture.NO_CONTENT
    assert ContentCapture.parse("true") is ContentCapture.SPAN_ONLY
    assert ContentCapture.parse("span_and_event") is ContentCapture.SPAN_AND_EVENT
    with pytest.raises(ConfigError, match="OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"):
        ContentCapture.parse("everything")
    with pytest.raises(ConfigError, match="OTEL_AGENTS_MAX_CONTENT_LENGTH"):
        Settings.load(environ={"OTEL_AGENTS_MAX_CONTENT_LENGTH": "lots"})
    with pytest.raises(ConfigError, match="not a valid regex"):
        Settings.load(environ={"OTEL_AGENTS_REDACT_PATTERNS": '["(unclosed"]'})
    loaded = Settings.load(
        environ={
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
            "OTEL_AGENTS_MAX_CONTENT_LENGTH": "1000",
            "OTEL_AGENTS_REDACT_PATTERNS": '["ACME-\\\\d+"]',
        }
    )
    assert loaded.capture_content is ContentCapture.SPAN_ONLY
    assert loaded.max_content_length == 1000
    assert loaded.redact_patterns == ("ACME-\\d+",)


def test_tool_with_hostile_arguments_never_breaks(content_telemetry: Telemetry) -> None:
    cyclic: dict[str, Any] = {}
    cyclic["me"] = cyclic

    @otel_agents.tool
    def ingest(doc: Any, extra: Any, raw: bytes, key: str) -> str:
        return "done"

    result = ingest("y" * 10_000_000, cyclic, b"\xff" * 100, "sk-proj-" + "z" * 40)
    assert result == "done"
    a = dict(content_telemetry.span("execute_tool ingest").attributes or {})
    arguments = a[sc.GEN_AI_TOOL_CALL_ARGUMENTS]
    assert len(arguments) < 9000
    assert "zzzzzzzzzzzzzzzzzzzzzzzz" not in arguments
    assert "truncated from" in arguments


def test_secrets_in_exception_messages_are_masked(telemetry: Telemetry) -> None:
    @otel_agents.tool
    def call_api() -> None:
        raise PermissionError("401 for key sk-proj-abcdefghijklmnopqrstuvwxyz012345")

    with pytest.raises(PermissionError, match="sk-proj-abcdefghij"):
        call_api()  # the application still sees the original message
    span = telemetry.span("execute_tool call_api")
    assert "sk-proj-abcdefghij" not in (span.status.description or "")
    event = span.events[0]
    assert "sk-proj-abcdefghij" not in str(event.attributes)
    assert REDACTED in str(event.attributes)


def test_event_mode_puts_content_on_an_event(monkeypatch: pytest.MonkeyPatch) -> None:
    from agents_testing import instrumented

    generator = instrumented(monkeypatch, capture_content="EVENT_ONLY")
    telemetry = next(generator)
    try:

        @otel_agents.tool
        def echo(text: str) -> str:
            return text

        echo("hello")
        span = telemetry.span("execute_tool echo")
        assert sc.GEN_AI_TOOL_CALL_ARGUMENTS not in (span.attributes or {})
        content_events = [e for e in span.events if e.name == sc.EVENT_CONTENT]
        assert len(content_events) == 2
        assert content_events[0].attributes == {sc.GEN_AI_TOOL_CALL_ARGUMENTS: '{"text":"hello"}'}
    finally:
        next(generator, None)
