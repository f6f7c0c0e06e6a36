"""A dead or silent OTLP backend never holds the application.

Each case is a real process exporting over OTLP/HTTP or OTLP/gRPC to a loopback address
where either nothing listens (a closed port) or a socket accepts connections and never
answers. The properties are structural: `flush()` reports that it could not finish, the
exit hook hands the exporters our deadline (not the SDK's 30 s) and cuts them off, and the
spans that did not make it are counted as dropped. Wall-clock bounds are asserted only
with wide margins, against an exporter timeout set so high that the old behaviour (the
SDK waiting for the exporter) would take far longer.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_agents.config import ConfigError
from otel_agents.sdk_setup import EXIT_TIMEOUT_ENV, BoundedCall, exit_timeout_from_env

ROOT = Path(__file__).resolve().parents[1]

APP = """
    import atexit, time
    from opentelemetry import trace

    def report() -> None:  # registered before otel-agents: runs after its exit hook
        processor = trace.get_tracer_provider()._active_span_processor._span_processors[-1]
        exporter = processor.wrapped_exporter
        client = getattr(exporter, "_client", None)
        cut_off = bool(getattr(client, "_shutdown", False) or getattr(exporter, "_shutdown", False))
        # seconds left of the deadline our exit hook gave the processor (None: no deadline)
        deadline = processor.shutdown_deadline
        left = deadline - time.monotonic() if deadline is not None else None
        print(f"deadline {left}", flush=True)
        print(f"cut_off {cut_off}", flush=True)
        print(f"dropped {processor.dropped_spans} exported {processor.exported_spans}", flush=True)
        print(f"exit_hook_done {time.time():.6f}", flush=True)

    atexit.register(report)

    import otel_agents
    otel_agents.instrument()

    @otel_agents.tool
    def lookup(vendor_id: str) -> str:
        return vendor_id

    with otel_agents.agent("stuck-backend"):
        lookup("V-1")
    started = time.monotonic()
    flushed = otel_agents.flush(timeout_millis=300)
    print(f"flush {flushed} {time.monotonic() - started:.3f}", flush=True)
    print(f"script_end {time.time():.6f}", flush=True)
"""


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SilentBackend:
    """Accepts connections on 127.0.0.1 and never reads or answers."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.server.settimeout(0.1)
        self.port = int(self.server.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                self.accepted.append(self.server.accept()[0])
            except OSError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.accepted:
            conn.close()
        self.server.close()


@pytest.fixture(params=["dead", "silent"])
def backend_port(request: pytest.FixtureRequest) -> Iterator[int]:
    if request.param == "dead":
        yield closed_port()
        return
    silent = SilentBackend()
    try:
        yield silent.port
    finally:
        silent.close()


def run_app(tmp_path: Path, protocol: str, port: int) -> tuple[dict[str, list[str]], float]:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(APP))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        PYTHONPATH=str(ROOT),
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        # Each export may wait 60 s: only our deadline can make the process exit sooner.
        OTEL_EXPORTER_OTLP_TIMEOUT="60",
        OTEL_BSP_SCHEDULE_DELAY="50",
        **{EXIT_TIMEOUT_ENV: "0.5"},
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    exited = time.time()
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    return lines, exited - float(lines["script_end"][0])


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_flush_and_exit_are_bounded_whatever_the_backend_does(
    tmp_path: Path, protocol: str, backend_port: int
) -> None:
    lines, exit_seconds = run_app(tmp_path, protocol, backend_port)
    flushed, flush_seconds = lines["flush"]
    assert flushed == "False"  # flush() says it could not finish, instead of waiting
    assert float(flush_seconds) < 20  # asked for 0.3 s; one export alone may take 60 s
    assert lines["deadline"] != ["None"]  # our exit hook gave the processor a deadline
    assert float(lines["deadline"][0]) < 0.5  # within OTEL_AGENTS_EXIT_TIMEOUT=0.5
    assert lines["cut_off"] == ["True"]  # and the exporter was shut down: no more retries
    dropped, exported = int(lines["dropped"][0]), int(lines["dropped"][2])
    assert exported == 0 and dropped == 2  # the agent and the tool span: counted, not lost
    assert exit_seconds < 30  # the SDK's own exit hook would wait 30 s, the export 60 s


def test_flush_returns_true_when_everything_was_exported(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            """
            import otel_agents
            otel_agents.instrument()
            with otel_agents.agent("fine"):
                pass
            print(otel_agents.flush())
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(PYTHONPATH=str(ROOT), OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="none")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True"


def test_a_call_that_outlives_its_deadline_is_waited_for_not_started_again() -> None:
    release = threading.Event()
    started: list[int] = []

    def stuck() -> bool:
        started.append(1)
        release.wait()
        return True

    call = BoundedCall("test")
    assert call.run(stuck, 0.01) is False
    assert call.run(stuck, 0.01) is False  # the first is still running: joined, not doubled
    assert started == [1]
    release.set()
    assert call.run(stuck, 60) is True  # the running one finished: its result counts
    assert call.run(lambda: False, 60) is False


def test_the_exit_timeout_is_read_and_checked() -> None:
    assert exit_timeout_from_env({}) == 2.0
    assert exit_timeout_from_env({EXIT_TIMEOUT_ENV: "0.25"}) == 0.25
    for bad in ("soon", "-1", "nan", "1e9"):
        with pytest.raises(ConfigError, match=EXIT_TIMEOUT_ENV):
            exit_timeout_from_env({EXIT_TIMEOUT_ENV: bad})
