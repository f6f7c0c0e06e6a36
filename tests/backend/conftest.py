"""The backend end to end: the real collector (built from collector-config/builder.yaml),
Jaeger v2, Prometheus with our rules and Alertmanager, on loopback ports, fed by real
instrumented programs (the demo and scripted fleet runs) over OTLP.

The programs are built or found by scripts/backend/build.sh (cached outside the
repository). Set OTEL_AGENTS_SKIP_BACKEND=1 to leave these tests out on a machine that
cannot build them; CI never sets it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from backend_stack import REPO, BackendStack, backend_programs, wait_for

from otel_agents.store.reader import RunFilter, RunSummary, Store

CLEAN_RUNS = 8
PROGRAMS = Path(__file__).parent / "programs"


@pytest.fixture(scope="session")
def programs() -> dict[str, str]:
    if os.environ.get("OTEL_AGENTS_SKIP_BACKEND") == "1":
        pytest.skip("OTEL_AGENTS_SKIP_BACKEND=1: the backend tests are switched off")
    return backend_programs()


@dataclass
class Workload:
    """What the programs sent, as their local stores recorded it."""

    stores: dict[str, Path]  # service name -> store file
    started: float
    finished: float
    demo_output: str = ""
    runs: dict[str, list[RunSummary]] = field(default_factory=dict)
    spans: dict[str, int] = field(default_factory=dict)  # service -> spans of its runs

    def load(self) -> None:
        for service, path in self.stores.items():
            with Store.open(path) as store:
                self.runs[service] = store.runs(RunFilter(limit=None))
                self.spans[service] = sum(
                    len(store.run_spans(r.run_id)) for r in self.runs[service]
                )

    def store(self, service: str) -> Store:
        return Store.open(self.stores[service])


@dataclass
class Fleet:
    stack: BackendStack
    workload: Workload


def _run_program(argv: list[str], service: str, store: Path, stack: BackendStack) -> str:
    env = {
        **os.environ,
        "OTEL_SERVICE_NAME": service,
        "OTEL_EXPORTER_OTLP_ENDPOINT": stack.otlp_http_endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTEL_AGENTS_STORE": "always",
        "OTEL_AGENTS_STORE_PATH": str(store),
        "PYTHONPATH": str(REPO),
    }
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def fleet(programs: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    workdir = tmp_path_factory.mktemp("backend")
    stack = BackendStack(programs, workdir, sampling_percent=0)
    try:
        stack.start()
        stores = {
            "fleet-clean": workdir / "clean.db",
            "fleet-anomalous": workdir / "anomalous.db",
            "otel-agents-demo": workdir / "demo.db",
        }
        started = time.monotonic()
        fleet_runs = [sys.executable, str(PROGRAMS / "fleet_runs.py")]
        # Clean runs first: by the time the later runs' alerts fire, rules have long been
        # evaluated over the clean ones.
        _run_program(
            [*fleet_runs, "clean", str(CLEAN_RUNS)], "fleet-clean", stores["fleet-clean"], stack
        )
        _run_program(
            [*fleet_runs, "anomalous"], "fleet-anomalous", stores["fleet-anomalous"], stack
        )
        demo = [
            sys.executable,
            "-m",
            "otel_agents.cli",
            "demo",
            "--mcp",  # invoicing over an MCP server in the process: counted once
            "--store",
            str(stores["otel-agents-demo"]),
            "--color",
            "never",
        ]
        said = _run_program(demo, "otel-agents-demo", stores["otel-agents-demo"], stack)
        workload = Workload(stores, started, time.monotonic(), demo_output=said)
        workload.load()
        yield Fleet(stack, workload)
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def live_prometheus_url(fleet: Fleet) -> str:
    """A Prometheus that has scraped the collector after every workload run finished."""
    expected = sum(len(runs) for runs in fleet.workload.runs.values())

    def all_runs_scraped() -> bool:
        runs = fleet.stack.promql("sum(otel_agents_fleet_runs_total)")
        # Span metrics are flushed on their own interval, after the fleet metrics: wait for
        # every span of every service to be counted.
        spans = fleet.stack.promql("sum by (service_name) (traces_span_metrics_calls_total)")
        counted = {r["metric"]["service_name"]: float(r["value"][1]) for r in spans}
        return (
            bool(runs)
            and float(runs[0]["value"][1]) >= expected
            and all(counted.get(service, 0) >= n for service, n in fleet.workload.spans.items())
        )

    wait_for(f"Prometheus to have all {expected} runs", all_runs_scraped, timeout=180)
    return fleet.stack.prometheus_url


@pytest.fixture(scope="session")
def live_jaeger_url(fleet: Fleet) -> str:
    """The Jaeger query API holding the demo's run (kept whole: it is anomalous)."""
    (demo,) = fleet.workload.runs["otel-agents-demo"]
    wait_for("the demo's trace in Jaeger", lambda: fleet.stack.jaeger_trace(demo.trace_id), 180)
    return fleet.stack.jaeger_url
