//! Exporting one batch of 512 spans over OTLP/gRPC to a receiver in the same process (the
//! `opentelemetry-proto` crate's `TraceServiceServer`, decoding every request), through
//! otel-stats' `DirectSpanExporter` against `opentelemetry-otlp`'s tonic `SpanExporter`, in
//! the same run, plain and with gzip. Each iteration is `export` of one batch as the SDK's
//! batch processor calls it (`futures_executor::block_on` on a thread outside the runtime)
//! until the collector has answered: for the direct exporter, which returns once the request
//! is queued, `export` then `force_flush`.
//!
//! The spans are made by the SDK itself, like `OtelHandler`'s server spans: 5 attributes,
//! 5 events with 1-2 attributes each, a link.
//!
//! `CARGO_TARGET_DIR=/work/target-bench cargo bench --manifest-path bench/Cargo.toml --bench export`
//!
//! CPU rather than wall time: with `EXPORT_CPU=<batches>` the binary exports that many
//! batches through each path and prints, per span, the CPU time (user + system) of every
//! thread but the receiver's (which runs on a runtime of its own): the calling thread's
//! encoding, and the sending, on the exporter's thread or the standard exporter's runtime.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData, SpanExporter};
use otel_stats::export::{Compression, DirectSpanExporter, Protocol, SignalConfig};
use tokio::runtime::Runtime;

#[path = "../src/export_fixture.rs"]
mod export_fixture;

use export_fixture::CountingReceiver;

const BATCH: usize = 512;

fn receiver(runtime: &Runtime) -> (SocketAddr, Arc<AtomicU64>) {
    let received = Arc::new(AtomicU64::new(0));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let service = TraceServiceServer::new(CountingReceiver(Arc::clone(&received)))
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            ),
    );
    (addr, received)
}

/// 512 server spans as `OtelHandler` records them, made by the SDK.
fn batch() -> Vec<SpanData> {
    let spans = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    export_fixture::record(&provider.tracer("otel-stats"), BATCH as u64);
    spans.get_finished_spans().unwrap()
}

fn resource() -> Resource {
    Resource::builder()
        .with_service_name("bench-server")
        .build()
}

/// One of the two exporters, called as the batch processor calls it.
enum Path {
    Direct(DirectSpanExporter),
    Standard(opentelemetry_otlp::SpanExporter),
}

impl Path {
    fn new(which: &str, gzip: bool, addr: SocketAddr, runtime: &Runtime) -> Path {
        let endpoint = format!("http://{addr}");
        let mut path = match which {
            "direct" => {
                let config = SignalConfig::new(Protocol::Grpc, endpoint.parse().unwrap())
                    .with_compression(gzip.then_some(Compression::Gzip));
                Path::Direct(DirectSpanExporter::new(&config).unwrap())
            }
            _ => {
                let _in_runtime = runtime.enter();
                let mut builder = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint);
                if gzip {
                    builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
                }
                Path::Standard(builder.build().unwrap())
            }
        };
        let resource = resource();
        match &mut path {
            Path::Direct(e) => e.set_resource(&resource),
            Path::Standard(e) => e.set_resource(&resource),
        }
        path
    }

    /// Exports `spans` and returns once the collector has answered.
    fn export(&self, spans: Vec<SpanData>) {
        match self {
            Path::Direct(e) => {
                futures_executor::block_on(e.export(spans)).unwrap();
                e.force_flush().unwrap();
            }
            Path::Standard(e) => futures_executor::block_on(e.export(spans)).unwrap(),
        }
    }
}

const PATHS: [(&str, bool); 4] = [
    ("direct", false),
    ("standard", false),
    ("direct", true),
    ("standard", true),
];

fn name(which: &str, gzip: bool) -> String {
    format!("{which}{}", if gzip { "_gzip" } else { "" })
}

fn export(c: &mut Criterion, runtime: &Runtime, addr: SocketAddr, received: &AtomicU64) {
    let spans = batch();
    let mut g = c.benchmark_group("export_512");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (which, gzip) in PATHS {
        let path = Path::new(which, gzip, addr, runtime);
        let before = received.load(Ordering::Relaxed);
        path.export(spans.clone());
        assert_eq!(received.load(Ordering::Relaxed) - before, BATCH as u64);
        g.bench_function(name(which, gzip), |b| {
            b.iter_batched(
                || spans.clone(),
                |spans| path.export(black_box(spans)),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// The CPU time so far (user + system) of this process's threads other than the
/// receiver's, from `/proc/self/task/*/stat`.
fn cpu_time() -> Duration {
    let mut ticks = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let Ok(stat) = std::fs::read_to_string(task.unwrap().path().join("stat")) else {
            continue; // the thread ended
        };
        let (open, close) = (stat.find('(').unwrap(), stat.rfind(')').unwrap());
        if &stat[open + 1..close] == RECEIVER_THREAD {
            continue;
        }
        // After the thread name: utime is the 12th field, stime the 13th.
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

fn cpu(batches: usize, runtime: &Runtime, addr: SocketAddr) {
    let spans = batch();
    for (which, gzip) in PATHS {
        let path = Path::new(which, gzip, addr, runtime);
        path.export(spans.clone());
        let prepared: Vec<Vec<SpanData>> = (0..batches).map(|_| spans.clone()).collect();
        let (cpu, wall) = (cpu_time(), Instant::now());
        for spans in prepared {
            path.export(spans);
        }
        let (cpu, wall) = (cpu_time() - cpu, wall.elapsed());
        let per_span = |d: Duration| d.as_secs_f64() * 1e6 / (batches * BATCH) as f64;
        println!(
            "{:<14} CPU {:.3} µs/span, wall {:.3} µs/span ({batches} batches of {BATCH})",
            name(which, gzip),
            per_span(cpu),
            per_span(wall)
        );
    }
}

/// The receiver's threads, left out of the CPU figures.
const RECEIVER_THREAD: &str = "bench-receiver";

fn main() {
    let runtime = |name: &str| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()
            .unwrap()
    };
    // The receiver on a runtime of its own, so that its CPU can be told apart; the standard
    // exporter's channel runs on the other.
    let receiving = runtime(RECEIVER_THREAD);
    let (addr, received) = receiver(&receiving);
    let runtime = runtime("bench-exporter");
    if let Ok(batches) = std::env::var("EXPORT_CPU") {
        cpu(
            batches.parse().expect("EXPORT_CPU=<batches>"),
            &runtime,
            addr,
        );
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    export(&mut c, &runtime, addr, &received);
    c.final_summary();
}
