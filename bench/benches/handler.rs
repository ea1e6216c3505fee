//! Micro-benchmarks of the per-event cost (issue 6, item 4):
//!
//! - `layer_rpc/*`: one whole unary RPC through `ServerStatsLayer` in-process (no network):
//!   tag_rpc, InHeader, Begin, InPayload, OutHeader, OutPayload, OutTrailer, End; against the
//!   same service without the layer.
//! - `handler/tag_begin_end/*`: `OtelHandler::tag_rpc` + `Begin` + the span's end (when the
//!   context is dropped), sampled and unsampled. (`End` itself cannot be built outside the
//!   crate, its struct is `#[non_exhaustive]` and borrows; the layer benchmark has it.)
//! - `handler/message_event/*`: one `InPayload` event on a sampled span (batches of 100).
//! - `frame_decoder/*`: `otel_stats::frame::FrameDecoder` per MiB, small and 64 KiB messages.
//!
//! Spans go to a processor that drops them: the export cost is in the load benchmark.
//!
//! `cargo bench --manifest-path bench/Cargo.toml --bench handler`
//!
//! Instruction counts, free of timing noise: with `HANDLER_CALLGRIND=<set-up>` (one of the
//! `layer_rpc` names, or `naive_floor`: the load benchmark's one-span layer) the binary runs 2,000 RPCs of that set-up only, in `measured_rpcs`;
//! run it under callgrind collecting that function alone and divide by 2,000:
//!
//! ```text
//! B=$(ls -t /work/target-bench/release/deps/handler-* | grep -v '\.d$' | head -1)
//! HANDLER_CALLGRIND=otel_sampled_all_events valgrind --tool=callgrind \
//!     --toggle-collect='*measured_rpcs*' --callgrind-out-file=/tmp/cg $B
//! ```

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, Span, SpanData, SpanProcessor};
use otel_stats::event::{Begin, Payload};
use otel_stats::frame::FrameDecoder;
use otel_stats::{NoopHandler, OtelHandler, RpcStats, RpcTagInfo, ServerStatsLayer, StatsHandler};
use tower::ServiceExt;
use tower_layer::Layer;

/// The naive floor of the load benchmark, for the instruction counts.
#[path = "../src/naive.rs"]
#[allow(dead_code)]
mod naive;

#[derive(Debug)]
struct Discard;
impl SpanProcessor for Discard {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}
    fn on_end(&self, span: SpanData) {
        black_box(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

fn provider(sampled: bool) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_sampler(if sampled {
            Sampler::AlwaysOn
        } else {
            Sampler::ParentBased(Box::new(Sampler::AlwaysOff))
        })
        .with_span_processor(Discard)
        .build()
}

fn handler(sampled: bool, max_messages: usize) -> OtelHandler {
    OtelHandler::builder()
        .tracer_provider(provider(sampled))
        .max_message_events(max_messages)
        .build()
}

fn grpc_frame(msg: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + msg.len());
    b.put_u8(0);
    b.put_u32(msg.len() as u32);
    b.put_slice(msg);
    b.freeze()
}

type Body =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

fn body(data: Bytes, trailers: Option<HeaderMap>) -> Body {
    let mut frames = vec![Ok(Frame::data(data))];
    if let Some(t) = trailers {
        frames.push(Ok(Frame::trailers(t)));
    }
    StreamBody::new(futures_util::stream::iter(frames))
}

fn request_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/grpc"));
    h.insert("te", HeaderValue::from_static("trailers"));
    h.insert("user-agent", HeaderValue::from_static("grpc-rust/0.14"));
    h.insert("grpc-accept-encoding", HeaderValue::from_static("identity"));
    h
}

fn request(msg: &Bytes) -> Request<Body> {
    let mut req = Request::builder()
        .method("POST")
        .uri("http://127.0.0.1:50051/grpc.examples.echo.Echo/UnaryEcho")
        .body(body(msg.clone(), None))
        .unwrap();
    *req.headers_mut() = request_headers();
    req
}

/// An echo that reads the request body and answers with one message and OK trailers.
async fn echo<B: http_body::Body<Data = Bytes>>(
    req: Request<B>,
) -> Result<Response<Body>, Infallible> {
    let collected = req
        .into_body()
        .collect()
        .await
        .ok()
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let mut resp = Response::new(body(collected, Some(trailers)));
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    Ok(resp)
}

fn one_rpc<S, RB>(svc: S, msg: &Bytes)
where
    S: tower_service::Service<Request<Body>, Response = Response<RB>, Error = Infallible>,
    RB: http_body::Body<Data = Bytes>,
{
    futures_executor::block_on(async {
        let resp = svc.oneshot(request(msg)).await.unwrap();
        let collected = resp.into_body().collect().await.ok().unwrap();
        black_box(collected);
    })
}

fn layer_rpc(c: &mut Criterion) {
    let msg = grpc_frame(b"\x0a\x05hello");
    let mut g = c.benchmark_group("layer_rpc");
    g.bench_function("bare_service", |b| {
        b.iter(|| one_rpc(tower::service_fn(echo::<Body>), &msg))
    });
    let noop = ServerStatsLayer::new(NoopHandler);
    g.bench_function("noop_handler", |b| {
        b.iter(|| one_rpc(noop.layer(tower::service_fn(echo)), &msg))
    });
    for (name, sampled) in [("otel_sampled_all_events", true), ("otel_unsampled", false)] {
        let layer = ServerStatsLayer::new(handler(sampled, 100));
        g.bench_function(name, |b| {
            b.iter(|| one_rpc(layer.layer(tower::service_fn(echo)), &msg))
        });
    }
    let layer = ServerStatsLayer::new(
        OtelHandler::builder()
            .tracer_provider(provider(true))
            .message_events(false)
            .build(),
    );
    g.bench_function("otel_sampled_no_msg_events", |b| {
        b.iter(|| one_rpc(layer.layer(tower::service_fn(echo)), &msg))
    });
    g.finish();
}

/// Captures a real `Begin` and `InPayload` (their structs are `#[non_exhaustive]`).
#[derive(Default)]
struct Recorder {
    begin: Mutex<Option<Begin>>,
    payload: Mutex<Option<Payload>>,
}
impl StatsHandler for Recorder {
    fn handle_rpc(&self, _cx: &Context, stats: &RpcStats<'_>) {
        match stats {
            RpcStats::Begin(b) => *self.begin.lock().unwrap() = Some(b.clone()),
            RpcStats::InPayload(p) => *self.payload.lock().unwrap() = Some(p.clone()),
            _ => {}
        }
    }
}

fn handler_events(c: &mut Criterion) {
    let msg = grpc_frame(b"\x0a\x05hello");
    let recorder = Arc::new(Recorder::default());
    one_rpc(
        ServerStatsLayer::from_arc(Arc::clone(&recorder)).layer(tower::service_fn(echo)),
        &msg,
    );
    let begin = recorder.begin.lock().unwrap().clone().unwrap();
    let payload = recorder.payload.lock().unwrap().clone().unwrap();
    let headers = request_headers();
    let addr = Some("127.0.0.1:50051".parse().unwrap());
    let peer = Some("127.0.0.1:40000".parse().unwrap());

    let mut g = c.benchmark_group("handler");
    for (name, sampled) in [("sampled", true), ("unsampled", false)] {
        let h = handler(sampled, 100);
        g.bench_function(format!("tag_begin_end/{name}"), |b| {
            b.iter(|| {
                let mut info =
                    RpcTagInfo::server("/grpc.examples.echo.Echo/UnaryEcho", &headers, peer, addr);
                let cx = h.tag_rpc(Context::new(), &mut info);
                h.handle_rpc(&cx, &RpcStats::Begin(begin.clone()));
                drop(cx); // the span ends here
            })
        });
    }
    let h = handler(true, usize::MAX);
    g.throughput(Throughput::Elements(100));
    g.bench_function("message_event/sampled", |b| {
        b.iter_batched(
            || {
                let mut info =
                    RpcTagInfo::server("/grpc.examples.echo.Echo/UnaryEcho", &headers, peer, addr);
                h.tag_rpc(Context::new(), &mut info)
            },
            |cx| {
                for _ in 0..100 {
                    h.handle_rpc(&cx, &RpcStats::InPayload(payload.clone()));
                }
                cx
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn frame_decoder(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_decoder");
    g.throughput(Throughput::Bytes(1 << 20));
    for (name, size) in [("small_7B_msgs", 7usize), ("64KiB_msgs", 64 * 1024)] {
        // 1 MiB of back-to-back messages, cut into 16 KiB DATA frames as h2 would.
        let one = grpc_frame(&vec![b'x'; size]);
        let mut all = BytesMut::new();
        while all.len() < (1 << 20) {
            all.put_slice(&one);
        }
        all.truncate(1 << 20);
        let all = all.freeze();
        let frames: Vec<Bytes> = (0..all.len())
            .step_by(16 * 1024)
            .map(|i| all.slice(i..(i + 16 * 1024).min(all.len())))
            .collect();
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut d = FrameDecoder::new();
                let mut n = 0u64;
                for f in &frames {
                    d.decode(f, |m| n += m.len as u64).unwrap();
                }
                black_box(n)
            })
        });
    }
    g.finish();
}

/// The RPCs callgrind counts (see the module docs).
#[inline(never)]
fn measured_rpcs<S, RB>(layered: impl Fn() -> S, msg: &Bytes, rpcs: usize)
where
    S: tower_service::Service<Request<Body>, Response = Response<RB>, Error = Infallible>,
    RB: http_body::Body<Data = Bytes>,
{
    for _ in 0..rpcs {
        one_rpc(layered(), msg);
    }
}

/// The RPCs of one `layer_rpc` set-up, warmed up with 100 uncounted ones.
fn callgrind_rpcs<S, RB>(layered: impl Fn() -> S, msg: &Bytes)
where
    S: tower_service::Service<Request<Body>, Response = Response<RB>, Error = Infallible>,
    RB: http_body::Body<Data = Bytes>,
{
    for _ in 0..100 {
        one_rpc(layered(), msg);
    }
    measured_rpcs(layered, msg, CALLGRIND_RPCS);
}

const CALLGRIND_RPCS: usize = 2_000;

fn callgrind(setup: &str) {
    let msg = grpc_frame(b"\x0a\x05hello");
    let otel = |sampled: bool, message_events: bool| {
        ServerStatsLayer::new(
            OtelHandler::builder()
                .tracer_provider(provider(sampled))
                .message_events(message_events)
                .max_message_events(100)
                .build(),
        )
    };
    match setup {
        "bare_service" => callgrind_rpcs(|| tower::service_fn(echo::<Body>), &msg),
        "noop_handler" => {
            let l = ServerStatsLayer::new(NoopHandler);
            callgrind_rpcs(|| l.layer(tower::service_fn(echo)), &msg)
        }
        "otel_sampled_all_events" | "otel_unsampled" | "otel_sampled_no_msg_events" => {
            let l = otel(
                setup != "otel_unsampled",
                setup != "otel_sampled_no_msg_events",
            );
            callgrind_rpcs(|| l.layer(tower::service_fn(echo)), &msg)
        }
        "naive_floor" => {
            use opentelemetry::trace::{SpanKind, TracerProvider};
            let l = naive::NaiveLayer::new(provider(true).tracer("naive"), SpanKind::Server);
            callgrind_rpcs(|| l.layer(tower::service_fn(echo)), &msg)
        }
        other => panic!("HANDLER_CALLGRIND: no layer_rpc set-up {other:?}"),
    }
    println!("{setup}: {CALLGRIND_RPCS} RPCs in measured_rpcs");
}

criterion_group!(benches, layer_rpc, handler_events, frame_decoder);

fn main() {
    if let Ok(setup) = std::env::var("HANDLER_CALLGRIND") {
        callgrind(&setup);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
