//! OTLP protobuf straight from `SpanData`: no `opentelemetry-proto` structs, no `String` per
//! key or value, each length written once.
//!
//! The bytes are those prost writes for the message `opentelemetry-proto`'s conversion
//! builds from the same spans (`tests/otlp_encode.rs` checks it for generated spans).

mod span;
mod value;
mod wire;

use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;

use value::{put_resource_body, put_scope_body};
use wire::{close, len_key, open, put_bytes_nonempty};

/// `ExportTraceServiceRequest.resource_spans`.
const RESOURCE_SPANS: u8 = len_key(1);
/// `ResourceSpans` fields.
const RESOURCE: u8 = len_key(1);
const SCOPE_SPANS: u8 = len_key(2);
const RESOURCE_SCHEMA_URL: u8 = len_key(3);
/// `ScopeSpans` fields.
const SCOPE: u8 = len_key(1);
const SPANS: u8 = len_key(2);
const SCOPE_SCHEMA_URL: u8 = len_key(3);

/// Length holes (see `wire::open`): a batch's `ResourceSpans` and `ScopeSpans` under 2 MiB,
/// a span under 16 KiB, a resource and a scope under 16 KiB and 128 bytes.
const BATCH_HOLE: usize = 3;
const SPAN_HOLE: usize = 2;
const RESOURCE_HOLE: usize = 2;
const SCOPE_HOLE: usize = 1;

/// Appends to `out` the protobuf bytes of one
/// `opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest` carrying `spans`.
///
/// The request is the one `opentelemetry-otlp` sends for the same batch: one
/// `ResourceSpans` for `resource` (its attributes and schema URL), and in it one
/// `ScopeSpans` per instrumentation scope, in the order the scopes first appear in `spans`
/// (scopes equal as `InstrumentationScope`s are one), each span under its scope in batch
/// order. Nothing is converted or copied on the way: keys, values and names are written
/// from where the spans hold them, so the cost is close to writing the bytes.
///
/// The spans are borrowed; dropping them is the caller's (an exporter can hand the batch
/// back to the thread that made it, or free it after the request is sent).
///
/// # Examples
///
/// ```
/// use opentelemetry::trace::{Tracer, TracerProvider};
/// use opentelemetry_sdk::Resource;
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
/// use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
/// use prost::Message;
///
/// let exporter = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder()
///     .with_simple_exporter(exporter.clone())
///     .build();
/// provider.tracer("app").in_span("work", |_| {});
/// let spans = exporter.get_finished_spans().unwrap();
///
/// let resource = Resource::builder().with_service_name("demo").build();
/// let mut body = Vec::new();
/// otel_stats::export::encode_export_trace_request(&resource, &spans, &mut body);
///
/// // Any OTLP receiver decodes it: here, the official protobufs.
/// let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
/// let scope_spans = &request.resource_spans[0].scope_spans[0];
/// assert_eq!(scope_spans.scope.as_ref().unwrap().name, "app");
/// assert_eq!(scope_spans.spans[0].name, "work");
/// ```
pub fn encode_export_trace_request(resource: &Resource, spans: &[SpanData], out: &mut Vec<u8>) {
    let (scopes, scope_of) = group_by_scope(spans);
    let resource_spans = open(out, RESOURCE_SPANS, BATCH_HOLE);
    let field = open(out, RESOURCE, RESOURCE_HOLE);
    put_resource_body(out, resource);
    close(out, field);
    for (index, scope) in scopes.iter().enumerate() {
        let scope_spans = open(out, SCOPE_SPANS, BATCH_HOLE);
        let field = open(out, SCOPE, SCOPE_HOLE);
        put_scope_body(out, scope);
        close(out, field);
        let in_scope = spans
            .iter()
            .zip(&scope_of)
            .filter(|&(_, &of)| of == index)
            .map(|(span, _)| span);
        for span in in_scope {
            let field = open(out, SPANS, SPAN_HOLE);
            encode_span(span, out);
            close(out, field);
        }
        let schema_url = scope.schema_url().unwrap_or("");
        put_bytes_nonempty(out, SCOPE_SCHEMA_URL, schema_url.as_bytes());
        close(out, scope_spans);
    }
    let schema_url = resource.schema_url().unwrap_or("");
    put_bytes_nonempty(out, RESOURCE_SCHEMA_URL, schema_url.as_bytes());
    close(out, resource_spans);
}

/// Appends to `out` the protobuf bytes of one `opentelemetry.proto.trace.v1.Span`: the
/// message's fields, without a field key or length in front.
///
/// This is the building block for encoding each span once, when it ends: keep the bytes,
/// drop the `SpanData` where it was made, and frame the span later as a `ScopeSpans.spans`
/// field (key `0x12`, then the length as a varint, then these bytes). The fields are the
/// ones [`encode_export_trace_request`] writes for the span.
///
/// # Examples
///
/// ```
/// use opentelemetry::trace::{Tracer, TracerProvider};
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
/// use opentelemetry_proto::tonic::trace::v1::Span;
/// use prost::Message;
///
/// let exporter = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder()
///     .with_simple_exporter(exporter.clone())
///     .build();
/// provider.tracer("app").in_span("work", |_| {});
/// let span = &exporter.get_finished_spans().unwrap()[0];
///
/// let mut bytes = Vec::new();
/// otel_stats::export::encode_span(span, &mut bytes);
/// let decoded = Span::decode(bytes.as_slice()).unwrap();
/// assert_eq!(decoded.name, "work");
/// assert_eq!(decoded.span_id, span.span_context.span_id().to_bytes());
/// ```
pub fn encode_span(span: &SpanData, out: &mut Vec<u8>) {
    span::put_span_body(out, span);
}

/// The distinct scopes of `spans` in first-seen order, and each span's index among them.
fn group_by_scope(spans: &[SpanData]) -> (Vec<&InstrumentationScope>, Vec<usize>) {
    let mut scopes: Vec<&InstrumentationScope> = Vec::new();
    let mut scope_of = Vec::with_capacity(spans.len());
    // Spans of one batch mostly share their scope: try the previous span's first.
    let mut last = 0;
    for span in spans {
        let scope = &span.instrumentation_scope;
        let index = if scopes.get(last).is_some_and(|seen| same_scope(seen, scope)) {
            last
        } else if let Some(index) = scopes.iter().position(|seen| same_scope(seen, scope)) {
            index
        } else {
            scopes.push(scope);
            scopes.len() - 1
        };
        scope_of.push(index);
        last = index;
    }
    (scopes, scope_of)
}

/// `InstrumentationScope` equality (the key the standard grouping hashes on), without its
/// allocations when the attributes are in the same order.
fn same_scope(a: &InstrumentationScope, b: &InstrumentationScope) -> bool {
    a.name() == b.name()
        && a.version() == b.version()
        && a.schema_url() == b.schema_url()
        && (a.attributes().eq(b.attributes()) || a == b)
}
