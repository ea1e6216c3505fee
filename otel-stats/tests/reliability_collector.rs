//! The application never waits on telemetry: with the collector unreachable, stuck, or
//! refusing exports, every RPC still succeeds and completes; the export queue (and, for
//! otel-stats' own export paths, the bound on bytes in flight) bounds what is kept (the rest
//! is dropped and counted); and once the collector answers, spans arrive.
//!
//! Each test runs on every pipeline `init_otlp` can build, with small limits so that the
//! bounds show in a test of seconds: the SDK's batch processor in front of otel-stats'
//! `DirectSpanExporter` (the default) or of opentelemetry-otlp's exporter, and otel-stats'
//! `DirectSpanProcessor`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::PATIENCE;
use common::otel::{TestServer, unary_traffic};
use common::otlp::{Receiver, nothing_listening};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanExporter,
};
use otel_stats::OtelHandler;
use otel_stats::export::{
    DEFAULT_MAX_IN_FLIGHT_BYTES, DirectSpanExporter, DirectSpanProcessor, Protocol, SignalConfig,
};

const QUEUE: usize = 128;
const BATCH: usize = 32;
/// The bytes of requests otel-stats' paths keep in flight or retrying, at most, where the
/// bound is under test (elsewhere the default, which an outage of a few exports stays within).
const IN_FLIGHT: usize = 32 * 1024;
/// No span of these tests encodes to fewer bytes.
const MIN_SPAN_BYTES: usize = 100;
const TIMEOUT: Duration = Duration::from_millis(500);

/// The export paths of `init_otlp`.
#[derive(Debug, Clone, Copy)]
enum Path {
    Direct,
    Standard,
    DirectProcessor,
}

const PATHS: [Path; 3] = [Path::Direct, Path::Standard, Path::DirectProcessor];

impl Path {
    /// The most spans the path can hold while the collector answers nothing.
    fn bound(self) -> usize {
        match self {
            Path::Standard => QUEUE + 2 * BATCH,
            Path::Direct | Path::DirectProcessor => QUEUE + 2 * BATCH + IN_FLIGHT / MIN_SPAN_BYTES,
        }
    }
}

/// `exporter` behind the SDK's batch processor with a queue of [`QUEUE`].
fn batched(exporter: impl SpanExporter + 'static) -> SdkTracerProvider {
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

/// The pipeline `path` makes, exporting over OTLP/gRPC to `endpoint`, otel-stats' paths
/// with at most `in_flight` bytes of requests in flight.
fn pipeline(path: Path, endpoint: &str, in_flight: usize) -> SdkTracerProvider {
    let signal = SignalConfig::new(Protocol::Grpc, endpoint.parse().unwrap()).with_timeout(TIMEOUT);
    match path {
        Path::Direct => batched(
            DirectSpanExporter::new(&signal)
                .unwrap()
                .with_max_in_flight_bytes(in_flight),
        ),
        Path::Standard => batched(
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .with_timeout(TIMEOUT)
                .build()
                .unwrap(),
        ),
        Path::DirectProcessor => {
            let processor = DirectSpanProcessor::builder(&signal)
                .with_max_queue_size(QUEUE)
                .with_max_export_batch_size(BATCH)
                .with_scheduled_delay(Duration::from_millis(20))
                .with_max_in_flight_bytes(in_flight)
                .build()
                .unwrap();
            SdkTracerProvider::builder()
                .with_span_processor(processor)
                .build()
        }
    }
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
    for path in PATHS {
        let provider = pipeline(path, &nothing_listening().await, IN_FLIGHT);
        let server = traced_server(&provider).await;
        unary_traffic(&server, 1_000).await;
        server.stop().await;
        shut_down(provider).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_collector_holds_nothing_up_and_the_queue_bounds_what_is_kept() {
    for path in PATHS {
        let receiver = Arc::new(Receiver::stuck().await);
        let provider = pipeline(path, &receiver.endpoint(), IN_FLIGHT);
        let server = traced_server(&provider).await;

        // 1,000 RPCs make 1,000 server spans; the collector answers none of them meanwhile.
        unary_traffic(&server, 1_000).await;
        assert!(
            receiver.spans().is_empty(),
            "{path:?}: the collector accepted nothing yet"
        );
        assert!(
            receiver.calls() >= 1,
            "{path:?}: an export was under way while the RPCs ran"
        );

        // The collector comes back: what was kept arrives, the rest was dropped.
        receiver.open();
        server.stop().await;
        shut_down(provider).await;
        let arrived = receiver.spans().len();
        let created = 1_000 + 1; // and the connection span
        assert!(
            arrived > 0,
            "{path:?}: kept spans arrive once the collector answers"
        );
        assert!(
            arrived <= path.bound(),
            "{path:?}: memory is bounded: {arrived} spans kept of {created}"
        );
        eprintln!(
            "stuck collector, {path:?}: {created} spans made, {arrived} delivered, {} dropped",
            created - arrived
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_collector_loses_only_what_it_refused() {
    for path in PATHS {
        let receiver = Receiver::failing_first(3).await;
        let provider = pipeline(path, &receiver.endpoint(), DEFAULT_MAX_IN_FLIGHT_BYTES);
        let server = traced_server(&provider).await;

        // While the collector refuses exports, RPCs go on.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while receiver.calls() < 3 {
            unary_traffic(&server, 20).await;
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path:?}: the exporter kept trying"
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
            "{path:?}: the 50 RPCs after the outage were all exported ({} arrived)",
            after - before
        );
    }
}
