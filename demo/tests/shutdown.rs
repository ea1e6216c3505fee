//! SIGTERM to the demo server: it stops accepting, lets the RPCs in flight finish, ends their
//! spans and flushes them: every span of every completed RPC reaches the collector, counted
//! exactly.

mod common;

#[path = "../../otel-stats/tests/common/otlp.rs"]
#[allow(dead_code)]
mod otlp;

use std::time::Duration;

use common::PATIENCE;
use demo::proto::EchoRequest;
use demo::proto::echo_client::EchoClient;
use tokio::process::Command;
use tokio::task::JoinSet;

fn request(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_rpcs_and_flushes_every_span() {
    let collector = otlp::Receiver::start().await;
    let common::DemoServer {
        child: mut server,
        addr,
        log,
    } = common::start_server(
        Command::new(env!("CARGO_BIN_EXE_server"))
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint())
            // Keep every span queued until shutdown: only the flush can deliver them.
            .env("OTEL_BSP_SCHEDULE_DELAY", "60000")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
    )
    .await;

    let mut client = EchoClient::connect(format!("http://{addr}")).await.unwrap();
    for i in 0..20 {
        client
            .unary_echo(request(&format!("done {i}")))
            .await
            .unwrap();
    }
    let mut in_flight = JoinSet::new();
    for _ in 0..5 {
        let mut client = client.clone();
        in_flight.spawn(async move { client.unary_echo(request("sleep:400")).await });
    }
    tokio::time::sleep(Duration::from_millis(100)).await; // they have reached the server
    let pid = server.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());

    while let Some(done) = in_flight.join_next().await {
        let reply = done
            .unwrap()
            .expect("an RPC in flight at SIGTERM completes");
        assert_eq!(reply.into_inner().message, "sleep:400");
    }
    drop(client);
    let status = tokio::time::timeout(PATIENCE, server.wait())
        .await
        .unwrap()
        .unwrap();
    let log = log.await.unwrap();
    assert!(status.success(), "exit {status:?}; stderr: {log:?}");

    let spans = collector.spans();
    let rpc_spans = spans
        .iter()
        .filter(|s| s.name == "grpc.examples.echo.Echo/UnaryEcho")
        .count();
    let connection_spans = spans.iter().filter(|s| s.name == "grpc.connection").count();
    assert_eq!(
        rpc_spans, 25,
        "20 done before SIGTERM and 5 in flight, each exactly once"
    );
    assert_eq!(
        connection_spans, 1,
        "the connection, ended by the graceful close"
    );
    assert_eq!(spans.len(), 26);
}
