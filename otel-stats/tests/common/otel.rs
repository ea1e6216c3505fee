//! What the OpenTelemetry tests share: spans captured in memory by the SDK, and an echo server
//! and clients with any [`StatsHandler`] (an `OtelHandler`, usually).
//!
//! The server is the shared echo service behind an interceptor: a request with
//! `x-want-code: <n>` fails with gRPC code `n` (message `wanted <n>`), so the status tests can
//! ask for every code.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use opentelemetry::trace::{Link, SpanId, SpanKind, TraceId};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, SamplingDecision, SamplingResult, SdkTracerProvider, ShouldSample,
    SpanData,
};
use otel_stats::{
    ClientStatsLayer, OtelHandler, OtelHandlerBuilder, ServerStatsLayer, StatsChannel, StatsHandler,
};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tonic::client::Grpc;
use tonic::codec::CompressionEncoding;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Endpoint, Server, server::TcpIncoming};
use tonic::{Code, Request, Status};

use super::echo::echo_client::EchoClient;
use super::echo::echo_server::{Echo, EchoServer};
use super::{PATIENCE, Serving, service};

/// The metadata key that makes the server fail with the code it holds.
pub const WANT_CODE: &str = "x-want-code";

/// The SDK pipeline of a test: a provider whose simple processor puts each span in memory as
/// soon as it ends.
pub struct Spans {
    pub exporter: InMemorySpanExporter,
    pub provider: SdkTracerProvider,
}

impl Spans {
    pub fn new() -> Spans {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        Spans { exporter, provider }
    }

    /// A handler builder exporting here.
    pub fn builder(&self) -> OtelHandlerBuilder {
        OtelHandler::builder().tracer_provider(self.provider.clone())
    }

    /// A default handler exporting here.
    pub fn handler(&self) -> OtelHandler {
        self.builder().build()
    }

    pub fn finished(&self) -> Vec<SpanData> {
        self.exporter.get_finished_spans().unwrap()
    }

    /// Waits until `done` holds for the finished spans, or fails the test after [`PATIENCE`].
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[SpanData]) -> bool) -> Vec<SpanData> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let spans = self.finished();
            if done(&spans) {
                return spans;
            }
            if tokio::time::Instant::now() >= deadline {
                let names: Vec<_> = spans
                    .iter()
                    .map(|s| (&s.name, s.span_kind.clone()))
                    .collect();
                panic!("timed out waiting for {what}; spans: {names:?}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Waits for `n` finished spans of `kind`.
    pub async fn wait_kind(&self, kind: SpanKind, n: usize) -> Vec<SpanData> {
        self.wait_for(&format!("{n} {kind:?} spans"), |s| {
            of_kind(s, &kind).len() >= n
        })
        .await
    }
}

/// What a sampler was shown for one span: its name, kind and attributes, before the span
/// existed.
#[derive(Debug, Clone)]
pub struct Shown {
    pub name: String,
    pub kind: SpanKind,
    pub attributes: Vec<KeyValue>,
}

/// A sampler that samples everything and remembers what it was shown.
#[derive(Debug, Clone, Default)]
pub struct SamplerProbe(pub Arc<Mutex<Vec<Shown>>>);

impl ShouldSample for SamplerProbe {
    fn should_sample(
        &self,
        _parent: Option<&opentelemetry::Context>,
        _trace_id: TraceId,
        name: &str,
        kind: &SpanKind,
        attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        self.0.lock().unwrap().push(Shown {
            name: name.to_owned(),
            kind: kind.clone(),
            attributes: attributes.to_vec(),
        });
        SamplingResult {
            decision: SamplingDecision::RecordAndSample,
            attributes: Vec::new(),
            trace_state: Default::default(),
        }
    }
}

impl SamplerProbe {
    /// What the sampler was shown for the spans of `kind`.
    pub fn shown(&self, kind: SpanKind) -> Vec<Shown> {
        let shown = self.0.lock().unwrap();
        shown.iter().filter(|s| s.kind == kind).cloned().collect()
    }
}

impl Spans {
    /// Spans captured in memory, each first shown to `probe`.
    pub fn sampled_by(probe: &SamplerProbe) -> Spans {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_sampler(probe.clone())
            .with_simple_exporter(exporter.clone())
            .build();
        Spans { exporter, provider }
    }
}

/// The RPC spans, client ones first.
pub fn rpc_spans(spans: &[SpanData]) -> Vec<SpanData> {
    let mut rpcs = of_kind(spans, &SpanKind::Client);
    rpcs.extend(of_kind(spans, &SpanKind::Server));
    rpcs
}

pub fn of_kind(spans: &[SpanData], kind: &SpanKind) -> Vec<SpanData> {
    spans
        .iter()
        .filter(|s| &s.span_kind == kind)
        .cloned()
        .collect()
}

/// The one span of `kind`; fails if there are more or none.
pub fn only(spans: &[SpanData], kind: SpanKind) -> SpanData {
    let found = of_kind(spans, &kind);
    assert_eq!(found.len(), 1, "one {kind:?} span expected, got {found:#?}");
    found.into_iter().next().unwrap()
}

pub fn attr(span: &SpanData, key: &str) -> Option<Value> {
    find(&span.attributes, key)
}

pub fn find(attrs: &[KeyValue], key: &str) -> Option<Value> {
    attrs
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

pub fn event_names(span: &SpanData) -> Vec<String> {
    span.events
        .events
        .iter()
        .map(|e| e.name.to_string())
        .collect()
}

/// The event times are those of the stats events, so they never go backwards.
pub fn assert_events_in_time_order(span: &SpanData) {
    let times: Vec<SystemTime> = span.events.events.iter().map(|e| e.timestamp).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(
        times
            .iter()
            .all(|t| *t >= span.start_time && *t <= span.end_time)
    );
}

pub fn parent_of(span: &SpanData) -> SpanId {
    span.parent_span_id
}

pub type OtelClient<H> = EchoClient<StatsChannel<H>>;

/// An echo server with a stats layer and connection wrapper reporting to any handler.
pub struct TestServer {
    pub addr: SocketAddr,
    serving: Serving,
}

/// Fails a request that carries [`WANT_CODE`] with that code.
fn want_code(request: Request<()>) -> Result<Request<()>, Status> {
    let wanted = request
        .metadata()
        .get(WANT_CODE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok());
    match wanted {
        Some(n) if n != 0 => Err(Status::new(Code::from_i32(n), format!("wanted {n}"))),
        _ => Ok(request),
    }
}

impl TestServer {
    pub async fn start<H: StatsHandler>(handler: H) -> TestServer {
        Self::start_with(handler, service::Echo).await
    }

    /// A server whose echo service is `echo` (the tracing tests instrument it).
    pub async fn start_with<H: StatsHandler, E: Echo>(handler: H, echo: E) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = ServerStatsLayer::new(handler);
        let incoming = stats.incoming(TcpIncoming::from(listener));
        let echo = EchoServer::new(echo)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip);
        let routes = InterceptedService::new(echo, want_code);
        let serving = Serving::spawn(|signal| async move {
            let stopped = async {
                let _ = signal.await;
            };
            Server::builder()
                .layer(stats)
                .add_service(routes)
                .serve_with_incoming_shutdown(incoming, stopped)
                .await
                .unwrap();
        });
        TestServer { addr, serving }
    }

    /// A server and a client, each with a handler `make` makes.
    pub async fn pair<H: StatsHandler>(make: impl Fn() -> H) -> (TestServer, OtelClient<H>) {
        let server = TestServer::start(make()).await;
        let client = server.client(make()).await;
        (server, client)
    }

    /// A client on a new connection, its stats reported to `handler`.
    pub async fn client<H: StatsHandler>(&self, handler: H) -> OtelClient<H> {
        self.client_arc(Arc::new(handler)).await
    }

    pub async fn client_arc<H: StatsHandler>(&self, handler: Arc<H>) -> OtelClient<H> {
        let endpoint = Endpoint::from_shared(format!("http://{}", self.addr)).unwrap();
        let channel = ClientStatsLayer::from_arc(handler)
            .connect(endpoint)
            .await
            .unwrap();
        // A plain generated client: its requests carry no `:authority`, and the client
        // span's `server.address` and `server.port` come from the endpoint `connect` saw.
        EchoClient::new(channel)
    }

    /// A `tonic::client::Grpc` client on a new connection, not a generated stub: it calls
    /// whatever path it is given (see [`call`]).
    pub async fn raw_client<H: StatsHandler>(&self, handler: H) -> RawGrpc<H> {
        let endpoint = Endpoint::from_shared(format!("http://{}", self.addr)).unwrap();
        let channel = ClientStatsLayer::new(handler)
            .connect(endpoint)
            .await
            .unwrap();
        Grpc::new(channel)
    }

    /// Stops the server gracefully (closing its connections) and waits until it has.
    pub async fn stop(self) {
        self.serving.stop().await;
    }
}

/// A client that calls any path, made by [`TestServer::raw_client`].
pub type RawGrpc<H> = Grpc<StatsChannel<H>>;

/// Calls `path` (`/package.Service/Method`, made up or not) with an echo request.
pub async fn call<H: StatsHandler>(
    client: &mut RawGrpc<H>,
    path: &str,
) -> Result<super::EchoResponse, Status> {
    client.ready().await.unwrap();
    let path = PathAndQuery::try_from(path).unwrap();
    client
        .unary::<super::EchoRequest, super::EchoResponse, _>(
            Request::new(super::req("hi")),
            path,
            tonic_prost::ProstCodec::default(),
        )
        .await
        .map(tonic::Response::into_inner)
}

/// A request that asks the server to fail with `code`.
pub fn wanting(message: &str, code: Code) -> Request<super::EchoRequest> {
    let mut request = Request::new(super::req(message));
    request
        .metadata_mut()
        .insert(WANT_CODE, (code as i32).to_string().parse().unwrap());
    request
}

/// Sends `n` unary RPCs, 16 at a time, through a client without stats, and fails unless
/// every one succeeds.
pub async fn unary_traffic(server: &TestServer, n: usize) {
    let client = server.client(otel_stats::NoopHandler).await;
    let mut running = JoinSet::new();
    for i in 0..n {
        if running.len() >= 16 {
            running.join_next().await.unwrap().unwrap();
        }
        let mut client = client.clone();
        running.spawn(async move {
            let reply = client.unary_echo(super::req(&format!("m{i}"))).await;
            assert_eq!(reply.unwrap().into_inner().message, format!("m{i}"));
        });
    }
    while let Some(done) = running.join_next().await {
        done.unwrap();
    }
}

/// Calls `ServerStreamingEcho` with `message` and reads every reply.
pub async fn server_stream<H: StatsHandler>(client: &mut OtelClient<H>, message: &str) {
    let mut replies = client
        .server_streaming_echo(super::req(message))
        .await
        .unwrap()
        .into_inner();
    while replies.message().await.unwrap().is_some() {}
}
