//! The status of RPC spans for every gRPC code, on both sides: client spans fail for any code
//! but OK, server spans only for the codes that are the server's fault.

mod common;

use std::time::Duration;

use common::otel::{Spans, TestServer, attr, of_kind, wanting};
use common::req;
use opentelemetry::Value;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::trace::SpanData;
use tonic::Code;

const SERVER_ERRORS: [Code; 6] = [
    Code::Unknown,
    Code::DeadlineExceeded,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
];

/// The spec's name of `code`, `INVALID_ARGUMENT` for tonic's `InvalidArgument`.
fn name(code: Code) -> String {
    let mut out = String::new();
    for (i, c) in format!("{code:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn code_of(span: &SpanData) -> Option<Value> {
    attr(span, "rpc.response.status_code")
}

/// Checks one span's status, `error.type` and status description against the rules.
fn check(span: &SpanData, code: Code, failed: bool, message: &str) {
    let label = format!("{:?} {:?}", span.span_kind, code);
    assert_eq!(code_of(span), Some(Value::from(name(code))), "{label}");
    if failed {
        assert_eq!(span.status, Status::error(message.to_owned()), "{label}");
        assert_eq!(
            attr(span, "error.type"),
            Some(Value::from(name(code))),
            "{label}"
        );
    } else {
        assert_eq!(span.status, Status::Unset, "{label}");
        assert_eq!(attr(span, "error.type"), None, "{label}");
    }
}

#[tokio::test]
async fn every_code_maps_to_a_span_status_on_both_sides() {
    let spans = Spans::new();
    let (server, mut client) = TestServer::pair(|| spans.handler()).await;
    let codes: Vec<Code> = (0..=16).map(Code::from_i32).collect();
    for &code in &codes {
        let result = client.unary_echo(wanting("hello", code)).await;
        assert_eq!(result.err().map_or(Code::Ok, |s| s.code()), code);
    }
    let all = spans.wait_kind(SpanKind::Server, codes.len()).await;
    for &code in &codes {
        let message = format!("wanted {}", code as i32);
        let with_code = |kind: SpanKind| {
            let found: Vec<_> = of_kind(&all, &kind)
                .into_iter()
                .filter(|s| code_of(s) == Some(Value::from(name(code))))
                .collect();
            assert_eq!(found.len(), 1, "{kind:?} {code:?}");
            found.into_iter().next().unwrap()
        };
        check(
            &with_code(SpanKind::Client),
            code,
            code != Code::Ok,
            &message,
        );
        check(
            &with_code(SpanKind::Server),
            code,
            SERVER_ERRORS.contains(&code),
            &message,
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn application_errors_deadlines_and_cancels() {
    let spans = Spans::new();
    let (server, mut client) = TestServer::pair(|| spans.handler()).await;

    // The echo service's own error: the client's fault, so only the client span fails.
    let status = client.unary_echo(req("error please")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let all = spans.wait_kind(SpanKind::Server, 1).await;
    check(
        &of_kind(&all, &SpanKind::Client)[0],
        Code::InvalidArgument,
        true,
        "echo: requested error",
    );
    check(
        &of_kind(&all, &SpanKind::Server)[0],
        Code::InvalidArgument,
        false,
        "",
    );
    spans.exporter.reset();

    // A deadline that passes while the server sleeps fails both sides.
    let mut late = tonic::Request::new(req("sleep:5000"));
    late.set_timeout(Duration::from_millis(50));
    let status = client.unary_echo(late).await.unwrap_err();
    // tonic's own word for its timeout is CANCELLED; the spans say what happened.
    assert!(matches!(
        status.code(),
        Code::Cancelled | Code::DeadlineExceeded
    ));
    let all = spans.wait_kind(SpanKind::Server, 1).await;
    for kind in [SpanKind::Client, SpanKind::Server] {
        let span = &of_kind(&all, &kind)[0];
        assert_eq!(
            code_of(span),
            Some(Value::from("DEADLINE_EXCEEDED")),
            "{kind:?}"
        );
        assert_eq!(
            attr(span, "error.type"),
            Some(Value::from("DEADLINE_EXCEEDED"))
        );
        assert!(matches!(span.status, Status::Error { .. }), "{kind:?}");
    }
    spans.exporter.reset();

    // A stream the client drops half-way: CANCELLED, an error for the client only.
    let mut replies = client
        .server_streaming_echo(req("slow"))
        .await
        .unwrap()
        .into_inner();
    assert!(replies.message().await.unwrap().is_some());
    drop(replies);
    let all = spans.wait_kind(SpanKind::Server, 1).await;
    let client_span = &of_kind(&all, &SpanKind::Client)[0];
    let server_span = &of_kind(&all, &SpanKind::Server)[0];
    assert_eq!(code_of(client_span), Some(Value::from("CANCELLED")));
    assert!(matches!(client_span.status, Status::Error { .. }));
    assert_eq!(code_of(server_span), Some(Value::from("CANCELLED")));
    assert_eq!(server_span.status, Status::Unset);
    server.stop().await;
}
