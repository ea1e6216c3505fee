//! Span names and `rpc.method` stay bounded whatever method names callers send: a server span
//! for a method the server does not serve, or one outside the allow-list, is named `grpc`,
//! with `rpc.method = "_OTHER"` and the caller's string, capped, as `rpc.method_original`.
//! The calls come from `tonic::client::Grpc` with hand-made paths, not a generated stub.

mod common;

use common::otel::{SamplerProbe, Spans, TestServer, attr, call, only};
use opentelemetry::Value;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::trace::SpanData;
use tonic::Code;

const UNARY: &str = "grpc.examples.echo.Echo/UnaryEcho";
const NOPE: &str = "/grpc.examples.echo.Echo/NoSuchMethod";

fn string(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

/// Asserts that `span` is an unknown method's: named `grpc`, `_OTHER`, the original kept.
fn assert_unknown(span: &SpanData, original: &str) {
    assert_eq!(span.name, "grpc");
    assert_eq!(string(span, "rpc.method").as_deref(), Some("_OTHER"));
    assert_eq!(
        string(span, "rpc.method_original").as_deref(),
        Some(original)
    );
    assert_eq!(
        span.attributes
            .iter()
            .filter(|kv| kv.key.as_str() == "rpc.method")
            .count(),
        1,
        "one rpc.method"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_allow_list_a_method_the_server_lacks_is_other_at_its_end() {
    let spans = Spans::new();
    let server = TestServer::start(spans.builder().legacy_attributes(true).build()).await;
    let mut client = server.raw_client(spans.handler()).await;
    let status = call(&mut client, NOPE).await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    let done = spans.wait_kind(SpanKind::Server, 1).await;
    let server_span = only(&done, SpanKind::Server);
    assert_unknown(&server_span, "grpc.examples.echo.Echo/NoSuchMethod");
    assert!(
        attr(&server_span, "rpc.service").is_none(),
        "no service from the caller's string"
    );
    assert!(matches!(server_span.status, Status::Error { .. }));
    // The client called a method of its own: it keeps its name.
    let client_span = only(&done, SpanKind::Client);
    assert_eq!(client_span.name, "grpc.examples.echo.Echo/NoSuchMethod");
    assert_eq!(
        string(&client_span, "rpc.method").as_deref(),
        Some("grpc.examples.echo.Echo/NoSuchMethod")
    );

    // A method it serves keeps its name, and gets its rpc.method once, at the end.
    spans.exporter.reset();
    call(&mut client, &format!("/{UNARY}")).await.unwrap();
    let done = spans.wait_kind(SpanKind::Server, 1).await;
    let server_span = only(&done, SpanKind::Server);
    assert_eq!(server_span.name, UNARY);
    assert_eq!(string(&server_span, "rpc.method").as_deref(), Some(UNARY));
    assert_eq!(
        string(&server_span, "rpc.service").as_deref(),
        Some("grpc.examples.echo.Echo")
    );
    assert!(attr(&server_span, "rpc.method_original").is_none());
    drop(client);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_list_decides_before_the_sampler_runs() {
    let probe = SamplerProbe::default();
    let spans = Spans::sampled_by(&probe);
    let server = TestServer::start(spans.builder().methods([UNARY]).build()).await;
    let mut client = server.raw_client(spans.handler()).await;
    call(&mut client, &format!("/{UNARY}")).await.unwrap();
    // Served, but not in the list: `_OTHER` all the same.
    let streaming = "/grpc.examples.echo.Echo/ClientStreamingEcho";
    let _ = call(&mut client, streaming).await;
    spans.wait_kind(SpanKind::Server, 2).await;

    let shown = probe.shown(SpanKind::Server);
    let method = |i: usize| {
        common::otel::find(&shown[i].attributes, "rpc.method").map(|v| v.as_str().into_owned())
    };
    assert_eq!(
        (shown[0].name.as_str(), method(0).as_deref()),
        (UNARY, Some(UNARY))
    );
    assert_eq!(
        (shown[1].name.as_str(), method(1).as_deref()),
        ("grpc", Some("_OTHER"))
    );
    assert_eq!(
        common::otel::find(&shown[1].attributes, "rpc.method_original"),
        Some(Value::from("grpc.examples.echo.Echo/ClientStreamingEcho"))
    );
    let other = spans
        .finished()
        .into_iter()
        .find(|s| s.span_kind == SpanKind::Server && s.name == "grpc")
        .unwrap();
    assert_unknown(&other, "grpc.examples.echo.Echo/ClientStreamingEcho");
    drop(client);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_made_up_method_is_capped_in_rpc_method_original() {
    let spans = Spans::new();
    let server = TestServer::start(spans.handler()).await;
    let mut client = server.raw_client(otel_stats::NoopHandler).await;
    let long = format!("/made.Up/{}", "x".repeat(4000));
    call(&mut client, &long).await.unwrap_err();
    let done = spans.wait_kind(SpanKind::Server, 1).await;
    let span = only(&done, SpanKind::Server);
    assert_eq!(span.name, "grpc");
    let original = string(&span, "rpc.method_original").unwrap();
    assert!(original.len() <= 512, "{}", original.len());
    assert!(original.starts_with("made.Up/xxx"), "{original}");
    drop(client);
    server.stop().await;
}
