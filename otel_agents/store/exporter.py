"""The exporter that writes spans into the local store, and the processor that feeds it.

`StoreSpanProcessor` is the SDK's bounded batch processor (spans wait in a fixed-size queue
and are written by a background thread; a full queue drops and counts) around a
`StoreExporter`. The application thread only ever appends to that queue.

The exporter never raises and never blocks the application:
- a busy store (another process writing) is retried with backoff, in the background;
- a store that stays locked, a full disk, a read-only or missing directory: the batch is
  dropped and counted (`dropped_spans`, and the `otel_agents.spans.dropped` metric), and
  one warning per kind of problem goes to the `otel_agents` logger (repeated at most every
  ten minutes); the next batch tries again;
- a corrupt file is moved aside (to `traces.db.corrupt-<time>`, with its `-wal`/`-shm`
  files) and a fresh store is started, with a warning naming the moved file. If that
  happens twice in one process, the store is switched off for the process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import sqlite3
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.sdk.trace import ReadableSpan, Span
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_agents import semconv as sc
from otel_agents.core.common import current_agent
from otel_agents.runtime import report_internal_error
from otel_agents.sdk_setup import DropCountingSpanProcessor
from otel_agents.store import retention, schema
from otel_agents.store.records import AGENT_SPAN_PREFIX, TOOL_SPAN_PREFIX, SpanRow
from otel_agents.store.settings import StoreSettings
from otel_agents.store.writer import sub_batches, write_batch, write_open_spans

_logger = logging.getLogger("otel_agents")

_ATTEMPTS = 4  # one try and three retries with backoff when the store is busy
_BACKOFF_SECONDS = (0.05, 0.2, 0.8)
_IMPATIENCE_SECONDS = 30.0
_WARN_INTERVAL = 600.0
_RETENTION_INTERVAL = 300.0
_RETENTION_RETRY = 30.0  # after the store was too busy to prune
_MAX_AGENT_HINTS = 65_536
_MAX_CORRUPTIONS = 2
_MAX_PENDING_STARTS = 16_384  # spans started since the last look (most have ended by then)
_HOST = socket.gethostname()


# SQLite primary result codes (the low byte of an extended code).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_FULL, _SQLITE_IOERR = 5, 6, 13, 10
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


@dataclass
class ExportStats:
    written_spans: int = 0
    dropped_spans: int = 0
    failed_batches: int = 0
    busy_retries: int = 0


class StoreExporter(SpanExporter):
    """Writes span batches into the local SQLite store. Thread-safe; never raises."""

    counts_own_drops = True  # failed batches are counted in `_drop`, not again by the processor

    def __init__(self, settings: StoreSettings | None = None) -> None:
        self.settings = settings or StoreSettings.from_env()
        self.stats = ExportStats()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._hints: dict[int, str] = {}
        self._hints_lock = threading.Lock()
        self._last_warned: dict[str, float] = {}
        self._corruptions = 0
        self._disabled = False
        self._closed = False
        self._next_retention = 0.0
        self._impatient_until = 0.0
        self._dropped_counter = metrics.get_meter("otel_agents").create_counter(
            sc.METRIC_SPANS_DROPPED,
            sc.METRIC_UNITS.get(sc.METRIC_SPANS_DROPPED, "{span}"),
            "Spans dropped because the export queue was full (backend slow or down).",
        )

    @property
    def path(self) -> Path:
        return self.settings.path

    @property
    def dropped_spans(self) -> int:
        return self.stats.dropped_spans

    # -- called from application threads ----------------------------------------------------

    def note_agent(self, span_id: int, agent: str) -> None:
        """Remember which agent a tool span runs in (its agent span is exported later)."""
        with self._hints_lock:
            hints = self._hints
            hints[span_id] = agent
            if len(hints) > _MAX_AGENT_HINTS:  # spans dropped before export leave hints behind
                for key in list(hints)[: _MAX_AGENT_HINTS // 2]:
                    del hints[key]

    # -- the SpanExporter interface (called from the batch processor's thread) ------------

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        with self._lock:
            if self._closed or self._disabled:
                self._drop(len(spans))
                return SpanExportResult.FAILURE
            try:
                return self._export(_rows(spans))
            except Exception as exc:
                report_internal_error("store export", exc)
                self._drop(len(spans))
                return SpanExportResult.FAILURE

    def write_open(self, spans: Sequence[Span]) -> int:
        """Record the spans of `spans` that have not ended yet; returns how many.

        Under the export lock: a span found open here and ending later is exported (and its
        open row deleted) after this write, never before it.
        """
        with self._lock:
            if self._closed or self._disabled:
                return 0
            resources: dict[int, dict[str, Any]] = {}
            rows = []
            for span in spans:
                if span.end_time is None:
                    with contextlib.suppress(RuntimeError):  # changed while read: next time
                        rows.append(SpanRow.from_readable(span, resources))
            if not rows:
                return 0
            try:
                conn = self._connection()
                write_open_spans(conn, rows, os.getpid(), _HOST, time.time_ns())
            except (sqlite3.DatabaseError, OSError) as exc:
                # A busy or failing store: the ended spans' export reports real trouble.
                _logger.debug("otel-agents: recording open spans failed: %s", exc)
                return 0
            return len(rows)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            self._close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    # -- writing ------------------------------------------------------------------------------

    def _export(self, rows: list[SpanRow]) -> SpanExportResult:
        hints = self._take_hints(rows)
        # Right after the store stayed locked, try each batch once and briefly, so that a
        # long lock (or a shutdown flushing many batches) costs little time.
        patient = time.monotonic() >= self._impatient_until
        attempts = _ATTEMPTS if patient else 1
        for attempt in range(attempts):
            try:
                conn = self._connection()
                conn.execute(f"PRAGMA busy_timeout = {schema.BUSY_TIMEOUT_MS if patient else 100}")
                write_batch(conn, rows, hints)
            except sqlite3.DatabaseError as exc:
                kind = _classify(exc)
                if kind == "busy" and attempt + 1 < attempts:
                    self.stats.busy_retries += 1
                    time.sleep(_BACKOFF_SECONDS[attempt] * (1 + random.random()))
                    continue
                if kind == "corrupt" and self._recover_from_corruption(exc):
                    continue
                if kind == "busy":
                    self._impatient_until = time.monotonic() + _IMPATIENCE_SECONDS
                self._degrade(kind, exc, len(rows))
                return SpanExportResult.FAILURE
            except OSError as exc:  # the directory cannot be created
                self._degrade("unavailable", exc, len(rows))
                return SpanExportResult.FAILURE
            self.stats.written_spans += len(rows)
            self._maybe_enforce_retention()
            return SpanExportResult.SUCCESS
        self._degrade("corrupt", None, len(rows))
        return SpanExportResult.FAILURE

    def _take_hints(self, rows: list[SpanRow]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._hints_lock:
            for row in rows:
                if row.is_tool:
                    agent = self._hints.pop(int(row.span_id, 16), None)
                    if agent is not None:
                        found[row.span_id] = agent
        return found

    def _connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # forked: never use the parent's connection
            self._conn, self._pid = None, os.getpid()
        if self._conn is None:
            new_store = not self.path.exists()
            self._conn = schema.connect(self.path, create=True)
            if new_store and announce_new_store:
                _tell_where_spans_go(self.path)
        return self._conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _drop(self, count: int) -> None:
        self.stats.dropped_spans += count
        self.stats.failed_batches += 1
        with contextlib.suppress(Exception):
            self._dropped_counter.add(count)

    # -- degrading ----------------------------------------------------------------------------

    def _degrade(self, kind: str, exc: BaseException | None, count: int) -> None:
        self._drop(count)
        if kind in ("corrupt", "unavailable", "other"):
            self._close()  # reopen from scratch next time
        reasons = {
            "busy": "is locked by another process",
            "full": "cannot grow (disk full or file size limit)",
            "corrupt": "is damaged",
            "unavailable": "cannot be opened",
            "other": "failed",
        }
        detail = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
        self._warn(
            kind,
            f"otel-agents: the trace store {self.path} {reasons.get(kind, 'failed')}{detail};"
            f" {count} spans dropped ({self.stats.dropped_spans} so far). The application is"
            " unaffected; set OTEL_AGENTS_STORE_PATH or OTEL_AGENTS_STORE=off to change this.",
        )

    def _warn(self, kind: str, message: str) -> None:
        now = time.monotonic()
        last = self._last_warned.get(kind)
        if last is not None and now - last < _WARN_INTERVAL:
            return
        self._last_warned[kind] = now
        with contextlib.suppress(Exception):
            _logger.warning(message)

    def _recover_from_corruption(self, exc: BaseException) -> bool:
        """Move a damaged file aside and start afresh. False when we should give up."""
        self._close()
        self._corruptions += 1
        if self._corruptions > _MAX_CORRUPTIONS:
            self._disabled = True
            self._warn(
                "disabled",
                f"otel-agents: the trace store {self.path} keeps failing"
                f" ({exc}); the store is off for this process.",
            )
            return False
        try:
            moved = quarantine(self.path)
        except OSError as move_error:
            self._warn(
                "corrupt",
                f"otel-agents: the trace store {self.path} is damaged ({exc})"
                f" and could not be moved aside ({move_error}).",
            )
            return False
        if moved is not None:
            self._warn(
                "corrupt",
                f"otel-agents: the trace store {self.path} was damaged ({exc});"
                f" moved it to {moved} and started a new store.",
            )
        return True

    def _maybe_enforce_retention(self) -> None:
        now = time.monotonic()
        if now < self._next_retention or self._conn is None:
            return
        self._next_retention = now + _RETENTION_INTERVAL
        settings = self.settings
        try:
            retention.enforce(
                self._conn, settings.max_age_seconds, settings.max_bytes, time.time_ns()
            )
        except sqlite3.DatabaseError as exc:
            if _classify(exc) == "busy":
                # Other processes are writing: nothing is wrong, prune once they pause.
                self._next_retention = now + _RETENTION_RETRY
                return
            self._warn(
                "retention",
                f"otel-agents: pruning the trace store {self.path} failed"
                f" ({exc}); will try again later.",
            )


def _tell_where_spans_go(path: Path) -> None:
    """One line on stderr when this process created the store: a newcomer's first run
    otherwise ends with no sign of where its spans went."""
    with contextlib.suppress(Exception):
        sys.stderr.write(
            f"{WHERE_SPANS_GO} {path}: `otel-agents runs` lists the runs, `otel-agents show`"
            " the newest one's decision path. (Set OTEL_EXPORTER_OTLP_ENDPOINT to send them"
            " to a backend; this note is shown once, when the store is created.)\n"
        )


WHERE_SPANS_GO = "otel-agents: recording spans in the local store"
announce_new_store = True  # the demo, which says where its run went, turns this off


def _classify(exc: sqlite3.DatabaseError) -> str:
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    message = str(exc).lower()
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in message or "busy" in message:
        return "busy"
    if primary == _SQLITE_FULL or "full" in message:
        return "full"
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "malformed" in message:
        return "corrupt"
    if "not a database" in message:
        return "corrupt"
    if primary == _SQLITE_IOERR or "i/o" in message:
        return "full"  # a failed write: most often no space (or a file size limit)
    if "unable to open" in message or "readonly" in message:
        return "unavailable"
    return "other"


# -- moving a damaged store aside ---------------------------------------------------------


def quarantine(path: Path) -> Path | None:
    """Move a damaged store (and its WAL files) aside; None if it turned out to be fine.

    Several processes may find the damage at once: under a lock file, the first one moves
    the file; the others find a healthy (new) store and leave it alone.
    """
    with _file_lock(path.with_name(path.name + ".lock")):
        if not path.exists() or _is_healthy(path):
            return None
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        target = path.with_name(f"{path.name}.corrupt-{stamp}")
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                side.replace(target.with_name(target.name + suffix))
        path.replace(target)
        return target


def _is_healthy(path: Path) -> bool:
    try:
        conn = sqlite3.connect(path, timeout=schema.BUSY_TIMEOUT_MS / 1000)
        try:
            row = conn.execute("PRAGMA quick_check(1)").fetchone()
            return bool(row) and row[0] == "ok"
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock, best effort
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# -- the processor ---------------------------------------------------------------------------


class StoreSpanProcessor(DropCountingSpanProcessor):
    """A bounded batch processor writing to the local store, for `TracerProvider`s.

    Add it to your own provider to keep a local copy next to your exporter:
    `provider.add_span_processor(StoreSpanProcessor())`.

    Spans reach the store when they end; so that a run still going, or killed, can be shown
    as a tree, span starts are recorded too. The application thread only appends the span
    to a bounded deque; every schedule delay after a start, a background thread writes the
    spans among those that are still open (a span that started and ended in between costs
    nothing more) to `open_spans`. A span's open row is deleted when the span is written.
    """

    def __init__(self, settings: StoreSettings | None = None, **batch_options: Any) -> None:
        self.exporter = StoreExporter(settings)
        if "OTEL_BSP_SCHEDULE_DELAY" not in os.environ:
            batch_options.setdefault("schedule_delay_millis", 1_000)  # a local write is cheap
        super().__init__(self.exporter, **batch_options)
        delay = getattr(self._batch_processor, "_schedule_delay", 1.0)  # seconds
        self._starts = _StartRecorder(self.exporter, float(delay))

    @property
    def destination(self) -> str:
        return f"the trace store {self.exporter.path}"

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        self._starts.add(span)
        if not span.name.startswith(TOOL_SPAN_PREFIX):
            return
        try:
            agent = _agent_of(parent_context)
            if agent is not None and span.context is not None:
                self.exporter.note_agent(span.context.span_id, agent)
        except Exception as exc:
            report_internal_error("store on_start", exc)

    def shutdown(self) -> None:
        self._starts.close()
        super().shutdown()


class _StartRecorder:
    """Writes the spans that are still open, a schedule delay after they started."""

    def __init__(self, exporter: StoreExporter, delay_seconds: float) -> None:
        self._exporter = exporter
        self._delay = delay_seconds
        self._pending: deque[Span] = deque(maxlen=_MAX_PENDING_STARTS)
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._sleeping = True  # the writer waits for `_wake` (or has not started)
        self._thread: threading.Thread | None = None
        self._pid = -1
        self.written = 0
        if hasattr(os, "register_at_fork"):
            after_fork = weakref.WeakMethod(self._after_fork)
            os.register_at_fork(after_in_child=lambda: (m := after_fork()) and m())

    def add(self, span: Span) -> None:
        """The application thread's whole share: one append, and a wake-up when idle."""
        self._pending.append(span)
        if self._sleeping:  # read after the append: the writer re-checks after setting it
            self._sleeping = False
            if self._pid != os.getpid():
                self._start()
            self._wake.set()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._thread = threading.Thread(
            target=self._run, name="otel-agents open spans", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._closed.is_set():
            self._sleeping = True
            if not self._pending:
                self._wake.wait()
            self._sleeping = False
            self._wake.clear()
            if self._closed.wait(self._delay):  # let more starts (and ends) gather
                return
            self.flush()

    def flush(self) -> None:
        spans = []
        pending = self._pending
        while pending:
            spans.append(pending.popleft())
        if not spans:
            return
        try:
            self.written += self._exporter.write_open(spans)
        except Exception as exc:
            report_internal_error("store open spans", exc)

    def _after_fork(self) -> None:
        self._pending.clear()
        self._wake = threading.Event()
        self._sleeping, self._pid, self._thread = True, -1, None

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)


def _agent_of(parent_context: otel_context.Context | None) -> str | None:
    if parent_context is None:  # our recorders start spans in the current context
        frame = current_agent()
        return frame.name if frame is not None else None
    parent = trace.get_current_span(parent_context)
    name = getattr(parent, "name", "")
    if isinstance(name, str) and name.startswith(AGENT_SPAN_PREFIX):
        return name[len(AGENT_SPAN_PREFIX) :]
    return None


def _rows(spans: Sequence[ReadableSpan]) -> list[SpanRow]:
    """The batch as rows, converted in sub-batches (see `writer.sub_batches`)."""
    resources: dict[int, dict[str, Any]] = {}
    rows: list[SpanRow] = []
    for part in sub_batches(spans):
        rows.extend(SpanRow.from_readable(span, resources) for span in part)
    return rows
