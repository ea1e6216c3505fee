//! An OTLP/gRPC trace receiver in the test process (the `opentelemetry-proto` crate's
//! `TraceServiceServer`), which decodes every export request, and can be told to be slow or to
//! fail, like a real collector on a bad day.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Server, server::TcpIncoming};
use tonic::{Request, Response, Status};

#[derive(Default)]
struct State {
    requests: Mutex<Vec<ExportTraceServiceRequest>>,
    /// Export calls received, answered or not.
    calls: AtomicUsize,
    /// Export calls to refuse with UNAVAILABLE before accepting any.
    fail_first: AtomicUsize,
    /// Held shut, every export waits here until the test opens it.
    gate: Option<Semaphore>,
    /// What the first `fail_first` exports are refused with; UNAVAILABLE when `None`.
    failure: Option<fn() -> Status>,
    /// Spans every accepted export reports rejected (an OTLP partial success).
    rejecting: i64,
    /// Every export call's peer address and headers, answered or not.
    seen: Mutex<Vec<Seen>>,
}

/// What a receiver saw of one export call besides its spans.
#[derive(Debug, Clone)]
pub struct Seen {
    pub remote: Option<SocketAddr>,
    pub metadata: tonic::metadata::MetadataMap,
}

struct Service(Arc<State>);

#[tonic::async_trait]
impl TraceService for Service {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let call = self.0.calls.fetch_add(1, Ordering::SeqCst);
        self.0.seen.lock().unwrap().push(Seen {
            remote: request.remote_addr(),
            metadata: request.metadata().clone(),
        });
        if let Some(gate) = &self.0.gate {
            let _pass = gate.acquire().await;
        }
        if call < self.0.fail_first.load(Ordering::SeqCst) {
            return Err(self
                .0
                .failure
                .map_or_else(|| Status::unavailable("collector restarting"), |f| f()));
        }
        self.0.requests.lock().unwrap().push(request.into_inner());
        let rejected_spans = self.0.rejecting;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: (rejected_spans > 0).then(|| ExportTracePartialSuccess {
                rejected_spans,
                error_message: "spans too old".into(),
            }),
        }))
    }
}

pub struct Receiver {
    pub addr: SocketAddr,
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

    /// A receiver that refuses the first `n` exports with what `failure` makes
    /// (`usize::MAX`: all of them).
    pub async fn failing_first_with(n: usize, failure: fn() -> Status) -> Receiver {
        let state = State {
            failure: Some(failure),
            ..State::default()
        };
        state.fail_first.store(n, Ordering::SeqCst);
        Self::with_state(state).await
    }

    /// A receiver that accepts every export but reports `n` of its spans rejected.
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

    async fn with_state(state: State) -> Receiver {
        Self::serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), state)
    }

    fn serve(listener: TcpListener, state: State) -> Receiver {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(state);
        let service = TraceServiceServer::new(Service(Arc::clone(&state)))
            .accept_compressed(CompressionEncoding::Gzip);
        let serving = tokio::spawn(async move {
            let _ = Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpIncoming::from(listener))
                .await;
        });
        Receiver {
            addr,
            state,
            serving,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Lets every waiting and future export through.
    pub fn open(&self) {
        if let Some(gate) = &self.state.gate {
            gate.add_permits(Semaphore::MAX_PERMITS / 2);
        }
    }

    /// The peer address and headers of every export call so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// The export requests accepted so far, decoded.
    pub fn requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The spans accepted so far.
    pub fn spans(&self) -> Vec<Span> {
        spans_of(&self.requests())
    }
}

/// The spans of export requests, in order.
pub fn spans_of(requests: &[ExportTraceServiceRequest]) -> Vec<Span> {
    requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| s.spans.iter().cloned())
        .collect()
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
