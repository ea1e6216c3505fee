//! The direct span exporter behind the SDK's batch processor, on real sockets: spans of a real
//! `SdkTracerProvider` arrive decoded by `opentelemetry-proto`'s `TraceServiceServer` (gRPC)
//! and by a hyper OTLP/HTTP receiver, with their headers and gzip; retryable failures are
//! retried until every span arrives exactly once, others fail at once; the byte bound drops
//! and counts; shutdown delivers everything.

mod common;

use std::time::Duration;

use common::export::{Pki, end_spans, mutual_tls, protocol, span_names};
use common::otlp::{Receiver, Wire};
use http::{HeaderName, HeaderValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use otel_stats::export::{
    Compression, DirectExportStats, DirectSpanExporter, Protocol, SignalConfig,
};
use tonic::Status;

const TENANT: HeaderName = HeaderName::from_static("x-tenant");

/// An OTLP/HTTP receiver's traces URL.
fn traces_url(receiver: &Receiver) -> String {
    format!("{}/v1/traces", receiver.endpoint())
}

/// Where a receiver speaking `wire` takes traces.
fn url(wire: Wire, receiver: &Receiver) -> String {
    match wire {
        Wire::Grpc => receiver.endpoint(),
        Wire::Http => traces_url(receiver),
    }
}

fn config(protocol: Protocol, endpoint: String) -> SignalConfig {
    SignalConfig::new(protocol, endpoint.parse().unwrap())
        .with_header(TENANT, HeaderValue::from_static("blue"))
        .with_timeout(Duration::from_secs(10))
}

/// A provider exporting through `exporter` in batches of at most `batch` spans.
fn provider(exporter: DirectSpanExporter, batch: usize) -> SdkTracerProvider {
    let config = BatchConfigBuilder::default()
        .with_max_export_batch_size(batch)
        .with_max_queue_size(4096)
        .build();
    SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::new(exporter, config))
        .with_resource(Resource::builder().with_service_name("direct").build())
        .build()
}

/// Ends `n` spans of this test's scope (see [`end_spans`]).
fn make_spans(provider: &SdkTracerProvider, first: usize, n: usize) {
    end_spans(provider, "direct-test", first, n);
}

/// Shuts the provider down off the runtime (it blocks until the exporter has settled).
async fn shut_down(provider: SdkTracerProvider) {
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .unwrap()
        .unwrap();
}

/// Ends `spans` spans in a provider exporting through a [`DirectSpanExporter`] for
/// `config`, shuts it down, and says what the exporter did with them.
async fn export_through(config: &SignalConfig, spans: usize) -> DirectExportStats {
    let exporter = DirectSpanExporter::new(config).unwrap();
    let handle = exporter.handle();
    let provider = provider(exporter, 512);
    make_spans(&provider, 0, spans);
    shut_down(provider).await;
    handle.stats()
}

/// Flushes the batch processor: every span ended so far is handed to the exporter.
async fn flush(provider: &SdkTracerProvider) -> opentelemetry_sdk::error::OTelSdkResult {
    let provider = provider.clone();
    tokio::task::spawn_blocking(move || provider.force_flush())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_spans_arrive_gzipped_with_headers_over_one_connection() {
    let receiver = Receiver::start().await;
    let config =
        config(Protocol::Grpc, receiver.endpoint()).with_compression(Some(Compression::Gzip));
    let exporter = DirectSpanExporter::new(&config).unwrap();
    let handle = exporter.handle();
    let provider = provider(exporter, 10);
    for round in 0..3 {
        make_spans(&provider, round * 10, 10);
        flush(&provider).await.unwrap();
        // The processor's flush hands the batch over; the handle waits for the answer.
        let waiting = handle.clone();
        tokio::task::spawn_blocking(move || waiting.flush(common::PATIENCE))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(receiver.spans().len(), (round + 1) * 10);
    }
    shut_down(provider).await;

    assert_eq!(receiver.span_names(), span_names(30));
    let request = &receiver.requests()[0];
    let resource = request.resource_spans[0].resource.as_ref().unwrap();
    assert!(
        resource
            .attributes
            .iter()
            .any(|kv| kv.key == "service.name")
    );
    assert_eq!(
        request.resource_spans[0].scope_spans[0]
            .scope
            .as_ref()
            .unwrap()
            .name,
        "direct-test"
    );
    let span = &receiver.spans()[0];
    assert_eq!(span.events[0].name, "Outbound message");
    let headers = receiver.headers();
    assert_eq!(headers.len(), 3);
    for call in &headers {
        assert_eq!(call["grpc-encoding"], "gzip");
        assert_eq!(call["x-tenant"], "blue");
        assert!(call.contains_key("grpc-timeout"));
    }
    assert_eq!(receiver.connections(), 1);
    assert_eq!(handle.stats().attempts, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_spans_arrive_gzipped_with_headers() {
    let receiver = Receiver::speaking(Wire::Http, None).await;
    let config = config(Protocol::HttpProtobuf, traces_url(&receiver))
        .with_compression(Some(Compression::Gzip));
    let stats = export_through(&config, 20).await;

    assert_eq!(receiver.span_names(), span_names(20));
    let headers = receiver.headers();
    assert_eq!(headers[0]["content-type"], "application/x-protobuf");
    assert_eq!(headers[0]["content-encoding"], "gzip");
    assert_eq!(headers[0]["x-tenant"], "blue");
    assert_eq!(stats.exported, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_unavailable_twice_is_retried_and_every_span_arrives_once() {
    let receiver = Receiver::failing_first(2).await;
    let stats = export_through(&config(Protocol::Grpc, receiver.endpoint()), 50).await;

    assert_eq!(receiver.span_names(), span_names(50));
    assert_eq!(receiver.calls(), 3);
    assert_eq!((stats.exported, stats.failed, stats.retries), (50, 0, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_resource_exhausted_with_retry_info_is_retried() {
    fn throttled() -> Status {
        // google.rpc.Status{details: [Any{RetryInfo{retry_delay: 0.05 s}}]}.
        let mut details = vec![0x1a, 0x33, 0x0a, 0x28];
        details.extend_from_slice(b"type.googleapis.com/google.rpc.RetryInfo");
        details.extend_from_slice(&[0x12, 0x07, 0x0a, 0x05, 0x10, 0x80, 0xe1, 0xeb, 0x17]);
        Status::with_details(tonic::Code::ResourceExhausted, "slow down", details.into())
    }
    let receiver = Receiver::refusing(Wire::Grpc, 1, throttled).await;
    let stats = export_through(&config(Protocol::Grpc, receiver.endpoint()), 5).await;

    assert_eq!(receiver.span_names(), span_names(5));
    assert_eq!(stats.retries, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_invalid_argument_fails_without_retry() {
    let receiver =
        Receiver::refusing(Wire::Grpc, usize::MAX, || Status::invalid_argument("bad")).await;
    let stats = export_through(&config(Protocol::Grpc, receiver.endpoint()), 7).await;

    assert_eq!(receiver.calls(), 1);
    assert!(receiver.spans().is_empty());
    assert_eq!((stats.exported, stats.failed, stats.retries), (0, 7, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_503_with_retry_after_is_retried_and_every_span_arrives_once() {
    fn busy() -> Status {
        let mut status = Status::unavailable("busy");
        status
            .metadata_mut()
            .insert("retry-after", "0".parse().unwrap());
        status
    }
    let receiver = Receiver::refusing(Wire::Http, 1, busy).await;
    let stats = export_through(&config(Protocol::HttpProtobuf, traces_url(&receiver)), 30).await;

    assert_eq!(receiver.span_names(), span_names(30));
    assert_eq!(receiver.calls(), 2);
    assert_eq!((stats.exported, stats.failed, stats.retries), (30, 0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_400_fails_without_retry() {
    let receiver =
        Receiver::refusing(Wire::Http, usize::MAX, || Status::invalid_argument("bad")).await;
    let stats = export_through(&config(Protocol::HttpProtobuf, traces_url(&receiver)), 4).await;

    assert_eq!(receiver.calls(), 1);
    assert!(receiver.spans().is_empty());
    assert_eq!((stats.exported, stats.failed, stats.retries), (0, 4, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_success_counts_the_rejected_spans_as_failed() {
    let receiver = Receiver::rejecting(3).await;
    let stats = export_through(&config(Protocol::Grpc, receiver.endpoint()), 10).await;

    assert_eq!((stats.exported, stats.rejected, stats.failed), (7, 3, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_byte_bound_drops_and_counts_what_does_not_fit() {
    let receiver = Receiver::stuck().await;
    // Room for one request: while it waits on the stuck collector, the next is dropped.
    let exporter = DirectSpanExporter::new(&config(Protocol::Grpc, receiver.endpoint()))
        .unwrap()
        .with_max_in_flight_bytes(1);
    let handle = exporter.handle();
    let provider = provider(exporter, 512);
    make_spans(&provider, 0, 10);
    flush(&provider).await.unwrap();
    make_spans(&provider, 10, 6);
    assert!(
        flush(&provider).await.is_err(),
        "the second batch is dropped"
    );
    let stats = handle.stats();
    assert_eq!(stats.dropped, 6);
    assert!(stats.dropped_bytes > 6 * 30, "{stats:?}");

    receiver.open();
    shut_down(provider).await;
    assert_eq!(receiver.span_names(), span_names(10));
    let stats = handle.stats();
    assert_eq!((stats.exported, stats.failed, stats.dropped), (10, 0, 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_delivers_every_span_of_many_batches() {
    let receiver = Receiver::start().await;
    let stats = export_through(&config(Protocol::Grpc, receiver.endpoint()), 3000).await;

    assert_eq!(receiver.span_names(), span_names(3000));
    assert!(
        receiver.calls() >= 6,
        "batches of at most 512: {}",
        receiver.calls()
    );
    assert_eq!(stats.exported, 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_retried_within_the_timeout_then_fails() {
    let endpoint = common::otlp::nothing_listening().await;
    let config = config(Protocol::Grpc, endpoint).with_timeout(Duration::from_millis(400));
    let stats = export_through(&config, 3).await;

    assert_eq!((stats.exported, stats.failed), (0, 3));
    assert!(stats.retries >= 1, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_arrive_over_mutual_tls_with_the_configured_ca() {
    let pki = Pki::new();
    for wire in [Wire::Grpc, Wire::Http] {
        let receiver = pki.receiver(wire, true).await;
        let tls = mutual_tls(&pki);
        let config = config(protocol(wire), url(wire, &receiver))
            .with_tls(tls)
            .with_compression(Some(Compression::Gzip));
        assert!(config.is_https());
        let stats = export_through(&config, 12).await;
        assert_eq!((stats.exported, stats.failed), (12, 0), "{wire:?}");
        assert_eq!(receiver.span_names(), span_names(12), "{wire:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_the_roots_do_not_trust_gets_nothing() {
    let pki = Pki::new();
    let receiver = pki.receiver(Wire::Grpc, false).await;
    // No CA file: the webpki and system roots, which know nothing of the test CA.
    let config =
        config(Protocol::Grpc, receiver.endpoint()).with_timeout(Duration::from_millis(500));
    let stats = export_through(&config, 3).await;
    assert_eq!((stats.exported, stats.failed), (0, 3));
    assert!(receiver.requests().is_empty());
}
