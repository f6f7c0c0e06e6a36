"""The store's write path on the real SDK: spans, run totals, findings and audit records."""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from storetools import instrumented, read, store_provider

import otel_agents
from otel_agents import semconv as sc
from otel_agents.runtime import get_runtime
from otel_agents.store import writer
from otel_agents.store.exporter import StoreExporter
from otel_agents.store.settings import StoreSettings


@otel_agents.tool
def lookup(vendor_id: str) -> dict[str, str]:
    return {"vendor_id": vendor_id, "status": "verified"}


@otel_agents.tool
def flaky(attempt: int) -> None:
    raise ConnectionError("upstream reset the connection")


@otel_agents.tool
def create_account(vendor_id: str) -> str:
    """Create an account after a (traced) human approval."""
    with get_runtime().tracer.start_as_current_span(  # the provider instrument() was given
        "await_approval create_account",
        attributes={
            sc.APPROVAL_STATUS: sc.ApprovalStatusValues.APPROVED,
            sc.APPROVAL_APPROVER: "bob@example.com",
            sc.APPROVAL_CHANNEL: "cli",
        },
    ):
        pass
    trace.get_current_span().set_attribute(sc.POLICY_VERDICT, "require_approval")
    return f"acct-{vendor_id}"


def onboarding() -> str:
    with otel_agents.agent("intake") as run:
        otel_agents.decision("The record comes first", tool_name="lookup")
        lookup("V-1")
        for _ in range(2):
            with contextlib.suppress(ConnectionError):
                flaky(1)
        handoff = otel_agents.handoff(to="provisioning", payload={"vendor_id": "V-1"})
        with handoff as boundary, otel_agents.agent("provisioning"):
            boundary.check("has_vendor_id", True)
            create_account("V-1")
    return run.run_id or ""


def test_spans_keep_their_attributes_events_links_and_resource(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    provider, _ = store_provider(path)
    with instrumented(provider):
        run_id = onboarding()
    provider.force_flush()
    with read(path) as store:
        spans = store.run_spans(run_id)
    names = [s.name for s in spans]
    assert names == [
        "invoke_agent intake", "execute_tool lookup", "execute_tool flaky", "execute_tool flaky",
        "handoff provisioning", "invoke_agent provisioning", "execute_tool create_account",
        "await_approval create_account",
    ]  # fmt: skip
    by_name = {s.name: s for s in spans}
    tool = by_name["execute_tool lookup"]
    assert tool.get(sc.GEN_AI_TOOL_NAME) == "lookup" and tool.run_id == run_id
    assert json.loads(tool.get(sc.GEN_AI_TOOL_CALL_ARGUMENTS)) == {"vendor_id": "V-1"}
    assert tool.get(sc.DECISION_REASONING) == "The record comes first"
    [link] = tool.links
    assert link["span_id"] == by_name["invoke_agent intake"].span_id  # where the decision was
    failed = [s for s in spans if s.name == "execute_tool flaky"]
    assert [s.status for s in failed] == ["error", "error"]
    assert failed[1].get(sc.TOOL_CALL_ATTEMPT) == 2
    [exception] = failed[0].events_named("exception")
    assert exception["attributes"]["exception.type"] == "ConnectionError"
    handoff = by_name["handoff provisioning"]
    assert handoff.get(sc.HANDOFF_CHECKS_PASSED) == ["has_vendor_id"]
    assert by_name["invoke_agent provisioning"].parent_span_id == handoff.span_id
    assert tool.resource.get("telemetry.sdk.language") == "python"


def test_a_run_shows_progress_before_its_root_ends_and_final_totals_after(
    tmp_path: Path,
) -> None:
    path = tmp_path / "traces.db"
    provider, _ = store_provider(path)
    with instrumented(provider):
        with otel_agents.agent("long-running") as run:
            lookup("V-1")
            lookup("V-1")
            provider.force_flush()
            with read(path) as store:
                partial = store.run(run.run_id or "")
            assert (partial.status, partial.tool_calls, partial.retries) == ("running", 2, 1)
            lookup("V-2")
        provider.force_flush()
    with read(path) as store:
        final = store.run(run.run_id or "")
        root = [s for s in store.run_spans(final.run_id) if s.is_run_root]
    assert (final.status, final.agent) == ("ok", "long-running")
    assert (final.tool_calls, final.retries) == (3, 1)
    assert [s.get(sc.RUN_TOOL_CALLS) for s in root] == [3]


def test_one_audit_record_per_tool_call_with_its_agent_and_approver(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    provider, _ = store_provider(path)
    with instrumented(provider):
        run_id = onboarding()
    provider.force_flush()
    with read(path) as store:
        log = list(store.audit_records())
        assert store.verify_audit().ok
    assert [(r.seq, r.tool, r.agent, r.status) for r in log] == [
        (1, "lookup", "intake", "ok"),
        (2, "flaky", "intake", "error"),
        (3, "flaky", "intake", "error"),
        (4, "create_account", "provisioning", "ok"),
    ]
    assert {r.run_id for r in log} == {run_id}
    assert log[0].reasoning == "The record comes first"
    assert log[2].attempt == 2 and log[2].error_type == "ConnectionError"
    assert (log[3].approver, log[3].approval_status, log[3].verdict) == (
        "bob@example.com", "approved", "require_approval",
    )  # fmt: skip
    assert log[3].output == "acct-V-1"


@pytest.mark.parametrize(
    ("capture", "present"),
    [("NO_CONTENT", False), ("SPAN_ONLY", True), ("EVENT_ONLY", True), ("SPAN_AND_EVENT", True)],
)
def test_audit_content_is_only_as_present_as_capture_allows(
    tmp_path: Path, capture: str, present: bool
) -> None:
    path = tmp_path / "traces.db"
    provider, _ = store_provider(path)
    with instrumented(provider, capture=capture):
        onboarding()
    provider.force_flush()
    with read(path) as store:
        first = next(store.audit_records())
    values = (first.input, first.output, first.reasoning)
    if present:
        assert values == ('{"vendor_id":"V-1"}', '{"vendor_id":"V-1","status":"verified"}',
                          "The record comes first")  # fmt: skip
    else:
        assert values == (None, None, None)
        assert (first.tool, first.agent) == ("lookup", "intake")  # the shape stays


def test_exporting_the_same_spans_twice_stores_them_once(tmp_path: Path) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with instrumented(provider):
        onboarding()
    spans = memory.get_finished_spans()
    exporter = StoreExporter(StoreSettings(path=tmp_path / "traces.db", max_age_days=0, max_mb=0))
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.export(spans) is SpanExportResult.SUCCESS  # an exporter retry
    exporter.shutdown()
    with read(tmp_path / "traces.db") as store:
        info = store.info()
        assert (info.spans, info.audit_records, info.runs) == (len(spans), 4, 1)
        assert store.verify_audit().ok
        [resources] = store.conn.execute("SELECT count(*) FROM resources").fetchone()
    assert resources == 1


def test_threads_writing_at_once_keep_every_span_and_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    provider, _ = store_provider(path, max_export_batch_size=8, schedule_delay_millis=5)
    with instrumented(provider):

        def work(worker: int) -> None:
            with otel_agents.agent(f"worker-{worker}"):
                for i in range(50):
                    lookup(f"V-{worker}-{i}")
                    if i % 10 == 0:
                        provider.force_flush()  # exports from this thread, racing the worker

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    provider.force_flush()
    with read(path) as store:
        info = store.info()
        verification = store.verify_audit()
        runs = store.runs()
    assert (info.spans, info.audit_records) == (6 * 51, 6 * 50)
    assert verification.ok and verification.records == 300
    assert sorted(r.agent or "" for r in runs) == [f"worker-{n}" for n in range(6)]
    assert all(r.tool_calls == 50 and r.status == "ok" for r in runs)


def test_a_batch_partly_stored_already_adds_only_the_new_spans(tmp_path: Path) -> None:
    """A retried batch that grew (spans stored by an earlier export, plus new ones, one of
    them twice): each span once, each tool call once in the audit chain."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with instrumented(provider):
        onboarding()
    spans = list(memory.get_finished_spans())
    exporter = StoreExporter(StoreSettings(path=tmp_path / "traces.db", max_age_days=0, max_mb=0))
    assert exporter.export(spans[:3]) is SpanExportResult.SUCCESS
    assert exporter.export([*spans, spans[-1]]) is SpanExportResult.SUCCESS
    exporter.shutdown()
    with read(tmp_path / "traces.db") as store:
        info = store.info()
        assert (info.spans, info.audit_records, info.runs) == (len(spans), 4, 1)
        assert store.verify_audit().ok


def test_the_writer_pauses_between_sub_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Converting a batch is pure Python: the writer hands the interpreter lock over
    between sub-batches rather than holding it for a whole 512-span batch."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with instrumented(provider), otel_agents.agent("many"):
        for i in range(511):
            lookup(f"V-{i}")
    spans = memory.get_finished_spans()
    assert len(spans) == 512
    pauses: list[int] = []
    monkeypatch.setattr(writer, "_yield_interpreter", lambda: pauses.append(1))
    exporter = StoreExporter(StoreSettings(path=tmp_path / "traces.db", max_age_days=0, max_mb=0))
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    per_pass = 512 // writer.SUB_BATCH - 1
    # converting, encoding the rows, building the 511 audit records
    assert len(pauses) == 3 * per_pass
    with read(tmp_path / "traces.db") as store:
        assert (store.info().spans, store.info().audit_records) == (512, 511)
        assert store.verify_audit().ok


@pytest.mark.parametrize("flush_between", [True, False], ids=["two batches", "one batch"])
def test_a_resumed_run_sums_the_totals_of_its_segments(tmp_path: Path, flush_between: bool) -> None:
    """A run paused for a human and resumed (a LangGraph interrupt) has a root span per
    segment, each reporting its own segment's totals: the stored run has their sum."""
    from otel_agents.core import handler
    from otel_agents.core.agent import AgentSpec

    path = tmp_path / "traces.db"
    provider, _ = store_provider(path)
    run_id = "0123456789abcdef0123456789abcdef"
    with instrumented(provider):
        for vendors in (["V-1", "V-2"], ["V-3"]):  # before the pause, after the resume
            segment = handler.start_agent(AgentSpec("mailer"), run_id=run_id)
            token = segment.make_current()
            for vendor in vendors:
                lookup(vendor)
            segment.stop_current(token)
            handler.stop_agent(segment)
            if flush_between:
                provider.force_flush()
        provider.force_flush()
    with read(path) as store:
        run = store.run(run_id)
        roots = [s for s in store.run_spans(run_id) if s.is_run_root]
    assert len(roots) == 2
    assert (run.status, run.agent, run.tool_calls) == ("ok", "mailer", 3)
