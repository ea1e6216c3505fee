//! A collector that is slow, not failing: the default pipeline keeps its requests in flight
//! (bounded in bytes), every span arrives, and nothing warns of a full queue, although far
//! more spans wait for the collector than the batch queue holds.

mod common;

use std::time::Duration;

use common::otel::{TestServer, unary_traffic};
use common::otlp::Receiver;
use common::warnings::Warnings;
use otel_stats::{OtelHandler, init_otlp};
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn requests_waiting_on_a_slow_collector_are_not_a_full_queue() {
    // The environment must be set before any other thread runs: this is the binary's only test.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    // SAFETY: no other thread of this test binary runs yet.
    unsafe {
        for (k, v) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "60000"),
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
    let warnings = Warnings::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(warnings.clone()))
        .unwrap();
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
