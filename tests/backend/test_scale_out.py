"""The scale-out layout of collector-config/scale-out/, run for real on loopback ports.

One tier 1 gateway (tier1-gateway.yaml, static resolver) routes by trace id to TWO tier 2
sampling collectors (otel-agents.yaml + tier2-sampling.yaml), which export to one Jaeger v2
on Badger (jaeger-badger.yaml, in a temporary directory). The real otel-agents SDK sends 40
agent runs over OTLP to tier 1: clean runs and anomalous ones (retry loops, errors, policy
denials). A test-only override (tier2-observer.yaml) copies what each tier 2 instance
receives to a sink, so we can count where every span went.

Clean runs are sampled at 0 % here, so every clean run must be dropped and every anomalous
run kept: the outcome is exact, not statistical.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from scale_out_helpers import (
    REPO,
    OtlpSink,
    Program,
    Sample,
    address,
    backend_binaries,
    http_get,
    is_up,
    otlp_sink,
    poll_until,
    scrape,
    started,
    total,
)

RUNS = 40
INSTANCES = ("tier2-a", "tier2-b")
CONFIGS = REPO / "collector-config"
SCALE_OUT = CONFIGS / "scale-out"
ANOMALOUS = {"retry_loop", "error", "deny"}


@dataclass(frozen=True)
class Run:
    kind: str
    trace_id: str
    span_ids: frozenset[str]


@dataclass
class TwoTier:
    runs: list[Run]
    sink: OtlpSink
    tier2_metrics: dict[str, str]  # instance -> Prometheus exporter URL
    tier2_telemetry: dict[str, str]  # instance -> the collector's own metrics URL
    jaeger_api: str
    programs: list[Program]


def jaeger_env(tmp: Path) -> tuple[dict[str, str], str, str]:
    otlp, query = address(), address()
    env = {
        "JAEGER_OTLP_GRPC_ENDPOINT": otlp,
        "JAEGER_OTLP_HTTP_ENDPOINT": address(),
        "JAEGER_QUERY_HTTP_ENDPOINT": query,
        "JAEGER_QUERY_GRPC_ENDPOINT": address(),
        "JAEGER_HEALTH_ENDPOINT": address(),
        "JAEGER_TELEMETRY_HOST": "127.0.0.1",
        "JAEGER_TELEMETRY_PORT": address().split(":")[1],
        "JAEGER_PROMETHEUS_URL": f"http://{address()}",  # the Monitor tab; unused here
        "JAEGER_BADGER_DIRECTORY": str(tmp / "badger"),
        "OTEL_TRACES_EXPORTER": "none",
    }
    return env, otlp, f"http://{query}"


def collector_env(instance: str) -> dict[str, str]:
    return {
        "OTELCOL_INSTANCE": instance,
        "OTELCOL_HEALTH_ENDPOINT": address(),
        "OTELCOL_OTLP_GRPC_ENDPOINT": address(),
        "OTELCOL_OTLP_HTTP_ENDPOINT": address(),
        "OTELCOL_PROMETHEUS_ENDPOINT": address(),
        "OTELCOL_TELEMETRY_HOST": "127.0.0.1",
        "OTELCOL_TELEMETRY_PORT": address().split(":")[1],
    }


def health_url(env: dict[str, str], key: str, path: str = "/") -> str:
    return f"http://{env[key]}{path}"


def tier2_config_flags() -> list[str]:
    """The main config, the tier 2 override, and the test's observer, merged in this order."""
    configs = (
        CONFIGS / "otel-agents.yaml",
        SCALE_OUT / "tier2-sampling.yaml",
        Path(__file__).with_name("tier2-observer.yaml"),
    )
    return [flag for config in configs for flag in ("--config", str(config))]


def send_runs(otlp_endpoint: str) -> list[Run]:
    """RUNS agent runs from the real SDK over OTLP/HTTP; the SDK's own record of their spans.

    Small export batches sent often: the spans of one run reach tier 1 in several requests,
    so routing must put them together, not the SDK.
    """
    workload = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("scale_out_workload.py")),
            "--runs",
            str(RUNS),
        ],
        env={
            "PATH": "/usr/bin:/bin",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
            "OTEL_SERVICE_NAME": "scale-out-test",
            "OTEL_AGENTS_STORE": "off",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "3",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert workload.returncode == 0, workload.stderr[-4000:]
    runs = [
        Run(line["kind"], line["trace_id"], frozenset(line["span_ids"]))
        for line in map(json.loads, workload.stdout.splitlines())
    ]
    assert len(runs) == RUNS
    return runs


def wait_healthy(programs: list[Program], urls: list[str]) -> None:
    names = ", ".join(p.name for p in programs)
    poll_until(lambda: all(is_up(url) for url in urls), f"{names} healthy", watch=programs)


@pytest.fixture(scope="module")
def two_tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoTier]:
    binaries = backend_binaries("collector", "jaeger")
    tmp = tmp_path_factory.mktemp("scale-out")
    with ExitStack() as stack:
        sink = stack.enter_context(otlp_sink())
        jaeger_vars, jaeger_otlp, jaeger_api = jaeger_env(tmp)
        jaeger = stack.enter_context(
            started(
                "jaeger",
                [binaries["JAEGER"], "--config", str(SCALE_OUT / "jaeger-badger.yaml")],
                jaeger_vars,
                tmp,
            )
        )
        # Each tier up before the one that sends to it: a gateway that dials a sampler too
        # early backs off, and late batches would reach the sampler after its decision.
        wait_healthy([jaeger], [health_url(jaeger_vars, "JAEGER_HEALTH_ENDPOINT", "/status")])
        tier2_envs = {}
        tier2 = []
        for instance in INSTANCES:
            env = collector_env(instance) | {
                "JAEGER_OTLP_GRPC_ENDPOINT": jaeger_otlp,
                "TEST_OBSERVER_ENDPOINT": sink.endpoint,
                "OTEL_AGENTS_SAMPLING_PERCENT": "0",
                "OTEL_AGENTS_SAMPLING_DECISION_WAIT": "30s",
                "OTEL_AGENTS_SAMPLING_AFTER_ROOT": "3s",
                "OTEL_AGENTS_METRICS_FLUSH_INTERVAL": "1s",
            }
            command = [binaries["OTELCOL"], *tier2_config_flags()]
            tier2_envs[instance] = env
            tier2.append(stack.enter_context(started(instance, command, env, tmp)))
        wait_healthy(tier2, [health_url(e, "OTELCOL_HEALTH_ENDPOINT") for e in tier2_envs.values()])
        tier1_env = collector_env("tier1") | {
            "OTEL_AGENTS_TIER2_ENDPOINTS": "["
            + ", ".join(tier2_envs[i]["OTELCOL_OTLP_GRPC_ENDPOINT"] for i in INSTANCES)
            + "]",
        }
        tier1 = stack.enter_context(
            started(
                "tier1",
                [binaries["OTELCOL"], "--config", str(SCALE_OUT / "tier1-gateway.yaml")],
                tier1_env,
                tmp,
            )
        )
        programs = [jaeger, *tier2, tier1]
        wait_healthy(programs, [health_url(tier1_env, "OTELCOL_HEALTH_ENDPOINT")])

        runs = send_runs(f"http://{tier1_env['OTELCOL_OTLP_HTTP_ENDPOINT']}")
        yield TwoTier(
            runs=runs,
            sink=sink,
            tier2_metrics={
                i: f"http://{tier2_envs[i]['OTELCOL_PROMETHEUS_ENDPOINT']}/metrics"
                for i in INSTANCES
            },
            tier2_telemetry={
                i: f"http://127.0.0.1:{tier2_envs[i]['OTELCOL_TELEMETRY_PORT']}/metrics"
                for i in INSTANCES
            },
            jaeger_api=jaeger_api,
            programs=programs,
        )


def instance_of_trace(stack: TwoTier) -> dict[str, str]:
    """trace id -> the one tier 2 instance that received it, once every span has arrived."""

    def every_span_arrived() -> dict[str, list[tuple[str, str]]] | None:
        received = stack.sink.snapshot()
        seen = {span for spans in received.values() for _, span in spans}
        expected = {span for run in stack.runs for span in run.span_ids}
        return received if expected <= seen else None

    received = poll_until(every_span_arrived, "every span at tier 2", watch=stack.programs)
    where: dict[str, set[str]] = {}
    for instance, spans in received.items():
        for trace_id, _ in spans:
            where.setdefault(trace_id, set()).add(instance)
    split = {t: sorted(i) for t, i in where.items() if len(i) != 1}
    assert not split, f"traces split over several tier 2 instances: {split}"
    return {trace_id: instances.pop() for trace_id, instances in where.items()}


def test_every_span_of_a_trace_lands_on_one_tier2_instance(two_tier: TwoTier) -> None:
    owner = instance_of_trace(two_tier)
    received = two_tier.sink.snapshot()
    for run in two_tier.runs:
        got = [span for trace_id, span in received[owner[run.trace_id]] if trace_id == run.trace_id]
        assert sorted(got) == sorted(run.span_ids), f"{run.kind} run {run.trace_id}"
    per_instance = Counter(owner[run.trace_id] for run in two_tier.runs)
    spans_per_instance = {i: len(spans) for i, spans in received.items()}
    print(f"\ntraces per instance {dict(per_instance)}, spans per instance {spans_per_instance}")
    assert set(per_instance) == set(INSTANCES), f"one instance got nothing: {per_instance}"


def test_fleet_metrics_count_every_run_once_across_instances(two_tier: TwoTier) -> None:
    owner = instance_of_trace(two_tier)
    expected = {i: (0.0, 0.0, 0.0) for i in INSTANCES}  # runs, spans, retry loops
    for run in two_tier.runs:
        runs, spans, loops = expected[owner[run.trace_id]]
        expected[owner[run.trace_id]] = (
            runs + 1,
            spans + len(run.span_ids),
            loops + (run.kind == "retry_loop"),
        )

    def counted(samples: list[Sample]) -> tuple[float, float, float]:
        return (
            total(samples, "otel_agents_fleet_runs_total"),
            total(samples, "traces_span_metrics_calls_total"),
            total(
                samples,
                "otel_agents_fleet_anomalies_total",
                otel_agents_detector_name="retry_loop",
                otel_agents_detector_source="process",
            ),
        )

    seen: list[object] = [None]

    def each_instance_counted_its_share() -> dict[str, list[Sample]] | None:
        scraped = {i: scrape(url) for i, url in two_tier.tier2_metrics.items()}
        seen[0] = {i: counted(s) for i, s in scraped.items()}
        return scraped if seen[0] == expected else None

    # Each instance counts exactly the runs, spans and retry loops routed to it, sampled or
    # not: the metrics are derived from every span, before sampling.
    scraped = poll_until(
        each_instance_counted_its_share,
        f"per-instance (runs, spans, retry loops) = {expected}",
        watch=two_tier.programs,
        progress=lambda: seen[0],
    )
    for instance, samples in scraped.items():
        labelled = {
            s.labels.get("otelcol_instance")
            for s in samples
            if s.name.startswith(("otel_agents_fleet_", "traces_span_metrics_"))
        }
        assert labelled == {instance}, "tier2-sampling.yaml labels each instance's series"
    # Why the label: the count connector keeps the app's resource, and the exporter turns its
    # service.instance.id (the Python SDK sets one) into `instance`. Those series are keyed by
    # the app alone: two instances counting the same kind would export the very same series.
    anomaly_series = [
        s
        for samples in scraped.values()
        for s in samples
        if s.name == "otel_agents_fleet_anomalies_total"
    ]
    assert anomaly_series
    assert len({s.labels.get("instance") for s in anomaly_series}) == 1
    assert not any("collector_instance_id" in s.labels for s in anomaly_series)


def test_anomalous_runs_are_kept_whole_and_clean_runs_dropped(two_tier: TwoTier) -> None:
    owner = instance_of_trace(two_tier)
    anomalous = [run for run in two_tier.runs if run.kind in ANOMALOUS]
    clean = [run for run in two_tier.runs if run.kind == "clean"]
    assert anomalous and clean

    # Every trace decided: the tail-sampling processor's own counters, per instance.
    seen: list[object] = [None]

    def decided() -> dict[str, tuple[float, float]] | None:
        counts = {}
        for instance, url in two_tier.tier2_telemetry.items():
            samples = scrape(url)
            name = "otelcol_processor_tail_sampling_global_count_traces_sampled_total"
            counts[instance] = (
                total(samples, name, sampled="true"),
                total(samples, name, sampled="false"),
            )
        expected = {
            i: (
                float(sum(owner[r.trace_id] == i for r in anomalous)),
                float(sum(owner[r.trace_id] == i for r in clean)),
            )
            for i in INSTANCES
        }
        seen[0] = counts
        return counts if counts == expected else None

    poll_until(
        decided,
        "a sampling decision for every trace: (kept, dropped) per instance",
        watch=two_tier.programs,
        progress=lambda: seen[0],
    )

    def in_jaeger(run: Run) -> set[str]:
        status, body = http_get(f"{two_tier.jaeger_api}/api/traces/{run.trace_id}")
        if status == 404:
            return set()
        assert status == 200, body[:500]
        return {span["spanID"] for trace in json.loads(body)["data"] for span in trace["spans"]}

    poll_until(
        lambda: all(in_jaeger(run) == run.span_ids for run in anomalous),
        "every anomalous run whole in Jaeger",
        watch=two_tier.programs,
    )
    kept_clean = [run.trace_id for run in clean if in_jaeger(run)]
    assert kept_clean == [], "clean runs sampled at 0 % must all be dropped"
    print(
        f"\nanomalous runs kept whole: {len(anomalous)}/{len(anomalous)} "
        f"({dict(Counter(r.kind for r in anomalous))}); "
        f"clean runs dropped: {len(clean)}/{len(clean)}"
    )


def test_the_main_config_restamps_deltas_before_accumulating_them() -> None:
    """Counts were lost when out-of-order deltas reached delta_to_cumulative (see the
    comment on transform/restamp_deltas); the tier 2 override inherits the fix."""
    main = yaml.safe_load((CONFIGS / "otel-agents.yaml").read_text())
    processors = main["service"]["pipelines"]["metrics"]["processors"]
    assert processors.index("transform/restamp_deltas") < processors.index("delta_to_cumulative")
    override = yaml.safe_load((SCALE_OUT / "tier2-sampling.yaml").read_text())
    assert "service" not in override, "the override must not restate the main pipelines"


@pytest.mark.parametrize(
    ("program", "arguments"),
    [
        ("OTELCOL", ["validate", "--config", SCALE_OUT / "tier1-gateway.yaml"]),
        ("OTELCOL", ["validate", *tier2_config_flags()[:4]]),
        # Structure only: no Elasticsearch here (jaeger validate checks keys, types, URLs).
        ("JAEGER", ["validate", "--config", SCALE_OUT / "jaeger-elasticsearch.yaml"]),
        ("JAEGER", ["validate", "--config", SCALE_OUT / "jaeger-badger.yaml"]),
        ("PROMTOOL", ["check", "config", SCALE_OUT / "prometheus-remote-write.yml"]),
    ],
)
def test_scale_out_configs_are_valid(program: str, arguments: list[object]) -> None:
    binaries = backend_binaries("collector", "jaeger", "prometheus")
    result = subprocess.run(
        [binaries[program], *map(str, arguments)],
        env={"PATH": "/usr/bin:/bin", "OTEL_TRACES_EXPORTER": "none"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
