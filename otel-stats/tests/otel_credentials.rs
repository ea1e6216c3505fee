//! Metadata is recorded only when allow-listed, and credentials never, even when listed.

mod common;

use common::otel::{Spans, TestServer, attr, of_kind};
use common::req;
use opentelemetry::trace::SpanKind;
use opentelemetry::{Array, Value};
use opentelemetry_sdk::trace::SpanData;
use tonic::metadata::MetadataValue;

const SECRET: &str = "s3cr3t";

/// Every string in a span: its name, attributes, events and their attributes.
fn texts(span: &SpanData) -> Vec<String> {
    let mut out = vec![span.name.to_string()];
    let kvs = span
        .attributes
        .iter()
        .chain(span.events.events.iter().flat_map(|e| e.attributes.iter()));
    for kv in kvs {
        out.push(kv.key.to_string());
        out.push(kv.value.to_string());
    }
    out.extend(span.events.events.iter().map(|e| e.name.to_string()));
    out
}

#[tokio::test]
async fn credentials_are_absent_from_every_span_even_if_allow_listed() {
    let spans = Spans::new();
    let listed = || {
        spans
            .builder()
            .record_metadata([
                "Authorization",
                "cookie",
                "proxy-authorization",
                "x-api-key",
                "token-bin",
                "x-tenant",
            ])
            .build()
    };
    let (server, mut client) = TestServer::pair(listed).await;
    let mut request = tonic::Request::new(req("hello"));
    let md = request.metadata_mut();
    md.insert("authorization", format!("Bearer {SECRET}").parse().unwrap());
    md.insert("cookie", format!("session={SECRET}").parse().unwrap());
    md.insert(
        "proxy-authorization",
        format!("Basic {SECRET}").parse().unwrap(),
    );
    md.insert("x-api-key", SECRET.parse().unwrap());
    md.insert_bin("token-bin", MetadataValue::from_bytes(SECRET.as_bytes()));
    md.insert("x-tenant", "acme".parse().unwrap());
    md.insert("x-not-listed", "visible-nowhere".parse().unwrap());
    client.unary_echo(request).await.unwrap();
    drop(client);
    server.stop().await;

    let all = spans.wait_kind(SpanKind::Internal, 2).await;
    assert!(all.len() >= 4);
    for span in &all {
        for text in texts(span) {
            assert!(!text.contains(SECRET), "{}: {text}", span.name);
            assert!(!text.contains("visible-nowhere"), "{}: {text}", span.name);
        }
    }
    // What is listed and not a credential is recorded, on both sides.
    for kind in [SpanKind::Client, SpanKind::Server] {
        let span = &of_kind(&all, &kind)[0];
        assert_eq!(
            attr(span, "rpc.request.metadata.x-tenant"),
            Some(Value::Array(Array::String(vec!["acme".into()]))),
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn nothing_is_recorded_without_an_allow_list() {
    let spans = Spans::new();
    let (server, mut client) = TestServer::pair(|| spans.handler()).await;
    let mut request = tonic::Request::new(req("hello"));
    request
        .metadata_mut()
        .insert("x-tenant", "acme".parse().unwrap());
    client.unary_echo(request).await.unwrap();
    let all = spans.wait_kind(SpanKind::Server, 1).await;
    for span in &all {
        assert!(
            span.attributes
                .iter()
                .all(|kv| !kv.key.as_str().contains("metadata"))
        );
    }
    server.stop().await;
}
