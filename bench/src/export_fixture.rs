//! What the export benchmarks (`benches/export.rs`, `bin/callgrind_export.rs`) share: server
//! RPC spans as `OtelHandler` records them (5 attributes, the header, message and trailer
//! events, a link to the connection span), made through the SDK, and an OTLP receiver that
//! decodes every request and counts the spans in it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::KeyValue;
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanId, SpanKind, TraceFlags, TraceId, TraceState, Tracer as _,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_sdk::trace::SdkTracer;

/// The method every span is for.
pub const METHOD: &str = "grpc.examples.echo.Echo/UnaryEcho";

/// Starts and ends `n` server spans with `tracer`; the `i`-th links to a connection span of
/// its own and has peer port `40_000 + i`.
pub fn record(tracer: &SdkTracer, n: u64) {
    for i in 0..n {
        let mut span = tracer
            .span_builder(METHOD)
            .with_kind(SpanKind::Server)
            .with_links(vec![Link::with_context(SpanContext::new(
                TraceId::from(u128::from(i) + 1),
                SpanId::from(i + 1),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ))])
            .start(tracer);
        span.set_attributes([
            KeyValue::new("rpc.system.name", "grpc"),
            KeyValue::new("rpc.method", METHOD),
            KeyValue::new("network.peer.address", "127.0.0.1"),
            KeyValue::new("network.peer.port", 40_000 + i as i64),
            KeyValue::new("rpc.response.status_code", "OK"),
        ]);
        for (name, key) in [
            ("Inbound headers", "metadata-entries"),
            ("Inbound message", "message-size"),
            ("Outbound headers", "metadata-entries"),
            ("Outbound message", "message-size"),
            ("Outbound trailers", "metadata-entries"),
        ] {
            span.add_event(name, vec![KeyValue::new(key, 12)]);
        }
        span.end();
    }
}

/// An OTLP trace receiver that counts the spans it decoded.
pub struct CountingReceiver(pub Arc<AtomicU64>);

#[tonic::async_trait]
impl TraceService for CountingReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}
