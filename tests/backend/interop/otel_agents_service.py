"""A service on otel-agents, for the Jaeger propagation interop test.

    OTEL_PROPAGATORS=tracecontext,baggage,jaeger python otel_agents_service.py serve
    OTEL_PROPAGATORS=tracecontext,baggage,jaeger python otel_agents_service.py call URL

`serve` prints its port and answers POST /work with an agent run continuing the caller's
trace (context extracted by the configured propagators); `call` runs an agent whose tool
calls URL with the context injected. Both report the ids of the span this side made.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_agents

EXPORTER = InMemorySpanExporter()


def ids(span: ReadableSpan) -> dict[str, str]:
    own = span.get_span_context()
    assert own is not None
    return {
        "trace_id": f"{own.trace_id:032x}",
        "span_id": f"{own.span_id:016x}",
        "parent_span_id": f"{span.parent.span_id if span.parent else 0:016x}",
    }


def finished(name: str) -> dict[str, str]:
    (span,) = [s for s in EXPORTER.get_finished_spans() if s.name == name]
    return ids(span)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        carrier = {key.lower(): value for key, value in self.headers.items()}
        token = context.attach(propagate.extract(carrier))
        try:
            with otel_agents.agent("billing"):
                pass
        finally:
            context.detach(token)
        reply = json.dumps(finished("invoke_agent billing")).encode()
        EXPORTER.clear()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@otel_agents.tool
def reserve_stock(url: str) -> dict[str, Any]:
    headers: dict[str, str] = {}
    propagate.inject(headers)
    request = urllib.request.Request(url, data=b"{}", headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return {"headers": headers, "callee": json.loads(response.read())}


def call(url: str) -> None:
    with otel_agents.agent("checkout"):
        result = reserve_stock(url)
    print(json.dumps({"caller": finished("execute_tool reserve_stock"), **result}), flush=True)


def main() -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)
    otel_agents.instrument(tracer_provider=provider)
    if sys.argv[1] == "serve":
        server = HTTPServer(("127.0.0.1", 0), Handler)
        print(server.server_address[1], flush=True)
        server.serve_forever()
    else:
        call(sys.argv[2])


if __name__ == "__main__":
    main()
