//! A long stream keeps a bounded number of message events per span, and says how many it
//! left out; the header and trailer events are kept.

mod common;

use common::otel::{Spans, TestServer, attr, event_names, of_kind, server_stream};
use common::req;
use opentelemetry::Value;
use opentelemetry::trace::SpanKind;

const MESSAGES: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_message_stream_keeps_the_cap() {
    let spans = Spans::new();
    let capped = || spans.builder().max_message_events(50).build();
    let (server, mut client) = TestServer::pair(capped).await;
    let mut replies = client
        .server_streaming_echo(req(&format!("count:{MESSAGES}")))
        .await
        .unwrap()
        .into_inner();
    let mut received = 0;
    while replies.message().await.unwrap().is_some() {
        received += 1;
    }
    assert_eq!(received, MESSAGES);

    let all = spans.wait_kind(SpanKind::Server, 1).await;
    for kind in [SpanKind::Client, SpanKind::Server] {
        let span = &of_kind(&all, &kind)[0];
        let names = event_names(span);
        let messages = names.iter().filter(|n| n.ends_with("message")).count();
        assert_eq!(messages, 50, "{kind:?}");
        // One request and ten thousand replies, fifty of them recorded.
        assert_eq!(
            attr(span, "otel_stats.message_events.dropped"),
            Some(Value::I64((MESSAGES + 1 - 50) as i64)),
            "{kind:?}"
        );
        assert_eq!(span.events.dropped_count, 0, "the SDK dropped nothing");
        let last = names.last().unwrap();
        assert!(last.ends_with("trailers"), "{kind:?}: {last}");
        assert_eq!(
            attr(span, "rpc.response.status_code"),
            Some(Value::from("OK"))
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn short_streams_report_no_drops() {
    let spans = Spans::new();
    let (server, mut client) = TestServer::pair(|| spans.handler()).await;
    server_stream(&mut client, "count:100").await;
    let all = spans.wait_kind(SpanKind::Server, 1).await;
    for kind in [SpanKind::Client, SpanKind::Server] {
        let span = &of_kind(&all, &kind)[0];
        // The default cap is 100 message events: 101 messages, one left out.
        assert_eq!(
            attr(span, "otel_stats.message_events.dropped"),
            Some(Value::I64(1)),
            "{kind:?}"
        );
        assert_eq!(span.events.events.len(), 100 + 3, "{kind:?}");
        assert_eq!(span.events.dropped_count, 0);
    }
    spans.exporter.reset();
    client.unary_echo(req("hi")).await.unwrap();
    let all = spans.wait_kind(SpanKind::Server, 1).await;
    for span in all.iter().filter(|s| s.span_kind != SpanKind::Internal) {
        assert_eq!(attr(span, "otel_stats.message_events.dropped"), None);
    }
    server.stop().await;
}
