//! An OTLP/HTTP trace receiver (protobuf bodies) on hyper, which answers the first requests
//! from a script (a 503 with `Retry-After`, a 400, ...) and then accepts, decoding every
//! accepted body with the `opentelemetry-proto` messages after undoing its gzip.

use std::collections::VecDeque;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::otlp::spans_of;

/// A scripted answer: a status and its headers.
pub type Answer = (u16, &'static [(&'static str, &'static str)]);

#[derive(Default)]
struct State {
    script: Mutex<VecDeque<Answer>>,
    /// The headers of every request, answered from the script or not.
    headers: Mutex<Vec<HeaderMap>>,
    requests: Mutex<Vec<ExportTraceServiceRequest>>,
}

pub struct HttpReceiver {
    pub addr: SocketAddr,
    state: Arc<State>,
    serving: JoinHandle<()>,
}

impl HttpReceiver {
    /// A receiver that accepts everything.
    pub async fn start() -> HttpReceiver {
        Self::answering_first(&[]).await
    }

    /// A receiver that answers the first requests from `script`, then accepts.
    pub async fn answering_first(script: &[Answer]) -> HttpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            script: Mutex::new(script.iter().copied().collect()),
            ..State::default()
        });
        let shared = Arc::clone(&state);
        let serving = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                let service = service_fn(move |request| {
                    let state = Arc::clone(&state);
                    async move { Ok::<_, std::convert::Infallible>(answer(&state, request).await) }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        HttpReceiver {
            addr,
            state,
            serving,
        }
    }

    /// The traces URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    /// The headers of every request so far.
    pub fn headers(&self) -> Vec<HeaderMap> {
        self.state.headers.lock().unwrap().clone()
    }

    /// The spans accepted so far.
    pub fn spans(&self) -> Vec<Span> {
        spans_of(&self.state.requests.lock().unwrap())
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

async fn answer(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    state.headers.lock().unwrap().push(parts.headers.clone());
    let scripted = state.script.lock().unwrap().pop_front();
    if let Some((status, headers)) = scripted {
        let mut response = Response::new(Full::default());
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        for (name, value) in headers {
            response.headers_mut().insert(*name, value.parse().unwrap());
        }
        return response;
    }
    let body = body.collect().await.unwrap().to_bytes();
    let body = match parts.headers.get("content-encoding") {
        Some(encoding) if encoding == "gzip" => {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut plain)
                .unwrap();
            Bytes::from(plain)
        }
        _ => body,
    };
    let request = ExportTraceServiceRequest::decode(body).unwrap();
    state.requests.lock().unwrap().push(request);
    let mut response = Response::new(Full::default());
    response
        .headers_mut()
        .insert("content-type", "application/x-protobuf".parse().unwrap());
    response
}
