"""OTLP over gRPC: `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` sends spans and metrics to a real
gRPC OTLP receiver (the collector's protocol, served here by grpcio with the OTLP protos).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from test_sdk_setup import run_script


class _Receiver(
    trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer
):
    def __init__(self) -> None:
        self.traces: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.metrics: list[metrics_service_pb2.ExportMetricsServiceRequest] = []
        self.lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:  # the gRPC method name
        with self.lock:
            if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
                self.traces.append(request)
                return trace_service_pb2.ExportTraceServiceResponse()
            self.metrics.append(request)
            return metrics_service_pb2.ExportMetricsServiceResponse()


@pytest.fixture
def receiver() -> Iterator[tuple[_Receiver, int]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = _Receiver()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, port
    finally:
        server.stop(grace=None)


def test_spans_and_metrics_over_grpc(tmp_path: Path, receiver: tuple[_Receiver, int]) -> None:
    servicer, port = receiver
    run_script(
        tmp_path,
        """
        import otel_agents
        otel_agents.instrument()

        @otel_agents.tool
        def lookup(vendor_id: str) -> str:
            return "ok"

        with otel_agents.agent("grpc-agent"):
            lookup("v-1")
        otel_agents.flush()
        """,
        env={
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_SERVICE_NAME": "grpc-app",
            "OTEL_AGENTS_STORE": "off",
        },
    )
    spans = [
        (span.name, resource.resource)
        for request in servicer.traces
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert sorted(name for name, _ in spans) == ["execute_tool lookup", "invoke_agent grpc-agent"]
    service_names = {
        attribute.value.string_value
        for _, resource in spans
        for attribute in resource.attributes
        if attribute.key == "service.name"
    }
    assert service_names == {"grpc-app"}
    metric_names = {
        metric.name
        for request in servicer.metrics
        for resource in request.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert {"gen_ai.invoke_agent.duration", "gen_ai.execute_tool.duration"} <= metric_names
