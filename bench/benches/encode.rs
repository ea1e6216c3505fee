//! Encoding spans for OTLP, per span: otel-stats' direct encoder
//! (`otel_stats::export::encode_export_trace_request`, protobuf written from the borrowed
//! `SpanData`, then the batch dropped) against the standard path of `opentelemetry-otlp`
//! (`group_spans_by_resource_and_scope` into `opentelemetry-proto` structs, prost encode,
//! the structs dropped), in the same run, for batches of 512 spans (the batch processor's
//! default export batch):
//!
//! - `encode/ours_5_events/*`: a server RPC span as `OtelHandler` records it: 5 attributes,
//!   5 events (headers, message and trailers events), a link to the connection span.
//! - `encode/naive_floor/*`: the naive floor's span (`src/naive.rs`): 3 attributes.
//!
//! `*/free_only` only drops the batch: the part of `direct` no encoder can save.
//!
//! Each iteration is one batch from its own clone of the spans, so freeing the spans is in
//! the figure for both paths; both encode into a buffer reused across batches (tonic's codec
//! does the same for the standard path). Per span = time / 512.
//!
//! `CARGO_TARGET_DIR=/work/target-bench cargo bench --manifest-path bench/Cargo.toml --bench encode`
//!
//! Instruction counts, free of timing noise: with `ENCODE_CALLGRIND=<span>/<path>` (span
//! `ours_5_events` or `naive_floor`, path `direct`, `standard` or `free_only`) the binary
//! runs 20 batches of that path only, in `measured_batches`, and prints the spans encoded;
//! run it under `valgrind --tool=callgrind --toggle-collect=*measured_batches*` and divide
//! the collected instructions by that count:
//!
//! ```text
//! B=$(ls -t /work/target-bench/release/deps/encode-* | grep -v '\.d$' | head -1)
//! ENCODE_CALLGRIND=ours_5_events/direct valgrind --tool=callgrind \
//!     --toggle-collect='*measured_batches*' --callgrind-out-file=/tmp/cg $B
//! ```

use std::borrow::Cow;
use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{BatchSize, Criterion, Throughput};
use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use otel_stats::export::encode_export_trace_request;
use prost::Message;

/// Spans per export request: `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`'s default.
const BATCH: usize = 512;
const METHOD: &str = "grpc.examples.echo.Echo/UnaryEcho";

fn context(n: u64, remote: bool) -> SpanContext {
    SpanContext::new(
        TraceId::from(u128::from(n) << 64 | 0x5eed),
        SpanId::from(n | 1),
        TraceFlags::SAMPLED,
        remote,
        TraceState::NONE,
    )
}

fn span(n: u64, name: String, attributes: Vec<KeyValue>) -> SpanData {
    let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_764_800_000_000_000_000 + n);
    SpanData {
        span_context: context(n, false),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: Cow::Owned(name),
        start_time: start,
        end_time: start + Duration::from_micros(30),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("otel-stats")
            .with_version("0.1.0")
            .build(),
    }
}

/// A server RPC span as `OtelHandler` makes it for a unary call from a client with trace
/// context: the stable semantic-convention attributes, the headers, message and trailers
/// events with their attributes, and the connection span as a link.
fn ours(n: u64) -> SpanData {
    let mut span = span(
        n,
        METHOD.to_owned(),
        vec![
            KeyValue::new("rpc.system.name", "grpc"),
            KeyValue::new("rpc.method", METHOD.to_owned()),
            KeyValue::new("network.peer.address", "127.0.0.1".to_owned()),
            KeyValue::new("network.peer.port", 40_000 + (n % 20_000) as i64),
            KeyValue::new("rpc.response.status_code", "OK"),
        ],
    );
    span.parent_span_id = SpanId::from(n << 8 | 7);
    span.parent_span_is_remote = true;
    let at = |micros| span.start_time + Duration::from_micros(micros);
    let headers = |name, entries: i64| {
        vec![
            KeyValue::new("compression", "identity"),
            KeyValue::new(name, entries),
        ]
    };
    let message = |size: i64| {
        vec![
            KeyValue::new("sequence-number", 0),
            KeyValue::new("message-size", size),
        ]
    };
    span.events.events = vec![
        Event::new("Inbound headers", at(1), headers("metadata-entries", 4), 0),
        Event::new("Inbound message", at(2), message(12), 0),
        Event::new(
            "Outbound headers",
            at(20),
            headers("metadata-entries", 1),
            0,
        ),
        Event::new("Outbound message", at(21), message(12), 0),
        Event::new(
            "Outbound trailers",
            at(22),
            vec![KeyValue::new("metadata-entries", 1)],
            0,
        ),
    ];
    span.links.links = vec![Link::with_context(context(n ^ 0xc0ffee, false))];
    span
}

/// The naive floor's span: the name and 3 attributes, nothing else.
fn naive(n: u64) -> SpanData {
    span(
        n,
        METHOD.to_owned(),
        vec![
            KeyValue::new("rpc.system.name", "grpc"),
            KeyValue::new("rpc.method", format!("/{METHOD}")),
            KeyValue::new("server.port", 50051),
        ],
    )
}

fn resource() -> Resource {
    Resource::builder()
        .with_service_name("bench-server")
        .build()
}

fn batch(make: MakeSpan) -> Vec<SpanData> {
    (0..BATCH as u64).map(make).collect()
}

/// otel-stats: encode from the borrowed batch, then free it.
fn direct(resource: &Resource, spans: Vec<SpanData>, out: &mut Vec<u8>) {
    out.clear();
    encode_export_trace_request(resource, &spans, out);
    drop(black_box(spans));
    black_box(&out);
}

/// opentelemetry-otlp: convert (consuming the batch), encode, free the structs.
fn standard(resource: &ResourceAttributesWithSchema, spans: Vec<SpanData>, out: &mut Vec<u8>) {
    out.clear();
    let request = ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(spans, resource),
    };
    request.encode(out).expect("a Vec grows");
    drop(black_box(request));
    black_box(&out);
}

/// Makes the `n`th span of a batch.
type MakeSpan = fn(u64) -> SpanData;

const SPANS: [(&str, MakeSpan); 2] = [("ours_5_events", ours), ("naive_floor", naive)];

fn encode(c: &mut Criterion) {
    let resource = resource();
    let standard_resource = ResourceAttributesWithSchema::from(&resource);
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, make) in SPANS {
        let spans = batch(make);
        let mut out = Vec::new();
        direct(&resource, spans.clone(), &mut out);
        let direct_len = out.len();
        standard(&standard_resource, spans.clone(), &mut out);
        assert_eq!(direct_len, out.len(), "both paths write the same request");
        eprintln!("{name}: {} bytes per span", out.len() / BATCH);
        g.bench_function(format!("{name}/direct"), |b| {
            b.iter_batched(
                || spans.clone(),
                |spans| direct(&resource, spans, &mut out),
                BatchSize::LargeInput,
            )
        });
        g.bench_function(format!("{name}/standard"), |b| {
            b.iter_batched(
                || spans.clone(),
                |spans| standard(&standard_resource, spans, &mut out),
                BatchSize::LargeInput,
            )
        });
        g.bench_function(format!("{name}/free_only"), |b| {
            b.iter_batched(|| spans.clone(), drop, BatchSize::LargeInput)
        });
    }
    g.finish();
}

/// The batches callgrind counts (see the module docs): only this function's instructions
/// are collected, not the clones that prepare them.
#[inline(never)]
fn measured_batches(batches: Vec<Vec<SpanData>>, path: &str, out: &mut Vec<u8>) {
    let resource = resource();
    let standard_resource = ResourceAttributesWithSchema::from(&resource);
    for spans in batches {
        match path {
            "direct" => direct(&resource, spans, out),
            "standard" => standard(&standard_resource, spans, out),
            _ => drop(black_box(spans)),
        }
    }
}

fn callgrind(which: &str) {
    let (span, path) = which
        .split_once('/')
        .expect("ENCODE_CALLGRIND=<span>/<path>");
    let (_, make) = SPANS
        .into_iter()
        .find(|(name, _)| *name == span)
        .expect("span: ours_5_events or naive_floor");
    assert!(
        matches!(path, "direct" | "standard" | "free_only"),
        "path: direct, standard or free_only"
    );
    let spans = batch(make);
    let mut out = Vec::new();
    // One batch first, uncounted, so that the buffer has grown as in the Criterion loop.
    let resource = resource();
    match path {
        "direct" => direct(&resource, spans.clone(), &mut out),
        _ => standard(&(&resource).into(), spans.clone(), &mut out),
    }
    let batches = vec![spans; 20];
    let count = batches.len() * BATCH;
    measured_batches(batches, path, &mut out);
    println!("{which}: {count} spans encoded in measured_batches");
}

fn main() {
    if let Ok(which) = std::env::var("ENCODE_CALLGRIND") {
        callgrind(&which);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    encode(&mut c);
    c.final_summary();
}
