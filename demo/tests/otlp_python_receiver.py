"""An OTLP/HTTP receiver that is not ours: Python's standard HTTP server and the
OpenTelemetry project's own Python protobuf bindings (`pip install opentelemetry-proto`).

Prints `listening <port>` first, then one JSON line per request it accepted:
{"path": ..., "content_encoding": ..., "content_type": ..., "spans": [[name, kind], ...]}.
Exits with status 3 when the bindings are not installed, so the caller can tell.
"""

import gzip
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

try:
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
except ImportError as error:
    print(f"missing: {error}", file=sys.stderr, flush=True)
    sys.exit(3)


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        encoding = self.headers.get("content-encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        spans = []
        if self.path == "/v1/traces":
            request = trace_service_pb2.ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    spans.extend([s.name, s.kind] for s in scope_spans.spans)
            reply = trace_service_pb2.ExportTraceServiceResponse()
        elif self.path == "/v1/metrics":
            metrics_service_pb2.ExportMetricsServiceRequest().ParseFromString(body)
            reply = metrics_service_pb2.ExportMetricsServiceResponse()
        else:
            self.send_error(404)
            return
        record = {
            "path": self.path,
            "content_encoding": encoding,
            "content_type": self.headers.get("content-type", ""),
            "spans": spans,
        }
        print(json.dumps(record), flush=True)
        payload = reply.SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Receiver)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
