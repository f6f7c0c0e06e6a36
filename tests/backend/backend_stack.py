"""The real backend on loopback ports: our collector build, Jaeger v2, Prometheus with our
rules, Alertmanager, and a webhook receiver that records what Alertmanager delivers.

The configs are the repository's own (collector-config/); only addresses, intervals and
the receiver URL are changed for the test, through the environment variables the configs
read or by editing a copy of the YAML.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "collector-config"
T = TypeVar("T")


def backend_programs() -> dict[str, str]:
    """Build (first time) or find (cached) the programs; see scripts/backend/build.sh."""
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "backend" / "build.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"scripts/backend/build.sh failed:\n{result.stderr[-4000:]}")
    programs = dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)
    missing = [name for name, path in programs.items() if not path or not Path(path).exists()]
    if missing:
        raise RuntimeError(f"scripts/backend/build.sh did not provide {missing}")
    return programs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body[:1] in (b"{", b"[") else body.decode()


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 120.0) -> T:
    """Poll until `probe` returns something truthy; fail with `what` after `timeout` s.

    A long ceiling, never a fixed sleep: on a busy machine things take what they take.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
            last_error = exc
        time.sleep(0.5)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error})"
    )


@dataclass
class Program:
    """A backend program started by the test; stopped (and its log kept) at the end."""

    name: str
    argv: list[str]
    env: Mapping[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.argv,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""


class WebhookReceiver:
    """Alertmanager's webhook target: keeps every alert it is sent."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                payload = json.loads(self.rfile.read(length) or b"{}")
                with receiver._lock:
                    receiver.alerts.extend(payload.get("alerts", []))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alerts"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.alerts)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class BackendStack:
    """Collector -> Jaeger, collector -> Prometheus (rules) -> Alertmanager -> webhook."""

    programs: Mapping[str, str]
    workdir: Path
    sampling_percent: int = 0
    ports: dict[str, int] = field(default_factory=dict)
    running: list[Program] = field(default_factory=list)
    webhook: WebhookReceiver | None = None

    # -- addresses -----------------------------------------------------------------------

    def url(self, port_name: str) -> str:
        return f"http://127.0.0.1:{self.ports[port_name]}"

    @property
    def otlp_http_endpoint(self) -> str:
        return self.url("collector_otlp_http")

    @property
    def jaeger_url(self) -> str:
        return self.url("jaeger_query")

    @property
    def prometheus_url(self) -> str:
        return self.url("prometheus")

    @property
    def alertmanager_url(self) -> str:
        return self.url("alertmanager")

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        names = (
            "jaeger_otlp_grpc", "jaeger_otlp_http", "jaeger_query", "jaeger_query_grpc",
            "jaeger_health", "collector_otlp_grpc", "collector_otlp_http", "collector_health",
            "collector_prometheus", "collector_telemetry", "prometheus", "alertmanager",
        )  # fmt: skip
        self.ports = {name: free_port() for name in names}
        self.webhook = WebhookReceiver()
        self._start_jaeger()
        self._start_collector()
        self._start_alertmanager()
        self._start_prometheus()

    def stop(self) -> None:
        for program in reversed(self.running):
            program.stop()
        if self.webhook is not None:
            self.webhook.close()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.log_tail()}" for p in self.running)

    def _launch(self, name: str, argv: list[str], env: Mapping[str, str], health: str) -> None:
        program = Program(name, argv, env, self.workdir / f"{name}.log")
        program.start()
        self.running.append(program)

        def healthy() -> bool:
            if not program.alive():
                raise AssertionError(f"{name} exited:\n{program.log_tail()}")
            http_get(health, timeout=2)
            return True

        wait_for(f"{name} to be healthy at {health}", healthy, timeout=90)

    def _start_jaeger(self) -> None:
        p = self.ports
        env = {
            "JAEGER_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{p['jaeger_otlp_grpc']}",
            "JAEGER_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{p['jaeger_otlp_http']}",
            "JAEGER_QUERY_HTTP_ENDPOINT": f"127.0.0.1:{p['jaeger_query']}",
            "JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{p['jaeger_query_grpc']}",
            "JAEGER_HEALTH_ENDPOINT": f"127.0.0.1:{p['jaeger_health']}",
            "JAEGER_PROMETHEUS_URL": f"http://127.0.0.1:{p['prometheus']}",
            "OTEL_TRACES_EXPORTER": "none",  # Jaeger would trace itself to localhost:4317
        }
        argv = [self.programs["JAEGER"], "--config", str(CONFIG / "jaeger" / "jaeger.yaml")]
        self._launch("jaeger", argv, env, f"http://127.0.0.1:{p['jaeger_health']}/status")

    def collector_env(self) -> dict[str, str]:
        p = self.ports
        return {
            "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{p['collector_health']}",
            "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{p['collector_otlp_grpc']}",
            "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{p['collector_otlp_http']}",
            "OTELCOL_PROMETHEUS_ENDPOINT": f"127.0.0.1:{p['collector_prometheus']}",
            "OTELCOL_TELEMETRY_HOST": "127.0.0.1",
            "OTELCOL_TELEMETRY_PORT": str(p["collector_telemetry"]),
            "JAEGER_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{p['jaeger_otlp_grpc']}",
            # Short windows so that a test sees metrics and sampling decisions in seconds.
            "OTEL_AGENTS_METRICS_FLUSH_INTERVAL": "1s",
            "OTEL_AGENTS_SAMPLING_DECISION_WAIT": "20s",
            "OTEL_AGENTS_SAMPLING_AFTER_ROOT": "2s",
            "OTEL_AGENTS_SAMPLING_PERCENT": str(self.sampling_percent),
            # The scripted runaway run makes 7 model calls; every other run makes at most 4
            # (the demo's root already carries another fleet finding).
            "OTEL_AGENTS_FLEET_RUN_MAX_LLM_CALLS": "5",
        }

    def _start_collector(self) -> None:
        argv = [self.programs["OTELCOL"], "--config", str(CONFIG / "otel-agents.yaml")]
        health = f"http://127.0.0.1:{self.ports['collector_health']}/"
        self._launch("collector", argv, self.collector_env(), health)

    def _start_alertmanager(self) -> None:
        assert self.webhook is not None
        config = yaml.safe_load((CONFIG / "alertmanager" / "alertmanager.yml").read_text())
        for receiver in config["receivers"]:
            for webhook in receiver.get("webhook_configs", []):
                webhook["url"] = self.webhook.url
        config["route"]["group_wait"] = "1s"
        config["route"]["group_interval"] = "2s"
        path = self.workdir / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config))
        port = self.ports["alertmanager"]
        argv = [
            self.programs["ALERTMANAGER"],
            f"--config.file={path}",
            f"--storage.path={self.workdir / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ]
        self._launch("alertmanager", argv, {}, f"http://127.0.0.1:{port}/-/ready")

    def _start_prometheus(self) -> None:
        p = self.ports
        config = yaml.safe_load((CONFIG / "prometheus" / "prometheus.yml").read_text())
        config["global"]["scrape_interval"] = "1s"
        config["global"]["evaluation_interval"] = "1s"
        targets = {
            "otel-collector": f"127.0.0.1:{p['collector_prometheus']}",
            "otel-collector-self": f"127.0.0.1:{p['collector_telemetry']}",
        }
        for job in config["scrape_configs"]:
            job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
        alerting = config["alerting"]["alertmanagers"][0]
        alerting["static_configs"] = [{"targets": [f"127.0.0.1:{p['alertmanager']}"]}]
        rules = self.workdir / "rules"
        shutil.copytree(CONFIG / "prometheus" / "rules", rules, dirs_exist_ok=True)
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        argv = [
            self.programs["PROMETHEUS"],
            f"--config.file={path}",
            f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{p['prometheus']}",
            "--enable-feature=exemplar-storage",
        ]
        self._launch("prometheus", argv, {}, f"http://127.0.0.1:{p['prometheus']}/-/ready")

    # -- queries -------------------------------------------------------------------------

    def promql(self, query: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        answer = http_get(url)
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def firing_alerts(self) -> list[dict[str, Any]]:
        answer = http_get(f"{self.prometheus_url}/api/v1/alerts")
        return [a for a in answer["data"]["alerts"] if a["state"] == "firing"]

    def jaeger_trace(self, trace_id: str) -> dict[str, Any] | None:
        try:
            answer = http_get(f"{self.jaeger_url}/api/traces/{trace_id}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        data = answer.get("data") or []
        return data[0] if data else None

    def jaeger_search(
        self, service: str, tags: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        query = {"service": service, "lookback": "1h", "limit": "500"}
        if tags:
            query["tags"] = json.dumps(dict(tags))
        answer = http_get(f"{self.jaeger_url}/api/traces?" + urllib.parse.urlencode(query))
        return list(answer.get("data") or [])


def span_tags(span: Mapping[str, Any]) -> dict[str, Any]:
    """A Jaeger API span's tags as a dict."""
    return {tag["key"]: tag["value"] for tag in span.get("tags", [])}


def spans_by_id(trace: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {span["spanID"]: span for span in trace["spans"]}


def parent_id(span: Mapping[str, Any]) -> str | None:
    for ref in span.get("references", []):
        if ref["refType"] == "CHILD_OF":
            return str(ref["spanID"])
    return None


def iter_links(span: Mapping[str, Any]) -> Iterator[str]:
    for ref in span.get("references", []):
        if ref["refType"] == "FOLLOWS_FROM":
            yield str(ref["spanID"])
