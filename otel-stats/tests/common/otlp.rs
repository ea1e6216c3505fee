//! An OTLP receiver in the test process, which decodes every export request with the
//! `opentelemetry-proto` messages, and can be told to be slow or to fail, like a real
//! collector on a bad day.
//!
//! It speaks OTLP/gRPC (the crate's generated `TraceServiceServer` and
//! `MetricsServiceServer`) or OTLP/HTTP with protobuf bodies (a hyper service on
//! `/v1/traces` and `/v1/metrics`), plain or over TLS (optionally requiring a client
//! certificate), and accepts gzip on both, recording the encoding each request declared.
//!
//! A refusal is a gRPC [`Status`]; over HTTP it is the status code gRPC maps to HTTP
//! (`UNAVAILABLE` 503, `INVALID_ARGUMENT` 400, `RESOURCE_EXHAUSTED` 429), with the status's
//! `retry-after` metadata as the `Retry-After` header.

use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tonic::Status;
use tonic::codec::CompressionEncoding;
use tonic::service::Routes;

/// How the receiver speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP, protobuf bodies.
    Http,
}

#[derive(Default)]
struct State {
    requests: Mutex<Vec<ExportTraceServiceRequest>>,
    metrics: Mutex<Vec<ExportMetricsServiceRequest>>,
    /// The headers of every export request, traces and metrics, as received.
    headers: Mutex<Vec<HeaderMap>>,
    /// Export calls received, answered or not.
    calls: AtomicUsize,
    /// Export calls to refuse before accepting any.
    fail_first: AtomicUsize,
    /// What they are refused with; UNAVAILABLE when `None`.
    refusal: Option<fn() -> Status>,
    /// Spans every accepted trace export reports rejected (an OTLP partial success).
    rejecting: i64,
    /// Connections accepted.
    connections: AtomicUsize,
    /// Held shut, every export waits here until the test opens it.
    gate: Option<Semaphore>,
}

impl State {
    /// Counts a trace export and holds or refuses it as the receiver was told to.
    async fn admit(&self) -> Result<(), Status> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            let _pass = gate.acquire().await;
        }
        if call < self.fail_first.load(Ordering::SeqCst) {
            return Err(self
                .refusal
                .map_or_else(|| Status::unavailable("collector restarting"), |f| f()));
        }
        Ok(())
    }

    /// The answer to an accepted trace export.
    fn accepted(&self) -> ExportTraceServiceResponse {
        let rejected_spans = self.rejecting;
        ExportTraceServiceResponse {
            partial_success: (rejected_spans > 0).then(|| ExportTracePartialSuccess {
                rejected_spans,
                error_message: "spans too old".into(),
            }),
        }
    }
}

#[derive(Clone)]
struct Service(Arc<State>);

#[tonic::async_trait]
impl TraceService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
        self.0.admit().await?;
        let (metadata, _, message) = request.into_parts();
        self.0.headers.lock().unwrap().push(metadata.into_headers());
        self.0.requests.lock().unwrap().push(message);
        Ok(tonic::Response::new(self.0.accepted()))
    }
}

#[tonic::async_trait]
impl MetricsService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        self.0.headers.lock().unwrap().push(metadata.into_headers());
        self.0.metrics.lock().unwrap().push(message);
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

fn respond(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        "application/x-protobuf".parse().unwrap(),
    );
    response
}

/// A refusal over HTTP: gRPC's status for the code, and its `retry-after`.
fn refuse(refusal: &Status) -> Response<Full<Bytes>> {
    let status = match refusal.code() {
        tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        tonic::Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut response = respond(status, Vec::new());
    if let Some(after) = refusal.metadata().get("retry-after") {
        let after = after.to_str().unwrap().parse().unwrap();
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, after);
    }
    response
}

/// OTLP/HTTP: checks the content type, undoes the declared encoding, decodes the body.
async fn http_export(state: Arc<State>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return respond(StatusCode::BAD_REQUEST, Vec::new());
    };
    if parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.as_bytes())
        != Some(b"application/x-protobuf")
    {
        return respond(StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new());
    }
    let body = match parts
        .headers
        .get(http::header::CONTENT_ENCODING)
        .map(|v| v.as_bytes())
    {
        None => body.to_vec(),
        Some(b"gzip") => {
            let mut out = Vec::new();
            if flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut out)
                .is_err()
            {
                return respond(StatusCode::BAD_REQUEST, Vec::new());
            }
            out
        }
        Some(_) => return respond(StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new()),
    };
    match parts.uri.path() {
        "/v1/traces" => {
            if let Err(refusal) = state.admit().await {
                return refuse(&refusal);
            }
            let Ok(message) = ExportTraceServiceRequest::decode(&body[..]) else {
                return respond(StatusCode::BAD_REQUEST, Vec::new());
            };
            state.headers.lock().unwrap().push(parts.headers);
            state.requests.lock().unwrap().push(message);
            respond(StatusCode::OK, state.accepted().encode_to_vec())
        }
        "/v1/metrics" => {
            let Ok(message) = ExportMetricsServiceRequest::decode(&body[..]) else {
                return respond(StatusCode::BAD_REQUEST, Vec::new());
            };
            state.headers.lock().unwrap().push(parts.headers);
            state.metrics.lock().unwrap().push(message);
            respond(
                StatusCode::OK,
                ExportMetricsServiceResponse::default().encode_to_vec(),
            )
        }
        _ => respond(StatusCode::NOT_FOUND, Vec::new()),
    }
}

/// Serves one accepted connection (TLS first when `tls`), with HTTP/1.1 or h2 as the client
/// speaks.
async fn serve_connection(
    io: tokio::net::TcpStream,
    tls: Option<TlsAcceptor>,
    wire: Wire,
    state: Arc<State>,
) {
    match tls {
        Some(acceptor) => {
            // A client that fails the handshake (no client certificate) just goes away.
            if let Ok(io) = acceptor.accept(io).await {
                serve_http(TokioIo::new(io), wire, state).await;
            }
        }
        None => serve_http(TokioIo::new(io), wire, state).await,
    }
}

async fn serve_http<I>(io: I, wire: Wire, state: Arc<State>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let _ = match wire {
        Wire::Grpc => {
            let service = Service(state);
            let routes = Routes::new(
                TraceServiceServer::new(service.clone())
                    .accept_compressed(CompressionEncoding::Gzip),
            )
            .add_service(
                MetricsServiceServer::new(service).accept_compressed(CompressionEncoding::Gzip),
            );
            builder
                .serve_connection(io, TowerToHyperService::new(routes))
                .await
        }
        Wire::Http => {
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(http_export(state, request).await) }
            });
            builder.serve_connection(io, service).await
        }
    };
}

pub struct Receiver {
    pub addr: SocketAddr,
    https: bool,
    state: Arc<State>,
    serving: JoinHandle<()>,
}

impl Receiver {
    /// A receiver that accepts everything.
    pub async fn start() -> Receiver {
        Self::with_state(State::default()).await
    }

    /// A receiver that refuses the first `n` exports with UNAVAILABLE.
    pub async fn failing_first(n: usize) -> Receiver {
        let state = State::default();
        state.fail_first.store(n, Ordering::SeqCst);
        Self::with_state(state).await
    }

    /// A receiver speaking `wire` that refuses the first `n` trace exports with what
    /// `refusal` makes (`usize::MAX`: all of them).
    pub async fn refusing(wire: Wire, n: usize, refusal: fn() -> Status) -> Receiver {
        let state = State {
            refusal: Some(refusal),
            ..State::default()
        };
        state.fail_first.store(n, Ordering::SeqCst);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve_on(listener, state, wire, None)
    }

    /// A receiver that accepts every trace export but reports `n` of its spans rejected.
    pub async fn rejecting(n: i64) -> Receiver {
        Self::with_state(State {
            rejecting: n,
            ..State::default()
        })
        .await
    }

    /// A receiver that holds every export until [`open`](Self::open).
    pub async fn stuck() -> Receiver {
        Self::with_state(State {
            gate: Some(Semaphore::new(0)),
            ..State::default()
        })
        .await
    }

    /// A receiver that accepts everything, on a listener bound beforehand (so that its
    /// address can go into the environment before any thread starts).
    pub async fn on(listener: std::net::TcpListener) -> Receiver {
        listener.set_nonblocking(true).unwrap();
        Self::serve(TcpListener::from_std(listener).unwrap(), State::default())
    }

    /// A receiver holding every export until [`open`](Self::open), on a listener bound
    /// beforehand.
    pub async fn stuck_on(listener: std::net::TcpListener) -> Receiver {
        listener.set_nonblocking(true).unwrap();
        let state = State {
            gate: Some(Semaphore::new(0)),
            ..State::default()
        };
        Self::serve(TcpListener::from_std(listener).unwrap(), state)
    }

    /// A receiver that accepts everything, speaking `wire`, over TLS when given a server
    /// configuration (plain TCP, h2c for gRPC, without).
    pub async fn speaking(wire: Wire, tls: Option<Arc<ServerConfig>>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve_on(listener, State::default(), wire, tls.map(TlsAcceptor::from))
    }

    async fn with_state(state: State) -> Receiver {
        Self::serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), state)
    }

    fn serve(listener: TcpListener, state: State) -> Receiver {
        Self::serve_on(listener, state, Wire::Grpc, None)
    }

    fn serve_on(
        listener: TcpListener,
        state: State,
        wire: Wire,
        tls: Option<TlsAcceptor>,
    ) -> Receiver {
        let addr = listener.local_addr().unwrap();
        let https = tls.is_some();
        let state = Arc::new(state);
        let shared = Arc::clone(&state);
        let serving = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((io, _)) = listener.accept().await {
                let _ = io.set_nodelay(true);
                shared.connections.fetch_add(1, Ordering::SeqCst);
                connections.spawn(serve_connection(io, tls.clone(), wire, Arc::clone(&shared)));
            }
        });
        Receiver {
            addr,
            https,
            state,
            serving,
        }
    }

    /// The receiver's base URL: `http://` or `https://`, then 127.0.0.1 and its port.
    pub fn endpoint(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Lets every waiting and future export through.
    pub fn open(&self) {
        if let Some(gate) = &self.state.gate {
            gate.add_permits(Semaphore::MAX_PERMITS / 2);
        }
    }

    /// The connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// The export requests accepted so far, decoded.
    pub fn requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The metric export requests accepted so far, decoded.
    pub fn metric_requests(&self) -> Vec<ExportMetricsServiceRequest> {
        self.state.metrics.lock().unwrap().clone()
    }

    /// The metrics accepted so far, all collections together.
    pub fn metrics(&self) -> Vec<Metric> {
        self.metric_requests()
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| s.metrics.iter().cloned())
            .collect()
    }

    /// The headers of every export request accepted so far, in order.
    pub fn headers(&self) -> Vec<HeaderMap> {
        self.state.headers.lock().unwrap().clone()
    }

    /// The spans accepted so far.
    pub fn spans(&self) -> Vec<Span> {
        self.requests()
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.iter().cloned())
            .collect()
    }

    /// The names of the spans received so far, sorted.
    pub fn span_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.spans().into_iter().map(|s| s.name).collect();
        names.sort();
        names
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

/// An address where nothing listens: bound, then let go.
pub async fn nothing_listening() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}
