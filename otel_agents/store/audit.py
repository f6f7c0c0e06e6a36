"""The tool-call audit log: one record per tool execution, chained by SHA-256.

Each record's hash covers its canonical form (every field, as sorted compact JSON) and
the previous record's hash, so changing, removing or reordering any record breaks the
chain from that point on. The newest record's sequence number and hash (the *head*) are
kept in `meta` too, which exposes records cut off the end; copy the head that
`otel-agents audit verify` prints somewhere else to also catch a rewrite of the whole
chain. When retention removes old records, the last removed record becomes the *anchor*
the remaining chain starts from.

Appending reads the head and inserts in one `BEGIN IMMEDIATE` transaction, so the chain
stays linear with any number of writer processes.

Content fields (input, output, reasoning) are only as present as the capture mode let
them be: with content capture off they are empty.
"""

from __future__ import annotations

import hashlib
import json
import operator
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

from otel_agents import semconv as sc
from otel_agents.store.records import SpanRow, clean_text

GENESIS_HASH = "0" * 64
HEAD_KEY = "audit_head"  # "seq:hash" of the newest record
ANCHOR_KEY = "audit_anchor"  # "seq:hash" of the newest record retention removed


@dataclass
class AuditRecord:
    """One tool call, as the audit log keeps it. Field order is the export column order."""

    seq: int
    time_ns: int
    run_id: str | None
    trace_id: str
    span_id: str
    agent: str | None
    tool: str
    call_id: str | None
    attempt: int | None
    status: str  # ok | error
    error_type: str | None
    duration_ns: int | None
    input: str | None
    output: str | None
    reasoning: str | None
    reasoning_source: str | None
    verdict: str | None
    policy_rule: str | None
    policy_reason: str | None
    policy_mode: str | None
    approval_status: str | None
    approver: str | None
    contract_status: str | None
    contract_violation: str | None
    prev_hash: str = ""
    hash: str = ""

    def canonical(self) -> bytes:
        """Every field but the hashes, as sorted compact JSON: what the hash covers."""
        body = dict(zip(HASHED_FIELDS, _hashed_values(self), strict=True))
        return _CANONICAL.encode(body).encode("utf-8", "surrogatepass")

    def compute_hash(self, prev_hash: str) -> str:
        return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + self.canonical()).hexdigest()

    def db_values(self) -> tuple[Any, ...]:
        values: tuple[Any, ...] = _audit_values(self)
        return values

    @classmethod
    def from_db(cls, row: sqlite3.Row) -> AuditRecord:
        return cls(**{name: row[name] for name in AUDIT_FIELDS})


# What `canonical` encodes with (the same text as `json.dumps` with these options, built once).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
AUDIT_FIELDS = tuple(f.name for f in fields(AuditRecord))
HASHED_FIELDS = tuple(name for name in AUDIT_FIELDS if name not in ("prev_hash", "hash"))
# Read every field in one C call (a record is written, and hashed, per tool span).
_audit_values = operator.attrgetter(*AUDIT_FIELDS)
_hashed_values = operator.attrgetter(*HASHED_FIELDS)


def record_for_tool_span(span: SpanRow, agent: str | None, approval: SpanRow | None) -> AuditRecord:
    """The audit record of one `execute_tool` span (its sequence number comes later)."""

    def text(key: str, source: SpanRow | None = span, content: bool = False) -> str | None:
        if source is None:
            return None
        value = source.content(key) if content else source.get(key)
        if value is None:
            return None
        return clean_text(value if isinstance(value, str) else json.dumps(value))

    attempt = span.get(sc.TOOL_CALL_ATTEMPT)
    tool = span.get(sc.GEN_AI_TOOL_NAME) or span.name.removeprefix("execute_tool ")
    return AuditRecord(
        seq=0,
        time_ns=span.start_ns,
        run_id=span.run_id,
        trace_id=span.trace_id,
        span_id=span.span_id,
        agent=agent or text(sc.GEN_AI_AGENT_NAME),
        tool=str(tool),
        call_id=text(sc.GEN_AI_TOOL_CALL_ID),
        attempt=attempt if isinstance(attempt, int) else None,
        status="error" if span.status == "error" else "ok",
        error_type=text(sc.ERROR_TYPE),
        duration_ns=span.duration_ns,
        input=text(sc.GEN_AI_TOOL_CALL_ARGUMENTS, content=True),
        output=text(sc.GEN_AI_TOOL_CALL_RESULT, content=True),
        reasoning=text(sc.DECISION_REASONING, content=True),
        reasoning_source=text(sc.DECISION_REASONING_SOURCE),
        verdict=text(sc.POLICY_VERDICT),
        policy_rule=text(sc.POLICY_RULE),
        policy_reason=text(sc.POLICY_REASON),
        policy_mode=text(sc.POLICY_MODE),
        approval_status=text(sc.APPROVAL_STATUS, approval),
        approver=text(sc.APPROVAL_APPROVER, approval),
        contract_status=text(sc.CONTRACT_STATUS),
        contract_violation=text(sc.CONTRACT_VIOLATION),
    )


# -- writing -------------------------------------------------------------------------------


def append(conn: sqlite3.Connection, records: Sequence[AuditRecord]) -> None:
    """Chain and insert records. Call inside the caller's `BEGIN IMMEDIATE` transaction."""
    if not records:
        return
    seq, prev_hash = read_mark(conn, HEAD_KEY) or read_mark(conn, ANCHOR_KEY) or (0, GENESIS_HASH)
    for record in records:
        seq += 1
        record.seq = seq
        record.prev_hash = prev_hash
        record.hash = prev_hash = record.compute_hash(prev_hash)
    placeholders = ", ".join("?" for _ in AUDIT_FIELDS)
    conn.executemany(
        f"INSERT INTO audit ({', '.join(AUDIT_FIELDS)}) VALUES ({placeholders})",
        [r.db_values() for r in records],
    )
    write_mark(conn, HEAD_KEY, seq, prev_hash)


def read_mark(conn: sqlite3.Connection, key: str) -> tuple[int, str] | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    seq, _, digest = str(row[0]).partition(":")
    return int(seq), digest


def write_mark(conn: sqlite3.Connection, key: str, seq: int, digest: str) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, f"{seq}:{digest}"),
    )


# -- verifying -----------------------------------------------------------------------------


@dataclass
class Verification:
    ok: bool
    records: int  # how many records were checked
    first_seq: int | None  # the first record the chain covers
    head_seq: int | None  # the newest record checked
    head_hash: str | None
    bad_seq: int | None = None  # the first altered or missing record
    problem: str | None = None  # altered | missing | rewritten
    detail: str | None = None


def verify(
    rows: Iterator[AuditRecord],
    head: tuple[int, str] | None,
    anchor: tuple[int, str] | None,
    progress: Callable[[int], None] | None = None,
) -> Verification:
    """Walk the chain in sequence order and report the first altered or missing record."""
    last_seq, last_hash = anchor or (0, GENESIS_HASH)
    first_seq = last_seq + 1
    checked = 0

    def result(
        bad_seq: int | None = None, problem: str | None = None, detail: str = ""
    ) -> Verification:
        return Verification(
            bad_seq is None,
            checked,
            first_seq if checked else None,
            last_seq if checked else None,
            last_hash if checked else None,
            bad_seq,
            problem,
            detail or None,
        )

    for record in rows:
        expected = last_seq + 1
        if record.seq != expected:
            detail = f"{_missing(expected, record.seq - 1)} (the log goes on at {record.seq})"
            return result(expected, "missing", detail)
        if record.prev_hash != last_hash:
            # Either this record's link was edited, or the previous record was changed and
            # its hash recomputed. A record whose own hash still matches is intact.
            if checked and record.compute_hash(record.prev_hash) == record.hash:
                detail = (
                    f"record {last_seq} was changed and its hash recomputed:"
                    f" record {record.seq} no longer chains to it"
                )
                return result(last_seq, "altered", detail)
            return result(record.seq, "altered", f"record {record.seq} does not chain")
        if record.compute_hash(last_hash) != record.hash:
            return result(record.seq, "altered", f"record {record.seq} does not match its hash")
        last_seq, last_hash = record.seq, record.hash
        checked += 1
        if progress is not None and checked % 5000 == 0:
            progress(checked)
    if head is None or head == (last_seq, last_hash):
        return result()
    head_seq, _ = head
    if head_seq > last_seq:
        detail = (
            f"{_missing(last_seq + 1, head_seq)} (the log ends at {last_seq},"
            f" its head says {head_seq})"
        )
        return result(last_seq + 1, "missing", detail)
    if head_seq == last_seq:
        return result(head_seq, "altered", f"record {head_seq} does not match the head hash")
    detail = f"the head says the log ends at {head_seq}, but it goes on to {last_seq}"
    return result(head_seq + 1, "rewritten", detail)


def _missing(first: int, last: int) -> str:
    return f"record {first} is missing" if first == last else f"records {first}-{last} are missing"
