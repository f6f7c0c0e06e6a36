"""Reading the store: runs, one run's spans, the audit log, detector findings.

This is what the `otel-agents` command uses; it never writes. Errors a user can act on
are `StoreError`s with a message meant for the terminal.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from otel_agents import semconv as sc
from otel_agents.store import audit, schema
from otel_agents.store.records import SpanRow
from otel_agents.store.writer import RUN_FIELDS, int_or_zero

RUNNING_WINDOW_NS = 10 * 60 * 1_000_000_000  # an unfinished run quiet for longer is incomplete
RUN_STATUSES = ("ok", "error", "running", "incomplete")
_MIN_PREFIX = 4
_REF = re.compile(r"^[0-9A-Za-z_.-]+$")


LATEST_RUN = "latest"


class StoreError(Exception):
    """A problem the user can act on; the message says what happened and what to do."""


class StoreNotFound(StoreError):
    pass


class StoreDamaged(StoreError):
    pass


class RunNotFound(StoreError):
    pass


class AmbiguousRun(StoreError):
    def __init__(self, message: str, candidates: list[str]) -> None:
        super().__init__(message)
        self.candidates = candidates


@dataclass
class RunSummary:
    run_id: str
    trace_id: str
    agent: str | None
    service: str | None
    start_ns: int
    end_ns: int
    status: str  # ok | error | running | incomplete
    error: str | None
    cost_usd: float | None
    input_tokens: int
    output_tokens: int
    llm_calls: int
    tool_calls: int
    handoffs: int
    retries: int
    anomalies: int
    denials: int = 0  # decisions that stopped work (policy refusals, tripped guardrails)
    root_span_id: str | None = None
    open_spans: int = 0  # spans started and never written as ended (unfinished runs)
    process_alive: bool | None = None  # of the process(es) that started them, if known

    @property
    def did_not_finish(self) -> bool:
        return self.status == "incomplete"

    @property
    def duration_ns(self) -> int:
        return max(self.end_ns - self.start_ns, 0)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["duration_ms"] = round(self.duration_ns / 1e6, 3)
        return data


@dataclass
class RunFilter:
    agent: str | None = None
    status: str | None = None
    anomalies_only: bool = False
    since_ns: int | None = None
    until_ns: int | None = None
    limit: int | None = 20


@dataclass
class AuditFilter:
    run_id: str | None = None
    agent: str | None = None
    tool: str | None = None
    verdict: str | None = None
    status: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None


@dataclass
class Alert:
    time_ns: int
    run_id: str | None
    agent: str | None
    trace_id: str
    span_id: str
    span_name: str
    detector: str
    message: str | None
    threshold: float | None
    observed: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AlertFilter:
    run_id: str | None = None
    detector: str | None = None
    agent: str | None = None
    since_ns: int | None = None
    limit: int | None = 50


@dataclass
class StoreInfo:
    path: str
    size_bytes: int
    spans: int
    runs: int
    audit_records: int
    anomalies: int
    oldest_ns: int | None
    newest_ns: int | None
    extra: dict[str, Any] = field(default_factory=dict)


class Store:
    """A read-only view of a store file. Use as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        conn.row_factory = sqlite3.Row
        self._has_open_spans = schema.has_table(conn, "open_spans")  # not in a v1 store
        # An older store read without upgrading it has no runs.denials: read it as 0.
        self._run_columns = ", ".join(
            field if field != "denials" or schema.has_column(conn, "runs", field) else "0"
            for field in RUN_FIELDS
        )

    @classmethod
    def open(cls, path: Path) -> Store:
        if not path.exists():
            raise StoreNotFound(f"no trace store at {path} (nothing has been recorded there yet)")
        if path.is_dir():
            raise StoreNotFound(f"{path} is a directory, not a trace store file")
        try:
            conn = schema.connect(path, create=False)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except schema.SchemaTooNew as exc:
            raise StoreError(str(exc)) from None
        except sqlite3.DatabaseError as exc:
            raise StoreDamaged(
                f"the trace store {path} is damaged or not a store ({exc}). Move it aside; the"
                " next instrumented program starts a new one (it also does that by itself)."
            ) from None
        if version == 0:
            conn.close()
            raise StoreNotFound(f"the trace store {path} is empty (nothing has been recorded yet)")
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, params)
        except sqlite3.DatabaseError as exc:
            raise StoreDamaged(f"reading the trace store {self.path} failed: {exc}") from None

    # -- runs ------------------------------------------------------------------------------

    def runs(self, filters: RunFilter | None = None, now_ns: int | None = None) -> list[RunSummary]:
        """Runs, newest first."""
        f = filters or RunFilter()
        now = now_ns or time.time_ns()
        where: list[str] = ["1"]
        params: list[Any] = []
        if f.agent:
            where.append("agent = ?")
            params.append(f.agent)
        if f.anomalies_only:  # an unfinished run's count is in its anomaly rows
            where.append(
                "(anomalies > 0 OR (finished = 0 AND run_id IN (SELECT run_id FROM anomalies)))"
            )
        if f.since_ns is not None:
            where.append("start_ns >= ?")
            params.append(f.since_ns)
        if f.until_ns is not None:
            where.append("start_ns < ?")
            params.append(f.until_ns)
        unfinished_status = f.status in ("running", "incomplete")
        if f.status:
            clause, values = _status_clause(f.status)
            where.append(clause)
            params.extend(values)
        sql = f"SELECT {self._run_columns} FROM runs WHERE {' AND '.join(where)}"
        sql += " ORDER BY start_ns DESC"
        if f.limit and not unfinished_status:  # those are told apart below, in Python
            sql += f" LIMIT {int(f.limit)}"
        summaries = [self._summary(row, now) for row in self._query(sql, params).fetchall()]
        if unfinished_status:
            summaries = [s for s in summaries if s.status == f.status][: f.limit or None]
        return summaries

    def run(self, run_id: str) -> RunSummary:
        row = self._query(
            f"SELECT {self._run_columns} FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise RunNotFound(f"no run {run_id!r} in {self.path}")
        return self._summary(row, time.time_ns())

    def _summary(self, row: sqlite3.Row, now_ns: int) -> RunSummary:
        """A run's summary. An unfinished run is `running` while the process that started
        its open spans lives, `incomplete` (did not finish) once that process is gone; when
        that cannot be told (another host, an older store), by how long it has been quiet."""
        data = dict(zip(RUN_FIELDS, row, strict=True))
        finished = bool(data.pop("finished"))
        open_spans, alive = 0, None
        if not finished:
            data.update(partial_totals(self._stored_spans(data["run_id"])))
            open_spans, alive = self._open_state(data["run_id"])
            quiet = now_ns - int(data["end_ns"])
            if alive is None:
                data["status"] = "running" if quiet < RUNNING_WINDOW_NS else "incomplete"
            else:
                data["status"] = "running" if alive else "incomplete"
        return RunSummary(**data, open_spans=open_spans, process_alive=alive)

    def _stored_spans(self, run_id: str) -> list[SpanRow]:
        rows = self._query(_SPAN_SELECT + " WHERE s.run_id = ?", (run_id,))
        return [SpanRow.from_db(row, {}) for row in rows]

    def _open_state(self, run_id: str) -> tuple[int, bool | None]:
        """(open spans, whether a process that started them still runs) of a run."""
        if not self._has_open_spans:
            return 0, None
        rows = self._query(
            "SELECT pid, host, count(*) FROM open_spans WHERE run_id = ? GROUP BY pid, host",
            (run_id,),
        ).fetchall()
        count = sum(int(r[2]) for r in rows)
        local = [int(r[0]) for r in rows if r[1] == _HOST]
        if not local or len(local) < len(rows):
            return count, None  # written on another machine: we cannot look
        return count, any(_process_alive(pid) for pid in local)

    def resolve_run(self, ref: str) -> str:
        """A run id from a run id, a unique prefix of one (like git's short hashes), or a
        trace id (prefix) whose trace holds exactly one run; `latest` is the newest run."""
        ref = ref.strip().lower()
        if ref == LATEST_RUN:
            newest = self._query("SELECT run_id FROM runs ORDER BY start_ns DESC LIMIT 1")
            row = newest.fetchone()
            if row is None:
                raise RunNotFound("the store holds no runs yet")
            return str(row[0])
        if not _REF.match(ref):
            raise RunNotFound(f"{ref!r} is not a run id")
        if len(ref) < _MIN_PREFIX:
            raise RunNotFound(
                f"run id {ref!r} is too short: give at least {_MIN_PREFIX} characters"
            )
        pattern = _glob_prefix(ref)
        runs = [
            r[0]
            for r in self._query(
                "SELECT run_id FROM runs WHERE run_id GLOB ? ORDER BY start_ns DESC LIMIT 10",
                (pattern,),
            )
        ]
        if not runs:
            runs = [
                r[0]
                for r in self._query(
                    "SELECT run_id FROM runs WHERE trace_id GLOB ? ORDER BY start_ns DESC LIMIT 10",
                    (pattern,),
                )
            ]
        if len(runs) == 1:
            return str(runs[0])
        if not runs:
            raise RunNotFound(f"no run matches {ref!r} (see `otel-agents runs`)")
        shown = ", ".join(r[:12] for r in runs)
        raise AmbiguousRun(f"{ref!r} matches several runs: {shown}; give more characters", runs)

    def run_spans(self, run_id: str) -> list[SpanRow]:
        """The run's spans, and spans without a run id nested under them (HTTP calls, ...);
        spans that started and were never written as ended come as `open` rows."""
        rows = list(self._query(_SPAN_SELECT + " WHERE s.run_id = ?", (run_id,)))
        if self._has_open_spans:
            done = {(row["trace_id"], row["span_id"]) for row in rows}
            rows += [
                r
                for r in self._query(_OPEN_SELECT + " WHERE s.run_id = ?", (run_id,))
                if (r["trace_id"], r["span_id"]) not in done
            ]
        traces = sorted({row["trace_id"] for row in rows})
        included = {(row["trace_id"], row["span_id"]) for row in rows}
        for trace_id in traces:
            others = [
                r
                for select in (_SPAN_SELECT, _OPEN_SELECT if self._has_open_spans else None)
                if select is not None
                for r in self._query(select + " WHERE s.trace_id = ?", (trace_id,))
                if (trace_id, r["span_id"]) not in included
            ]
            rows.extend(_descendants(others, included, trace_id))
        resources = self._resources({row["resource_id"] for row in rows})
        spans = [SpanRow.from_db(row, resources.get(row["resource_id"], {})) for row in rows]
        return sorted(spans, key=lambda s: (s.start_ns, s.end_ns))

    def find_trace(self, ref: str) -> str | None:
        """The trace id that `ref` (a trace id or a unique prefix) names, for traces with no
        agent run (tool calls made outside an agent); None when no trace matches."""
        ref = ref.strip().lower()
        if not _REF.match(ref) or len(ref) < _MIN_PREFIX:
            return None
        found = [
            str(r[0])
            for r in self._query(
                "SELECT DISTINCT trace_id FROM spans WHERE trace_id GLOB ? LIMIT 10",
                (_glob_prefix(ref),),
            )
        ]
        if len(found) > 1:
            shown = ", ".join(t[:12] for t in found)
            raise AmbiguousRun(f"{ref!r} matches several traces: {shown}; give more", found)
        return found[0] if found else None

    def trace_spans(self, trace_id: str) -> list[SpanRow]:
        """Every span of one trace, oldest first."""
        rows = list(self._query(_SPAN_SELECT + " WHERE s.trace_id = ?", (trace_id,)))
        resources = self._resources({row["resource_id"] for row in rows})
        spans = [SpanRow.from_db(row, resources.get(row["resource_id"], {})) for row in rows]
        return sorted(spans, key=lambda s: (s.start_ns, s.end_ns))

    def _resources(self, ids: set[int | None]) -> dict[int, dict[str, Any]]:
        wanted = [i for i in ids if i is not None]
        if not wanted:
            return {}
        marks = ", ".join("?" for _ in wanted)
        rows = self._query(f"SELECT id, attributes FROM resources WHERE id IN ({marks})", wanted)
        return {int(r["id"]): json.loads(r["attributes"]) for r in rows}

    # -- audit ---------------------------------------------------------------------------------

    def audit_records(self, filters: AuditFilter | None = None) -> Iterator[audit.AuditRecord]:
        sql, params = _audit_query(filters or AuditFilter(), f"{', '.join(audit.AUDIT_FIELDS)}")
        for row in self._query(sql + " ORDER BY seq", params):
            yield audit.AuditRecord.from_db(row)

    def audit_record(self, seq: int) -> audit.AuditRecord | None:
        columns = ", ".join(audit.AUDIT_FIELDS)
        row = self._query(f"SELECT {columns} FROM audit WHERE seq = ?", (seq,)).fetchone()
        return audit.AuditRecord.from_db(row) if row is not None else None

    def count_audit(self, filters: AuditFilter | None = None) -> int:
        sql, params = _audit_query(filters or AuditFilter(), "count(*)")
        return int(self._query(sql, params).fetchone()[0])

    def verify_audit(self, progress: Callable[[int], None] | None = None) -> audit.Verification:
        try:
            head = audit.read_mark(self.conn, audit.HEAD_KEY)
            anchor = audit.read_mark(self.conn, audit.ANCHOR_KEY)
        except (sqlite3.DatabaseError, ValueError) as exc:
            raise StoreDamaged(
                f"the audit log's head in {self.path} is unreadable: {exc}"
            ) from None
        return audit.verify(self.audit_records(), head, anchor, progress)

    # -- alerts ----------------------------------------------------------------------------

    def alerts(self, filters: AlertFilter | None = None) -> list[Alert]:
        f = filters or AlertFilter()
        where: list[str] = ["1"]
        params: list[Any] = []
        for column, value in (
            ("a.run_id", f.run_id),
            ("a.detector", f.detector),
            ("r.agent", f.agent),
        ):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if f.since_ns is not None:
            where.append("a.time_ns >= ?")
            params.append(f.since_ns)
        sql = (
            "SELECT a.time_ns, a.run_id, r.agent, a.trace_id, a.span_id, a.span_name, a.detector,"
            " a.message, a.threshold, a.observed FROM anomalies a"
            f" LEFT JOIN runs r ON r.run_id = a.run_id WHERE {' AND '.join(where)}"
            " ORDER BY a.time_ns DESC"
        )
        if f.limit:
            sql += f" LIMIT {int(f.limit)}"
        return [Alert(**dict(row)) for row in self._query(sql, params)]

    # -- about the store -------------------------------------------------------------------

    def info(self) -> StoreInfo:
        def scalar(sql: str) -> Any:
            return self._query(sql).fetchone()[0]

        size = sum(
            p.stat().st_size
            for p in (self.path, self.path.with_name(self.path.name + "-wal"))
            if p.exists()
        )
        return StoreInfo(
            path=str(self.path),
            size_bytes=size,
            spans=int(scalar("SELECT count(*) FROM spans")),
            runs=int(scalar("SELECT count(*) FROM runs")),
            audit_records=int(scalar("SELECT count(*) FROM audit")),
            anomalies=int(scalar("SELECT count(*) FROM anomalies")),
            oldest_ns=scalar("SELECT min(start_ns) FROM spans"),
            newest_ns=scalar("SELECT max(end_ns) FROM spans"),
        )


_SPAN_SELECT = (
    "SELECT s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind, s.start_ns, s.end_ns,"
    " s.status, s.status_message, s.attributes, s.events, s.links, s.resource_id, s.scope"
    " FROM spans s"
)


_OPEN_SELECT = (
    "SELECT s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind, s.start_ns, s.seen_ns,"
    " s.attributes, s.events, s.links, s.resource_id, s.scope FROM open_spans s"
)
_HOST = socket.gethostname()


def partial_totals(spans: list[SpanRow]) -> dict[str, Any]:
    """The totals of a run whose root span never ended (it crashed, or still runs), from
    the spans it wrote: a view computed when read, not totals kept beside the ledger's."""
    totals: dict[str, Any] = dict.fromkeys(_COUNTED, 0)
    cost: float | None = None
    for span in spans:
        if span.is_llm:
            totals["llm_calls"] += 1
            totals["input_tokens"] += int_or_zero(span.get(sc.GEN_AI_USAGE_INPUT_TOKENS))
            totals["output_tokens"] += int_or_zero(span.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS))
            value = span.get(sc.COST_USD)
            if isinstance(value, (int, float)):
                cost = (cost or 0.0) + float(value)
        if span.is_tool:
            totals["tool_calls"] += 1
            totals["retries"] += int_or_zero(span.get(sc.TOOL_CALL_ATTEMPT)) > 1
        if span.is_handoff:
            totals["handoffs"] += 1
        totals["anomalies"] += len(span.events_named(sc.EVENT_ANOMALY))
        totals["denials"] += _denials(span)
    totals["cost_usd"] = cost
    return totals


def _denials(span: SpanRow) -> int:
    """Decisions on this span that stopped work, as the ledger counts them: each tripped
    guardrail, else a tool call a policy refused (ended in error with a stopping verdict)."""
    tripped = [
        event
        for event in span.events_named(sc.EVENT_GUARDRAIL)
        if (event.get("attributes") or {}).get(sc.GUARDRAIL_TRIPPED) is True
    ]
    if tripped:
        return len(tripped)
    stopping = (sc.PolicyVerdictValues.DENY, sc.PolicyVerdictValues.ESCALATE)
    enforced = span.get(sc.POLICY_MODE) == sc.PolicyModeValues.ENFORCE
    refused = span.is_tool and enforced and span.get(sc.POLICY_VERDICT) in stopping
    return int(refused)


_COUNTED = (
    "input_tokens",
    "output_tokens",
    "llm_calls",
    "tool_calls",
    "handoffs",
    "retries",
    "anomalies",
    "denials",
)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or we cannot tell: assume it runs
    return True


def _descendants(
    candidates: list[sqlite3.Row], included: set[tuple[str, str]], trace_id: str
) -> list[sqlite3.Row]:
    """Rows among `candidates` whose parent chain reaches an included span."""
    found: list[sqlite3.Row] = []
    pending = list(candidates)
    while True:
        added = [r for r in pending if (trace_id, r["parent_span_id"]) in included]
        if not added:
            return found
        for row in added:
            included.add((trace_id, row["span_id"]))
        found.extend(added)
        pending = [r for r in pending if (trace_id, r["span_id"]) not in included]


def _status_clause(status: str) -> tuple[str, list[Any]]:
    if status in ("running", "incomplete"):
        return "finished = 0", []
    if status in ("ok", "error"):
        return "finished = 1 AND status = ?", [status]
    raise StoreError(f"unknown status {status!r}: use one of {', '.join(RUN_STATUSES)}")


def _audit_query(f: AuditFilter, columns: str) -> tuple[str, list[Any]]:
    where: list[str] = ["1"]
    params: list[Any] = []
    for column, value in (
        ("run_id", f.run_id),
        ("agent", f.agent),
        ("tool", f.tool),
        ("verdict", f.verdict),
        ("status", f.status),
    ):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if f.since_ns is not None:
        where.append("time_ns >= ?")
        params.append(f.since_ns)
    if f.until_ns is not None:
        where.append("time_ns < ?")
        params.append(f.until_ns)
    return f"SELECT {columns} FROM audit WHERE {' AND '.join(where)}", params


def _glob_prefix(ref: str) -> str:
    return ref + "*"  # `_REF` admits no GLOB special characters
