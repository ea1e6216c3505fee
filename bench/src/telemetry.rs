//! The export pipeline every sampled set-up uses (the SDK's batch span processor and an
//! OTLP/gRPC exporter: otel-stats' direct exporter for otel-stats' set-ups, opentelemetry-otlp's
//! for the peers and the naive floor), with a count of the spans handed to it, and the loopback
//! OTLP receiver that decodes every export request and counts the spans that arrived.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, Span, SpanData,
    SpanProcessor,
};
use otel_stats::export::{DirectSpanExporter, DirectSpanProcessor, Protocol, SignalConfig};

/// The batch processor's queue for the unary workloads. The SDK default (2048) drops spans at
/// tens of thousands of RPCs per second for every set-up alike; a larger queue lets all of
/// them arrive, so that the figures include the full cost of exporting. Same for every
/// set-up. (The SDK's queue is allocated and touched up front: ~23 MiB of RSS at this size.)
pub const QUEUE: usize = 65_536;
/// The SDK default, for the stream workload (3 spans per run), whose figure is peak RSS.
pub const DEFAULT_QUEUE: usize = 2_048;

/// The span exporter behind the batch processor: what each set-up would use in production.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exporter {
    /// opentelemetry-otlp's tonic `SpanExporter` (the peers and the naive floor).
    OtlpTonic,
    /// otel-stats' `DirectSpanExporter` (what `init_otlp` installs by default).
    Direct,
    /// otel-stats' `DirectSpanProcessor` in place of the batch processor: each span encoded
    /// at `on_end`, batches of bytes sent from the processor's thread (issue 13's second
    /// design). Same queue size and batch size as the batch processor.
    DirectOnEnd,
}

impl Exporter {
    pub fn name(self) -> &'static str {
        match self {
            Exporter::OtlpTonic => "opentelemetry-otlp-tonic",
            Exporter::Direct => "otel-stats-direct",
            Exporter::DirectOnEnd => "otel-stats-direct-onend",
        }
    }

    fn build(self, otlp: &str, queue: usize) -> Processor {
        let config = BatchConfigBuilder::default()
            .with_max_queue_size(queue)
            .build();
        match self {
            Exporter::OtlpTonic => {
                let exporter = SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(otlp)
                    .with_timeout(Duration::from_secs(10))
                    .build()
                    .expect("OTLP exporter");
                Processor::Batch(
                    BatchSpanProcessor::builder(exporter)
                        .with_batch_config(config)
                        .build(),
                )
            }
            Exporter::Direct => {
                let exporter =
                    DirectSpanExporter::new(&direct_config(otlp)).expect("direct exporter");
                Processor::Batch(
                    BatchSpanProcessor::builder(exporter)
                        .with_batch_config(config)
                        .build(),
                )
            }
            Exporter::DirectOnEnd => Processor::OnEnd(
                DirectSpanProcessor::builder(&direct_config(otlp))
                    .with_max_queue_size(queue)
                    .build()
                    .expect("direct processor"),
            ),
        }
    }
}

/// OTLP/gRPC to the receiver, as the direct exporter and processor are configured.
fn direct_config(otlp: &str) -> SignalConfig {
    let endpoint = otlp.parse().expect("receiver URI");
    SignalConfig::new(Protocol::Grpc, endpoint).with_timeout(Duration::from_secs(10))
}

/// The span processor behind the counter.
#[derive(Debug)]
enum Processor {
    Batch(BatchSpanProcessor),
    OnEnd(DirectSpanProcessor),
}

macro_rules! each {
    ($processor:expr, $p:ident => $e:expr) => {
        match $processor {
            Processor::Batch($p) => $e,
            Processor::OnEnd($p) => $e,
        }
    };
}

pub struct Telemetry {
    pub provider: SdkTracerProvider,
    pub created: Arc<AtomicU64>,
}

impl Telemetry {
    /// A provider exporting to `otlp` through the batch processor and `exporter`, as `service`.
    ///
    /// Diagnostic: with `BENCH_NO_EXPORT=1` in the environment the spans are counted and then
    /// dropped, without the batch processor or the exporter, to tell the cost of making spans
    /// from the cost of exporting them (such runs show as NOT COMPARABLE: nothing arrives).
    pub fn new(
        otlp: &str,
        service: &str,
        sampler: Sampler,
        queue: usize,
        exporter: Exporter,
    ) -> Telemetry {
        let batch = exporter.build(otlp, queue);
        let created = Arc::new(AtomicU64::new(0));
        let batch = (std::env::var_os("BENCH_NO_EXPORT").is_none()).then_some(batch);
        let provider = SdkTracerProvider::builder()
            .with_span_processor(Counting {
                inner: batch,
                created: Arc::clone(&created),
            })
            .with_sampler(sampler)
            .with_resource(
                Resource::builder()
                    .with_service_name(service.to_owned())
                    .build(),
            )
            .build();
        Telemetry { provider, created }
    }

    /// Exports what is queued and stops; returns the number of spans ended (created).
    pub fn shutdown(&self) -> u64 {
        let _ = self.provider.force_flush();
        let _ = self.provider.shutdown();
        self.created.load(Ordering::Relaxed)
    }
}

/// Counts the spans ended (sampled ones: only those reach processors), then batches them.
#[derive(Debug)]
struct Counting {
    inner: Option<Processor>,
    created: Arc<AtomicU64>,
}

impl SpanProcessor for Counting {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        if let Some(inner) = &self.inner {
            each!(inner, p => p.on_start(span, cx))
        }
    }
    fn on_end(&self, span: SpanData) {
        self.created.fetch_add(1, Ordering::Relaxed);
        if let Some(inner) = &self.inner {
            each!(inner, p => p.on_end(span))
        }
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner
            .as_ref()
            .map_or(Ok(()), |i| each!(i, p => p.force_flush()))
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner
            .as_ref()
            .map_or(Ok(()), |i| each!(i, p => p.shutdown_with_timeout(timeout)))
    }
    fn set_resource(&mut self, resource: &Resource) {
        if let Some(inner) = &mut self.inner {
            each!(inner, p => p.set_resource(resource))
        }
    }
}

/// The spans that arrived, by `service.name`.
#[derive(Clone, Default)]
pub struct Arrivals(Arc<Mutex<HashMap<String, u64>>>);

impl Arrivals {
    pub fn get(&self, service: &str) -> u64 {
        self.0.lock().unwrap().get(service).copied().unwrap_or(0)
    }
}

struct Receiver(Arrivals);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let request = request.into_inner();
        let mut map = self.0.0.lock().unwrap();
        for rs in &request.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(Value::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            let spans: usize = rs.scope_spans.iter().map(|s| s.spans.len()).sum();
            *map.entry(service).or_default() += spans as u64;
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// Starts the receiver on 127.0.0.1 (a port of its own) on `rt`; returns its URL.
pub fn start_receiver(rt: &tokio::runtime::Runtime) -> (String, Arrivals) {
    let arrivals = Arrivals::default();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind receiver");
    let addr = listener.local_addr().unwrap();
    let svc =
        TraceServiceServer::new(Receiver(arrivals.clone())).max_decoding_message_size(256 << 20);
    rt.spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .expect("receiver");
    });
    (format!("http://{addr}"), arrivals)
}
