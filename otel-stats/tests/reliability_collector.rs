//! The application never waits on telemetry: with the collector unreachable, stuck, or
//! refusing exports, every RPC still succeeds and completes; the export queue bounds what is
//! kept (the rest is dropped and counted); and once the collector answers, spans arrive.
//!
//! The pipeline is the one `init_otlp` builds (OTLP/gRPC exporter, the SDK's batch
//! processor), with a small queue so that the bound shows in a test of seconds.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::PATIENCE;
use common::otel::{TestServer, unary_traffic};
use common::otlp::{Receiver, nothing_listening};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use otel_stats::OtelHandler;

const QUEUE: usize = 128;
const BATCH: usize = 32;

/// The SDK pipeline: OTLP/gRPC to `endpoint`, a batch processor with a queue of [`QUEUE`].
fn pipeline(endpoint: &str) -> SdkTracerProvider {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(QUEUE)
        .with_max_export_batch_size(BATCH)
        .with_scheduled_delay(Duration::from_millis(20))
        .build();
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(config)
        .build();
    SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build()
}

/// An echo server whose `OtelHandler` exports through `provider`.
async fn traced_server(provider: &SdkTracerProvider) -> TestServer {
    let handler = OtelHandler::builder()
        .tracer_provider(provider.clone())
        .build();
    TestServer::start(handler).await
}

/// Shuts the pipeline down off the runtime (it blocks on the last export), within patience.
async fn shut_down(provider: SdkTracerProvider) {
    let shutdown = tokio::task::spawn_blocking(move || provider.shutdown());
    tokio::time::timeout(PATIENCE, shutdown)
        .await
        .expect("shutdown is bounded by the export timeout")
        .unwrap()
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_costs_the_rpcs_nothing() {
    let provider = pipeline(&nothing_listening().await);
    let server = traced_server(&provider).await;
    unary_traffic(&server, 1_000).await;
    server.stop().await;
    shut_down(provider).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_collector_holds_nothing_up_and_the_queue_bounds_what_is_kept() {
    let receiver = Arc::new(Receiver::stuck().await);
    let provider = pipeline(&receiver.endpoint());
    let server = traced_server(&provider).await;

    // 1,000 RPCs make 1,000 server spans; the collector answers none of them meanwhile.
    unary_traffic(&server, 1_000).await;
    assert!(
        receiver.spans().is_empty(),
        "the collector accepted nothing yet"
    );
    assert!(
        receiver.calls() >= 1,
        "an export was under way while the RPCs ran"
    );

    // The collector comes back: what the queue kept arrives, the rest was dropped.
    receiver.open();
    server.stop().await;
    shut_down(provider).await;
    let arrived = receiver.spans().len();
    let created = 1_000 + 1; // and the connection span
    assert!(
        arrived > 0,
        "queued spans arrive once the collector answers"
    );
    assert!(
        arrived <= QUEUE + 2 * BATCH,
        "memory is bounded by the queue: {arrived} spans kept of {created}"
    );
    eprintln!(
        "stuck collector: {created} spans made, {arrived} delivered, {} dropped",
        created - arrived
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_collector_loses_only_what_it_refused() {
    let receiver = Receiver::failing_first(3).await;
    let provider = pipeline(&receiver.endpoint());
    let server = traced_server(&provider).await;

    // While the collector refuses exports, RPCs go on.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while receiver.calls() < 3 {
        unary_traffic(&server, 20).await;
        assert!(
            tokio::time::Instant::now() < deadline,
            "the exporter kept trying"
        );
    }
    // Back to normal: every span from now on arrives.
    let before = receiver.spans().len();
    unary_traffic(&server, 50).await;
    server.stop().await;
    shut_down(provider).await;
    let after = receiver.spans().len();
    assert!(
        after - before >= 50,
        "the 50 RPCs after the outage were all exported ({} arrived)",
        after - before
    );
}
