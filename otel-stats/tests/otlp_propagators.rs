//! `OTEL_PROPAGATORS` as `init_otlp_with` installs it, seen by handlers that use the global
//! propagator: `none` propagates nothing (the handlers' W3C fallback for an unconfigured
//! process does not come back), and the default joins client and server in one trace.
//!
//! The global propagator belongs to the process: this binary's only test sets it twice, in
//! order.

mod common;

use common::otel::{Spans, TestServer};
use common::req;
use opentelemetry::trace::SpanKind;
use otel_stats::export::{OtlpConfig, Propagator, Protocol};
use otel_stats::init_otlp_with;

/// The trace ids of the client and the server span of one unary RPC, through handlers that
/// use the global propagator.
async fn one_rpc() -> (opentelemetry::trace::TraceId, opentelemetry::trace::TraceId) {
    let spans = Spans::new();
    let (server, mut client) = TestServer::pair(|| spans.handler()).await;
    client.unary_echo(req("hello")).await.unwrap();
    let client_span = spans.wait_kind(SpanKind::Client, 1).await;
    let server_span = spans.wait_kind(SpanKind::Server, 1).await;
    drop(client);
    server.stop().await;
    let trace = |s: &[opentelemetry_sdk::trace::SpanData], kind: SpanKind| {
        s.iter()
            .find(|s| s.span_kind == kind)
            .unwrap()
            .span_context
            .trace_id()
    };
    (
        trace(&client_span, SpanKind::Client),
        trace(&server_span, SpanKind::Server),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn none_propagates_nothing_and_the_default_joins_the_trace() {
    // Nothing is exported: only the propagator matters here.
    let config = OtlpConfig::new(Protocol::Grpc, "http://127.0.0.1:4317")
        .unwrap()
        .with_traces(None)
        .with_metrics(None);

    let guard = init_otlp_with("propagators", config.clone().with_propagators([])).unwrap();
    let (client, server) = one_rpc().await;
    assert_ne!(client, server, "with none, the server starts its own trace");
    drop(guard);

    assert_eq!(
        config.propagators,
        [Propagator::TraceContext, Propagator::Baggage],
        "the default"
    );
    let guard = init_otlp_with("propagators", config).unwrap();
    let (client, server) = one_rpc().await;
    assert_eq!(client, server, "trace context joins the two sides");
    drop(guard);
}
