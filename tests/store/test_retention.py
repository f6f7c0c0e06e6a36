"""Retention: old data goes by age, then oldest-first by size; the audit chain stays
verifiable from its retention anchor."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from storetools import instrumented, read, store_provider

import otel_agents
from otel_agents import semconv as sc
from otel_agents.store import exporter as store_exporter
from otel_agents.store import retention
from otel_agents.store.exporter import StoreExporter
from otel_agents.store.reader import RunFilter
from otel_agents.store.settings import StoreSettings

DAY_NS = 86_400 * 10**9


def old_run(days_ago: float, run_id: str, tools: int = 3) -> list[ReadableSpan]:
    """Spans of a run that happened `days_ago` (a program run back then would make these)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("an-old-program")
    start = time.time_ns() - int(days_ago * DAY_NS)
    root = tracer.start_span(
        "invoke_agent archivist",
        kind=SpanKind.INTERNAL,
        start_time=start,
        attributes={
            sc.GEN_AI_OPERATION_NAME: sc.GenAiOperationNameValues.INVOKE_AGENT,
            sc.GEN_AI_AGENT_NAME: "archivist",
            sc.RUN_ID: run_id,
        },
    )
    context = trace.set_span_in_context(root)
    for i in range(tools):
        tool = tracer.start_span(
            "execute_tool archive",
            context=context,
            start_time=start + (i + 1) * 1000,
            attributes={
                sc.GEN_AI_TOOL_NAME: "archive",
                sc.RUN_ID: run_id,
                sc.GEN_AI_TOOL_CALL_ARGUMENTS: "x" * 2000,
            },
        )
        tool.end(end_time=start + (i + 2) * 1000)
    root.set_attribute(sc.RUN_TOOL_CALLS, tools)
    root.end(end_time=start + (tools + 3) * 1000)
    return list(memory.get_finished_spans())


def exporter(path: Path, max_age_days: float = 0, max_mb: float = 0) -> StoreExporter:
    return StoreExporter(StoreSettings(path=path, max_age_days=max_age_days, max_mb=max_mb))


def test_runs_older_than_the_age_limit_go_and_the_chain_stays_verifiable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "traces.db"
    keep_all = exporter(path)
    for days, run_id in ((40, "old-1"), (35, "old-2"), (2, "recent")):
        assert keep_all.export(old_run(days, run_id)) is SpanExportResult.SUCCESS
    keep_all.shutdown()
    with read(path) as store:
        assert store.verify_audit().records == 9
        sixth = list(store.audit_records())[5]  # the last record of the old runs

    thirty_days = exporter(path, max_age_days=30)  # retention runs with its first batch
    assert thirty_days.export(old_run(0, "today")) is SpanExportResult.SUCCESS
    with read(path) as store:
        assert sorted(r.run_id for r in store.runs()) == ["recent", "today"]
        assert {s.run_id for s in store.run_spans("recent")} == {"recent"}
        verification = store.verify_audit()
        log = list(store.audit_records())
    assert verification.ok and verification.records == 6
    assert verification.first_seq == 7  # records 1-6 (the two old runs) were pruned
    assert log[0].prev_hash == sixth.hash  # the chain goes on from the pruned part
    assert {r.run_id for r in log} == {"recent", "today"}


def test_a_store_too_busy_to_prune_is_pruned_later_without_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "traces.db"
    keep_all = exporter(path)
    keep_all.export(old_run(40, "old"))
    keep_all.shutdown()

    real_enforce = retention.enforce
    attempts: list[int] = []

    def busy_once(*args: object) -> retention.Pruned:
        attempts.append(1)
        if len(attempts) == 1:  # another process holds the write lock
            raise sqlite3.OperationalError("database is locked")
        return real_enforce(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(store_exporter.retention, "enforce", busy_once)
    monkeypatch.setattr(store_exporter, "_RETENTION_RETRY", 0.0)  # retry with the next batch
    thirty_days = exporter(path, max_age_days=30)
    with caplog.at_level(logging.WARNING, logger="otel_agents"):
        assert thirty_days.export(old_run(0, "today")) is SpanExportResult.SUCCESS
        with read(path) as store:
            assert sorted(r.run_id for r in store.runs()) == ["old", "today"]  # not yet
        assert thirty_days.export(old_run(0, "later")) is SpanExportResult.SUCCESS
    with read(path) as store:
        assert sorted(r.run_id for r in store.runs()) == ["later", "today"]
    assert len(attempts) == 2
    assert caplog.records == []  # busy is expected with several writers: nothing to warn about


def test_tampering_after_pruning_is_still_caught(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    keep_all = exporter(path)
    for days, run_id in ((40, "old"), (1, "new")):
        keep_all.export(old_run(days, run_id))
    exporter(path, max_age_days=30).export(old_run(0, "today"))
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM audit WHERE seq = 4")  # the first record after the anchor
    with read(path) as store:
        verification = store.verify_audit()
    assert (verification.ok, verification.bad_seq, verification.problem) == (False, 4, "missing")


def test_the_store_is_kept_under_its_size_limit_oldest_runs_first(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    keep_all = exporter(path)
    for n in range(120):
        keep_all.export(old_run(10 - n * 0.05, f"run-{n:03d}", tools=5))
    keep_all.shutdown()
    before = path.stat().st_size
    assert before > 1024 * 1024

    limit_mb = 0.5
    small = exporter(path, max_mb=limit_mb)
    assert small.export(old_run(0, "newest")) is SpanExportResult.SUCCESS
    small.shutdown()
    with read(path) as store:
        kept = store.runs(RunFilter(limit=None))
        verification = store.verify_audit()
        with store.conn as conn:
            used = retention.used_bytes(conn)
    assert used <= limit_mb * 1024 * 1024
    assert path.stat().st_size < before, "freed pages went back to the file system"
    assert kept[0].run_id == "newest" and "run-119" in [r.run_id for r in kept]
    assert "run-000" not in [r.run_id for r in kept]
    oldest_kept = min(r.start_ns for r in kept)
    assert all(r.start_ns >= oldest_kept for r in kept)
    assert verification.ok and verification.records == 5 * (len(kept) - 1) + 3  # newest: 3


def test_the_default_limits_apply_to_instrumented_programs(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    keep_all = exporter(path)
    keep_all.export(old_run(45, "ancient"))
    keep_all.shutdown()
    provider, _ = store_provider(path, max_age_days=30, max_mb=512)
    with instrumented(provider), otel_agents.agent("today"):
        pass
    provider.force_flush()
    with read(path) as store:
        assert [r.agent for r in store.runs()] == ["today"]
