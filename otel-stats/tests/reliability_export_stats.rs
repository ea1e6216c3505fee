//! `init_otlp`'s pipeline accounts for every span: with the collector stuck, the queue drops
//! what it cannot hold and exports time out; the guard's figures add up, match what the
//! collector received, and the losses are reported as `tracing` warnings (rate-limited, and
//! once more at shutdown), not printed by the library.

mod common;

use std::time::Instant;

use common::otel::{TestServer, unary_traffic};
use common::otlp::Receiver;
use common::warnings::StuckPipeline;
use otel_stats::{OtelHandler, init_otlp};

#[test]
fn lost_spans_are_counted() {
    // The binary's only test: the environment is set before any other thread runs.
    let StuckPipeline {
        listener,
        runtime,
        warnings,
    } = StuckPipeline::from_env("300");
    let started = Instant::now();
    runtime.block_on(async {
        let receiver = Receiver::stuck_on(listener).await;
        let telemetry = init_otlp("lost-spans").unwrap();
        let handler = OtelHandler::builder()
            .tracer_provider(telemetry.tracer_provider().clone())
            .build();
        let server = TestServer::start(handler).await;
        unary_traffic(&server, 500).await;
        server.stop().await;

        // A second export call means the first one timed out: a failure to count.
        let deadline = tokio::time::Instant::now() + common::PATIENCE;
        while receiver.calls() < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the exporter kept trying"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        receiver.open();
        let provider = telemetry.tracer_provider().clone();
        tokio::task::spawn_blocking(move || provider.force_flush())
            .await
            .unwrap()
            .unwrap();
        let stats = telemetry.export_stats();
        eprintln!("{stats}");
        assert_eq!(stats.ended, 501, "500 RPC spans and the connection span");
        // The direct exporter (the default) does not hold the batch queue while the
        // collector is stuck: it bounds what waits in bytes (tests/otlp_direct_exporter.rs),
        // so the stuck collector's spans are failures here rather than queue drops. Either
        // way every span is accounted for.
        assert_eq!(
            stats.exported + stats.failed + stats.dropped(),
            stats.ended,
            "every span accounted for: {stats}"
        );
        assert!(stats.exported < stats.ended, "spans were lost: {stats}");
        assert!(
            stats.failed > 0,
            "exports timed out while the collector was stuck: {stats}"
        );
        // A request the exporter gave up on may still be read by the collector once it
        // wakes (the direct exporter has several in flight): the collector has every span
        // counted exported, and at most those counted failed besides.
        let received = receiver.spans().len() as u64;
        assert!(
            (stats.exported..=stats.exported + stats.failed).contains(&received),
            "the collector has what was exported ({received} received): {stats}"
        );
        let periodic = warnings.taken();
        assert!(
            !periodic.is_empty() && periodic.iter().all(|w| w.contains("failed to export")),
            "the losses were reported with the figures: {periodic:?}"
        );
        // At most one every 10 s, however many exports failed and spans were dropped.
        let allowed = 1 + started.elapsed().as_secs() / 10;
        assert!(
            periodic.len() as u64 <= allowed,
            "{} warnings in {:?}: {periodic:?}",
            periodic.len(),
            started.elapsed()
        );
        tokio::task::spawn_blocking(move || telemetry.shutdown())
            .await
            .unwrap()
            .ok();
    });
    let last = warnings.taken().pop().unwrap_or_default();
    assert!(
        last.starts_with("spans lost by the OTLP pipeline: 501 spans ended"),
        "the shutdown reports the losses: {last:?}"
    );
}
