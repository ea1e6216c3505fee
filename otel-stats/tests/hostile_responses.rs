//! Hostile responses on the client: a `grpc-status` that is not a number or out of range, a
//! `grpc-message` with bad percent-encoding, in trailers or trailers-only. The application
//! sees the same as without the stats layer, and `End` says what the application saw.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use common::recorder::count;
use common::{Recorder, req};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::Frame;
use http_body_util::StreamBody;
use otel_stats::ClientStatsLayer;
use tokio::net::TcpListener;
use tonic::Status;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Endpoint, Server};
use tower::Layer;

/// A server that answers every call with the status headers it is given, as trailers or as a
/// trailers-only response.
#[derive(Clone)]
struct Raw {
    status: &'static [u8],
    message: &'static [u8],
    trailers_only: bool,
}

impl NamedService for Raw {
    const NAME: &'static str = "grpc.examples.echo.Echo";
}

impl tower::Service<Request<tonic::body::Body>> for Raw {
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<tonic::body::Body>) -> Self::Future {
        let mut status = HeaderMap::new();
        status.insert("grpc-status", HeaderValue::from_bytes(self.status).unwrap());
        status.insert(
            "grpc-message",
            HeaderValue::from_bytes(self.message).unwrap(),
        );
        let mut response = Response::builder().header("content-type", "application/grpc");
        let frames: Vec<Result<Frame<Bytes>, Status>> = if self.trailers_only {
            for (k, v) in &status {
                response = response.header(k, v);
            }
            Vec::new()
        } else {
            vec![Ok(Frame::trailers(status))]
        };
        let body = tonic::body::Body::new(StreamBody::new(tokio_stream::iter(frames)));
        std::future::ready(Ok(response.body(body).unwrap()))
    }
}

async fn serve(raw: Raw) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .add_service(raw)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    addr
}

/// What the application sees, with and without the layer, and the client `End`.
async fn call(addr: std::net::SocketAddr) -> (Status, Status, common::Event) {
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).unwrap();
    let plain = endpoint.connect().await.unwrap();
    let mut bare = common::echo::echo_client::EchoClient::new(plain.clone());
    let without = bare.unary_echo(req("hi")).await.unwrap_err();

    let recorder = Arc::new(Recorder::new("client"));
    let layered = ClientStatsLayer::from_arc(Arc::clone(&recorder)).layer(plain);
    let mut client = common::echo::echo_client::EchoClient::new(layered);
    let with = client.unary_echo(req("hi")).await.unwrap_err();
    let events = recorder.wait_ends(1).await;
    assert_eq!(count(&events, "End"), 1);
    let end = events.into_iter().find(|e| e.name == "End").unwrap();
    (without, with, end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_statuses_reach_the_app_unchanged_and_end_agrees() {
    let cases: [(&[u8], &[u8]); 5] = [
        (b"abc", b"not a number"),
        (b"99", b"out of range"),
        (b"-1", b"negative"),
        (b"3", b"bad %zz percent %2"),
        (b"13", b"%E2%82"),
    ];
    for trailers_only in [false, true] {
        for (status, message) in cases {
            let addr = serve(Raw {
                status,
                message,
                trailers_only,
            })
            .await;
            let (without, with, end) = call(addr).await;
            let case = format!(
                "{:?} {:?} trailers_only={trailers_only}",
                String::from_utf8_lossy(status),
                String::from_utf8_lossy(message)
            );
            assert_eq!(
                with.code(),
                without.code(),
                "{case}: the layer changed the status"
            );
            assert_eq!(with.message(), without.message(), "{case}");
            assert_eq!(
                end.code,
                Some(with.code()),
                "{case}: End says what the app saw ({end:?})"
            );
            assert_eq!(end.message.as_deref(), Some(with.message()), "{case}");
        }
    }
}
