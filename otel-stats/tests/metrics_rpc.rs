//! `MetricsHandler`'s RPC instruments on both sides, read back through the SDK's in-memory
//! metric exporter: the semantic conventions' call durations by default, gRFC A66's
//! instruments when asked for, for unary and streaming RPCs, errors, cancellations and
//! deadlines.

mod common;
mod metrics_common;

use std::time::Duration;

use common::otel::{Spans, TestServer, wanting};
use common::{EchoRequest, EchoResponse, req};
use metrics_common::{
    A66_LATENCY_BUCKETS, Collected, Kind, Metrics, SEMCONV_BUCKETS, a66_size_buckets,
};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use otel_stats::OtelHandler;
use otel_stats::metrics::names::*;
use prost::Message;
use tonic::{Code, Request};

const UNARY: &str = "grpc.examples.echo.Echo/UnaryEcho";
const SERVER_STREAMING: &str = "grpc.examples.echo.Echo/ServerStreamingEcho";
const CLIENT_STREAMING: &str = "grpc.examples.echo.Echo/ClientStreamingEcho";
const BIDI: &str = "grpc.examples.echo.Echo/BidirectionalStreamingEcho";

/// The attributes of a server `rpc.server.call.duration` point.
fn server_attrs(method: &str, status: &'static str, error: bool) -> Vec<(&'static str, String)> {
    let mut attrs = vec![
        ("rpc.system.name", "grpc".to_owned()),
        ("rpc.method", method.to_owned()),
        ("rpc.response.status_code", status.to_owned()),
    ];
    if error {
        attrs.push(("error.type", status.to_owned()));
    }
    attrs
}

/// The attributes of a client `rpc.client.call.duration` point: an error for any code but OK,
/// and the server the channel was made for.
fn client_attrs(
    server: &TestServer,
    method: &str,
    status: &'static str,
) -> Vec<(&'static str, String)> {
    let mut attrs = server_attrs(method, status, status != "OK");
    attrs.push(("server.address", "127.0.0.1".to_owned()));
    attrs.push(("server.port", server.addr.port().to_string()));
    attrs
}

fn borrowed<'a>(attrs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    attrs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The count of the point of `instrument` with exactly `attrs`.
fn calls(c: &Collected, instrument: &str, attrs: &[(&'static str, String)]) -> u64 {
    c.instrument(instrument).point(&borrowed(attrs)).count
}

/// Asserts that `n` calls of `method` ended with `status` on each side; `server_fault`: the
/// server counts it as an error.
fn assert_calls(
    c: &Collected,
    server: &TestServer,
    (method, status, server_fault): (&str, &'static str, bool),
    n: u64,
) {
    let attrs = server_attrs(method, status, server_fault);
    assert_eq!(
        calls(c, RPC_SERVER_CALL_DURATION, &attrs),
        n,
        "server {method} {status}"
    );
    let attrs = client_attrs(server, method, status);
    assert_eq!(
        calls(c, RPC_CLIENT_CALL_DURATION, &attrs),
        n,
        "client {method} {status}"
    );
}

/// Reads a response stream to its end; returns how many messages came.
async fn drain(mut stream: tonic::Streaming<EchoResponse>) -> usize {
    let mut n = 0;
    while stream.message().await.unwrap().is_some() {
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_calls_record_the_semantic_conventions_durations_on_both_sides() {
    let metrics = Metrics::new();
    let (server, mut client) = TestServer::pair(|| metrics.handler()).await;
    client.unary_echo(req("hello")).await.unwrap();
    client.unary_echo(req("again")).await.unwrap();
    let c = metrics.wait_calls(2).await;

    // By default: the conventions' durations and the connection instruments, nothing of A66.
    assert_eq!(
        c.names(),
        [
            CLIENT_CONNECTION_OPEN,
            SERVER_CONNECTION_OPEN,
            RPC_CLIENT_CALL_DURATION,
            RPC_SERVER_CALL_DURATION,
        ]
    );
    for name in [RPC_SERVER_CALL_DURATION, RPC_CLIENT_CALL_DURATION] {
        let instrument = c.instrument(name);
        assert_eq!(instrument.unit, "s", "{name}");
        assert_eq!(instrument.kind, Kind::HistogramF64, "{name}");
        assert_eq!(
            instrument.points.len(),
            1,
            "{name}: {:#?}",
            instrument.points
        );
        let point = &instrument.points[0];
        assert_eq!(point.count, 2, "{name}");
        assert_eq!(
            point.bounds, SEMCONV_BUCKETS,
            "{name}: the advisory buckets"
        );
        assert!(
            point.sum > 0.0 && point.sum < 60.0,
            "{name}: {} s",
            point.sum
        );
    }
    assert_calls(&c, &server, (UNARY, "OK", false), 2);
    drop(client);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_errors_for_the_client_and_server_faults_for_the_server() {
    let metrics = Metrics::new();
    let (server, mut client) = TestServer::pair(|| metrics.handler()).await;
    for code in [Code::NotFound, Code::Internal] {
        let status = client.unary_echo(wanting("boom", code)).await.unwrap_err();
        assert_eq!(status.code(), code);
    }
    let status = client.unary_echo(req("error")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let c = metrics.wait_calls(3).await;

    let server_points = &c.instrument(RPC_SERVER_CALL_DURATION).points;
    assert_eq!(server_points.len(), 3, "{server_points:#?}");
    assert_calls(&c, &server, (UNARY, "NOT_FOUND", false), 1);
    assert_calls(&c, &server, (UNARY, "INTERNAL", true), 1);
    assert_calls(&c, &server, (UNARY, "INVALID_ARGUMENT", false), 1);
    drop(client);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_calls_are_recorded_once_per_call() {
    let metrics = Metrics::new();
    let (server, mut client) = TestServer::pair(|| metrics.handler()).await;

    let replies = client.server_streaming_echo(req("hi")).await.unwrap();
    assert_eq!(drain(replies.into_inner()).await, 3);
    let requests = tokio_stream::iter(vec![req("a"), req("b"), req("c")]);
    client.client_streaming_echo(requests).await.unwrap();
    let requests = tokio_stream::iter(vec![req("x"), req("y")]);
    let echoes = client.bidirectional_streaming_echo(requests).await.unwrap();
    assert_eq!(drain(echoes.into_inner()).await, 2);
    let c = metrics.wait_calls(3).await;

    for method in [SERVER_STREAMING, CLIENT_STREAMING, BIDI] {
        assert_calls(&c, &server, (method, "OK", false), 1);
    }
    assert_eq!(c.count(RPC_SERVER_CALL_DURATION), 3);
    assert_eq!(c.count(RPC_CLIENT_CALL_DURATION), 3);
    drop(client);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_and_deadline_exceeded_calls_are_recorded_with_their_status() {
    let metrics = Metrics::new();
    let (server, mut client) = TestServer::pair(|| metrics.handler()).await;

    // The client gives up on a stream after its first message.
    let mut slow = client
        .server_streaming_echo(req("slow"))
        .await
        .unwrap()
        .into_inner();
    assert!(slow.message().await.unwrap().is_some());
    drop(slow);
    let c = metrics.wait_calls(1).await;
    // Not the server's fault: no `error.type` on its side.
    assert_calls(&c, &server, (SERVER_STREAMING, "CANCELLED", false), 1);

    // A deadline that passes while the server sleeps.
    let mut request = Request::new(req("sleep:5000"));
    request.set_timeout(Duration::from_millis(100));
    // tonic tells the application CANCELLED; the stats events say what happened.
    client.unary_echo(request).await.unwrap_err();
    let c = metrics.wait_calls(2).await;
    assert_calls(&c, &server, (UNARY, "DEADLINE_EXCEEDED", true), 1);
    drop(client);
    server.stop().await;
}

fn request_len(message: &str) -> u64 {
    req(message).encoded_len() as u64
}

fn reply_len(message: &str) -> u64 {
    EchoResponse {
        message: message.to_owned(),
    }
    .encoded_len() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a66_instruments_on_both_sides() {
    let metrics = Metrics::new();
    let (server, mut client) = TestServer::pair(|| metrics.a66_handler()).await;
    let target = format!("127.0.0.1:{}", server.addr.port());

    client.unary_echo(req("hello")).await.unwrap();
    let replies = client.server_streaming_echo(req("hi")).await.unwrap();
    drain(replies.into_inner()).await;
    let requests = tokio_stream::iter(vec![req("a"), req("bb")]);
    client.client_streaming_echo(requests).await.unwrap();
    let failed = client.unary_echo(wanting("nope", Code::NotFound)).await;
    assert_eq!(failed.unwrap_err().code(), Code::NotFound);
    let c = metrics
        .wait_for("4 A66 calls on each side", |c| {
            // A collection reads the instruments one by one: wait until every instrument the
            // test reads has all four calls.
            [
                GRPC_SERVER_CALL_DURATION,
                GRPC_CLIENT_ATTEMPT_DURATION,
                GRPC_SERVER_CALL_SENT_TOTAL_COMPRESSED_MESSAGE_SIZE,
                GRPC_SERVER_CALL_RCVD_TOTAL_COMPRESSED_MESSAGE_SIZE,
                GRPC_CLIENT_ATTEMPT_SENT_TOTAL_COMPRESSED_MESSAGE_SIZE,
                GRPC_CLIENT_ATTEMPT_RCVD_TOTAL_COMPRESSED_MESSAGE_SIZE,
            ]
            .iter()
            .all(|name| c.count(name) >= 4)
        })
        .await;

    // Kinds, units and buckets.
    for (name, kind, unit) in [
        (GRPC_SERVER_CALL_STARTED, Kind::Counter, "{call}"),
        (GRPC_SERVER_CALL_DURATION, Kind::HistogramF64, "s"),
        (
            GRPC_SERVER_CALL_SENT_TOTAL_COMPRESSED_MESSAGE_SIZE,
            Kind::HistogramU64,
            "By",
        ),
        (
            GRPC_SERVER_CALL_RCVD_TOTAL_COMPRESSED_MESSAGE_SIZE,
            Kind::HistogramU64,
            "By",
        ),
        (GRPC_CLIENT_ATTEMPT_STARTED, Kind::Counter, "{attempt}"),
        (GRPC_CLIENT_ATTEMPT_DURATION, Kind::HistogramF64, "s"),
        (GRPC_CLIENT_CALL_DURATION, Kind::HistogramF64, "s"),
        (
            GRPC_CLIENT_ATTEMPT_SENT_TOTAL_COMPRESSED_MESSAGE_SIZE,
            Kind::HistogramU64,
            "By",
        ),
        (
            GRPC_CLIENT_ATTEMPT_RCVD_TOTAL_COMPRESSED_MESSAGE_SIZE,
            Kind::HistogramU64,
            "By",
        ),
    ] {
        let instrument = c.instrument(name);
        assert_eq!(
            (instrument.kind, instrument.unit.as_str()),
            (kind, unit),
            "{name}"
        );
        let buckets = match kind {
            Kind::HistogramF64 => A66_LATENCY_BUCKETS.to_vec(),
            Kind::HistogramU64 => a66_size_buckets(),
            _ => Vec::new(),
        };
        for point in &instrument.points {
            assert_eq!(point.bounds, buckets, "{name}");
        }
    }
    // The conventions' durations are still there.
    assert_eq!(c.count(RPC_SERVER_CALL_DURATION), 4);
    assert_eq!(c.count(RPC_CLIENT_CALL_DURATION), 4);

    // Started: per method, with the target on the client.
    let started = c.instrument(GRPC_SERVER_CALL_STARTED);
    assert_eq!(started.point(&[("grpc.method", UNARY)]).sum, 2.0);
    assert_eq!(started.point(&[("grpc.method", SERVER_STREAMING)]).sum, 1.0);
    assert_eq!(started.point(&[("grpc.method", CLIENT_STREAMING)]).sum, 1.0);
    let started = c.instrument(GRPC_CLIENT_ATTEMPT_STARTED);
    assert_eq!(
        started
            .point(&[("grpc.method", UNARY), ("grpc.target", &target)])
            .sum,
        2.0
    );

    // Durations and sizes: per method and status; the sizes are the messages' bytes.
    let server_point = |name: &str, method: &str, status: &str| {
        c.instrument(name)
            .point(&[("grpc.method", method), ("grpc.status", status)])
            .clone()
    };
    let client_point = |name: &str, method: &str, status: &str| {
        c.instrument(name)
            .point(&[
                ("grpc.method", method),
                ("grpc.status", status),
                ("grpc.target", &target),
            ])
            .clone()
    };
    // (method, status, bytes the client sent, bytes the server read, response bytes). The
    // interceptor refuses `NOT_FOUND` before the service reads the request: the server
    // received no message.
    let cases: [(&str, &str, u64, u64, u64); 4] = [
        (
            UNARY,
            "OK",
            request_len("hello"),
            request_len("hello"),
            reply_len("hello"),
        ),
        (
            SERVER_STREAMING,
            "OK",
            request_len("hi"),
            request_len("hi"),
            reply_len("hi #1") + reply_len("hi #2") + reply_len("hi #3"),
        ),
        (
            CLIENT_STREAMING,
            "OK",
            request_len("a") + request_len("bb"),
            request_len("a") + request_len("bb"),
            reply_len("a,bb"),
        ),
        (UNARY, "NOT_FOUND", request_len("nope"), 0, 0),
    ];
    for (method, status, requests, read, responses) in cases {
        let what = format!("{method} {status}");
        let duration = server_point(GRPC_SERVER_CALL_DURATION, method, status);
        assert_eq!(duration.count, 1, "server duration {what}");
        for name in [GRPC_CLIENT_ATTEMPT_DURATION, GRPC_CLIENT_CALL_DURATION] {
            assert_eq!(client_point(name, method, status).count, 1, "{name} {what}");
        }
        let sent = server_point(
            GRPC_SERVER_CALL_SENT_TOTAL_COMPRESSED_MESSAGE_SIZE,
            method,
            status,
        );
        let rcvd = server_point(
            GRPC_SERVER_CALL_RCVD_TOTAL_COMPRESSED_MESSAGE_SIZE,
            method,
            status,
        );
        assert_eq!(
            (sent.count, sent.sum as u64),
            (1, responses),
            "server sent {what}"
        );
        assert_eq!(
            (rcvd.count, rcvd.sum as u64),
            (1, read),
            "server received {what}"
        );
        let sent = client_point(
            GRPC_CLIENT_ATTEMPT_SENT_TOTAL_COMPRESSED_MESSAGE_SIZE,
            method,
            status,
        );
        let rcvd = client_point(
            GRPC_CLIENT_ATTEMPT_RCVD_TOTAL_COMPRESSED_MESSAGE_SIZE,
            method,
            status,
        );
        assert_eq!(
            (sent.count, sent.sum as u64),
            (1, requests),
            "client sent {what}"
        );
        assert_eq!(
            (rcvd.count, rcvd.sum as u64),
            (1, responses),
            "client received {what}"
        );
    }
    drop(client);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsampled_rpcs_are_measured_all_the_same() {
    let metrics = Metrics::new();
    let spans = Spans::new();
    let never = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOff)
        .with_simple_exporter(spans.exporter.clone())
        .build();
    let handlers = || {
        (
            OtelHandler::builder()
                .tracer_provider(never.clone())
                .build(),
            metrics.handler(),
        )
    };
    let server = TestServer::start(handlers()).await;
    let mut client = server.client(handlers()).await;
    for _ in 0..3 {
        client.unary_echo(req("hello")).await.unwrap();
    }
    let c = metrics.wait_calls(3).await;
    assert_calls(&c, &server, (UNARY, "OK", false), 3);
    assert!(spans.finished().is_empty(), "nothing was sampled");
    drop(client);
    server.stop().await;
}

#[test]
fn the_request_type_is_the_echo_request() {
    // Keeps the size arithmetic above honest: requests are `EchoRequest`s.
    let request: EchoRequest = req("x");
    assert_eq!(request.encoded_len(), 3);
}
