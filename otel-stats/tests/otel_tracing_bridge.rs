//! Apps that use `tracing` with `tracing-opentelemetry`: `#[instrument]` spans in a tonic
//! handler are children of the server RPC span, and a client call made inside a `tracing`
//! span is that span's child, whether or not the layer activates contexts on span entry.

mod common;

use common::echo::echo_server::Echo;
use common::otel::{Spans, TestServer, only};
use common::{EchoRequest, EchoResponse, req, service};
use opentelemetry::trace::{SpanKind, TracerProvider};
use opentelemetry_sdk::trace::SpanData;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// The echo service, its unary method instrumented the way applications do it.
struct Instrumented;

#[tracing::instrument(name = "load_user")]
async fn load_user() {
    tracing::info!("user loaded");
}

#[tonic::async_trait]
impl Echo for Instrumented {
    #[tracing::instrument(name = "unary_echo", skip_all)]
    async fn unary_echo(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<EchoResponse>, Status> {
        load_user().await;
        service::Echo.unary_echo(request).await
    }

    type ServerStreamingEchoStream = <service::Echo as Echo>::ServerStreamingEchoStream;

    async fn server_streaming_echo(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<Self::ServerStreamingEchoStream>, Status> {
        service::Echo.server_streaming_echo(request).await
    }

    async fn client_streaming_echo(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoResponse>, Status> {
        service::Echo.client_streaming_echo(request).await
    }

    type BidirectionalStreamingEchoStream =
        <service::Echo as Echo>::BidirectionalStreamingEchoStream;

    async fn bidirectional_streaming_echo(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<Self::BidirectionalStreamingEchoStream>, Status> {
        service::Echo.bidirectional_streaming_echo(request).await
    }
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name}"))
}

/// One RPC from inside a `tracing` span, to a server whose handler is instrumented; all of
/// it must be one trace, each span the child of the one before.
async fn one_trace(context_activation: bool) {
    let spans = Spans::new();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(spans.provider.tracer("app"))
        .with_context_activation(context_activation);
    // This test's runtime runs on this thread only, so a thread-local subscriber sees the
    // server's handler too.
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));

    let server = TestServer::start_with(spans.handler(), Instrumented).await;
    let mut client = server.client(spans.handler()).await;
    let caller = tracing::info_span!("caller");
    async { client.unary_echo(req("hello")).await.unwrap() }
        .instrument(caller.clone())
        .await;
    drop(caller);

    let all = spans
        .wait_for("the caller's span", |s| {
            s.iter().any(|s| s.name == "caller")
        })
        .await;
    let caller = named(&all, "caller");
    let client_span = only(&all, SpanKind::Client);
    let server_span = only(&all, SpanKind::Server);
    let handler = named(&all, "unary_echo");
    let inner = named(&all, "load_user");

    let trace = caller.span_context.trace_id();
    for span in [&client_span, &server_span, handler, inner] {
        assert_eq!(span.span_context.trace_id(), trace, "{}", span.name);
    }
    assert_eq!(client_span.parent_span_id, caller.span_context.span_id());
    assert_eq!(
        server_span.parent_span_id,
        client_span.span_context.span_id()
    );
    assert_eq!(handler.parent_span_id, server_span.span_context.span_id());
    assert_eq!(inner.parent_span_id, handler.span_context.span_id());
    assert!(inner.events.events.iter().any(|e| e.name == "user loaded"));
    server.stop().await;
}

#[tokio::test]
async fn with_context_activation() {
    one_trace(true).await;
}

#[tokio::test]
async fn without_context_activation() {
    one_trace(false).await;
}
