"""An OTLP/HTTP trace receiver for scripts/trace-test: accepts POST /v1/traces (protobuf, as
swift-otel sends it) and writes one JSON line per span to the file it is given.
Usage: otlp_receiver.py PORT OUT.jsonl (or - to keep nothing)"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse

OUT = sys.argv[2]
LOCK = threading.Lock()


def value(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value(item) for item in any_value.array_value.values]
    if kind == "kvlist_value":
        return {entry.key: value(entry.value) for entry in any_value.kvlist_value.values}
    if kind == "bytes_value":
        return any_value.bytes_value.hex()
    return getattr(any_value, kind) if kind else None


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the exporter keeps its connection

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.rstrip("/") != "/v1/traces":
            return self.answer(404, b"")
        if OUT == "-":  # scripts/bench: take them and throw them away, as cheaply as possible
            return self.answer(200, b"")
        request = ExportTraceServiceRequest.FromString(body)
        with LOCK, open(OUT, "a") as out:
            for resource_spans in request.resource_spans:
                resource = {entry.key: value(entry.value) for entry in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        out.write(json.dumps({
                            "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(), "name": span.name, "kind": span.kind,
                            "status_code": span.status.code, "service": resource.get("service.name"),
                            "resource": resource, "attributes": {entry.key: value(entry.value) for entry in span.attributes},
                            "events": [{"name": event.name, "attributes": {entry.key: value(entry.value) for entry in event.attributes}}
                                       for event in span.events],
                            "links": [{"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex()} for link in span.links],
                        }) + "\n")
        self.answer(200, ExportTraceServiceResponse().SerializeToString())

    def answer(self, status, payload):
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")  # a 200 without one counts as failed
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()
