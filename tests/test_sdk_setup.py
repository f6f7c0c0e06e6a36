"""How otel-agents meets the OpenTelemetry SDK, each case in a fresh process.

Global providers can be set only once per process, so every scenario runs as a script.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_script(
    tmp_path: Path, code: str, env: dict[str, str] | None = None, argv: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(code))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    clean["PYTHONPATH"] = str(ROOT)
    clean.update(env or {})
    command = [*(argv or [sys.executable]), str(script)]
    result = subprocess.run(
        command, capture_output=True, text=True, env=clean, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    return result


def test_an_application_that_configured_opentelemetry_keeps_its_provider(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        mine = TracerProvider()
        mine.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(mine)

        import otel_agents
        otel_agents.instrument()
        assert trace.get_tracer_provider() is mine

        @otel_agents.tool
        def lookup(x: int) -> int:
            return x

        with otel_agents.agent("app-agent"):
            lookup(1)
        print(sorted(s.name for s in exporter.get_finished_spans()))
        """,
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
    )
    assert result.stdout.strip() == "['execute_tool lookup', 'invoke_agent app-agent']"


def test_without_configuration_we_set_up_the_sdk_from_the_environment(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        """
        import otel_agents
        otel_agents.instrument()
        with otel_agents.agent("configured-by-us"):
            pass
        otel_agents.flush()
        """,
        env={
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_SERVICE_NAME": "vendor-onboarding",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
            "OTEL_TRACES_SAMPLER": "always_on",
        },
    )
    span = json.loads(result.stdout)
    assert span["name"] == "invoke_agent configured-by-us"
    assert span["resource"]["attributes"]["service.name"] == "vendor-onboarding"
    assert span["resource"]["attributes"]["deployment.environment"] == "test"


def test_sampler_from_the_environment_is_honoured(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        """
        import otel_agents
        otel_agents.instrument()
        with otel_agents.agent("sampled-out"):
            pass
        otel_agents.flush()
        """,
        env={"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "always_off"},
    )
    assert result.stdout.strip() == ""


def test_a_down_backend_neither_blocks_nor_grows_memory(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        """
        import threading
        from opentelemetry import trace
        import otel_agents
        otel_agents.instrument()

        @otel_agents.tool
        def step(i: int) -> int:
            return i

        processor = trace.get_tracer_provider()._active_span_processor._span_processors[0]
        exporter = processor._batch_processor._exporter
        export, on_main_thread = exporter.export, []

        def watched_export(*args, **kwargs):
            on_main_thread.append(threading.current_thread() is threading.main_thread())
            return export(*args, **kwargs)

        exporter.export = watched_export
        with otel_agents.agent("busy"):
            for i in range(5000):
                step(i)
        blocked = sum(on_main_thread)  # exports the agent's own thread waited for
        print(f"{blocked} {processor.dropped_spans} {len(processor._batch_processor._queue)}")
        """,
        env={
            # nothing listens on port 9: every export fails
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
            "OTEL_BSP_MAX_QUEUE_SIZE": "100",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "50",
            "OTEL_METRICS_EXPORTER": "none",
        },
    )
    blocked, dropped, queued = result.stdout.split()
    assert blocked == "0", "the agent was blocked by the exporter"
    assert int(dropped) > 4000  # counted, not silently lost
    assert int(queued) <= 100  # bounded memory


@pytest.mark.skipif(
    shutil.which("opentelemetry-instrument") is None
    and not (Path(sys.executable).parent / "opentelemetry-instrument").exists(),
    reason="opentelemetry-instrument is not installed",
)
def test_zero_code_with_opentelemetry_instrument(tmp_path: Path) -> None:
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="opentelemetry_instrumentor")}
    assert "otel_agents" in names, "install the package (pip install -e .) for its entry point"
    launcher = str(Path(sys.executable).parent / "opentelemetry-instrument")
    result = run_script(
        tmp_path,
        """
        import otel_agents
        assert otel_agents.is_instrumented(), "the entry point did not run"
        with otel_agents.agent("zero-code"):
            pass
        otel_agents.flush()
        """,
        env={"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "none"},
        argv=[launcher, sys.executable],
    )
    assert json.loads(result.stdout)["name"] == "invoke_agent zero-code"


def test_import_is_cheap(tmp_path: Path) -> None:
    """Counted, not timed: importing the package loads none of the heavy libraries and only
    a handful of modules."""
    result = run_script(
        tmp_path,
        """
        import sys
        before = set(sys.modules)
        import otel_agents
        loaded = set(sys.modules) - before
        heavy = ("openai", "anthropic", "opentelemetry.sdk", "yaml")
        heavy = [m for m in heavy if m in loaded]
        print(f"{len(loaded)} {heavy}")
        """,
    )
    loaded, heavy = result.stdout.split(" ", 1)
    assert heavy.strip() == "[]"
    assert int(loaded) < 20


def test_instrument_without_a_policy_loads_no_policy_machinery(tmp_path: Path) -> None:
    """Counted, not timed: with no policy configured, `instrument()` imports neither the
    policy rules, loader and approvers nor YAML; a tool that declares a contract still
    gets the real gate, built on its first call."""
    result = run_script(
        tmp_path,
        """
        import sys
        import otel_agents
        otel_agents.instrument()
        heavy = ("yaml", "otel_agents.policy.gate", "otel_agents.policy.loader",
                 "otel_agents.policy.approval", "otel_agents.policy.model",
                 "otel_agents.policy.evaluator", "http.server")
        print([m for m in heavy if m in sys.modules])
        """,
        env={"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"},
    )
    assert result.stdout.strip() == "[]"


def test_a_policy_with_no_http_approver_does_not_import_an_http_server(tmp_path: Path) -> None:
    """Counted, not timed: `http.server` (about 20 ms to import) and `getpass` come only
    with the approvers that use them."""
    policy = Path(__file__).resolve().parent.parent / "examples/policies/vendor-onboarding.yaml"
    result = run_script(
        tmp_path,
        f"""
        import sys
        import otel_agents
        otel_agents.instrument(policy={str(policy)!r})
        print([m for m in ("http.server", "getpass", "http.client") if m in sys.modules])
        """,
        env={"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"},
    )
    assert result.stdout.strip() == "[]"


def test_jaeger_propagation_for_services_still_on_jaeger_client(tmp_path: Path) -> None:
    """Interop with jaeger-client services goes through the `uber-trace-id` header."""
    pytest.importorskip("opentelemetry.propagators.jaeger")
    result = run_script(
        tmp_path,
        """
        from opentelemetry import propagate, trace
        import otel_agents
        otel_agents.instrument()
        with otel_agents.agent("caller"):
            headers = {}
            propagate.inject(headers)
            span_id = trace.get_current_span().get_span_context().span_id
        incoming = {"uber-trace-id": "000000000000000000000000000000ab:00000000000000cd:0:1"}
        ctx = propagate.extract(incoming)
        with otel_agents.agent("callee"):
            pass
        parent = trace.get_current_span(ctx).get_span_context()
        print(headers["uber-trace-id"].split(":")[1] == format(span_id, "016x"),
              format(parent.trace_id, "x"))
        """,
        env={"OTEL_PROPAGATORS": "tracecontext,baggage,jaeger", "OTEL_TRACES_EXPORTER": "none"},
    )
    assert result.stdout.split() == ["True", "ab"]


# -- the LoggerProvider for log-based events -------------------------------------------------

_SHOW_LOGGING = """
    from opentelemetry import _logs
    import otel_agents
    {before}
    otel_agents.instrument()
    provider = _logs.get_logger_provider()
    print(type(provider).__name__, provider is globals().get("mine"))
"""


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # Spans over OTLP: a LoggerProvider is set up beside them.
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, "LoggerProvider False"),
        # The local store: no log exporter, no LoggerProvider (events fall back to the span).
        ({}, "ProxyLoggerProvider False"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_LOGS_EXPORTER": "none"},
            "ProxyLoggerProvider False",
        ),
    ],
)
def test_a_logger_provider_only_where_logs_can_go(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    env = {"OTEL_METRICS_EXPORTER": "none", "OTEL_AGENTS_STORE_PATH": str(tmp_path / "s.db"), **env}
    result = run_script(tmp_path, _SHOW_LOGGING.format(before=""), env=env)
    assert result.stdout.strip() == expected


def test_the_applications_logger_provider_is_kept(tmp_path: Path) -> None:
    before = (
        "from opentelemetry.sdk._logs import LoggerProvider\n"
        "    mine = LoggerProvider()\n"
        "    _logs.set_logger_provider(mine)"
    )
    result = run_script(
        tmp_path,
        _SHOW_LOGGING.format(before=before),
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_METRICS_EXPORTER": "none"},
    )
    assert result.stdout.strip() == "LoggerProvider True"


@pytest.mark.parametrize(
    ("env", "endpoint"),
    [
        # OTLP logs go where the traces go ...
        (
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"},
            "http://c:4318/v1/logs",
        ),
        # ... unless the logs have an endpoint of their own.
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces",
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://l:4318/v1/logs",
            },
            "http://l:4318/v1/logs",
        ),
    ],
)
def test_otlp_logs_follow_the_traces(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], endpoint: str
) -> None:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    from otel_agents.sdk_setup import log_exporter_from_env

    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    exporter = log_exporter_from_env(env)
    assert isinstance(exporter, OTLPLogExporter)
    assert exporter._endpoint == endpoint
    exporter.shutdown()
