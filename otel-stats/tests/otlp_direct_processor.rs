//! The direct span processor (each span encoded when it ends, batches of bytes sent from the
//! processor's thread) on real sockets: what arrives at `opentelemetry-proto`'s
//! `TraceServiceServer` is what the standard conversion makes of the same spans; a full
//! batch goes without a flush, the schedule delay sends what waits, flush and shutdown wait
//! for the collector; a full queue drops and counts, and ending a span never waits on the
//! sending thread.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use common::export::{end_spans, span_names};
use common::otlp::{Receiver, Wire};
use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use opentelemetry::trace::{
    Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::trace::{Span as _, TraceContextExt as _};
use opentelemetry::{Context as OtelContext, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor, SpanProcessor as _,
};
use otel_stats::export::{
    Compression, DirectSpanProcessor, DirectSpanProcessorBuilder, Protocol, SignalConfig,
};
use tower::Service;

const HOUR: Duration = Duration::from_secs(3600);

fn config(protocol: Protocol, endpoint: String) -> SignalConfig {
    SignalConfig::new(protocol, endpoint.parse().unwrap()).with_timeout(Duration::from_secs(10))
}

/// A builder for `config` with a batch of `batch` spans, a queue of 4096 and no timer to
/// speak of (explicit settings, so that `OTEL_BSP_*` in the environment change nothing).
fn builder(config: &SignalConfig, batch: usize) -> DirectSpanProcessorBuilder {
    DirectSpanProcessor::builder(config)
        .with_max_queue_size(4096)
        .with_max_export_batch_size(batch)
        .with_scheduled_delay(HOUR)
}

fn resource() -> Resource {
    Resource::builder().with_service_name("processor").build()
}

fn provider<C>(processor: DirectSpanProcessor<C>) -> SdkTracerProvider
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource())
        .build()
}

/// Ends `n` spans of this test's scope (see [`end_spans`]).
fn make_spans(provider: &SdkTracerProvider, first: usize, n: usize) {
    end_spans(provider, "direct-processor-test", first, n);
}

/// Runs `f` off the runtime: flushes and shutdowns block until the collector answered.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// The spans in each request received, in order.
fn request_sizes(receiver: &Receiver) -> Vec<usize> {
    receiver
        .requests()
        .iter()
        .map(|r| {
            r.resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum()
        })
        .collect()
}

/// Waits until `done` holds, at most [`common::PATIENCE`].
async fn eventually(mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < common::PATIENCE, "gave up waiting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_arrive_as_the_standard_conversion_makes_them() {
    let receiver = Receiver::start().await;
    let processor = builder(&config(Protocol::Grpc, receiver.endpoint()), 1000)
        .build()
        .unwrap();
    let handle = processor.handle();
    // The same spans, as the SDK hands them to every processor.
    let copies = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_span_processor(SimpleSpanProcessor::new(copies.clone()))
        .with_resource(resource())
        .build();

    // Three scopes, interleaved; one span of each kind of content.
    let scoped = InstrumentationScope::builder("scoped")
        .with_version("1.2")
        .with_schema_url("https://schema")
        .with_attributes([KeyValue::new("scope.attribute", true)])
        .build();
    let tracers = [
        provider.tracer("first"),
        provider.tracer_with_scope(scoped),
        provider.tracer("third"),
    ];
    let linked = SpanContext::new(
        TraceId::from(7),
        SpanId::from(9),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_key_value([("k", "v")]).unwrap(),
    );
    for i in 0..60usize {
        let tracer = &tracers[i % 3];
        let parent = OtelContext::new().with_remote_span_context(linked.clone());
        let mut span = tracer
            .span_builder(format!("span-{i}"))
            .with_kind(SpanKind::Server)
            .with_links(vec![Link::with_context(linked.clone())])
            .start_with_context(tracer, &parent);
        span.set_attribute(KeyValue::new("i", i as i64));
        span.set_attribute(KeyValue::new("text", "x".repeat(i * 7)));
        for e in 0..i % 6 {
            span.add_event(format!("event-{e}"), vec![KeyValue::new("e", e as i64)]);
        }
        if i % 4 == 0 {
            span.set_status(Status::error("bad"));
        }
        span.end();
    }
    // The in-memory exporter forgets its spans when it shuts down.
    let copies = copies.get_finished_spans().unwrap();
    assert_eq!(copies.len(), 60);
    blocking(move || provider.shutdown()).await.unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let standard = ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(
            copies,
            &ResourceAttributesWithSchema::from(&resource()),
        ),
    };
    // The standard grouping orders scopes by a hash map; ours by first appearance.
    let sorted = |request: &ExportTraceServiceRequest| {
        let mut scopes = request.resource_spans[0].scope_spans.clone();
        scopes.sort_by_key(|s| s.scope.as_ref().unwrap().name.clone());
        scopes
    };
    assert_eq!(sorted(&requests[0]), sorted(&standard));
    let attributes = |request: &ExportTraceServiceRequest| {
        let mut attributes = request.resource_spans[0]
            .resource
            .as_ref()
            .unwrap()
            .attributes
            .clone();
        attributes.sort_by(|a, b| a.key.cmp(&b.key));
        attributes
    };
    assert_eq!(attributes(&requests[0]), attributes(&standard));
    // Spans of a scope in the order they ended.
    let first_scope: Vec<String> = requests[0].resource_spans[0].scope_spans[0]
        .spans
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let ended: Vec<String> = (0..60).step_by(3).map(|i| format!("span-{i}")).collect();
    assert_eq!(first_scope, ended);
    assert_eq!(handle.stats().exported, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_batch_goes_without_a_flush_and_shutdown_sends_the_rest() {
    let receiver = Receiver::start().await;
    let processor = builder(&config(Protocol::Grpc, receiver.endpoint()), 10)
        .build()
        .unwrap();
    let handle = processor.handle();
    let provider = provider(processor);
    make_spans(&provider, 0, 25);
    eventually(|| receiver.requests().len() == 2).await;
    assert_eq!(request_sizes(&receiver), [10, 10]);

    blocking(move || provider.shutdown()).await.unwrap();
    assert_eq!(request_sizes(&receiver), [10, 10, 5]);
    assert_eq!(receiver.span_names(), span_names(25));
    let stats = handle.stats();
    assert_eq!((stats.exported, stats.dropped, stats.failed), (25, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_delay_sends_what_waits() {
    let receiver = Receiver::start().await;
    let processor = builder(&config(Protocol::Grpc, receiver.endpoint()), 512)
        .with_scheduled_delay(Duration::from_millis(50))
        .build()
        .unwrap();
    let provider = provider(processor);
    make_spans(&provider, 0, 3);
    eventually(|| receiver.spans().len() == 3).await;
    make_spans(&provider, 3, 2);
    eventually(|| receiver.spans().len() == 5).await;
    assert_eq!(request_sizes(&receiver), [3, 2]);
    blocking(move || provider.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_flush_returns_once_the_collector_has_the_spans() {
    let receiver = Receiver::speaking(Wire::Http, None).await;
    let url = format!("{}/v1/traces", receiver.endpoint());
    let config = config(Protocol::HttpProtobuf, url).with_compression(Some(Compression::Gzip));
    let provider = provider(builder(&config, 512).build().unwrap());
    for round in 0..3 {
        make_spans(&provider, round * 7, 7);
        let flushing = provider.clone();
        blocking(move || flushing.force_flush()).await.unwrap();
        assert_eq!(receiver.spans().len(), (round + 1) * 7);
    }
    assert_eq!(receiver.headers()[0]["content-encoding"], "gzip");
    blocking(move || provider.shutdown()).await.unwrap();
    assert_eq!(receiver.span_names(), span_names(21));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_and_counts_and_ending_spans_never_waits() {
    let receiver = Receiver::start().await;
    let (gate, entered, open) = Gate::new();
    let processor = builder(&config(Protocol::Grpc, receiver.endpoint()), 5)
        .with_max_queue_size(10)
        .build_with_connector(gate)
        .unwrap();
    let handle = processor.handle();
    let provider = provider(processor);

    // The first batch's connection stops the sending thread in the connector.
    make_spans(&provider, 0, 5);
    let entered = blocking(move || entered.recv_timeout(common::PATIENCE)).await;
    entered.expect("the sending thread connects");

    // The queue takes 10 more; the other 20 are dropped at once, and counted.
    let ending = provider.clone();
    blocking(move || make_spans(&ending, 5, 30)).await;
    let stats = handle.stats();
    assert_eq!((stats.dropped, stats.dropped_bytes), (20, 0), "{stats:?}");

    open.send(()).unwrap();
    blocking(move || provider.shutdown()).await.unwrap();
    assert_eq!(receiver.span_names(), span_names(15));
    let stats = handle.stats();
    assert_eq!(
        (stats.exported, stats.dropped, stats.failed),
        (15, 20, 0),
        "every span ended is counted once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_span_ended_after_shutdown_is_counted_as_dropped() {
    let receiver = Receiver::start().await;
    let processor = builder(&config(Protocol::Grpc, receiver.endpoint()), 512)
        .build()
        .unwrap();
    let spans = InMemorySpanExporter::default();
    let making = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    making.tracer("late").in_span("late", |_| {});
    let span = spans.get_finished_spans().unwrap().remove(0);

    let processor = blocking(move || {
        processor.shutdown().unwrap();
        processor.on_end(span);
        processor
    })
    .await;
    assert_eq!(processor.stats().dropped, 1);
    assert!(receiver.requests().is_empty());
}

/// A connector that, on its first connection, stops the thread it runs on (the processor's
/// sending thread) until the test opens it.
#[derive(Clone)]
struct Gate {
    inner: HttpConnector,
    entered: Arc<Mutex<Option<mpsc::Sender<()>>>>,
    open: Arc<Mutex<Option<mpsc::Receiver<()>>>>,
}

impl Gate {
    fn new() -> (Gate, mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (entered, on_entered) = mpsc::channel();
        let (open, on_open) = mpsc::channel();
        let gate = Gate {
            inner: HttpConnector::new(),
            entered: Arc::new(Mutex::new(Some(entered))),
            open: Arc::new(Mutex::new(Some(on_open))),
        };
        (gate, on_entered, open)
    }
}

type Connecting = Pin<
    Box<
        dyn Future<
                Output = Result<
                    <HttpConnector as Service<Uri>>::Response,
                    <HttpConnector as Service<Uri>>::Error,
                >,
            > + Send,
    >,
>;

impl Service<Uri> for Gate {
    type Response = <HttpConnector as Service<Uri>>::Response;
    type Error = <HttpConnector as Service<Uri>>::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Connecting {
        let open = self.open.lock().unwrap().take();
        if let Some(open) = open {
            if let Some(entered) = self.entered.lock().unwrap().take() {
                entered.send(()).unwrap();
            }
            // Blocks the current-thread runtime this runs on: nothing else is sent.
            let _ = open.recv();
        }
        Box::pin(self.inner.call(uri))
    }
}
