//! Instructions per span of each export path, for callgrind: `N` sampled server spans made
//! like `OtelHandler`'s (5 attributes, 5 events, 1 link) by an `SdkTracerProvider` whose one
//! processor is
//!
//! - `discard`: drops each span in `on_end` (the baseline: making and freeing the spans);
//! - `bsp-direct`: the SDK's `BatchSpanProcessor` in front of `DirectSpanExporter`
//!   (`init_otlp`'s default);
//! - `onend`: `DirectSpanProcessor` (each span encoded in `on_end`, batches of bytes sent
//!   from the processor's thread);
//!
//! then the provider's shutdown, which sends what is left and waits for the answers. The
//! OTLP receiver (opentelemetry-proto's `TraceServiceServer`, decoding every request) runs
//! in a child process, so that callgrind counts the exporting process alone, all its
//! threads. Both paths use batches of 512 and a queue of `N` spans (callgrind runs one
//! thread at a time; a smaller queue would drop spans while the export thread waits).
//!
//! ```sh
//! cargo build --release --manifest-path bench/Cargo.toml --bin callgrind_export
//! valgrind --tool=callgrind --callgrind-out-file=cg.%p target/release/callgrind_export onend 20000
//! ```
//!
//! Every span is checked to have arrived (the child's count) before the binary exits.
//! Fixed costs (threads, runtimes, the connection) cancel out in the difference of two
//! runs with different `N`: (instructions(N2) - instructions(N1)) / (N2 - N1).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, Span, SpanData, SpanProcessor,
};
use otel_stats::export::{
    DirectExportHandle, DirectSpanExporter, DirectSpanProcessor, Protocol, SignalConfig,
};

#[path = "../export_fixture.rs"]
mod export_fixture;

use export_fixture::CountingReceiver;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("receive") => receive(),
        Some(path @ ("discard" | "bsp-direct" | "onend")) => {
            let n: u64 = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(10_000);
            export(path, n);
        }
        _ => {
            eprintln!("usage: callgrind_export discard|bsp-direct|onend N");
            std::process::exit(2);
        }
    }
}

/// The child: serves on a port of its own, prints it, and when its stdin closes prints the
/// spans it received.
fn receive() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();
    let service = TraceServiceServer::new(CountingReceiver(Arc::clone(&received)))
        .max_decoding_message_size(256 << 20);
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let mut rest = String::new();
    let _ = std::io::stdin().read_line(&mut rest);
    println!("{}", received.load(Ordering::Relaxed));
}

/// Drops every span it is given.
#[derive(Debug)]
struct Discard;

impl SpanProcessor for Discard {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}
    fn on_end(&self, span: SpanData) {
        drop(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: std::time::Duration) -> OTelSdkResult {
        Ok(())
    }
}

fn export(path: &str, n: u64) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("receive")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = lines.next().unwrap().unwrap();
    let config = SignalConfig::new(
        Protocol::Grpc,
        format!("http://127.0.0.1:{port}").parse().unwrap(),
    );
    let queue = n as usize;
    let builder = SdkTracerProvider::builder().with_resource(
        Resource::builder()
            .with_service_name("bench-server")
            .build(),
    );
    let (provider, handle): (SdkTracerProvider, Option<DirectExportHandle>) = match path {
        "discard" => (builder.with_span_processor(Discard).build(), None),
        "bsp-direct" => {
            let exporter = DirectSpanExporter::new(&config).unwrap();
            let handle = exporter.handle();
            let batch = BatchSpanProcessor::builder(exporter)
                .with_batch_config(
                    BatchConfigBuilder::default()
                        .with_max_queue_size(queue)
                        .with_max_export_batch_size(512)
                        .build(),
                )
                .build();
            (builder.with_span_processor(batch).build(), Some(handle))
        }
        _ => {
            let processor = DirectSpanProcessor::builder(&config)
                .with_max_queue_size(queue)
                .with_max_export_batch_size(512)
                .build()
                .unwrap();
            let handle = processor.handle();
            (builder.with_span_processor(processor).build(), Some(handle))
        }
    };
    export_fixture::record(&provider.tracer("otel-stats"), n);
    provider.shutdown().unwrap();

    drop(child.stdin.take());
    let received: u64 = lines.next().unwrap().unwrap().parse().unwrap();
    child.wait().unwrap();
    let stats = handle.map(|h| h.stats());
    eprintln!("{path}: {n} spans ended, {received} received, {stats:?}");
    if path != "discard" {
        assert_eq!(received, n, "every span arrives");
    }
}
