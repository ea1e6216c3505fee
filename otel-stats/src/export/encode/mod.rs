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
use wire::{Open, close, len_key, open, put_bytes_nonempty};

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
    let resource_spans = open_resource_spans(out, resource);
    for (index, scope) in scopes.iter().enumerate() {
        let scope_spans = open_scope_spans(out, scope);
        let in_scope = spans
            .iter()
            .zip(&scope_of)
            .filter(|&(_, &of)| of == index)
            .map(|(span, _)| span);
        for span in in_scope {
            put_framed_span(out, span);
        }
        close_scope_spans(out, scope, scope_spans);
    }
    close_resource_spans(out, resource, resource_spans);
}

/// Appends to `out` one span as a `ScopeSpans.spans` field (key, length, body): the bytes
/// [`encode_export_trace_request`] writes for it inside its scope. Spans framed this way,
/// one after the other, are a scope's spans for [`encode_request_from_framed`].
pub(crate) fn put_framed_span(out: &mut Vec<u8>, span: &SpanData) {
    let field = open(out, SPANS, SPAN_HOLE);
    encode_span(span, out);
    close(out, field);
}

/// Appends to `out` the protobuf bytes of one `ExportTraceServiceRequest` for `resource`,
/// each scope with its spans already framed by [`put_framed_span`]: the bytes
/// [`encode_export_trace_request`] writes for the same spans when `scopes` are distinct and
/// in the order they first appear, each scope's spans in batch order.
pub(crate) fn encode_request_from_framed<'a>(
    resource: &Resource,
    scopes: impl IntoIterator<Item = (&'a InstrumentationScope, &'a [u8])>,
    out: &mut Vec<u8>,
) {
    let resource_spans = open_resource_spans(out, resource);
    for (scope, framed_spans) in scopes {
        let scope_spans = open_scope_spans(out, scope);
        out.extend_from_slice(framed_spans);
        close_scope_spans(out, scope, scope_spans);
    }
    close_resource_spans(out, resource, resource_spans);
}

/// Opens the request's one `ResourceSpans` and writes its resource.
fn open_resource_spans(out: &mut Vec<u8>, resource: &Resource) -> Open {
    let resource_spans = open(out, RESOURCE_SPANS, BATCH_HOLE);
    let field = open(out, RESOURCE, RESOURCE_HOLE);
    put_resource_body(out, resource);
    close(out, field);
    resource_spans
}

/// Writes the resource's schema URL and closes its `ResourceSpans`.
fn close_resource_spans(out: &mut Vec<u8>, resource: &Resource, resource_spans: Open) {
    let schema_url = resource.schema_url().unwrap_or("");
    put_bytes_nonempty(out, RESOURCE_SCHEMA_URL, schema_url.as_bytes());
    close(out, resource_spans);
}

/// Opens a `ScopeSpans` and writes its scope; its spans come next.
fn open_scope_spans(out: &mut Vec<u8>, scope: &InstrumentationScope) -> Open {
    let scope_spans = open(out, SCOPE_SPANS, BATCH_HOLE);
    let field = open(out, SCOPE, SCOPE_HOLE);
    put_scope_body(out, scope);
    close(out, field);
    scope_spans
}

/// Writes the scope's schema URL and closes its `ScopeSpans`.
fn close_scope_spans(out: &mut Vec<u8>, scope: &InstrumentationScope, scope_spans: Open) {
    let schema_url = scope.schema_url().unwrap_or("");
    put_bytes_nonempty(out, SCOPE_SCHEMA_URL, schema_url.as_bytes());
    close(out, scope_spans);
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
pub(crate) fn same_scope(a: &InstrumentationScope, b: &InstrumentationScope) -> bool {
    a.name() == b.name()
        && a.version() == b.version()
        && a.schema_url() == b.schema_url()
        && (a.attributes().eq(b.attributes()) || a == b)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::{Duration, UNIX_EPOCH};

    use opentelemetry::KeyValue;
    use opentelemetry::trace::{
        Event, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    use super::*;

    fn scope(name: &'static str, attributes: Vec<KeyValue>) -> InstrumentationScope {
        InstrumentationScope::builder(name)
            .with_version("1.0")
            .with_schema_url("https://schema")
            .with_attributes(attributes)
            .build()
    }

    fn span(i: u64, scope: &InstrumentationScope, attribute_len: usize) -> SpanData {
        let mut events = SpanEvents::default();
        events.events = vec![Event::new(
            "Outbound message",
            UNIX_EPOCH + Duration::from_nanos(i + 5),
            vec![KeyValue::new("message-size", i as i64)],
            0,
        )];
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(u128::from(i) + 1),
                SpanId::from(i + 1),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Server,
            name: Cow::Owned(format!("span-{i}")),
            start_time: UNIX_EPOCH + Duration::from_nanos(i),
            end_time: UNIX_EPOCH + Duration::from_nanos(i + 10),
            attributes: vec![KeyValue::new("a", "x".repeat(attribute_len))],
            dropped_attributes_count: 0,
            events,
            links: SpanLinks::default(),
            status: Status::Ok,
            instrumentation_scope: scope.clone(),
        }
    }

    /// What the direct span processor does: frame each span, append it to its scope's
    /// buffer (scopes in first-seen order), then assemble.
    fn from_framed(resource: &Resource, spans: &[SpanData]) -> Vec<u8> {
        let mut buffers: Vec<(&InstrumentationScope, Vec<u8>)> = Vec::new();
        for span in spans {
            let scope = &span.instrumentation_scope;
            let index = match buffers.iter().position(|(s, _)| same_scope(s, scope)) {
                Some(index) => index,
                None => {
                    buffers.push((scope, Vec::new()));
                    buffers.len() - 1
                }
            };
            put_framed_span(&mut buffers[index].1, span);
        }
        let mut out = b"prefix".to_vec();
        encode_request_from_framed(
            resource,
            buffers.iter().map(|(s, b)| (*s, b.as_slice())),
            &mut out,
        );
        out.split_off(6)
    }

    #[test]
    fn framed_spans_assemble_into_the_bytes_of_the_whole_batch() {
        let resource = Resource::builder_empty()
            .with_schema_url([KeyValue::new("service.name", "s")], "https://r")
            .build();
        let a = scope("a", vec![KeyValue::new("k", 1), KeyValue::new("l", 2)]);
        // Equal to `a` as a scope: one `ScopeSpans` for both.
        let a_reversed = scope("a", vec![KeyValue::new("l", 2), KeyValue::new("k", 1)]);
        let b = scope("b", vec![]);
        for (count, attribute_len) in [(0, 0), (1, 3), (7, 10), (300, 40), (3, 20_000)] {
            let spans: Vec<SpanData> = (0..count)
                .map(|i| {
                    let scope = [&a, &b, &a_reversed][i as usize % 3];
                    span(i, scope, attribute_len)
                })
                .collect();
            let mut whole = Vec::new();
            encode_export_trace_request(&resource, &spans, &mut whole);
            assert_eq!(from_framed(&resource, &spans), whole, "{count} spans");
        }
    }
}
