//! What the fuzz targets share: structured inputs (headers, bodies, errors) built with
//! `arbitrary`, the handlers the layers report to, and the checks on what comes out.
//!
//! Nothing here networks or sleeps: every body is an in-memory stream and every future is
//! ready at once (driven by [`run`], which polls with a no-op waker and panics if one is
//! still pending after 1000 polls).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use arbitrary::Arbitrary;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, StreamBody};
use opentelemetry::Context;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use otel_stats::frame::FrameDecoder;
use otel_stats::{LogHandler, OtelHandler, RpcStats, RpcTagInfo, StatsHandler};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body made of frames decided in advance: data, then maybe trailers or an error.
pub type SpecBody =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, BoxError>>>>;

// ---------------------------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------------------------

/// A header name: mostly the ones the layers and handlers read, sometimes anything.
#[derive(Arbitrary, Debug, Clone)]
pub enum Key {
    ContentType,
    GrpcTimeout,
    GrpcEncoding,
    GrpcAcceptEncoding,
    GrpcStatus,
    GrpcMessage,
    Traceparent,
    Tracestate,
    Baggage,
    Te,
    /// Allowed by the handler's `record_metadata`.
    XMeta,
    Authorization,
    XDataBin,
    Raw(Vec<u8>),
}

impl Key {
    fn name(&self) -> Option<HeaderName> {
        let s = match self {
            Key::ContentType => "content-type",
            Key::GrpcTimeout => "grpc-timeout",
            Key::GrpcEncoding => "grpc-encoding",
            Key::GrpcAcceptEncoding => "grpc-accept-encoding",
            Key::GrpcStatus => "grpc-status",
            Key::GrpcMessage => "grpc-message",
            Key::Traceparent => "traceparent",
            Key::Tracestate => "tracestate",
            Key::Baggage => "baggage",
            Key::Te => "te",
            Key::XMeta => "x-meta",
            Key::Authorization => "authorization",
            Key::XDataBin => "x-data-bin",
            Key::Raw(raw) => return HeaderName::from_bytes(raw).ok(),
        };
        Some(HeaderName::from_static(s))
    }
}

/// A header value: raw bytes, or something shaped like what the interesting keys hold.
#[derive(Arbitrary, Debug, Clone)]
pub enum Val {
    Raw(Vec<u8>),
    /// `application/grpc` with one of a few suffixes.
    Grpc(u8),
    /// `grpc-timeout`-shaped: digits and a unit (sometimes a wrong one).
    Timeout(u64, u8),
    /// A decimal number (`grpc-status`-shaped).
    Number(i64),
    /// `traceparent`-shaped: `vv-<32 hex>-<16 hex>-ff`.
    Traceparent(u8, u128, u64, u8),
    /// `tracestate` / `baggage`-shaped: `k=v` pairs joined by `,`, with `;` properties.
    Pairs(Vec<(String, String, Option<String>)>),
    /// Percent-encoded text (`grpc-message`-shaped), with some encodings cut short.
    Percent(String, bool),
}

impl Val {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Val::Raw(raw) => raw.clone(),
            Val::Grpc(s) => {
                let suffix =
                    ["", "+proto", "+json", "; charset=utf-8", "+", "proto"][*s as usize % 6];
                format!("application/grpc{suffix}").into_bytes()
            }
            Val::Timeout(n, unit) => {
                let unit = b"HMSmunx "[*unit as usize % 8] as char;
                format!("{n}{unit}").into_bytes()
            }
            Val::Number(n) => n.to_string().into_bytes(),
            Val::Traceparent(v, trace, span, flags) => {
                format!("{v:02x}-{trace:032x}-{span:016x}-{flags:02x}").into_bytes()
            }
            Val::Pairs(pairs) => pairs
                .iter()
                .map(|(k, v, p)| match p {
                    Some(p) => format!("{k}={v};{p}"),
                    None => format!("{k}={v}"),
                })
                .collect::<Vec<_>>()
                .join(",")
                .into_bytes(),
            Val::Percent(text, cut) => {
                let mut out = String::new();
                for b in text.bytes() {
                    if b.is_ascii_alphanumeric() {
                        out.push(b as char);
                    } else {
                        out.push_str(&format!("%{b:02X}"));
                    }
                }
                if *cut {
                    out.push('%');
                }
                out.into_bytes()
            }
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Header {
    pub key: Key,
    pub val: Val,
}

/// The headers `http` accepts, in order, appended (so a key may repeat). The others are left
/// out: they could not reach a service anyway.
pub fn header_map(headers: &[Header]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for h in headers {
        if let (Some(name), Ok(value)) = (h.key.name(), HeaderValue::from_bytes(&h.val.bytes())) {
            map.append(name, value);
        }
    }
    map
}

/// What the layers call gRPC (`rpc::is_grpc`, crate-private): the first `content-type` starts
/// with `application/grpc`.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"))
}

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

/// A piece of a body: a well-formed message, a message whose prefix lies about its length, or
/// raw bytes.
#[derive(Arbitrary, Debug, Clone)]
pub enum Piece {
    Message {
        compressed: bool,
        payload: Vec<u8>,
    },
    Lying {
        flag: u8,
        len: u32,
        payload: Vec<u8>,
    },
    Raw(Vec<u8>),
}

/// How a body ends after its data frames.
#[derive(Arbitrary, Debug, Clone)]
pub enum End {
    /// Just ends.
    Eos,
    Trailers(Vec<Header>),
    Error(ErrSpec),
}

/// An error of a body or a service.
#[derive(Arbitrary, Debug, Clone)]
pub enum ErrSpec {
    Status(i32, String),
    Io(u8, String),
    Other(String),
}

impl ErrSpec {
    pub fn error(&self) -> BoxError {
        match self {
            ErrSpec::Status(code, msg) => Box::new(tonic::Status::new(
                tonic::Code::from_i32(*code),
                msg.clone(),
            )),
            ErrSpec::Io(kind, msg) => {
                let kinds = [
                    std::io::ErrorKind::ConnectionReset,
                    std::io::ErrorKind::BrokenPipe,
                    std::io::ErrorKind::TimedOut,
                    std::io::ErrorKind::Other,
                ];
                Box::new(std::io::Error::new(kinds[*kind as usize % 4], msg.clone()))
            }
            ErrSpec::Other(msg) => msg.clone().into(),
        }
    }
}

/// A body: pieces concatenated, then cut into frames at arbitrary points (a cut may repeat,
/// which makes an empty DATA frame), then an end.
#[derive(Arbitrary, Debug, Clone)]
pub struct BodySpec {
    pub pieces: Vec<Piece>,
    pub cuts: Vec<u16>,
    pub end: End,
}

/// What a body is made of, frame by frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frames {
    pub data: Vec<Bytes>,
    pub trailers: Option<HeaderMap>,
    pub error: bool,
}

impl BodySpec {
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Message {
                    compressed,
                    payload,
                } => {
                    out.push(u8::from(*compressed));
                    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                    out.extend_from_slice(payload);
                }
                Piece::Lying { flag, len, payload } => {
                    out.push(*flag);
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(payload);
                }
                Piece::Raw(raw) => out.extend_from_slice(raw),
            }
        }
        out
    }

    /// The frames the body will yield.
    pub fn frames(&self) -> Frames {
        let bytes = Bytes::from(self.bytes());
        let mut cuts: Vec<usize> = self
            .cuts
            .iter()
            .map(|&c| {
                if bytes.is_empty() {
                    0
                } else {
                    c as usize % (bytes.len() + 1)
                }
            })
            .collect();
        cuts.sort_unstable();
        let mut data = Vec::new();
        let mut start = 0;
        for c in cuts.into_iter().chain([bytes.len()]) {
            data.push(bytes.slice(start..c));
            start = c;
        }
        if bytes.is_empty() && self.cuts.is_empty() {
            data.clear();
        }
        let (trailers, error) = match &self.end {
            End::Eos => (None, false),
            End::Trailers(t) => (Some(header_map(t)), false),
            End::Error(_) => (None, true),
        };
        Frames {
            data,
            trailers,
            error,
        }
    }

    pub fn body(&self) -> SpecBody {
        let frames = self.frames();
        let mut out: Vec<Result<Frame<Bytes>, BoxError>> = frames
            .data
            .into_iter()
            .map(|d| Ok(Frame::data(d)))
            .collect();
        match &self.end {
            End::Eos => {}
            End::Trailers(_) => out.push(Ok(Frame::trailers(frames.trailers.unwrap()))),
            End::Error(e) => out.push(Err(e.error())),
        }
        StreamBody::new(futures_util::stream::iter(out))
    }
}

/// Runs a future that must complete without waiting on anything: every body here is an
/// in-memory stream. Not `futures_executor::block_on`: the SDK's simple span processor calls
/// that from `Span::end`, and it refuses to nest.
pub fn run<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..1_000 {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("a future that should be ready is still pending after 1000 polls");
}

/// The frames of `body`, as they come, reading at most `limit` frames (then dropping the body).
pub async fn drain<B>(body: B, limit: Option<usize>) -> (Frames, bool)
where
    B: Body<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
    let mut out = Frames {
        data: Vec::new(),
        trailers: None,
        error: false,
    };
    let mut read = 0;
    loop {
        if limit.is_some_and(|l| read >= l) {
            return (out, false);
        }
        match body.frame().await {
            None => return (out, true),
            Some(Err(_)) => {
                out.error = true;
                return (out, true);
            }
            Some(Ok(frame)) => {
                read += 1;
                match frame.into_data() {
                    Ok(data) => out.data.push(data),
                    Err(frame) => match frame.into_trailers() {
                        Ok(t) => {
                            assert!(out.trailers.is_none(), "two trailer frames");
                            out.trailers = Some(t);
                        }
                        Err(_) => panic!("a frame that is neither data nor trailers"),
                    },
                }
            }
        }
    }
}

/// Checks that `got` is what `want` starts with (all of it when `complete`).
pub fn assert_frames(what: &str, got: &Frames, want: &Frames, complete: bool) {
    assert!(
        got.data.len() <= want.data.len(),
        "{what}: more data frames than were sent"
    );
    for (i, (g, w)) in got.data.iter().zip(&want.data).enumerate() {
        assert_eq!(g, w, "{what}: data frame {i} changed");
    }
    if complete {
        assert_eq!(got, want, "{what}: frames changed");
    } else {
        assert!(got.trailers.is_none() || got.trailers == want.trailers);
        assert!(!got.error || want.error);
    }
}

/// The number of messages a whole body holds, up to its first framing error.
pub fn message_count(bytes: &[u8]) -> usize {
    let mut decoder = FrameDecoder::new();
    let mut n = 0;
    let _ = decoder.decode(&Bytes::copy_from_slice(bytes), |_| n += 1);
    n
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

/// An exporter that drops what it is given: spans are built and ended all the way, and
/// nothing accumulates from one input to the next.
#[derive(Debug)]
pub struct NopExporter;

impl SpanExporter for NopExporter {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        drop(batch);
        std::future::ready(Ok(()))
    }
}

/// Counts what the layer reported for the input being run: tags, `End`s and payloads, and
/// whether anything came after the `End`.
#[derive(Debug, Default)]
pub struct Counter {
    pub tags: AtomicUsize,
    pub ends: AtomicUsize,
    pub in_payloads: AtomicUsize,
    pub out_payloads: AtomicUsize,
    pub after_end: AtomicUsize,
    pub kinds: Mutex<VecDeque<&'static str>>,
}

impl Counter {
    pub fn reset(&self) {
        for a in [
            &self.tags,
            &self.ends,
            &self.in_payloads,
            &self.out_payloads,
            &self.after_end,
        ] {
            a.store(0, Ordering::Relaxed);
        }
        self.kinds.lock().unwrap().clear();
    }

    pub fn get(a: &AtomicUsize) -> usize {
        a.load(Ordering::Relaxed)
    }
}

impl StatsHandler for Counter {
    fn tag_rpc(&self, cx: Context, _info: &mut RpcTagInfo<'_>) -> Context {
        self.tags.fetch_add(1, Ordering::Relaxed);
        cx
    }

    fn handle_rpc(&self, _cx: &Context, stats: &RpcStats<'_>) {
        if self.ends.load(Ordering::Relaxed) > 0 {
            self.after_end.fetch_add(1, Ordering::Relaxed);
        }
        let kind = match stats {
            RpcStats::Begin(_) => "Begin",
            RpcStats::InHeader(_) => "InHeader",
            RpcStats::OutHeader(_) => "OutHeader",
            RpcStats::InPayload(_) => {
                self.in_payloads.fetch_add(1, Ordering::Relaxed);
                "InPayload"
            }
            RpcStats::OutPayload(_) => {
                self.out_payloads.fetch_add(1, Ordering::Relaxed);
                "OutPayload"
            }
            RpcStats::InTrailer(_) => "InTrailer",
            RpcStats::OutTrailer(_) => "OutTrailer",
            RpcStats::End(_) => {
                self.ends.fetch_add(1, Ordering::Relaxed);
                "End"
            }
            _ => "other",
        };
        let mut kinds = self.kinds.lock().unwrap();
        if kinds.len() >= 64 {
            kinds.pop_front();
        }
        kinds.push_back(kind);
    }
}

/// The handlers of both targets: OpenTelemetry (two configurations), logs in both formats,
/// and the counter the checks read.
pub type Handlers = (
    OtelHandler,
    (OtelHandler, (LogHandler, (LogHandler, Counter))),
);

pub fn handlers() -> Handlers {
    let provider = || {
        SdkTracerProvider::builder()
            .with_simple_exporter(NopExporter)
            .build()
    };
    let propagator = || {
        TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ])
    };
    let recording = OtelHandler::builder()
        .tracer_provider(provider())
        .propagator(propagator())
        .max_message_events(3)
        .record_metadata([
            "x-meta",
            "grpc-encoding",
            "authorization",
            "x-data-bin",
            "baggage",
        ])
        .legacy_attributes(true)
        .build();
    let public = OtelHandler::builder()
        .tracer_provider(provider())
        .propagator(propagator())
        .public_endpoint(true)
        .header_events(false)
        .build();
    (
        recording,
        (
            public,
            (
                LogHandler::text(std::io::sink()),
                (LogHandler::json(std::io::sink()), Counter::default()),
            ),
        ),
    )
}

pub fn counter(h: &Handlers) -> &Counter {
    &h.1.1.1.1
}

/// The checks every RPC must pass once everything is dropped: tagged iff gRPC, and then
/// exactly one `End`, the last event.
pub fn assert_rpc_ended(c: &Counter, grpc: bool) {
    let tags = Counter::get(&c.tags);
    let ends = Counter::get(&c.ends);
    let kinds = c.kinds.lock().unwrap();
    assert_eq!(
        tags,
        usize::from(grpc),
        "tag_rpc iff gRPC; events {kinds:?}"
    );
    assert_eq!(
        ends, tags,
        "exactly one End per tagged RPC; events {kinds:?}"
    );
    assert_eq!(Counter::get(&c.after_end), 0, "events after End: {kinds:?}");
}

/// A request or response URI path from fuzz bytes, or a plausible one.
#[derive(Arbitrary, Debug, Clone)]
pub enum PathSpec {
    Known(u8),
    Raw(Vec<u8>),
}

impl PathSpec {
    pub fn uri(&self) -> http::Uri {
        match self {
            PathSpec::Known(i) => http::Uri::from_static(
                [
                    "/grpc.examples.echo.Echo/UnaryEcho",
                    "/grpc.health.v1.Health/Check",
                    "/",
                    "/noslash",
                    "http://127.0.0.1:50051/pkg.S/M",
                    "/a/b/c?x=y",
                ][*i as usize % 6],
            ),
            PathSpec::Raw(raw) => http::Uri::try_from(raw.as_slice())
                .unwrap_or_else(|_| http::Uri::from_static("/pkg.Svc/Method")),
        }
    }
}

impl fmt::Display for Frames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} data frames, trailers {:?}, error {}",
            self.data.len(),
            self.trailers,
            self.error
        )
    }
}

/// With `OTEL_STATS_FUZZ_TRACE=1`, prints what each input did (run a corpus with `-runs=0` to
/// see what the fuzzer reaches: gRPC or not, the events, the RPC's end).
pub fn trace(line: impl FnOnce() -> String) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("OTEL_STATS_FUZZ_TRACE").is_some()) {
        eprintln!("trace: {}", line());
    }
}

/// Checks what a layer's service answered against what the inner service made: an error only
/// when the inner service failed, else the same status, headers and response frames. Returns
/// whether the response body was read to its end.
pub fn check_response<B, E>(
    result: Result<http::Response<B>, E>,
    service_error: &Option<ErrSpec>,
    status: http::StatusCode,
    headers: &HeaderMap,
    response: &BodySpec,
    read_limit: Option<u8>,
) -> bool
where
    B: Body<Data = Bytes>,
    E: std::fmt::Display,
{
    match (result, service_error) {
        (Err(_), Some(_)) => false,
        (Err(e), None) => panic!("a service error out of nowhere: {e}"),
        (Ok(_), Some(_)) => panic!("the service error was lost"),
        (Ok(answer), None) => {
            assert_eq!(answer.status(), status);
            assert_eq!(answer.headers(), headers);
            let limit = read_limit.map(usize::from);
            let (frames, complete) = run(drain(answer.into_body(), limit));
            assert_frames("response", &frames, &response.frames(), complete);
            complete
        }
    }
}

/// After the service is gone: the RPC ended once (if tagged), and what happened is traced.
pub fn check_ended(counter: &Counter, grpc: bool, status: http::StatusCode, fully_read: bool) {
    assert_rpc_ended(counter, grpc);
    trace(|| {
        format!(
            "grpc={grpc} status={status} fully_read={fully_read} events={:?}",
            counter.kinds.lock().unwrap()
        )
    });
}

/// The request a target sends: `POST` to `path`, with `headers` and `body`.
pub fn request<B>(path: &PathSpec, headers: HeaderMap, body: B) -> http::Request<B> {
    let mut request = http::Request::builder()
        .method("POST")
        .uri(path.uri())
        .body(body)
        .unwrap();
    *request.headers_mut() = headers;
    request
}

/// The HTTP status the inner service answers with: the input's, if valid, else 200.
pub fn status_of(status: Option<u16>) -> http::StatusCode {
    status
        .and_then(|s| http::StatusCode::from_u16(s).ok())
        .unwrap_or(http::StatusCode::OK)
}
