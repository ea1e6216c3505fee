//! Hostile input on the server: malformed and oversized trace headers, heaps of metadata,
//! requests that are not gRPC, lying message prefixes. None of it may panic or change a byte
//! of what goes back over the wire: each request is sent, byte for byte the same, to a bare
//! tonic server and to one with the stats layer and `OtelHandler`, and the responses must be
//! the same. And every RPC the instrumented server tagged still gets exactly one `End`.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::echo::echo_server::EchoServer;
use common::otel::{Spans, TestServer};
use common::recorder::count;
use common::{Recorder, req};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry::trace::SpanKind;
use prost::Message;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

type RawClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn raw_client() -> RawClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// A tonic echo server with nothing of ours in it.
async fn bare_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .add_service(EchoServer::new(common::service::Echo))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    addr
}

/// What a client can see of a response. `date` changes from one second to the next.
#[derive(Debug, PartialEq)]
struct Seen {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    trailers: Option<HeaderMap>,
}

async fn send(client: &RawClient, addr: std::net::SocketAddr, case: &Case) -> Seen {
    let mut request = Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{}", case.path))
        .body(Full::new(Bytes::from(case.body.clone())))
        .unwrap();
    for (name, value) in &case.headers {
        request.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.unwrap();
    let mut headers = parts.headers;
    headers.remove("date");
    Seen {
        status: parts.status,
        headers,
        trailers: collected.trailers().cloned(),
        body: collected.to_bytes(),
    }
}

struct Case {
    name: &'static str,
    path: &'static str,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

const UNARY: &str = "/grpc.examples.echo.Echo/UnaryEcho";

fn grpc_message(text: &str) -> Vec<u8> {
    let encoded = req(text).encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    out.extend_from_slice(&encoded);
    out
}

fn grpc_case(name: &'static str, extra: Vec<(&str, Vec<u8>)>, body: Vec<u8>) -> Case {
    let mut headers = vec![
        ("content-type".to_owned(), b"application/grpc".to_vec()),
        ("te".to_owned(), b"trailers".to_vec()),
    ];
    headers.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
    Case {
        name,
        path: UNARY,
        headers,
        body,
    }
}

fn cases() -> Vec<Case> {
    let hello = grpc_message("hello");
    let long = |n: usize, c: u8| vec![c; n];
    let metadata = |entries: usize| {
        (0..entries)
            .map(|i| (format!("x-meta-{i:03}"), long(60, b'v')))
            .collect::<Vec<_>>()
    };
    let mut heaps = grpc_case("15 KiB of metadata", vec![], hello.clone());
    heaps.headers.extend(metadata(150));
    let mut too_much = grpc_case("more metadata than hyper takes", vec![], hello.clone());
    too_much.headers.extend(metadata(200));
    let mut truncated = hello.clone();
    truncated.truncate(hello.len() - 2);
    let mut compressed = hello.clone();
    compressed[0] = 1;
    vec![
        grpc_case("a well-formed request", vec![], hello.clone()),
        grpc_case(
            "traceparent of garbage",
            vec![("traceparent", b"garbage".to_vec())],
            hello.clone(),
        ),
        grpc_case(
            "traceparent with bad ids",
            vec![(
                "traceparent",
                b"00-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-zzzzzzzzzzzzzzzz-01".to_vec(),
            )],
            hello.clone(),
        ),
        grpc_case(
            "traceparent of all zeros",
            vec![(
                "traceparent",
                b"00-00000000000000000000000000000000-0000000000000000-01".to_vec(),
            )],
            hello.clone(),
        ),
        grpc_case(
            "8 KiB traceparent",
            vec![("traceparent", long(8192, b'0'))],
            hello.clone(),
        ),
        grpc_case(
            "4 KiB of tracestate and of bad baggage",
            vec![
                (
                    "traceparent",
                    b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec(),
                ),
                ("tracestate", "k=v,".repeat(1024).into_bytes()),
                ("baggage", "k=%zz;;=,".repeat(455).into_bytes()),
            ],
            hello.clone(),
        ),
        heaps,
        too_much,
        Case {
            name: "not gRPC: text/plain",
            path: UNARY,
            headers: vec![("content-type".to_owned(), b"text/plain".to_vec())],
            body: b"hello".to_vec(),
        },
        grpc_case(
            "a prefix declaring 4 GiB",
            vec![],
            vec![0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3],
        ),
        grpc_case("a body ending mid-message", vec![], truncated),
        grpc_case(
            "a compressed flag without grpc-encoding",
            vec![],
            compressed,
        ),
        grpc_case("an invalid compressed flag", vec![], vec![7, 0, 0, 0, 1, 0]),
        grpc_case("an unknown method", vec![], hello.clone()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_the_same_answer_with_and_without_instrumentation() {
    let bare = bare_server().await;
    let recorder = Arc::new(Recorder::new("server"));
    let spans = Spans::new();
    let instrumented = TestServer::start((Arc::clone(&recorder), spans.handler())).await;
    let client = raw_client();
    let mut grpc_requests = 0;
    let mut refused = Vec::new();
    for mut case in cases() {
        if case.name == "an unknown method" {
            case.path = "/grpc.examples.echo.Echo/NoSuchMethod";
        }
        let expected = send(&client, bare, &case).await;
        let seen = send(&client, instrumented.addr, &case).await;
        assert_eq!(
            seen, expected,
            "{}: the layer changed the response",
            case.name
        );
        if seen.status != StatusCode::OK {
            refused.push(case.name);
        }
        // Requests hyper refuses (a header list over its 16 KiB limit: 431) never reach a
        // service; the other gRPC ones do, and are tagged.
        let grpc = case
            .headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with(b"application/grpc"));
        if grpc && seen.status == StatusCode::OK {
            grpc_requests += 1;
        }
    }
    assert_eq!(refused, ["more metadata than hyper takes"]);
    let events = recorder
        .wait_for("every gRPC request ended", |e| {
            count(e, "End") == grpc_requests
        })
        .await;
    assert_eq!(
        count(&events, "TagRPC"),
        grpc_requests,
        "text/plain was not tagged"
    );
    let server_spans = spans.wait_kind(SpanKind::Server, grpc_requests).await;
    for span in server_spans.iter().filter(|s| s.parent_span_is_remote) {
        assert_eq!(
            span.span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "only the one valid traceparent made a remote parent"
        );
    }
    instrumented.stop().await;
}
