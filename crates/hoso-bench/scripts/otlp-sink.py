"""An OTLP/gRPC trace sink that accepts every export and counts the spans, to measure what traces
cost the server (BENCHMARKS.md, "Where the service's CPU goes"). Not a collector: it keeps nothing.
Usage: pip install grpcio opentelemetry-proto; python3 crates/hoso-bench/scripts/otlp-sink.py 127.0.0.1:4317
then start `hoso serve` with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317. Ctrl-C or SIGTERM
prints the count."""
import signal
import sys
import threading
from concurrent import futures
import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

class Sink(trace_service_pb2_grpc.TraceServiceServicer):
    spans = 0
    def Export(self, request, context):
        for r in request.resource_spans:
            for s in r.scope_spans:
                Sink.spans += len(s.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Sink(), server)
server.add_insecure_port(sys.argv[1])
stop = threading.Event()
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda *_: stop.set())
server.start()
while not stop.wait(0.5):
    pass
server.stop(0)
print(f"spans received: {Sink.spans}", flush=True)
