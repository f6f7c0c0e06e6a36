"""A service on the archived `jaeger-client` (OpenTracing), for the propagation interop test.

Runs in its own Python 3.11 virtualenv (jaeger-client is not our dependency):
    python jaeger_client_service.py serve        # prints its port, answers POST /work
    python jaeger_client_service.py call URL     # a span, injected as uber-trace-id, POSTed

Both print or answer JSON with the ids of the span this side made: trace_id (32 hex),
span_id and parent_span_id (16 hex). Spans are reported to memory only.
"""

import json
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

from jaeger_client import ConstSampler, Tracer
from jaeger_client.reporter import InMemoryReporter
from opentracing.propagation import Format

TRACER = Tracer(
    service_name="legacy-inventory", reporter=InMemoryReporter(), sampler=ConstSampler(True)
)


def ids(span):
    return {
        "trace_id": f"{span.trace_id:032x}",
        "span_id": f"{span.span_id:016x}",
        "parent_span_id": f"{span.parent_id or 0:016x}",
    }


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        parent = TRACER.extract(
            Format.HTTP_HEADERS, {k.lower(): v for k, v in self.headers.items()}
        )
        with TRACER.start_span("reserve_stock", child_of=parent) as span:
            reply = json.dumps(ids(span)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format, *args):
        pass


def serve():
    server = HTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def call(url):
    with TRACER.start_span("checkout") as span:
        headers = {}
        TRACER.inject(span.context, Format.HTTP_HEADERS, headers)
        request = urllib.request.Request(url, data=b"{}", headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            callee = json.loads(response.read())
        print(json.dumps({"caller": ids(span), "headers": headers, "callee": callee}), flush=True)


if __name__ == "__main__":
    serve() if sys.argv[1] == "serve" else call(sys.argv[2])
