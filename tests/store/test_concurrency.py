"""Several processes writing to one store at once: no lost spans, one linear audit chain."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from storetools import clean_env, read

from otel_agents.store.exporter import WHERE_SPANS_GO
from otel_agents.store.reader import RunFilter

WRITER = """
    import sys, time
    import otel_agents
    otel_agents.instrument()

    @otel_agents.tool
    def step(worker: int, i: int) -> int:
        return i

    import pathlib
    worker, runs, tools = (int(arg) for arg in sys.argv[1:4])
    gate = pathlib.Path(sys.argv[4])

    def wait_for(name):  # the test's signal (a file), not a clock
        while not (gate / name).exists():
            time.sleep(0.02)

    wait_for("go")  # all writers start together
    for run in range(runs):
        if run == runs // 2:  # halfway: in the store, then wait while the CLI reads
            otel_agents.flush()
            (gate / f"half-{worker}").touch()
            wait_for("read")
        with otel_agents.agent(f"writer-{worker}"):
            for i in range(tools):
                step(worker, i)
"""

PROCESSES, RUNS, TOOLS = 6, 20, 25


def _without_first_run_note(stderr: str) -> str:
    """The writer that created the store says where spans go: not an error."""
    return "".join(
        line for line in stderr.splitlines(keepends=True) if not line.startswith(WHERE_SPANS_GO)
    )


def cli_runs(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otel_agents.cli", "runs", "--json", "--all"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_concurrent_writers_lose_nothing_and_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    env = clean_env(
        OTEL_AGENTS_STORE_PATH=str(path),
        # small, frequent batches: many transactions from every process, interleaved
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="20",
        OTEL_BSP_SCHEDULE_DELAY="5",
    )
    gate = tmp_path / "gate"
    gate.mkdir()
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(WRITER),
                str(n),
                str(RUNS),
                str(TOOLS),
                str(gate),
            ],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    (gate / "go").touch()
    halfway = [gate / f"half-{n}" for n in range(PROCESSES)]
    try:
        while not all(h.exists() for h in halfway):  # every writer is mid-way, and waits
            assert all(w.poll() is None for w in writers), "a writer ended early"
            time.sleep(0.05)
        readers = [cli_runs(env) for _ in range(2)]  # the CLI reads while they hold their data
    finally:
        (gate / "read").touch()  # never leave a writer waiting, whatever happened
    while any(w.poll() is None for w in writers):  # and while they write
        readers.append(cli_runs(env))
    errors = [_without_first_run_note(w.communicate()[1]) for w in writers]
    assert [w.returncode for w in writers] == [0] * PROCESSES, errors
    assert not any(errors), errors  # no "locked" warnings, nothing dropped
    assert all(r.returncode == 0 for r in readers), [r.stderr for r in readers]
    assert all(len(json.loads(r.stdout)) >= PROCESSES * (RUNS // 2) for r in readers[:2])

    with read(path) as store:
        info = store.info()
        runs = store.runs(RunFilter(limit=None))
        log = list(store.audit_records())
        verification = store.verify_audit()
    assert info.spans == PROCESSES * RUNS * (TOOLS + 1)
    assert len(runs) == PROCESSES * RUNS
    assert all(r.status == "ok" and r.tool_calls == TOOLS for r in runs)
    assert [r.seq for r in log] == list(range(1, PROCESSES * RUNS * TOOLS + 1))
    assert verification.ok and verification.records == len(log)
    writers_in_log = [r.agent for r in log]
    switches = sum(1 for a, b in itertools.pairwise(writers_in_log) if a != b)
    assert switches > PROCESSES, "the processes really wrote at the same time"
