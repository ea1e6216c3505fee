//! Connections that carry no RPC (a load balancer's TCP health check, a port scan, an HTTP/2
//! connection never used) make no connection span and are not counted as RPC connections;
//! their `ConnBegin` and `ConnEnd` still fire. A connection that carries an RPC gets its span,
//! from the connection's start, with its RPC inside, as before.

mod common;
mod metrics_common;

use std::sync::Arc;

use common::otel::{Spans, TestServer, only};
use common::recorder::count;
use common::{Recorder, req};
use metrics_common::Metrics;
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::SpanData;
use otel_stats::Side;
use otel_stats::metrics::names::{
    SERVER_CONNECTION_DURATION, SERVER_CONNECTION_OPEN, SERVER_CONNECTION_RPCS,
};
use tokio::net::TcpStream;

fn connection_spans(spans: &[SpanData]) -> Vec<&SpanData> {
    spans
        .iter()
        .filter(|s| s.name == "grpc.connection")
        .collect()
}

/// Waits until the server saw `n` connections end.
async fn wait_conn_ends(recorder: &Recorder, n: usize) {
    recorder
        .wait_for(&format!("{n} server ConnEnd"), |e| {
            e.iter()
                .filter(|e| e.name == "ConnEnd" && e.side == Some(Side::Server))
                .count()
                >= n
        })
        .await;
}

/// A TCP connection that closes without a byte, and an HTTP/2 connection that does the whole
/// handshake (preface and settings, both ways) and closes without a request.
async fn probe(server: &TestServer) {
    drop(TcpStream::connect(server.addr).await.unwrap());

    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    let driving = tokio::spawn(connection);
    // Ready once the server's settings came back: the server speaks HTTP/2 on it.
    let send = send.ready().await.unwrap();
    drop(send);
    driving.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_without_rpcs_make_no_span_and_no_connection_metrics() {
    let spans = Spans::new();
    let metrics = Metrics::new();
    let recorder = Arc::new(Recorder::new("server"));
    let handler = (spans.handler(), (metrics.handler(), Arc::clone(&recorder)));
    let server = TestServer::start(handler).await;

    probe(&server).await;
    wait_conn_ends(&recorder, 2).await;
    // grpc-go's events are all there.
    assert_eq!(count(&recorder.events(), "ConnBegin"), 2);
    assert!(connection_spans(&spans.finished()).is_empty());
    let c = metrics.collect().await;
    assert_eq!(c.count(SERVER_CONNECTION_DURATION), 0, "{:?}", c.names());
    assert_eq!(c.value(SERVER_CONNECTION_OPEN), 0.0);

    // A connection with an RPC: its span starts when the connection did, before the RPC.
    let mut client = server.client(otel_stats::NoopHandler).await;
    client.unary_echo(req("hello")).await.unwrap();
    let c = metrics
        .wait_for("the RPC connection open", |c| {
            c.value(SERVER_CONNECTION_OPEN) == 1.0
        })
        .await;
    assert_eq!(c.count(SERVER_CONNECTION_DURATION), 0);
    drop(client);
    wait_conn_ends(&recorder, 3).await;
    let done = spans.finished();
    let conns = connection_spans(&done);
    assert_eq!(conns.len(), 1, "{conns:#?}");
    let rpc = only(&done, SpanKind::Server);
    assert_eq!(rpc.parent_span_id, conns[0].span_context.span_id());
    assert_eq!(
        rpc.span_context.trace_id(),
        conns[0].span_context.trace_id()
    );
    assert!(conns[0].start_time <= rpc.start_time);
    assert!(conns[0].end_time >= rpc.end_time);
    let c = metrics
        .wait_for("the RPC connection measured", |c| {
            c.count(SERVER_CONNECTION_DURATION) == 1 && c.value(SERVER_CONNECTION_OPEN) == 0.0
        })
        .await;
    assert_eq!(c.count(SERVER_CONNECTION_RPCS), 1);
    assert_eq!(c.value(SERVER_CONNECTION_RPCS), 1.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_of_filtered_rpcs_only_makes_no_connection_span() {
    let spans = Spans::new();
    let recorder = Arc::new(Recorder::new("server"));
    let handler = spans.builder().filter(|_| false).build();
    let server = TestServer::start((handler, Arc::clone(&recorder))).await;
    let mut client = server.client(otel_stats::NoopHandler).await;
    client.unary_echo(req("probe")).await.unwrap();
    drop(client);
    wait_conn_ends(&recorder, 1).await;
    assert!(spans.finished().is_empty(), "{:#?}", spans.finished());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_connection_gets_its_span_as_before() {
    let spans = Spans::new();
    let server = TestServer::start(otel_stats::NoopHandler).await;
    let client = server.client(spans.handler()).await;
    drop(client);
    let done = spans
        .wait_for("the client's connection span", |s| {
            !connection_spans(s).is_empty()
        })
        .await;
    assert_eq!(connection_spans(&done).len(), 1);
    server.stop().await;
}
