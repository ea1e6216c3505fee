//! Who is whose parent: server RPC spans under their connection span, under a remote parent
//! (the connection span then a link), or, for a public endpoint, the other way round; client
//! RPC spans under the caller's context, and client and server in one trace. With
//! `rpc_roots`, server RPC spans of callers without trace context are roots, linked to their
//! connection span, and sampled per RPC.

mod common;

use common::otel::{Spans, TestServer, of_kind, only};
use common::req;
use opentelemetry::Context;
use opentelemetry::KeyValue;
use opentelemetry::context::FutureExt;
use opentelemetry::trace::{Link, SpanContext, TraceId};
use opentelemetry::trace::{SpanId, SpanKind, TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, Sampler, SamplingDecision, SamplingResult, SdkTracerProvider,
    ShouldSample, SpanData,
};
use otel_stats::{NoopHandler, OtelHandler};

/// The server's connection span: the INTERNAL span whose local port is the server's.
async fn server_connection(spans: &Spans, server: &TestServer) -> SpanData {
    let port = opentelemetry::Value::I64(server.addr.port().into());
    let all = spans
        .wait_for("the server's connection span", |s| {
            s.iter()
                .any(|s| common::otel::attr(s, "network.local.port") == Some(port.clone()))
        })
        .await;
    all.into_iter()
        .find(|s| common::otel::attr(s, "network.local.port") == Some(port.clone()))
        .unwrap()
}

/// One RPC from a traced client to a server with `handler`: the server's connection span,
/// the client span and the server span.
async fn one_traced_rpc(spans: &Spans, handler: OtelHandler) -> (SpanData, SpanData, SpanData) {
    let server = TestServer::start(handler).await;
    let mut client = server.client(spans.handler()).await;
    client.unary_echo(req("hello")).await.unwrap();
    drop(client);
    let conn = server_connection(spans, &server).await;
    let all = spans.wait_kind(SpanKind::Server, 1).await;
    server.stop().await;
    (
        conn,
        only(&all, SpanKind::Client),
        only(&all, SpanKind::Server),
    )
}

/// Two RPCs, on one connection, from a client that sends no trace context to a server with
/// `handler`: the server's connection span and the two server RPC spans.
async fn two_untraced_rpcs(spans: &Spans, handler: OtelHandler) -> (SpanData, Vec<SpanData>) {
    let server = TestServer::start(handler).await;
    let mut client = server.client(NoopHandler).await;
    client.unary_echo(req("one")).await.unwrap();
    client.unary_echo(req("two")).await.unwrap();
    drop(client);
    let conn = server_connection(spans, &server).await;
    let rpcs = of_kind(
        &spans.wait_kind(SpanKind::Server, 2).await,
        &SpanKind::Server,
    );
    assert_eq!(rpcs.len(), 2);
    server.stop().await;
    (conn, rpcs)
}

#[tokio::test]
async fn without_a_remote_parent_the_connection_span_is_the_parent() {
    let spans = Spans::new();
    let (conn, rpcs) = two_untraced_rpcs(&spans, spans.handler()).await;
    for rpc in &rpcs {
        assert_eq!(rpc.parent_span_id, conn.span_context.span_id());
        assert_eq!(rpc.span_context.trace_id(), conn.span_context.trace_id());
        assert!(!rpc.parent_span_is_remote);
        assert!(rpc.links.links.is_empty());
    }
}

#[tokio::test]
async fn a_remote_parent_wins_and_the_connection_span_becomes_a_link() {
    let spans = Spans::new();
    let (server, mut client) = TestServer::pair(|| spans.handler()).await;

    // The caller's own span: the client RPC span must be its child.
    let tracer = spans.provider.tracer("app");
    let caller = tracer.start("caller");
    let caller_cx = Context::current_with_span(caller);
    client
        .unary_echo(req("hello"))
        .with_context(caller_cx.clone())
        .await
        .unwrap();
    caller_cx.span().end();
    drop(client);

    let conn = server_connection(&spans, &server).await;
    let all = spans.wait_kind(SpanKind::Server, 1).await;
    let caller = all.iter().find(|s| s.name == "caller").unwrap();
    let client_span = only(&all, SpanKind::Client);
    let server_span = only(&all, SpanKind::Server);

    // One trace, across a real connection.
    let trace = caller.span_context.trace_id();
    assert_eq!(client_span.span_context.trace_id(), trace);
    assert_eq!(server_span.span_context.trace_id(), trace);
    assert_eq!(client_span.parent_span_id, caller.span_context.span_id());
    assert_eq!(
        server_span.parent_span_id,
        client_span.span_context.span_id()
    );
    assert!(server_span.parent_span_is_remote);

    // The server's connection span is a link, in its own trace.
    assert_eq!(server_span.links.links.len(), 1);
    assert_eq!(server_span.links.links[0].span_context, conn.span_context);
    assert_ne!(conn.span_context.trace_id(), trace);

    // The client RPC span is never a child of the client's connection span.
    let client_conns: Vec<_> = spans
        .wait_kind(SpanKind::Internal, 2)
        .await
        .into_iter()
        .filter(|s| s.name == "grpc.connection" && s.span_context != conn.span_context)
        .collect();
    assert_eq!(client_conns.len(), 1);
    for c in &client_conns {
        assert_ne!(client_span.parent_span_id, c.span_context.span_id());
    }
    server.stop().await;
}

#[tokio::test]
async fn a_public_endpoint_keeps_the_connection_parent_and_links_the_remote() {
    let spans = Spans::new();
    let handler = spans.builder().public_endpoint(true).build();
    let (conn, client_span, server_span) = one_traced_rpc(&spans, handler).await;
    assert_eq!(server_span.parent_span_id, conn.span_context.span_id());
    assert!(!server_span.parent_span_is_remote);
    assert_eq!(
        server_span.span_context.trace_id(),
        conn.span_context.trace_id()
    );
    assert_eq!(server_span.links.links.len(), 1);
    let link = &server_span.links.links[0].span_context;
    assert_eq!(link.span_id(), client_span.span_context.span_id());
    assert_eq!(link.trace_id(), client_span.span_context.trace_id());
    assert!(link.is_remote());
}

#[tokio::test]
async fn a_malformed_traceparent_is_ignored() {
    let spans = Spans::new();
    let server = TestServer::start(spans.handler()).await;
    let mut client = server.client(NoopHandler).await;
    for bad in [
        "garbage",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ] {
        let mut request = tonic::Request::new(req("hello"));
        request
            .metadata_mut()
            .insert("traceparent", bad.parse().unwrap());
        client.unary_echo(request).await.unwrap();
    }
    drop(client);
    let conn = server_connection(&spans, &server).await;
    let rpcs = of_kind(
        &spans.wait_kind(SpanKind::Server, 4).await,
        &SpanKind::Server,
    );
    for rpc in rpcs {
        assert_eq!(rpc.parent_span_id, conn.span_context.span_id());
        assert!(rpc.links.links.is_empty());
    }
    server.stop().await;
}

#[tokio::test]
async fn a_client_span_without_a_caller_span_is_a_root() {
    let spans = Spans::new();
    let server = TestServer::start(NoopHandler).await;
    let mut client = server.client(spans.handler()).await;
    client.unary_echo(req("hello")).await.unwrap();
    let client_span = only(
        &spans.wait_kind(SpanKind::Client, 1).await,
        SpanKind::Client,
    );
    assert_eq!(client_span.parent_span_id, SpanId::INVALID);
    server.stop().await;
}

#[tokio::test]
async fn with_rpc_roots_each_rpc_is_a_root_linked_to_its_connection() {
    let spans = Spans::new();
    let handler = spans.builder().rpc_roots(true).build();
    let (conn, rpcs) = two_untraced_rpcs(&spans, handler).await;
    for rpc in &rpcs {
        assert_eq!(rpc.parent_span_id, SpanId::INVALID, "a root");
        assert_ne!(rpc.span_context.trace_id(), conn.span_context.trace_id());
        let links: Vec<&SpanContext> = rpc.links.iter().map(|l| &l.span_context).collect();
        assert_eq!(links, [&conn.span_context]);
    }
    assert_ne!(
        rpcs[0].span_context.trace_id(),
        rpcs[1].span_context.trace_id(),
        "a trace per RPC"
    );
}

#[tokio::test]
async fn with_rpc_roots_a_callers_trace_context_still_wins() {
    let spans = Spans::new();
    let handler = spans.builder().rpc_roots(true).build();
    let (conn, client_span, server_span) = one_traced_rpc(&spans, handler).await;
    assert_eq!(
        server_span.parent_span_id,
        client_span.span_context.span_id()
    );
    assert_eq!(
        server_span.span_context.trace_id(),
        client_span.span_context.trace_id()
    );
    let links: Vec<&SpanContext> = server_span.links.iter().map(|l| &l.span_context).collect();
    assert_eq!(links, [&conn.span_context]);
}

/// Samples everything but connection spans.
#[derive(Debug, Clone)]
struct NoConnections;

impl ShouldSample for NoConnections {
    fn should_sample(
        &self,
        _parent: Option<&Context>,
        _trace_id: TraceId,
        name: &str,
        _kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let decision = if name == "grpc.connection" {
            SamplingDecision::Drop
        } else {
            SamplingDecision::RecordAndSample
        };
        SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state: Default::default(),
        }
    }
}

/// The server RPC spans exported by a parent-based sampler that drops connection spans, with
/// or without `rpc_roots`, for three RPCs of a caller without trace context.
async fn sampled_server_rpcs(rpc_roots: bool) -> usize {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(NoConnections)))
        .with_simple_exporter(exporter.clone())
        .build();
    let handler = OtelHandler::builder()
        .tracer_provider(provider.clone())
        .rpc_roots(rpc_roots)
        .build();
    let server = TestServer::start(handler).await;
    let mut client = server.client(NoopHandler).await;
    for _ in 0..3 {
        client.unary_echo(req("hello")).await.unwrap();
    }
    drop(client);
    server.stop().await;
    let spans = exporter.get_finished_spans().unwrap();
    assert!(spans.iter().all(|s| s.name != "grpc.connection"));
    of_kind(&spans, &SpanKind::Server).len()
}

#[tokio::test]
async fn rpc_roots_are_sampled_per_rpc_not_per_connection() {
    // The connection's sampling decision is its RPCs' by default ...
    assert_eq!(sampled_server_rpcs(false).await, 0);
    // ... and each RPC's own with `rpc_roots`.
    assert_eq!(sampled_server_rpcs(true).await, 3);
}
