//! The demo server serves `grpc.health.v1.Health`; `client --probe` (the compose health
//! check) asks it, and its probes make no spans: neither RPC spans (the handler filters health
//! checks) nor connection spans (a connection of filtered RPCs needs none). An echo call on
//! the same server does make spans, so the silence is not a broken pipeline.

use std::sync::Arc;
use std::time::Duration;

use demo::proto::EchoRequest;
use demo::proto::echo_client::EchoClient;
use demo::telemetry::{SpanCollector, handlers_with};
use otel_stats::StatsHandler;
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::oneshot;

const PATIENCE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_asks_the_health_service_and_makes_no_spans() {
    let collector = SpanCollector::default();
    let handler: Arc<dyn StatsHandler> = Arc::new(handlers_with(
        true,
        Some(collector.provider("echo-server")),
        None,
        None,
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(demo::serve::serve(listener, Some(handler), async {
        let _ = stopped.await;
    }));

    for _ in 0..2 {
        let probe = Command::new(env!("CARGO_BIN_EXE_client"))
            .args(["--probe", "--addr", &format!("http://{addr}")])
            .status();
        let status = tokio::time::timeout(PATIENCE, probe)
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "the probe failed: {status}");
    }

    let mut client = EchoClient::connect(format!("http://{addr}")).await.unwrap();
    client
        .unary_echo(EchoRequest {
            message: "hello".into(),
        })
        .await
        .unwrap();
    drop(client);
    // The echo connection's span is exported when the connection closes.
    assert!(
        collector
            .wait_for(PATIENCE, |spans| spans
                .iter()
                .any(|s| s.name == "grpc.connection"))
            .await,
        "the echo call was traced"
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();

    let spans = collector.spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(
        names.iter().filter(|n| **n == "grpc.connection").count(),
        1,
        "one connection span, the echo call's: {names:?}"
    );
    assert!(
        names.iter().all(|n| !n.contains("Health")),
        "no health check spans: {names:?}"
    );
}
