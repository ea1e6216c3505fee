//! RPC and connection spans: names, kinds, attributes, and every span event with its
//! attributes, in order, on both sides of real RPCs.

mod common;

use common::otel::{
    SamplerProbe, Spans, TestServer, assert_events_in_time_order, attr, event_names, find, of_kind,
    only, rpc_spans, server_stream,
};
use common::{EchoClient, req};
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{KeyValue, Value};
use otel_stats::ClientStatsLayer;
use tonic::codec::CompressionEncoding;
use tonic::transport::Endpoint;

const UNARY_NAME: &str = "grpc.examples.echo.Echo/UnaryEcho";

fn s(v: &str) -> Option<Value> {
    Some(Value::from(v.to_owned()))
}

fn i(v: i64) -> Option<Value> {
    Some(Value::I64(v))
}

#[tokio::test]
async fn unary_spans_have_names_kinds_attributes_and_events_in_order() {
    let spans = Spans::new();
    let (server, mut client) = TestServer::pair(|| spans.handler()).await;
    let reply = client.unary_echo(req("hello")).await.unwrap().into_inner();
    assert_eq!(reply.message, "hello");

    let rpcs = spans.wait_kind(SpanKind::Server, 1).await;
    let client_span = only(&rpcs, SpanKind::Client);
    let server_span = only(&rpcs, SpanKind::Server);
    for span in [&client_span, &server_span] {
        assert_eq!(span.name, UNARY_NAME);
        assert_eq!(attr(span, "rpc.system.name"), s("grpc"));
        assert_eq!(attr(span, "rpc.method"), s(UNARY_NAME));
        assert_eq!(attr(span, "rpc.response.status_code"), s("OK"));
        assert_eq!(attr(span, "error.type"), None);
        assert_eq!(attr(span, "rpc.system"), None, "old names only on opt-in");
        assert_eq!(span.status, Status::Unset);
        assert_eq!(span.instrumentation_scope.name(), "otel-stats");
        assert_events_in_time_order(span);
    }
    assert_eq!(attr(&client_span, "server.address"), s("127.0.0.1"));
    assert_eq!(
        attr(&client_span, "server.port"),
        i(server.addr.port().into())
    );
    assert_eq!(attr(&server_span, "network.peer.address"), s("127.0.0.1"));
    assert!(attr(&server_span, "network.peer.port").is_some());
    // The client's channel (one endpoint) says which connection carried the RPC.
    assert_eq!(attr(&client_span, "network.peer.address"), s("127.0.0.1"));
    assert_eq!(
        attr(&client_span, "network.peer.port"),
        i(server.addr.port().into())
    );
    // The server as the client named it (tonic's channel sends the endpoint as `:authority`).
    assert_eq!(attr(&server_span, "server.address"), s("127.0.0.1"));
    assert_eq!(
        attr(&server_span, "server.port"),
        i(server.addr.port().into())
    );
    for span in [&client_span, &server_span] {
        assert_eq!(attr(span, "otel_stats.messages.sent"), i(1));
        assert_eq!(attr(span, "otel_stats.messages.received"), i(1));
    }

    // grpc-go's order: client `OutHeader OutPayload InHeader InPayload InTrailer`, server
    // `InHeader InPayload OutHeader OutPayload OutTrailer`.
    assert_eq!(
        event_names(&client_span),
        [
            "Outbound headers",
            "Outbound message",
            "Inbound headers",
            "Inbound message",
            "Inbound trailers"
        ]
    );
    assert_eq!(
        event_names(&server_span),
        [
            "Inbound headers",
            "Inbound message",
            "Outbound headers",
            "Outbound message",
            "Outbound trailers"
        ]
    );
    for span in [&client_span, &server_span] {
        for event in &span.events.events {
            let a = &event.attributes;
            if event.name.ends_with("message") {
                // "hello": a tag byte, a length byte and five bytes.
                assert_eq!(find(a, "sequence-number"), i(0));
                assert_eq!(find(a, "message-size"), i(7));
                assert_eq!(find(a, "message-size-compressed"), None);
            } else if event.name.ends_with("headers") {
                assert_eq!(find(a, "compression"), s("identity"));
                assert!(matches!(find(a, "metadata-entries"), Some(Value::I64(n)) if n > 0));
            } else {
                assert_eq!(find(a, "trailers-only"), Some(Value::Bool(false)));
                assert!(matches!(find(a, "metadata-entries"), Some(Value::I64(n)) if n >= 1));
            }
        }
    }

    // Connection spans end with their connections.
    drop(client);
    let port = server.addr.port();
    server.stop().await;
    let all = spans.wait_kind(SpanKind::Internal, 2).await;
    let conns = of_kind(&all, &SpanKind::Internal);
    for conn in &conns {
        assert_eq!(conn.name, "grpc.connection");
        assert!(!conn.parent_span_id.to_string().is_empty());
        assert_eq!(
            conn.parent_span_id,
            opentelemetry::trace::SpanId::INVALID,
            "a root"
        );
        assert!(attr(conn, "network.peer.address").is_some());
        assert!(attr(conn, "network.local.port").is_some());
        assert!(
            matches!(attr(conn, "otel_stats.connection.bytes_read"), Some(Value::I64(n)) if n > 0)
        );
        assert!(
            matches!(attr(conn, "otel_stats.connection.bytes_written"), Some(Value::I64(n)) if n > 0)
        );
    }
    let server_conn = conns
        .iter()
        .find(|c| attr(c, "network.local.port") == i(port.into()));
    let server_conn = server_conn.expect("the server's connection span");
    assert_eq!(
        attr(server_conn, "network.peer.port"),
        attr(&server_span, "network.peer.port")
    );
}

#[tokio::test]
async fn streams_number_each_message_per_direction() {
    let spans = Spans::new();
    let (server, mut client) = TestServer::pair(|| spans.handler()).await;

    let messages = ["a", "bb", "ccc"].map(req);
    let reply = client
        .client_streaming_echo(tokio_stream::iter(messages))
        .await
        .unwrap();
    assert_eq!(reply.into_inner().message, "a,bb,ccc");
    server_stream(&mut client, "x").await;

    let all = spans.wait_kind(SpanKind::Server, 2).await;
    let by_name = |kind: SpanKind, name: &str| {
        of_kind(&all, &kind)
            .into_iter()
            .find(|s| s.name.ends_with(name))
            .unwrap()
    };
    let seqs = |span: &opentelemetry_sdk::trace::SpanData,
                name: &str|
     -> Vec<(Option<Value>, Option<Value>)> {
        span.events
            .events
            .iter()
            .filter(|e| e.name == name)
            .map(|e| {
                (
                    find(&e.attributes, "sequence-number"),
                    find(&e.attributes, "message-size"),
                )
            })
            .collect()
    };
    let client_streaming = by_name(SpanKind::Client, "/ClientStreamingEcho");
    assert_eq!(
        seqs(&client_streaming, "Outbound message"),
        [(i(0), i(3)), (i(1), i(4)), (i(2), i(5))]
    );
    let server_streaming = by_name(SpanKind::Server, "/ServerStreamingEcho");
    assert_eq!(seqs(&server_streaming, "Inbound message").len(), 1);
    assert_eq!(
        seqs(&server_streaming, "Outbound message")
            .into_iter()
            .map(|(seq, _)| seq)
            .collect::<Vec<_>>(),
        [i(0), i(1), i(2)]
    );
    server.stop().await;
}

#[tokio::test]
async fn compressed_messages_report_their_compressed_size() {
    let spans = Spans::new();
    let server = TestServer::start(spans.handler()).await;
    let mut client = server
        .client(spans.handler())
        .await
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip);
    client.unary_echo(req("squeeze me")).await.unwrap();

    let rpcs = spans.wait_kind(SpanKind::Server, 1).await;
    for span in rpc_spans(&rpcs).iter() {
        let messages: Vec<_> = span
            .events
            .events
            .iter()
            .filter(|e| e.name.ends_with("message"))
            .collect();
        assert_eq!(messages.len(), 2);
        for m in messages {
            assert_eq!(
                find(&m.attributes, "message-size"),
                None,
                "unknown once compressed"
            );
            assert!(
                matches!(find(&m.attributes, "message-size-compressed"), Some(Value::I64(n)) if n > 0)
            );
        }
        let request_headers = if span.span_kind == SpanKind::Client {
            "Outbound headers"
        } else {
            "Inbound headers"
        };
        let headers = span
            .events
            .events
            .iter()
            .find(|e| e.name == request_headers)
            .unwrap();
        assert_eq!(find(&headers.attributes, "compression"), s("gzip"));
    }
    server.stop().await;
}

#[tokio::test]
async fn events_can_be_turned_off() {
    let spans = Spans::new();
    let quiet = || {
        spans
            .builder()
            .message_events(false)
            .header_events(false)
            .build()
    };
    let (server, mut client) = TestServer::pair(quiet).await;
    client.unary_echo(req("hello")).await.unwrap();
    let three = tokio_stream::iter(vec![req("a"), req("b"), req("c")]);
    client.client_streaming_echo(three).await.unwrap();
    let rpcs = spans.wait_kind(SpanKind::Server, 2).await;
    for span in rpc_spans(&rpcs).iter() {
        assert!(span.events.events.is_empty(), "{:?}", event_names(span));
        assert_eq!(attr(span, "rpc.response.status_code"), s("OK"));
    }
    // How many messages each RPC carried shows without the events.
    let counts = |kind: SpanKind| -> Vec<(String, Option<Value>, Option<Value>)> {
        let mut counts: Vec<_> = of_kind(&rpcs, &kind)
            .iter()
            .map(|span| {
                (
                    span.name.to_string(),
                    attr(span, "otel_stats.messages.sent"),
                    attr(span, "otel_stats.messages.received"),
                )
            })
            .collect();
        counts.sort_by(|a, b| a.0.cmp(&b.0));
        counts
    };
    let streaming = "grpc.examples.echo.Echo/ClientStreamingEcho".to_owned();
    assert_eq!(
        counts(SpanKind::Client),
        [
            (streaming.clone(), i(3), i(1)),
            (UNARY_NAME.to_owned(), i(1), i(1))
        ]
    );
    assert_eq!(
        counts(SpanKind::Server),
        [(streaming, i(1), i(3)), (UNARY_NAME.to_owned(), i(1), i(1))]
    );
    server.stop().await;

    let headers_only = || spans.builder().message_events(false).build();
    let (server, mut client) = TestServer::pair(headers_only).await;
    spans.exporter.reset();
    client.unary_echo(req("hello")).await.unwrap();
    let rpcs = spans.wait_kind(SpanKind::Server, 1).await;
    assert_eq!(
        event_names(&only(&rpcs, SpanKind::Client)),
        ["Outbound headers", "Inbound headers", "Inbound trailers"]
    );
    server.stop().await;
}

#[tokio::test]
async fn filtered_rpcs_make_no_span_and_send_no_trace_context() {
    let spans = Spans::new();
    let server = TestServer::start(
        spans
            .builder()
            .filter(|info| !info.full_method().ends_with("/ClientStreamingEcho"))
            .build(),
    )
    .await;
    let no_unary = spans
        .builder()
        .filter(|info| !info.full_method().ends_with("/UnaryEcho"))
        .build();
    let mut client = server.client(no_unary).await;
    client.unary_echo(req("hello")).await.unwrap();
    server_stream(&mut client, "x").await;
    client
        .client_streaming_echo(tokio_stream::iter([req("a")]))
        .await
        .unwrap();

    let all = spans.wait_kind(SpanKind::Server, 2).await;
    let names = |kind| -> Vec<String> {
        let mut names: Vec<_> = of_kind(&all, &kind)
            .iter()
            .map(|s| s.name.to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(SpanKind::Client),
        [
            "grpc.examples.echo.Echo/ClientStreamingEcho",
            "grpc.examples.echo.Echo/ServerStreamingEcho"
        ]
    );
    assert_eq!(
        names(SpanKind::Server),
        [
            "grpc.examples.echo.Echo/ServerStreamingEcho",
            "grpc.examples.echo.Echo/UnaryEcho"
        ]
    );
    // The client sent no trace context for the RPC it filtered out.
    let unary = of_kind(&all, &SpanKind::Server)
        .into_iter()
        .find(|s| s.name == UNARY_NAME)
        .unwrap();
    assert!(!unary.parent_span_is_remote);
    assert!(
        of_kind(&all, &SpanKind::Client)
            .iter()
            .all(|c| c.span_context.trace_id() != unary.span_context.trace_id())
    );
    server.stop().await;
}

#[tokio::test]
async fn extra_attributes_and_the_old_names_on_opt_in() {
    let spans = Spans::new();
    let handler = || {
        spans
            .builder()
            .attribute(KeyValue::new("deployment.environment.name", "test"))
            .legacy_attributes(true)
            .build()
    };
    let (server, mut client) = TestServer::pair(handler).await;
    client.unary_echo(req("hello")).await.unwrap();
    let rpcs = spans.wait_kind(SpanKind::Server, 1).await;
    for kind in [SpanKind::Client, SpanKind::Server] {
        let span = only(&rpcs, kind);
        assert_eq!(attr(&span, "deployment.environment.name"), s("test"));
        assert_eq!(attr(&span, "rpc.system"), s("grpc"));
        assert_eq!(attr(&span, "rpc.service"), s("grpc.examples.echo.Echo"));
        assert_eq!(attr(&span, "rpc.grpc.status_code"), i(0));
        assert_eq!(attr(&span, "rpc.system.name"), s("grpc"));
        assert_eq!(attr(&span, "rpc.response.status_code"), s("OK"));
    }
    server.stop().await;
}

#[tokio::test]
async fn an_rpc_whose_span_cannot_be_made_leaves_the_connection_span_alone() {
    // The filter is user code; when it panics the RPC goes on untraced. Its `End` must not
    // end the span it would otherwise have been a child of: the connection's.
    let spans = Spans::new();
    let server = TestServer::start(
        spans
            .builder()
            .filter(|info| {
                assert!(!info.full_method().ends_with("/UnaryEcho"), "filter bug");
                true
            })
            .build(),
    )
    .await;
    let mut client = server.client(otel_stats::NoopHandler).await;
    for _ in 0..3 {
        client.unary_echo(req("hello")).await.unwrap();
    }
    server_stream(&mut client, "x").await;
    drop(client);
    server.stop().await;

    let all = spans
        .wait_for("the connection span", |s| {
            s.iter().any(|s| s.name == "grpc.connection")
        })
        .await;
    let rpcs = of_kind(&all, &SpanKind::Server);
    assert_eq!(rpcs.len(), 1, "only the streaming RPC is traced");
    let conns: Vec<_> = all.iter().filter(|s| s.name == "grpc.connection").collect();
    assert_eq!(conns.len(), 1);
    // Ended at ConnEnd (with its byte counts), not by an untraced RPC's End.
    assert!(
        matches!(attr(conns[0], "otel_stats.connection.bytes_read"), Some(Value::I64(n)) if n > 0)
    );
    assert!(conns[0].end_time >= rpcs[0].end_time);
}

#[tokio::test]
async fn a_server_span_names_the_server_by_the_authority_the_client_sent() {
    let spans = Spans::new();
    let server = TestServer::start(spans.handler()).await;
    let endpoint = Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .origin("http://echo.example:8443".parse().unwrap());
    let channel = ClientStatsLayer::new(otel_stats::NoopHandler)
        .connect(endpoint)
        .await
        .unwrap();
    let mut client = EchoClient::new(channel);
    client.unary_echo(req("hello")).await.unwrap();
    let span = only(
        &spans.wait_kind(SpanKind::Server, 1).await,
        SpanKind::Server,
    );
    assert_eq!(attr(&span, "server.address"), s("echo.example"));
    assert_eq!(attr(&span, "server.port"), i(8443));
    drop(client);
    server.stop().await;
}

#[tokio::test]
async fn samplers_see_the_method_and_the_server_before_the_span_exists() {
    let probe = SamplerProbe::default();
    let spans = Spans::sampled_by(&probe);
    let (server, mut client) = TestServer::pair(|| spans.handler()).await;
    client.unary_echo(req("hello")).await.unwrap();
    spans.wait_kind(SpanKind::Server, 1).await;
    let port = i(server.addr.port().into());
    let client_shown = probe.shown(SpanKind::Client);
    let attributes = &client_shown[0].attributes;
    assert_eq!(client_shown[0].name, UNARY_NAME);
    assert_eq!(find(attributes, "rpc.system.name"), s("grpc"));
    assert_eq!(find(attributes, "rpc.method"), s(UNARY_NAME));
    assert_eq!(find(attributes, "server.address"), s("127.0.0.1"));
    assert_eq!(find(attributes, "server.port"), port);
    let server_shown = probe.shown(SpanKind::Server);
    let attributes = &server_shown[0].attributes;
    assert_eq!(server_shown[0].name, UNARY_NAME);
    assert_eq!(find(attributes, "server.address"), s("127.0.0.1"));
    assert_eq!(find(attributes, "server.port"), port);
    server.stop().await;
}
