"""How long a dead or silent OTLP backend holds an application: flush() and process exit.

    python benchmarks/bench_dead_backend.py

For each protocol (OTLP/HTTP, OTLP/gRPC) and each backend (a closed loopback port; a
loopback socket that accepts connections and never answers), a child process records an
agent run, calls `otel_agents.flush(timeout_millis=1000)` and returns from its script.
Printed: the time flush() took, and the time from the script's end to the process exit
(interpreter shutdown: the exporters' final flush and retries). With `--no-flush` the
script does not call flush(): the exit then has all the spans to export.
Other arguments `NAME=VALUE` go into the child's environment.
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
from contextlib import contextmanager

CHILD = textwrap.dedent(
    """
    import sys, time
    import otel_agents

    otel_agents.instrument()

    @otel_agents.tool
    def lookup(vendor_id: str) -> str:
        return vendor_id

    with otel_agents.agent("bench"):
        lookup("V-1")
    started = time.monotonic()
    if "--no-flush" in sys.argv:
        print("flush nan", flush=True)
    else:
        otel_agents.flush(timeout_millis=1000)
        print(f"flush {time.monotonic() - started:.3f}", flush=True)
    print(f"end {time.time():.6f}", flush=True)
    """
)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def silent_backend() -> Iterator[int]:
    """A loopback socket that accepts connections and never reads or answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def measure(protocol: str, port: int, extra_env: dict[str, str]) -> tuple[float, float]:
    env = dict(os.environ)
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_SERVICE_NAME": "bench-dead-backend",
            "OTEL_AGENTS_STORE": "off",
            **extra_env,
        }
    )
    argv = [sys.executable, "-c", CHILD, *(["--no-flush"] if NO_FLUSH else [])]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    exited = time.time()
    values = dict(line.split() for line in proc.stdout.splitlines() if line[:4] in ("flus", "end "))
    return float(values["flush"]), exited - float(values["end"])


NO_FLUSH = "--no-flush" in sys.argv


def main() -> None:
    extra = dict(arg.split("=", 1) for arg in sys.argv[1:] if "=" in arg)
    print(f"{'protocol':<14} {'backend':<8} {'flush(1s) s':>12} {'exit s':>8}")
    for protocol in ("http/protobuf", "grpc"):
        flush, exit_time = measure(protocol, closed_port(), extra)
        print(f"{protocol:<14} {'dead':<8} {flush:>12.2f} {exit_time:>8.2f}")
        with silent_backend() as port:
            flush, exit_time = measure(protocol, port, extra)
        print(f"{protocol:<14} {'silent':<8} {flush:>12.2f} {exit_time:>8.2f}")


if __name__ == "__main__":
    main()
