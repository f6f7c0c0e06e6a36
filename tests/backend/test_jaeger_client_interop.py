"""A service still on the archived `jaeger-client` and one on otel-agents share one trace.

The propagation format is Jaeger's `uber-trace-id` header: otel-agents reads and writes it
when `OTEL_PROPAGATORS` names `jaeger` (the `jaeger` extra installs the propagator). Each
side runs as its own process over HTTP on loopback, in both directions:
jaeger-client -> otel-agents, and otel-agents -> jaeger-client.

jaeger-client is not a dependency of ours: it lives in a virtualenv of its own, built on
first use under ~/.cache (about 2 minutes: it builds thrift) with Python 3.11, the newest
Python it installs on here. Without a Python 3.11 the test is skipped, loudly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent / "interop"
CACHE = Path(
    os.environ.get("OTEL_AGENTS_INTEROP_CACHE", Path.home() / ".cache" / "otel-agents-interop")
)
JAEGER_CLIENT_VENV = CACHE / "jaeger-client-py311"
# jaeger-client 4.8.0 (its last release) imports `six` without declaring it.
JAEGER_CLIENT_REQUIREMENTS = ["jaeger-client==4.8.0", "six"]
OTEL_AGENTS_ENV = {"OTEL_PROPAGATORS": "tracecontext,baggage,jaeger", "OTEL_AGENTS_STORE": "off"}


def python311() -> str | None:
    """A working Python 3.11 interpreter, or None."""
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    candidate = shutil.which("python3.11")
    if candidate is None:
        return None
    probe = subprocess.run([candidate, "-c", "import venv"], capture_output=True, check=False)
    return candidate if probe.returncode == 0 else None


@pytest.fixture(scope="module")
def jaeger_client_python() -> str:
    """The interpreter of a virtualenv with jaeger-client, built once and cached."""
    python = JAEGER_CLIENT_VENV / "bin" / "python"
    ready = python.exists() and (
        subprocess.run([python, "-c", "import jaeger_client, six"], check=False).returncode == 0
    )
    if not ready:
        base = python311()
        if base is None:
            pytest.skip(
                "NO PYTHON 3.11 ON THIS MACHINE: the jaeger-client interop row is NOT TESTED "
                "(jaeger-client 4.8.0 installs on Python 3.11; install one, e.g. with pyenv)"
            )
        subprocess.run([base, "-m", "venv", "--clear", JAEGER_CLIENT_VENV], check=True)
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", *JAEGER_CLIENT_REQUIREMENTS],
            check=True,
            timeout=900,
        )
    return str(python)


def serving(command: list[str], env: dict[str, str]) -> Iterator[str]:
    """Start a `serve` process; yield its URL (it prints its port first); stop it after."""
    process = subprocess.Popen(
        command,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()  # returns when printed, or at exit
        assert port.isdigit(), f"{command} did not start: {process.communicate(timeout=30)[1]}"
        yield f"http://127.0.0.1:{port}/work"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def otel_agents_service() -> Iterator[str]:
    yield from serving(
        [sys.executable, str(HERE / "otel_agents_service.py"), "serve"], OTEL_AGENTS_ENV
    )


@pytest.fixture
def jaeger_client_service(jaeger_client_python: str) -> Iterator[str]:
    yield from serving([jaeger_client_python, str(HERE / "jaeger_client_service.py"), "serve"], {})


def call(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        command,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    reply: dict[str, Any] = json.loads(result.stdout)
    return reply


def test_jaeger_client_calls_otel_agents(
    jaeger_client_python: str, otel_agents_service: str
) -> None:
    reply = call(
        [jaeger_client_python, str(HERE / "jaeger_client_service.py"), "call", otel_agents_service],
        {},
    )
    caller, callee = reply["caller"], reply["callee"]
    assert set(reply["headers"]) == {"uber-trace-id"}  # nothing but the Jaeger format
    # jaeger-client makes 64-bit trace ids; OpenTelemetry reads them zero-padded to 128.
    assert callee["trace_id"] == caller["trace_id"]
    assert callee["parent_span_id"] == caller["span_id"]
    assert callee["span_id"] != caller["span_id"]


def test_otel_agents_calls_jaeger_client(jaeger_client_service: str) -> None:
    reply = call(
        [sys.executable, str(HERE / "otel_agents_service.py"), "call", jaeger_client_service],
        OTEL_AGENTS_ENV,
    )
    caller, callee = reply["caller"], reply["callee"]
    assert "uber-trace-id" in reply["headers"]
    assert callee["trace_id"] == caller["trace_id"]
    assert callee["parent_span_id"] == caller["span_id"]
    assert callee["span_id"] != caller["span_id"]
