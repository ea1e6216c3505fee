//! A collector that is slow, not failing: the default pipeline keeps its requests in flight
//! (bounded in bytes), every span arrives, and nothing warns of a full queue, although far
//! more spans wait for the collector than the batch queue holds.

mod common;

use std::time::Duration;

use common::otel::{TestServer, unary_traffic};
use common::otlp::Receiver;
use common::warnings::StuckPipeline;
use otel_stats::{OtelHandler, init_otlp};

#[test]
fn requests_waiting_on_a_slow_collector_are_not_a_full_queue() {
    // The binary's only test: the environment is set before any other thread runs.
    let StuckPipeline {
        listener,
        runtime,
        warnings,
    } = StuckPipeline::from_env("60000");
    runtime.block_on(async {
        let receiver = Receiver::stuck_on(listener).await;
        let telemetry = init_otlp("slow-collector").unwrap();
        let handler = OtelHandler::builder()
            .tracer_provider(telemetry.tracer_provider().clone())
            .build();
        let server = TestServer::start(handler).await;
        // 500 spans against a queue of 64 + 16, while the collector answers nothing.
        unary_traffic(&server, 500).await;
        server.stop().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            receiver.spans().is_empty(),
            "the collector answered nothing yet"
        );

        receiver.open();
        let provider = telemetry.tracer_provider().clone();
        tokio::task::spawn_blocking(move || provider.force_flush())
            .await
            .unwrap()
            .unwrap();
        let stats = telemetry.export_stats();
        assert_eq!(
            (stats.ended, stats.exported, stats.failed, stats.dropped()),
            (501, 501, 0, 0),
            "a slow collector loses nothing: {stats}"
        );
        assert_eq!(receiver.spans().len(), 501);
        assert_eq!(
            warnings.taken(),
            Vec::<String>::new(),
            "nothing was lost, so nothing was reported"
        );
        tokio::task::spawn_blocking(move || telemetry.shutdown())
            .await
            .unwrap()
            .unwrap();
    });
}
