//! `init_otlp`'s pipeline accounts for every span: with the collector stuck, the queue drops
//! what it cannot hold and exports time out; the guard's figures add up, match what the
//! collector received, and the losses are reported (on stderr, rate-limited).

mod common;

use common::otel::{TestServer, unary_traffic};
use common::otlp::Receiver;
use otel_stats::{OtelHandler, init_otlp};

#[test]
fn lost_spans_are_counted() {
    // The environment must be set before any other thread runs: this is the binary's only test.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    // SAFETY: no other thread of this test binary runs yet.
    unsafe {
        for (k, v) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "300"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "64"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "16"),
            ("OTEL_BSP_SCHEDULE_DELAY", "20"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ] {
            std::env::set_var(k, v);
        }
        std::env::remove_var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
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
        assert!(
            stats.dropped() > 0,
            "a queue of 64 cannot hold 501 spans: {stats}"
        );
        assert!(
            stats.failed > 0,
            "exports timed out while the collector was stuck: {stats}"
        );
        assert_eq!(
            stats.exported as usize,
            receiver.spans().len(),
            "exported is what the collector has"
        );
        tokio::task::spawn_blocking(move || telemetry.shutdown())
            .await
            .unwrap()
            .ok();
    });
}
