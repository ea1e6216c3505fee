//! The direct OTLP encoder against the standard path: for generated batches of `SpanData`
//! (every attribute type, events, links, status, dropped counts, several scopes, a resource
//! with a schema URL), `encode_export_trace_request` writes bytes that decode, with the
//! official protobufs, into exactly the request `opentelemetry-proto`'s conversion builds;
//! they are even the bytes prost writes for it.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use otel_stats::export::{encode_export_trace_request, encode_span};
use proptest::collection::vec;
use proptest::prelude::*;
use prost::Message;

/// What the standard exporter sends for `spans`.
fn standard_request(resource: &Resource, spans: &[SpanData]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(
            spans.to_vec(),
            &ResourceAttributesWithSchema::from(resource),
        ),
    }
}

/// Short strings, empty ones, non-ASCII ones, and some past 127 bytes so that lengths take
/// two bytes and the encoder moves a body.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z._]{0,12}",
        1 => "\\PC{0,6}",
        1 => "[a-z]{120,300}",
    ]
}

fn string_value() -> impl Strategy<Value = StringValue> {
    text().prop_map(StringValue::from)
}

/// Any `f64` but NaN, which is not equal to itself in the decoded message.
fn double() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("NaN never compares equal", |f| !f.is_nan())
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::I64),
        double().prop_map(Value::F64),
        string_value().prop_map(Value::String),
        vec(any::<bool>(), 0..4).prop_map(|v| Value::Array(Array::Bool(v))),
        vec(any::<i64>(), 0..4).prop_map(|v| Value::Array(Array::I64(v))),
        vec(double(), 0..4).prop_map(|v| Value::Array(Array::F64(v))),
        vec(string_value(), 0..4).prop_map(|v| Value::Array(Array::String(v))),
    ]
}

fn attributes(max: usize) -> impl Strategy<Value = Vec<KeyValue>> {
    vec(
        (text(), value()).prop_map(|(k, v)| KeyValue::new(k, v)),
        0..max,
    )
}

/// Times after the epoch, and now and then one before it (which the conversion makes 0).
fn time() -> impl Strategy<Value = SystemTime> {
    prop_oneof![
        9 => any::<u64>().prop_map(|n| UNIX_EPOCH + Duration::from_nanos(n)),
        1 => (1..u32::MAX).prop_map(|n| UNIX_EPOCH - Duration::from_nanos(n.into())),
    ]
}

/// Mostly nothing dropped, sometimes a count of any size.
fn dropped() -> impl Strategy<Value = u32> {
    prop_oneof![3 => Just(0), 1 => any::<u32>()]
}

fn trace_state() -> impl Strategy<Value = TraceState> {
    vec(("[a-z][a-z0-9]{0,5}", "[a-z0-9]{1,8}"), 0..3).prop_map(|entries| {
        // Distinct keys: a trace state with a repeated key is rejected.
        let entries = entries
            .into_iter()
            .enumerate()
            .map(|(i, (k, v))| (format!("{k}{i}"), v));
        TraceState::from_key_value(entries).expect("valid keys and values")
    })
}

fn span_context() -> impl Strategy<Value = SpanContext> {
    (
        any::<u128>(),
        any::<u64>(),
        any::<u8>(),
        any::<bool>(),
        trace_state(),
    )
        .prop_map(|(trace, span, flags, remote, state)| {
            SpanContext::new(
                TraceId::from(trace),
                SpanId::from(span),
                TraceFlags::new(flags),
                remote,
                state,
            )
        })
}

fn event() -> impl Strategy<Value = Event> {
    (text(), time(), attributes(4), dropped())
        .prop_map(|(name, time, attributes, dropped)| Event::new(name, time, attributes, dropped))
}

fn link() -> impl Strategy<Value = Link> {
    (span_context(), attributes(3), dropped()).prop_map(|(context, attributes, dropped)| {
        let mut link = Link::with_context(context);
        link.attributes = attributes;
        link.dropped_attributes_count = dropped;
        link
    })
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Unset),
        Just(Status::Ok),
        text().prop_map(|d| Status::Error {
            description: Cow::Owned(d)
        }),
    ]
}

fn kind() -> impl Strategy<Value = SpanKind> {
    prop_oneof![
        Just(SpanKind::Internal),
        Just(SpanKind::Server),
        Just(SpanKind::Client),
        Just(SpanKind::Producer),
        Just(SpanKind::Consumer),
    ]
}

fn scope() -> impl Strategy<Value = InstrumentationScope> {
    (
        text(),
        proptest::option::of(text()),
        proptest::option::of(text()),
        attributes(3),
    )
        .prop_map(|(name, version, schema_url, attributes)| {
            let mut builder = InstrumentationScope::builder(name).with_attributes(attributes);
            if let Some(version) = version {
                builder = builder.with_version(version);
            }
            if let Some(schema_url) = schema_url {
                builder = builder.with_schema_url(schema_url);
            }
            builder.build()
        })
}

/// A few scopes, plus a copy of the first with its attributes reversed: equal as a scope,
/// so the standard grouping (a `HashMap` keyed on the scope) puts both under one.
fn scopes() -> impl Strategy<Value = Vec<InstrumentationScope>> {
    vec(scope(), 1..4).prop_map(|mut scopes| {
        let first = &scopes[0];
        let mut attributes: Vec<KeyValue> = first.attributes().cloned().collect();
        attributes.reverse();
        let mut reversed =
            InstrumentationScope::builder(first.name().to_owned()).with_attributes(attributes);
        if let Some(version) = first.version() {
            reversed = reversed.with_version(version.to_owned());
        }
        if let Some(schema_url) = first.schema_url() {
            reversed = reversed.with_schema_url(schema_url.to_owned());
        }
        scopes.push(reversed.build());
        scopes
    })
}

prop_compose! {
    fn span_data(scopes: Vec<InstrumentationScope>)(
        context in span_context(),
        parent in prop_oneof![Just(SpanId::INVALID), any::<u64>().prop_map(SpanId::from)],
        parent_is_remote in any::<bool>(),
        kind in kind(),
        name in text(),
        start in time(),
        end in time(),
        attributes in attributes(6),
        dropped_attributes in dropped(),
        events in vec(event(), 0..6),
        dropped_events in dropped(),
        links in vec(link(), 0..3),
        dropped_links in dropped(),
        status in status(),
        scope in 0..scopes.len(),
    ) -> SpanData {
        let mut span_events = SpanEvents::default();
        span_events.events = events;
        span_events.dropped_count = dropped_events;
        let mut span_links = SpanLinks::default();
        span_links.links = links;
        span_links.dropped_count = dropped_links;
        SpanData {
            span_context: context,
            parent_span_id: parent,
            parent_span_is_remote: parent_is_remote,
            span_kind: kind,
            name: Cow::Owned(name),
            start_time: start,
            end_time: end,
            attributes,
            dropped_attributes_count: dropped_attributes,
            events: span_events,
            links: span_links,
            status,
            instrumentation_scope: scopes[scope].clone(),
        }
    }
}

fn batch() -> impl Strategy<Value = Vec<SpanData>> {
    scopes().prop_flat_map(|scopes| vec(span_data(scopes), 0..8))
}

fn resource() -> impl Strategy<Value = Resource> {
    (attributes(5), proptest::option::of(text())).prop_map(|(attributes, schema_url)| {
        let builder = Resource::builder_empty();
        match schema_url {
            Some(url) => builder.with_schema_url(attributes, url),
            None => builder.with_attributes(attributes),
        }
        .build()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_batch_decodes_to_the_standard_request(resource in resource(), spans in batch()) {
        // Appends: what `out` held before stays as it was.
        let mut out = b"before".to_vec();
        encode_export_trace_request(&resource, &spans, &mut out);
        prop_assert_eq!(&out[..6], b"before");
        let encoded = &out[6..];

        let expected = standard_request(&resource, &spans);
        let decoded = ExportTraceServiceRequest::decode(encoded);
        prop_assert_eq!(decoded.as_ref(), Ok(&expected));
        let prost_bytes = expected.encode_to_vec();
        prop_assert_eq!(encoded, prost_bytes.as_slice());
    }

    #[test]
    fn one_span_decodes_to_the_standard_span(spans in batch()) {
        for span in &spans {
            let mut out = Vec::new();
            encode_span(span, &mut out);
            let expected = ProtoSpan::from(span.clone());
            prop_assert_eq!(ProtoSpan::decode(out.as_slice()), Ok(expected));
        }
    }
}

#[test]
fn an_empty_batch_is_the_resource_alone() {
    let resource = Resource::builder_empty()
        .with_schema_url([KeyValue::new("service.name", "s")], "https://s")
        .build();
    let mut out = Vec::new();
    encode_export_trace_request(&resource, &[], &mut out);
    assert_eq!(
        out,
        [
            0x0a, 0x22, // resource_spans: 2 + 21 + 2 + 9
            0x0a, 0x15, // resource: 2 + 19
            0x0a, 0x13, // attributes: 2 + 12 + 2 + 3
            0x0a, 0x0c, b's', b'e', b'r', b'v', b'i', b'c', b'e', b'.', b'n', b'a', b'm', b'e',
            0x12, 0x03, 0x0a, 0x01, b's', // value: string "s"
            0x1a, 0x09, b'h', b't', b't', b'p', b's', b':', b'/', b'/', b's', // schema_url
        ]
    );
    assert_eq!(out, standard_request(&resource, &[]).encode_to_vec());
}
