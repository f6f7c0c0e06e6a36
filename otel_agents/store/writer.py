"""Writing one batch of spans: spans, run totals, detector findings and audit records.

Everything of a batch goes in one `BEGIN IMMEDIATE` transaction: either the whole batch
is stored (and its tool calls appended to the audit chain) or nothing is.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from otel_agents import semconv as sc
from otel_agents.store import audit, schema
from otel_agents.store.records import SPAN_COLUMNS, SpanRow, dumps, resource_digest

T = TypeVar("T")

# Spans handled between two pauses of the writer thread (see `sub_batches`).
SUB_BATCH = 64


def sub_batches(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """`items` in slices of `SUB_BATCH`, pausing between them.

    Turning spans into rows, JSON and audit records is pure Python and holds the
    interpreter lock: a 512-span batch in one go would hold it for milliseconds.
    `time.sleep(0)` between slices hands it to the application's threads if they wait
    for it. (SQLite releases the lock itself while it writes.)"""
    for start in range(0, len(items), SUB_BATCH):
        if start:
            _yield_interpreter()
        yield items[start : start + SUB_BATCH]


def _yield_interpreter() -> None:
    time.sleep(0)


_SPAN_PLACEHOLDERS = ", ".join("?" for _ in SPAN_COLUMNS.split(","))
_INSERT_SPAN = f"INSERT OR IGNORE INTO spans ({SPAN_COLUMNS}) VALUES ({_SPAN_PLACEHOLDERS})"


@dataclass
class RunRow:
    """A run's row in `runs`: totals so far, or the root span's final totals."""

    run_id: str
    trace_id: str
    root_span_id: str | None = None
    agent: str | None = None
    service: str | None = None
    start_ns: int = 0
    end_ns: int = 0
    finished: int = 0
    status: str | None = None
    error: str | None = None
    cost_usd: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    llm_calls: int = 0
    tool_calls: int = 0
    handoffs: int = 0
    retries: int = 0
    anomalies: int = 0
    denials: int = 0

    def add_span(self, span: SpanRow) -> None:
        """Widen the run's time range with one of its spans; take the totals when the
        span is the run's root. Totals are counted once, by the run ledger in the process,
        and reported by the root span: a run whose root never ended (a crash) gets partial
        totals from its stored spans when it is read (`reader.partial_totals`)."""
        self.start_ns = min(self.start_ns, span.start_ns) if self.start_ns else span.start_ns
        self.end_ns = max(self.end_ns, span.end_ns)
        self.service = self.service or span.service
        if span.is_agent and self.agent is None:
            self.agent = _str(span.get(sc.GEN_AI_AGENT_NAME))
        if span.is_run_root:
            self._take_root_totals(span)

    def _take_root_totals(self, root: SpanRow) -> None:
        # Another root of the run in this batch: an earlier segment of a resumed run.
        earlier = replace(self) if self.finished and self.root_span_id != root.span_id else None
        self.finished = 1
        self.root_span_id = root.span_id
        self.agent = _str(root.get(sc.GEN_AI_AGENT_NAME)) or self.agent
        self.status = "error" if root.status == "error" else "ok"
        self.error = root.status_message if root.status == "error" else None
        cost = root.get(sc.RUN_COST_USD)
        self.cost_usd = float(cost) if isinstance(cost, (int, float)) else None
        for name, attribute in _COUNTED:
            setattr(self, name, int_or_zero(root.get(attribute)))
        if earlier is not None:
            self.add_totals(earlier)

    def add_totals(self, earlier: RunRow) -> None:
        """A run paused and resumed (a LangGraph interrupt) has a root span per segment,
        each with its own segment's totals: the run's are their sum."""
        if earlier.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + earlier.cost_usd
        for name, _ in _COUNTED:
            setattr(self, name, getattr(self, name) + getattr(earlier, name))

    def merge_into(self, stored: RunRow) -> RunRow:
        """This batch's contribution on top of what the store already has."""
        if self.finished and stored.finished and stored.root_span_id != self.root_span_id:
            self.add_totals(stored)  # another segment of a resumed run
        if self.finished:  # the root's totals are final; keep only the wider time range
            merged = RunRow(**{f.name: getattr(self, f.name) for f in fields(RunRow)})
            merged.start_ns = min(stored.start_ns, self.start_ns)
            merged.end_ns = max(stored.end_ns, self.end_ns)
            merged.service = self.service or stored.service
            return merged
        if stored.finished:
            stored.start_ns = min(stored.start_ns, self.start_ns)
            stored.end_ns = max(stored.end_ns, self.end_ns)
            return stored
        stored.start_ns = min(stored.start_ns, self.start_ns)
        stored.end_ns = max(stored.end_ns, self.end_ns)
        stored.agent = stored.agent or self.agent
        stored.service = stored.service or self.service
        return stored


RUN_FIELDS = tuple(f.name for f in fields(RunRow))
# The run totals a root span reports, as (field, attribute).
_COUNTED = (
    ("input_tokens", sc.RUN_USAGE_INPUT_TOKENS),
    ("output_tokens", sc.RUN_USAGE_OUTPUT_TOKENS),
    ("llm_calls", sc.RUN_LLM_CALLS),
    ("tool_calls", sc.RUN_TOOL_CALLS),
    ("handoffs", sc.RUN_HANDOFFS),
    ("retries", sc.RUN_RETRIES),
    ("anomalies", sc.RUN_ANOMALIES),
    ("denials", sc.RUN_DENIALS),
)


def write_batch(
    conn: sqlite3.Connection,
    spans: Sequence[SpanRow],
    agent_hints: Mapping[str, str],
    now_ns: int | None = None,
) -> int:
    """Store a batch in one transaction; returns how many spans were new.

    `agent_hints` maps a tool span's id to the agent it ran in (known when the span started;
    the agent span itself ends, and so arrives, later).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        inserted = _insert_spans(conn, spans)
        conn.executemany(
            "DELETE FROM open_spans WHERE trace_id = ? AND span_id = ?",
            [(span.trace_id, span.span_id) for span in spans],
        )
        _update_runs(conn, inserted)
        _insert_anomalies(conn, inserted)
        _append_audit(conn, inserted, agent_hints, spans)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('last_write_ns', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(now_ns or time.time_ns()),),
        )
        conn.execute("COMMIT")
    except BaseException:
        schema.rollback(conn)
        raise
    return len(inserted)


def write_open_spans(
    conn: sqlite3.Connection, spans: Sequence[SpanRow], pid: int, host: str, now_ns: int
) -> None:
    """Record spans that have started and not ended (yet), and make their runs known.

    A run's row appears with its root agent's name as soon as that agent starts, so that a
    run that never finishes (the process was killed) is listed and shown by name.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        resource_ids: dict[int, int] = {}
        rows = []
        for span in spans:
            resource_id = resource_ids.get(id(span.resource))
            if resource_id is None:
                digest, text = resource_digest(span.resource)
                resource_id = resource_ids[id(span.resource)] = _resource_id(conn, digest, text)
            rows.append(
                (
                    *span.db_values(resource_id)[:7],
                    now_ns,
                    dumps(span.attributes),
                    dumps(span.events) if span.events else None,
                    dumps(span.links) if span.links else None,
                    resource_id,
                    span.scope,
                    pid,
                    host,
                )
            )
        conn.executemany(
            "INSERT OR REPLACE INTO open_spans (trace_id, span_id, parent_span_id, run_id, name,"
            " kind, start_ns, seen_ns, attributes, events, links, resource_id, scope, pid, host)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        _note_started_runs(conn, spans, now_ns)
        conn.execute("COMMIT")
    except BaseException:
        schema.rollback(conn)
        raise


def _note_started_runs(conn: sqlite3.Connection, spans: Sequence[SpanRow], now_ns: int) -> None:
    """Runs get a row from their spans' starts: the root agent's name, the start time, and
    (as the end so far) when the open spans were last seen."""
    placeholders = ", ".join("?" for _ in RUN_FIELDS)
    for span in sorted(spans, key=lambda s: s.start_ns):  # the root agent starts first
        if span.run_id is None:
            continue
        row = conn.execute(
            f"SELECT {', '.join(RUN_FIELDS)} FROM runs WHERE run_id = ?", (span.run_id,)
        ).fetchone()
        run = RunRow(*row) if row is not None else RunRow(span.run_id, span.trace_id)
        if run.finished:
            continue
        run.start_ns = min(run.start_ns, span.start_ns) if run.start_ns else span.start_ns
        run.end_ns = max(run.end_ns, span.start_ns, now_ns)
        run.service = run.service or span.service
        if span.is_agent and run.agent is None:
            run.agent = _str(span.get(sc.GEN_AI_AGENT_NAME))
        conn.execute(
            f"INSERT OR REPLACE INTO runs ({', '.join(RUN_FIELDS)}) VALUES ({placeholders})",
            tuple(getattr(run, name) for name in RUN_FIELDS),
        )


def _insert_spans(conn: sqlite3.Connection, spans: Sequence[SpanRow]) -> list[SpanRow]:
    """Insert spans not stored yet (an exporter retry may send a span twice).

    One `executemany` for the batch; only when it stored fewer rows than it was given
    (a retried batch, a span twice in one batch) is it undone and redone span by span, to
    learn which spans are new.
    """
    resource_ids: dict[int, int] = {}  # id() of a resource dict -> its row
    rows = []
    for part in sub_batches(spans):
        for span in part:
            resource_id = resource_ids.get(id(span.resource))
            if resource_id is None:
                digest, text = resource_digest(span.resource)
                resource_id = resource_ids[id(span.resource)] = _resource_id(conn, digest, text)
            rows.append(span.db_values(resource_id))
    conn.execute("SAVEPOINT spans_batch")
    before = conn.total_changes
    conn.executemany(_INSERT_SPAN, rows)
    if conn.total_changes - before == len(rows):
        conn.execute("RELEASE spans_batch")
        return list(spans)
    conn.execute("ROLLBACK TO spans_batch")
    conn.execute("RELEASE spans_batch")
    inserted: list[SpanRow] = []
    for span, values in zip(spans, rows, strict=True):
        if conn.execute(_INSERT_SPAN, values).rowcount:
            inserted.append(span)
    return inserted


def _resource_id(conn: sqlite3.Connection, digest: str, text: str) -> int:
    conn.execute(
        "INSERT OR IGNORE INTO resources (digest, attributes) VALUES (?, ?)", (digest, text)
    )
    row = conn.execute("SELECT id FROM resources WHERE digest = ?", (digest,)).fetchone()
    return int(row[0])


def _update_runs(conn: sqlite3.Connection, spans: Sequence[SpanRow]) -> None:
    batch: dict[str, RunRow] = {}
    for span in spans:
        run_id = span.run_id
        if run_id is None:
            continue
        run = batch.get(run_id)
        if run is None:
            run = batch[run_id] = RunRow(run_id=run_id, trace_id=span.trace_id)
        run.add_span(span)
    placeholders = ", ".join("?" for _ in RUN_FIELDS)
    for run_id, run in batch.items():
        row = conn.execute(
            f"SELECT {', '.join(RUN_FIELDS)} FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        merged = run.merge_into(RunRow(*row)) if row is not None else run
        conn.execute(
            f"INSERT OR REPLACE INTO runs ({', '.join(RUN_FIELDS)}) VALUES ({placeholders})",
            tuple(getattr(merged, name) for name in RUN_FIELDS),
        )


def _insert_anomalies(conn: sqlite3.Connection, spans: Sequence[SpanRow]) -> None:
    rows = []
    for span in spans:
        for event in span.events_named(sc.EVENT_ANOMALY):
            attributes = event.get("attributes") or {}
            rows.append(
                (
                    event.get("time_ns") or span.end_ns,
                    span.run_id or _str(attributes.get(sc.RUN_ID)),
                    span.trace_id,
                    span.span_id,
                    span.name,
                    _str(attributes.get(sc.DETECTOR_NAME)) or "unknown",
                    _str(attributes.get(sc.DETECTOR_MESSAGE)),
                    _float(attributes.get(sc.DETECTOR_THRESHOLD)),
                    _float(attributes.get(sc.DETECTOR_OBSERVED)),
                )
            )
    conn.executemany(
        "INSERT INTO anomalies (time_ns, run_id, trace_id, span_id, span_name, detector,"
        " message, threshold, observed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def _append_audit(
    conn: sqlite3.Connection,
    inserted: Sequence[SpanRow],
    agent_hints: Mapping[str, str],
    batch: Sequence[SpanRow],
) -> None:
    tools = [span for span in inserted if span.is_tool]
    if not tools:
        return
    approvals = {(s.trace_id, s.parent_span_id): s for s in batch if s.is_approval}
    records = []
    for span in (span for part in sub_batches(tools) for span in part):
        approval = approvals.get((span.trace_id, span.span_id))
        if approval is None and _waited_for_approval(span):
            approval = _stored_approval(conn, span)
        records.append(audit.record_for_tool_span(span, agent_hints.get(span.span_id), approval))
    audit.append(conn, records)


def _waited_for_approval(tool: SpanRow) -> bool:
    """Only a call the gate held for approval has an approval child. Looking one up costs
    a scan of the trace's stored spans (there is no index by parent), once per tool span:
    in a long run that grew with the run."""
    return bool(tool.get(sc.POLICY_VERDICT) == sc.PolicyVerdictValues.REQUIRE_APPROVAL)


def _stored_approval(conn: sqlite3.Connection, tool: SpanRow) -> SpanRow | None:
    """The approval child of a tool span, if an earlier batch stored it (children end first)."""
    row = conn.execute(
        "SELECT attributes FROM spans WHERE trace_id = ? AND parent_span_id = ?"
        " AND name LIKE 'await_approval %' ORDER BY start_ns DESC LIMIT 1",
        (tool.trace_id, tool.span_id),
    ).fetchone()
    if row is None:
        return None
    return SpanRow(
        tool.trace_id,
        "",
        tool.span_id,
        "await_approval",
        "internal",
        0,
        0,
        "unset",
        None,
        json.loads(row[0]),
    )


def int_or_zero(value: Any) -> int:
    """A count from a span attribute: 0 when missing or not a number."""
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
