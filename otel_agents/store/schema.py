"""The store's SQLite schema and how connections to it are opened.

One file holds everything: `spans` (each span with its attributes, events and links as
JSON, indexed by run id and trace id), `runs` (one row per agent run with its totals, kept
up to date as spans arrive), `anomalies` (detector findings), `audit` (the hash-chained
tool-call log), `open_spans` (spans that have started and not ended yet, so that a run
still in progress, or cut short by a crash, can be shown: a span's row goes when the span
itself is written) and `meta` (schema version, the audit log's head and retention anchor).

Several processes may write at once: the file is in WAL mode (readers never block
writers), every connection waits up to `BUSY_TIMEOUT_MS` for a lock, and writers take
the write lock up front (`BEGIN IMMEDIATE`) so two writers never deadlock on an upgrade.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

SCHEMA_VERSION = 3  # 2 added open_spans, 3 added runs.denials
BUSY_TIMEOUT_MS = 1_000
# Columns added to existing tables since version 1: (table, column, declaration).
_ADDED_COLUMNS = (("runs", "denials", "INTEGER NOT NULL DEFAULT 0"),)

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS resources (
    id INTEGER PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    attributes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS spans (
    id INTEGER PRIMARY KEY,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    run_id TEXT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT,
    attributes TEXT NOT NULL,
    events TEXT,
    links TEXT,
    resource_id INTEGER,
    scope TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS spans_by_trace ON spans (trace_id, span_id);
CREATE INDEX IF NOT EXISTS spans_by_run ON spans (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS spans_by_start ON spans (start_ns);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    trace_id TEXT NOT NULL,
    root_span_id TEXT,
    agent TEXT,
    service TEXT,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    finished INTEGER NOT NULL DEFAULT 0,
    status TEXT,
    error TEXT,
    cost_usd REAL,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    llm_calls INTEGER NOT NULL DEFAULT 0,
    tool_calls INTEGER NOT NULL DEFAULT 0,
    handoffs INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    anomalies INTEGER NOT NULL DEFAULT 0,
    denials INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_by_start ON runs (start_ns);
CREATE TABLE IF NOT EXISTS anomalies (
    id INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    run_id TEXT,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    span_name TEXT NOT NULL,
    detector TEXT NOT NULL,
    message TEXT,
    threshold REAL,
    observed REAL
);
CREATE INDEX IF NOT EXISTS anomalies_by_time ON anomalies (time_ns);
CREATE INDEX IF NOT EXISTS anomalies_by_run ON anomalies (run_id);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    run_id TEXT,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    agent TEXT,
    tool TEXT NOT NULL,
    call_id TEXT,
    attempt INTEGER,
    status TEXT NOT NULL,
    error_type TEXT,
    duration_ns INTEGER,
    input TEXT,
    output TEXT,
    reasoning TEXT,
    reasoning_source TEXT,
    verdict TEXT,
    policy_rule TEXT,
    policy_reason TEXT,
    policy_mode TEXT,
    approval_status TEXT,
    approver TEXT,
    contract_status TEXT,
    contract_violation TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (time_ns);
CREATE INDEX IF NOT EXISTS audit_by_run ON audit (run_id);
CREATE TABLE IF NOT EXISTS open_spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    run_id TEXT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    seen_ns INTEGER NOT NULL,
    attributes TEXT NOT NULL,
    events TEXT,
    links TEXT,
    resource_id INTEGER,
    scope TEXT,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS open_spans_by_run ON open_spans (run_id);
"""


class SchemaTooNew(sqlite3.DatabaseError):
    """The file was written by a newer otel-agents with a schema we do not know."""


def connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """Open the store; with `create`, make the file and its tables if they are missing.

    Without `create` the file must exist (the CLI must not leave empty stores behind).
    Raises `sqlite3.DatabaseError` for a file that is not a usable store.
    """
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    else:
        uri = f"{path.resolve().as_uri()}?mode=rw"
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.isolation_level = None  # we issue BEGIN/COMMIT ourselves
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if create:
            _prepare(conn)
        else:
            _check_version(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection) -> None:
    version = _check_version(conn)
    if version == SCHEMA_VERSION:
        conn.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL, much faster
        return
    if version == 0:
        # A new file: pages must be reclaimable (auto_vacuum) before the first table exists.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Every statement is IF NOT EXISTS: the same script makes a new file and upgrades
        # an older one (version 1 lacks open_spans); another process may have done it.
        if _check_version(conn) < SCHEMA_VERSION:
            for statement in _TABLES.split(";"):
                if statement.strip():
                    conn.execute(statement)
            for table, column, declaration in _ADDED_COLUMNS:
                if not has_column(conn, table, column):  # an older file's existing table
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


def has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    """Whether a table has a column (a version-2 store's runs have no denials)."""
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the store has a table (a version-1 store read by this version has no
    open_spans: the CLI reads without upgrading)."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is open; never mask the error that got us here."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _check_version(conn: sqlite3.Connection) -> int:
    """The file's schema version; reading it also proves the file is a SQLite database."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"the store has schema version {version}; this otel-agents knows {SCHEMA_VERSION}"
            " (upgrade otel-agents)"
        )
    return version
