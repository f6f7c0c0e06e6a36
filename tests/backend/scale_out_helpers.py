"""Running the real backend programs on free loopback ports, for tests/backend/test_scale_out.py.

Self-contained on purpose (the shared backend harness may grow in conftest.py later):
locate the binaries built by scripts/backend/build.sh, start and always stop processes,
wait for conditions (never for a fixed time), receive OTLP/gRPC, read Prometheus text.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import (
    TraceServiceServicer,
    add_TraceServiceServicer_to_server,
)

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def backend_binaries(*targets: str) -> dict[str, str]:
    """NAME -> path, from scripts/backend/build.sh (cached: seconds once built).

    Paths already given in the environment (OTELCOL=..., JAEGER=...) win: build.sh rebuilds
    when the builder manifest differs from the cached build's, which a shared cache may hold.
    """
    if os.environ.get("OTEL_AGENTS_SKIP_BACKEND") == "1":
        pytest.skip("OTEL_AGENTS_SKIP_BACKEND=1: the backend tests are switched off")
    variable = {"collector": "OTELCOL", "jaeger": "JAEGER", "prometheus": "PROMTOOL"}
    given = {variable[t]: os.environ[variable[t]] for t in targets if variable[t] in os.environ}
    missing = [t for t in targets if variable[t] not in given]
    if not missing:
        return given
    result = subprocess.run(
        ["bash", str(REPO / "scripts/backend/build.sh"), *missing],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"scripts/backend/build.sh failed:\n{result.stderr[-4000:]}")
    pairs = (line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return {**dict(pairs), **given}


def free_port() -> int:
    """A loopback port nobody listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def address() -> str:
    return f"127.0.0.1:{free_port()}"


@dataclass
class Program:
    """A started process with its log file; `stop()` ends it and its children."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)  # Jaeger takes ~10 s to exit
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


@contextmanager
def started(
    name: str, command: Sequence[str], env: Mapping[str, str], logs: Path
) -> Iterator[Program]:
    """Start `command` in its own process group; stop it whatever happens."""
    log = logs / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            list(command),
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    program = Program(name, process, log)
    try:
        yield program
    finally:
        program.stop()


def poll_until(
    condition: Callable[[], T | None],
    what: str,
    timeout: float = 180.0,
    watch: Sequence[Program] = (),
    progress: Callable[[], object] | None = None,
) -> T:
    """The condition's first truthy value; fails after `timeout` s or when a watched program dies.

    The ceiling is generous on purpose: it only bounds a broken run, a healthy one returns
    as soon as the condition holds. `progress` says what was seen last, for the failure.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        for program in watch:
            if not program.alive():
                raise AssertionError(
                    f"{program.name} exited while waiting for {what}:\n{program.log_tail()}"
                )
        try:
            value = condition()
            if value:
                return value
        except (OSError, ValueError, KeyError) as error:  # not up yet, or half-written
            last_error = error
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.log_tail(2000)}" for p in watch)
            seen = f"; last seen: {progress()}" if progress else ""
            raise AssertionError(
                f"timed out waiting for {what} (last error: {last_error}{seen})\n{logs}"
            )
        time.sleep(0.25)


def http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def is_up(url: str) -> bool:
    try:
        return http_get(url, timeout=2)[0] == 200
    except OSError:
        return False


# -- Prometheus text format ---------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def scrape(url: str) -> list[Sample]:
    status, body = http_get(url)
    if status != 200:
        raise OSError(f"{url}: HTTP {status}")
    samples = []
    for line in body.decode().splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels = dict(_LABEL.findall(match.group(3) or ""))
            samples.append(Sample(match.group(1), labels, float(match.group(4))))
    return samples


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels` (with or without `_total`:
    the collector's own telemetry omits the suffix)."""
    names = {name, name.removesuffix("_total"), name.removesuffix("_total") + "_total"}
    return sum(
        s.value
        for s in samples
        if s.name in names and all(s.labels.get(k) == v for k, v in labels.items())
    )


# -- an OTLP/gRPC trace sink ---------------------------------------------------------------

SOURCE_HEADER = "x-test-source"


@dataclass
class OtlpSink:
    """Receives OTLP/gRPC trace exports; sorts them by the `x-test-source` request header."""

    endpoint: str
    spans: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, source: str, request: ExportTraceServiceRequest) -> None:
        found = [
            (span.trace_id.hex(), span.span_id.hex())
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]
        with self.lock:
            self.spans[source].extend(found)

    def snapshot(self) -> dict[str, list[tuple[str, str]]]:
        with self.lock:
            return {source: list(spans) for source, spans in self.spans.items()}


@contextmanager
def otlp_sink() -> Iterator[OtlpSink]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    port = server.add_insecure_port("127.0.0.1:0")
    sink = OtlpSink(f"127.0.0.1:{port}")

    class Service(TraceServiceServicer):
        def Export(
            self, request: ExportTraceServiceRequest, context: grpc.ServicerContext
        ) -> ExportTraceServiceResponse:
            source = dict(context.invocation_metadata()).get(SOURCE_HEADER, "")
            sink.record(str(source), request)
            return ExportTraceServiceResponse()

    add_TraceServiceServicer_to_server(Service(), server)
    server.start()
    try:
        yield sink
    finally:
        server.stop(grace=None).wait(timeout=10)
