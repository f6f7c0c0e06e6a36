"""Where spans go when otel-agents sets up the SDK: the local store by default, OTLP when an
endpoint is configured (and the store too when asked), nowhere of ours when switched off."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from textwrap import dedent

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from storetools import read, run_python

APP = """
    import otel_agents
    otel_agents.instrument()

    @otel_agents.tool
    def lookup(vendor_id: str) -> str:
        return vendor_id

    with otel_agents.agent("wired") as run:
        lookup("V-1")
    print(run.run_id)
"""


class Collector:
    """A minimal OTLP/HTTP trace receiver: the span names of every request it got."""

    def __init__(self) -> None:
        self.span_names: list[str] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        collector.span_names.extend(s.name for s in scope_spans.spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def collector() -> Iterator[Collector]:
    running = Collector()
    thread = threading.Thread(target=running.server.serve_forever, daemon=True)
    thread.start()
    yield running
    running.server.shutdown()


def stored_span_names(path: Path, run_id: str) -> list[str]:
    with read(path) as store:
        return [s.name for s in store.run_spans(run_id)]


def test_without_an_endpoint_spans_go_to_the_store(tmp_path: Path) -> None:
    path = tmp_path / "chosen" / "traces.db"
    run_id = run_python(APP, OTEL_AGENTS_STORE_PATH=str(path)).stdout.strip()
    assert stored_span_names(path, run_id) == ["invoke_agent wired", "execute_tool lookup"]


def test_the_default_path_follows_xdg_data_home(tmp_path: Path) -> None:
    data_home = tmp_path / "data"
    run_id = run_python(APP, XDG_DATA_HOME=str(data_home)).stdout.strip()
    path = data_home / "otel-agents" / "traces.db"
    assert stored_span_names(path, run_id) == ["invoke_agent wired", "execute_tool lookup"]
    home = tmp_path / "home"
    env = {"HOME": str(home), "XDG_DATA_HOME": ""}
    run_id = run_python(APP, **env).stdout.strip()
    assert stored_span_names(home / ".local/share/otel-agents/traces.db", run_id)


def test_with_an_endpoint_spans_go_over_otlp_only(tmp_path: Path, collector: Collector) -> None:
    path = tmp_path / "traces.db"
    run_python(
        APP,
        OTEL_AGENTS_STORE_PATH=str(path),
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
        OTEL_METRICS_EXPORTER="none",
    )
    assert sorted(collector.span_names) == ["execute_tool lookup", "invoke_agent wired"]
    assert not path.exists()


def test_always_keeps_a_local_copy_next_to_otlp(tmp_path: Path, collector: Collector) -> None:
    path = tmp_path / "traces.db"
    run_id = run_python(
        APP,
        OTEL_AGENTS_STORE="always",
        OTEL_AGENTS_STORE_PATH=str(path),
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
        OTEL_METRICS_EXPORTER="none",
    ).stdout.strip()
    assert sorted(collector.span_names) == ["execute_tool lookup", "invoke_agent wired"]
    assert stored_span_names(path, run_id) == ["invoke_agent wired", "execute_tool lookup"]


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_AGENTS_STORE": "off"},
        {"OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_TRACES_EXPORTER": "console"},
        {"OTEL_SDK_DISABLED": "true"},
    ],
)
def test_no_store_when_switched_off_or_another_choice_was_made(
    tmp_path: Path, env: dict[str, str]
) -> None:
    path = tmp_path / "traces.db"
    result = run_python(APP, OTEL_AGENTS_STORE_PATH=str(path), **env)
    assert not path.exists()
    if env.get("OTEL_TRACES_EXPORTER") == "console":
        assert '"name": "invoke_agent wired"' in result.stdout


def test_an_application_with_its_own_provider_gets_no_store(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    own_provider = """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        trace.set_tracer_provider(TracerProvider())
    """
    run_python(dedent(own_provider) + dedent(APP), OTEL_AGENTS_STORE_PATH=str(path))
    assert not path.exists()


def test_a_bad_setting_fails_instrument_with_its_name(tmp_path: Path) -> None:
    for env, message in (
        ({"OTEL_AGENTS_STORE": "sometimes"}, "OTEL_AGENTS_STORE='sometimes' is not one of"),
        ({"OTEL_AGENTS_STORE_MAX_MB": "lots"}, "OTEL_AGENTS_STORE_MAX_MB='lots' is not a number"),
        ({"OTEL_AGENTS_STORE_MAX_AGE_DAYS": "-1"}, "must be 0 (no limit) or more"),
    ):
        result = run_python(APP, check=False, OTEL_AGENTS_STORE_PATH=str(tmp_path / "x.db"), **env)
        assert result.returncode == 1
        assert "ConfigError" in result.stderr and message in result.stderr
