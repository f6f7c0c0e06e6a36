"""A locked, full, corrupt or unreachable store costs spans and one warning, never the app."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from storetools import clean_env, instrumented, read, run_python

import otel_agents
from otel_agents.store.exporter import _ATTEMPTS, StoreExporter
from otel_agents.store.settings import StoreSettings

# A traced program that counts the store work done on its own (main) thread while its
# agent runs: none, whatever state the store is in (speed is in benchmarks/bench_store.py).
APP = """
    import threading
    import otel_agents
    from otel_agents.store.exporter import StoreExporter

    main_thread_store_calls = 0
    in_loop = False

    def watched(method):
        def wrapper(self, *args, **kwargs):
            global main_thread_store_calls
            if in_loop and threading.current_thread() is threading.main_thread():
                main_thread_store_calls += 1
            return method(self, *args, **kwargs)
        return wrapper

    StoreExporter.export = watched(StoreExporter.export)
    StoreExporter._connection = watched(StoreExporter._connection)
    otel_agents.instrument()

    @otel_agents.tool
    def step(i: int) -> str:
        return "x" * 2000

    in_loop = True
    with otel_agents.agent("busy"):
        for i in range({calls}):
            step(i)
    in_loop = False
    print(main_thread_store_calls, flush=True)
"""


@otel_agents.tool
def step(i: int) -> int:
    return i


def some_spans(count: int = 5) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with instrumented(provider), otel_agents.agent("sample"):
        for i in range(count - 1):
            step(i)
    return list(memory.get_finished_spans())


def exporter_for(path: Path) -> StoreExporter:
    return StoreExporter(StoreSettings(path=path, max_age_days=0, max_mb=0))


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_locked_store_drops_the_batch_with_one_warning_then_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "traces.db"
    exporter = exporter_for(path)
    assert exporter.export(some_spans()) is SpanExportResult.SUCCESS  # creates the store
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process keeps the store locked
    caplog.set_level(logging.WARNING, logger="otel_agents")
    # Counted, not timed: a patient export tries _ATTEMPTS times, then the ones right
    # after a long lock try once each (speed is in benchmarks/bench_store.py).
    assert exporter.export(some_spans()) is SpanExportResult.FAILURE
    assert exporter.stats.busy_retries == _ATTEMPTS - 1, "retries are bounded"
    for _ in range(5):
        assert exporter.export(some_spans()) is SpanExportResult.FAILURE
    assert exporter.stats.busy_retries == _ATTEMPTS - 1, "after a long lock, tried once"
    holder.execute("ROLLBACK")
    holder.close()
    assert exporter.stats.dropped_spans == 6 * 5
    [warning] = warnings_in(caplog)
    assert f"the trace store {path} is locked by another process" in warning
    assert "5 spans dropped" in warning and "The application is unaffected" in warning
    assert exporter.export(some_spans()) is SpanExportResult.SUCCESS
    with read(path) as store:
        assert store.info().spans == 10


def test_the_app_never_waits_for_the_store_while_another_process_holds_it(
    tmp_path: Path,
) -> None:
    """Deterministic: the other process holds the lock until the app has exited (no timed
    sleep that a slow start could outlast), and the app itself counts store work done on
    its own thread while it runs (none). Speed is measured in benchmarks/bench_store.py."""
    path = tmp_path / "traces.db"
    run_python(APP.format(calls=10), OTEL_AGENTS_STORE_PATH=str(path))  # the store exists
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sqlite3, sys
            conn = sqlite3.connect({str(path)!r}, isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")
            print("locked", flush=True)
            sys.stdin.readline()  # held until the test says so
            """)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        app = run_python(APP.format(calls=3000), OTEL_AGENTS_STORE_PATH=str(path))
        assert holder.poll() is None, "the lock was held for the app's whole life"
    finally:
        holder.kill()
        holder.wait()
    assert app.stdout.strip() == "0", "the application thread never touched the store"
    # Told either way: the store's warning (after its retries), or at exit, when the exit
    # deadline (OTEL_AGENTS_EXIT_TIMEOUT) comes first, which spans it did not take.
    assert (
        "is locked by another process" in app.stderr
        or f"not exported to the trace store {path}" in app.stderr
    )
    assert "Traceback" not in app.stderr


def test_a_corrupt_file_is_moved_aside_and_a_new_store_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "traces.db"
    garbage = os.urandom(64 * 1024)
    path.write_bytes(garbage)
    caplog.set_level(logging.WARNING, logger="otel_agents")
    exporter = exporter_for(path)
    assert exporter.export(some_spans()) is SpanExportResult.SUCCESS
    [moved] = list(tmp_path.glob("traces.db.corrupt-*"))
    assert moved.read_bytes() == garbage  # kept for inspection, not deleted
    [warning] = warnings_in(caplog)
    assert f"{path} was damaged" in warning and f"moved it to {moved}" in warning
    with read(path) as store:
        assert store.info().spans == 5 and store.verify_audit().ok


def test_damage_inside_a_valid_file_is_handled_too(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    exporter = exporter_for(path)
    for _ in range(40):
        assert exporter.export(some_spans(20)) is SpanExportResult.SUCCESS
    exporter.shutdown()
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(2 * page, len(data) - page, 3 * page):  # trash every third page
        data[offset : offset + page] = os.urandom(page)
    path.write_bytes(bytes(data))
    fresh = exporter_for(path)
    results = [fresh.export(some_spans()) for _ in range(3)]
    assert results[-1] is SpanExportResult.SUCCESS
    assert list(tmp_path.glob("traces.db.corrupt-*")), "the damaged file was set aside"
    with read(path) as store:
        assert store.info().spans >= 5


def test_an_unreachable_location_degrades_to_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's directory should be")
    caplog.set_level(logging.WARNING, logger="otel_agents")
    exporter = exporter_for(blocker / "otel-agents" / "traces.db")
    for _ in range(3):
        assert exporter.export(some_spans()) is SpanExportResult.FAILURE
    [warning] = warnings_in(caplog)  # once, not once per batch
    assert "cannot be opened" in warning and "15 spans dropped" not in warning
    assert exporter.dropped_spans == 15


def test_an_app_with_an_unusable_store_path_just_runs(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    app = run_python(APP.format(calls=100), OTEL_AGENTS_STORE_PATH=str(blocker / "traces.db"))
    assert "cannot be opened" in app.stderr and "Traceback" not in app.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file size limits")
def test_a_full_disk_degrades_to_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    limit = 256 * 1024  # as if the disk filled up after 256 KB
    script = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        """
    ) + textwrap.dedent(APP.format(calls=3000))
    app = subprocess.run(
        [sys.executable, "-c", script],
        env=clean_env(OTEL_AGENTS_STORE_PATH=str(path), OTEL_BSP_SCHEDULE_DELAY="50"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert app.returncode == 0, app.stderr
    assert app.stdout.strip() == "0", "the application thread never touched the store"
    assert "cannot grow (disk full or file size limit)" in app.stderr
    assert "Traceback" not in app.stderr
    assert path.stat().st_size <= limit
    with read(path) as store:  # what fitted is intact
        assert store.verify_audit().ok
