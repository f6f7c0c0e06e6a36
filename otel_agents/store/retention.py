"""Bounded retention: drop what is older than the age limit, then the oldest data until the
store fits its size limit.

Whole runs go together (a run is removed when it started before the cutoff), so what is
left is never a run with holes. The audit log is cut as a prefix of its chain, and the
last removed record becomes the anchor that verification starts from. Freed pages go back
to the file system (`auto_vacuum = INCREMENTAL`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from otel_agents.store import audit, schema

_SIZE_TARGET = 0.9  # prune to 90% of the limit, so that we do not prune on every batch
_SIZE_STEP = 10  # each size step removes about a tenth of the spans
_MAX_SIZE_STEPS = 50


@dataclass
class Pruned:
    spans: int = 0
    runs: int = 0
    audit_records: int = 0

    def __iadd__(self, other: Pruned) -> Pruned:
        self.spans += other.spans
        self.runs += other.runs
        self.audit_records += other.audit_records
        return self

    def __bool__(self) -> bool:
        return bool(self.spans or self.runs or self.audit_records)


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of the file in use (free pages excluded; they are reused or returned)."""
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * page_size)


def enforce(
    conn: sqlite3.Connection, max_age_seconds: float | None, max_bytes: int | None, now_ns: int
) -> Pruned:
    pruned = Pruned()
    if max_age_seconds is not None:
        pruned += prune_before(conn, now_ns - int(max_age_seconds * 1e9))
    if max_bytes is not None and used_bytes(conn) > max_bytes:
        for _ in range(_MAX_SIZE_STEPS):
            if used_bytes(conn) <= max_bytes * _SIZE_TARGET:
                break
            cutoff = _size_cutoff(conn)
            if cutoff is None:
                break
            step = prune_before(conn, cutoff)
            if not step:
                break
            pruned += step
    if pruned:
        conn.execute(
            "DELETE FROM resources WHERE id NOT IN"
            " (SELECT DISTINCT resource_id FROM spans WHERE resource_id IS NOT NULL"
            " UNION SELECT resource_id FROM open_spans WHERE resource_id IS NOT NULL)"
        )
        conn.executescript("PRAGMA incremental_vacuum;")  # execute() would free one page only
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return pruned


def _size_cutoff(conn: sqlite3.Connection) -> int | None:
    """A start time that cuts off about the oldest tenth of the spans (at least one run)."""
    count = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
    if count == 0:
        row = conn.execute("SELECT max(time_ns) FROM audit").fetchone()
        return int(row[0]) + 1 if row[0] is not None else None
    offset = max(count // _SIZE_STEP, 1)
    row = conn.execute(
        "SELECT start_ns FROM spans ORDER BY start_ns LIMIT 1 OFFSET ?", (min(offset, count - 1),)
    ).fetchone()
    oldest_run = conn.execute("SELECT min(start_ns) FROM runs").fetchone()[0]
    cutoff = int(row[0]) + 1
    if oldest_run is not None:
        cutoff = max(cutoff, int(oldest_run) + 1)  # always make progress by a whole run
    return cutoff


def prune_before(conn: sqlite3.Connection, cutoff_ns: int) -> Pruned:
    """Remove runs started, spans started and audit records made before `cutoff_ns`."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        removed_audit = _prune_audit(conn, cutoff_ns)  # before the runs it refers to go
        old_runs = "SELECT run_id FROM runs WHERE start_ns < ?"
        spans = conn.execute(f"DELETE FROM spans WHERE run_id IN ({old_runs})", (cutoff_ns,))
        removed_spans = spans.rowcount
        removed_spans += conn.execute(
            "DELETE FROM spans WHERE start_ns < ? AND (run_id IS NULL"
            " OR run_id NOT IN (SELECT run_id FROM runs))",
            (cutoff_ns,),
        ).rowcount
        removed_runs = conn.execute("DELETE FROM runs WHERE start_ns < ?", (cutoff_ns,)).rowcount
        conn.execute("DELETE FROM anomalies WHERE time_ns < ?", (cutoff_ns,))
        conn.execute("DELETE FROM open_spans WHERE start_ns < ?", (cutoff_ns,))
        conn.execute("COMMIT")
    except BaseException:
        schema.rollback(conn)
        raise
    return Pruned(removed_spans, removed_runs, removed_audit)


def _prune_audit(conn: sqlite3.Connection, cutoff_ns: int) -> int:
    """Cut the chain's oldest records (made before the cutoff, or of runs that started before
    it); the newest removed one becomes the anchor."""
    row = conn.execute(
        "SELECT max(seq) FROM audit WHERE time_ns < ?"
        " OR run_id IN (SELECT run_id FROM runs WHERE start_ns < ?)",
        (cutoff_ns, cutoff_ns),
    ).fetchone()
    if row[0] is None:
        return 0
    last_seq = int(row[0])
    last_hash = conn.execute("SELECT hash FROM audit WHERE seq = ?", (last_seq,)).fetchone()[0]
    removed = conn.execute("DELETE FROM audit WHERE seq <= ?", (last_seq,)).rowcount
    audit.write_mark(conn, audit.ANCHOR_KEY, last_seq, str(last_hash))
    return int(removed)
