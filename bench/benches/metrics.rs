//! Micro-benchmarks of `MetricsHandler`'s per-RPC cost (issue 7, item 4): `tag_rpc` + `Begin` +
//! `End`, through the handler alone, recording into an SDK meter provider whose reader
//! collects once a minute (as the load benchmark's `otel-stats-metrics+unsampled` set-up).
//!
//! - `metrics/server`: the default handler (the conventions' and the connection instruments),
//!   a server RPC on a tagged connection; what the h2load set-up pays per RPC.
//! - `metrics/server_a66`, `metrics/client_a66`: with gRFC A66's instruments too.
//!
//! `End` cannot be built outside the crate (`#[non_exhaustive]`, it borrows), so the timed loop
//! runs inside the `End` callback of one real RPC through `ServerStatsLayer` (in-process, no
//! network), on the layer's own `End`: the RPC that carries it is not timed.
//!
//! `cargo bench --manifest-path bench/Cargo.toml --bench metrics`; instruction counts:
//! `valgrind --tool=callgrind <binary> --bench --profile-time 2 'metrics/server$'`, and the
//! inclusive cost of `metrics::tag_begin_end` divided by its calls.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Empty};
use opentelemetry::Context;
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use otel_stats::event::{Begin, End};
use otel_stats::{
    ConnTagInfo, MetricsHandler, RpcStats, RpcTagInfo, ServerStatsLayer, Side, StatsHandler,
};
use tower::ServiceExt;
use tower_layer::Layer;

const METHOD: &str = "/grpc.examples.echo.Echo/UnaryEcho";

fn meter_provider() -> SdkMeterProvider {
    let reader = PeriodicReader::builder(InMemoryMetricExporter::default())
        .with_interval(Duration::from_secs(60))
        .build();
    SdkMeterProvider::builder().with_reader(reader).build()
}

/// One RPC of `side`, as the layers drive it: tagged, begun and ended with `end`.
#[inline(never)]
fn tag_begin_end(
    metrics: &MetricsHandler,
    parent: &Context,
    side: Side,
    headers: &mut HeaderMap,
    begin: &Begin,
    end: &End<'_>,
) {
    let mut info = match side {
        Side::Server => RpcTagInfo::server(METHOD, headers, None, None),
        Side::Client => RpcTagInfo::client(METHOD, Some("127.0.0.1:50051"), headers),
    };
    let cx = metrics.tag_rpc(parent.clone(), &mut info);
    metrics.handle_rpc(&cx, &RpcStats::Begin(begin.clone()));
    metrics.handle_rpc(&cx, &RpcStats::End(end.clone()));
    black_box(cx);
}

/// Runs `iters` RPCs through `metrics` when the layer's RPC ends, timing them.
struct Replay {
    metrics: MetricsHandler,
    side: Side,
    /// What a server RPC's context derives from: its connection's.
    parent: Context,
    begin: Mutex<Option<Begin>>,
    /// `(iterations asked, time they took)`.
    job: Mutex<(u64, Duration)>,
}

impl StatsHandler for Replay {
    fn handle_rpc(&self, _cx: &Context, stats: &RpcStats<'_>) {
        match stats {
            RpcStats::Begin(b) => *self.begin.lock().unwrap() = Some(b.clone()),
            RpcStats::End(end) => {
                let begin = self.begin.lock().unwrap().clone().unwrap();
                let mut headers = HeaderMap::new();
                let mut job = self.job.lock().unwrap();
                let start = Instant::now();
                for _ in 0..job.0 {
                    let m = &self.metrics;
                    tag_begin_end(m, &self.parent, self.side, &mut headers, &begin, end);
                }
                job.1 = start.elapsed();
            }
            _ => {}
        }
    }

    fn wants_payloads(&self, _cx: &Context) -> bool {
        false
    }
}

/// An OK trailers-only answer: the smallest RPC that reaches `End`.
async fn ok(_req: Request<impl http_body::Body>) -> Result<Response<Empty<Bytes>>, Infallible> {
    let mut resp = Response::new(Empty::new());
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    resp.headers_mut()
        .insert("grpc-status", HeaderValue::from_static("0"));
    Ok(resp)
}

fn bench(c: &mut Criterion, name: &str, side: Side, a66: bool) {
    let metrics = MetricsHandler::builder()
        .meter_provider(meter_provider())
        .a66(a66)
        .build();
    let parent = match side {
        Side::Server => metrics.tag_conn(Context::new(), &ConnTagInfo::new(side, None, None)),
        _ => Context::new(),
    };
    let replay = ServerStatsLayer::new(Replay {
        metrics,
        side,
        parent,
        begin: Mutex::new(None),
        job: Mutex::new((0, Duration::ZERO)),
    });
    let handle = replay.clone();
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            *handle.handler().job.lock().unwrap() = (iters, Duration::ZERO);
            let req = Request::post(format!("http://127.0.0.1:50051{METHOD}"))
                .header("content-type", "application/grpc")
                .body(Empty::<Bytes>::new())
                .unwrap();
            futures_executor::block_on(async {
                let svc = replay.layer(tower::service_fn(ok));
                let resp = svc.oneshot(req).await.unwrap();
                black_box(resp.into_body().collect().await.ok());
            });
            handle.handler().job.lock().unwrap().1
        })
    });
}

fn metrics(c: &mut Criterion) {
    bench(c, "metrics/server", Side::Server, false);
    bench(c, "metrics/server_a66", Side::Server, true);
    bench(c, "metrics/client_a66", Side::Client, true);
}

criterion_group!(benches, metrics);
criterion_main!(benches);
