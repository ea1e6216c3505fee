//! Where the demo's spans and metrics go: an OTLP collector when the `OTEL_*` variables say
//! so, or collectors in the process for the terminal waterfall and metrics summary.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::Value;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{
    AggregatedMetrics, HistogramDataPoint, MetricData, ResourceMetrics,
};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use otel_stats::metrics::names;
use otel_stats::{LogFormat, LogHandler, MetricsHandler, OtelGuard, OtelHandler, StatsHandler};

/// `true` when the environment names an OTLP endpoint.
pub fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
}

/// Installs OTLP export (from the `OTEL_*` variables) when an endpoint is configured.
pub fn otlp_from_env(service_name: &str) -> Result<Option<Export>, String> {
    if !otlp_configured() {
        return Ok(None);
    }
    otel_stats::init_otlp(service_name)
        .map(|guard| Some(Export::new(guard)))
        .map_err(|e| format!("cannot set up OTLP export: {e}"))
}

/// How often the demo tells about spans lost while it runs.
const LOSS_REPORT_EVERY: Duration = Duration::from_secs(10);

/// The OTLP pipeline of a demo binary, and its loss report: the library reports losses only
/// through `ExportStats` (and `tracing`), so the binary prints them, on stderr, at most every
/// [`LOSS_REPORT_EVERY`] and once more at shutdown.
#[derive(Debug)]
pub struct Export {
    guard: Arc<OtelGuard>,
    reporter: tokio::task::JoinHandle<()>,
}

impl Export {
    fn new(guard: OtelGuard) -> Export {
        let guard = Arc::new(guard);
        let watched = Arc::downgrade(&guard);
        let reporter = tokio::spawn(async move {
            let mut reported = 0;
            loop {
                tokio::time::sleep(LOSS_REPORT_EVERY).await;
                let Some(stats) = watched.upgrade().map(|g| g.export_stats()) else {
                    return;
                };
                if stats.failed > reported {
                    eprintln!("otel-stats demo: spans are being lost ({stats})");
                    reported = stats.failed;
                }
            }
        });
        Export { guard, reporter }
    }

    /// Exports what is queued, shuts the pipeline down, and reports on stderr what was lost.
    pub fn shutdown(self) -> OTelSdkResult {
        self.reporter.abort();
        match Arc::try_unwrap(self.guard) {
            Ok(guard) => {
                let result = guard.tracer_provider().force_flush();
                let stats = guard.export_stats();
                if stats.failed + stats.dropped() > 0 {
                    eprintln!("otel-stats demo: spans lost by the OTLP pipeline: {stats}");
                }
                result.and(guard.shutdown())
            }
            // The reporter holds it for a moment: dropping it last shuts it down.
            Err(_) => Ok(()),
        }
    }
}

/// The handlers the options ask for: `OtelHandler` (with `provider`, else the global one) and
/// `MetricsHandler` (with the global meter provider) when `otel`, and a `LogHandler` on stderr
/// when `stats_log` is given.
pub fn handlers(
    otel: bool,
    provider: Option<SdkTracerProvider>,
    stats_log: Option<LogFormat>,
) -> Vec<Box<dyn StatsHandler>> {
    handlers_with(otel, provider, None, stats_log)
}

/// [`handlers`], with `meters` (else the global meter provider) for the `MetricsHandler`.
pub fn handlers_with(
    otel: bool,
    provider: Option<SdkTracerProvider>,
    meters: Option<SdkMeterProvider>,
    stats_log: Option<LogFormat>,
) -> Vec<Box<dyn StatsHandler>> {
    let mut handlers: Vec<Box<dyn StatsHandler>> = Vec::new();
    if otel {
        let mut builder = OtelHandler::builder().filter(otel_stats::filters::not_health_check);
        if let Some(provider) = provider {
            builder = builder.tracer_provider(provider);
        }
        handlers.push(Box::new(builder.build()));
        let mut metrics = MetricsHandler::builder();
        if let Some(meters) = meters {
            metrics = metrics.meter_provider(meters);
        }
        handlers.push(Box::new(metrics.build()));
    }
    if let Some(format) = stats_log {
        handlers.push(Box::new(LogHandler::new(std::io::stderr(), format)));
    }
    handlers
}

/// A span exporter that keeps what it is given, for the waterfall and for tests.
#[derive(Debug, Clone, Default)]
pub struct SpanCollector {
    spans: Arc<Mutex<Vec<SpanData>>>,
}

impl SpanCollector {
    /// A tracer provider for `service_name` exporting into this collector as each span ends.
    pub fn provider(&self, service_name: &'static str) -> SdkTracerProvider {
        SdkTracerProvider::builder()
            .with_simple_exporter(self.clone())
            .with_resource(Resource::builder().with_service_name(service_name).build())
            .build()
    }

    /// The spans collected so far.
    pub fn spans(&self) -> Vec<SpanData> {
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits (up to `patience`) until `done` holds for the spans; returns whether it did.
    pub async fn wait_for(&self, patience: Duration, done: impl Fn(&[SpanData]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if done(&self.spans()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl SpanExporter for SpanCollector {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.spans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(batch);
        Ok(())
    }
}

/// The calls of one method that ended with one status, on one side: a line of the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSummary {
    /// `client` or `server`.
    pub side: &'static str,
    /// `rpc.method`.
    pub method: String,
    /// `rpc.response.status_code`.
    pub status: String,
    /// How many calls.
    pub calls: u64,
    /// The median duration, estimated from the histogram's buckets, in seconds.
    pub p50_seconds: f64,
}

/// Connections seen on one side.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnSummary {
    /// Connections that ended.
    pub closed: u64,
    /// Connections still open.
    pub open: i64,
}

/// What the metrics said at the last collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSummary {
    /// Per side, method and status, from `rpc.{client,server}.call.duration`.
    pub calls: Vec<CallSummary>,
    /// Client connections.
    pub client_connections: ConnSummary,
    /// Server connections.
    pub server_connections: ConnSummary,
}

/// A metric exporter that keeps a summary of the last collection, for the embedded demo.
#[derive(Debug, Clone, Default)]
pub struct MetricsCollector {
    summary: Arc<Mutex<MetricsSummary>>,
}

impl MetricsCollector {
    /// A meter provider exporting here, when flushed or shut down (and every minute).
    pub fn provider(&self) -> SdkMeterProvider {
        SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(self.clone()).build())
            .with_resource(
                Resource::builder()
                    .with_service_name("otel-stats-demo")
                    .build(),
            )
            .build()
    }

    /// The summary of the last collection.
    pub fn summary(&self) -> MetricsSummary {
        self.summary
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The median of a histogram data point, interpolated within its bucket and clamped to the
/// recorded minimum and maximum.
fn median(point: &HistogramDataPoint<f64>) -> f64 {
    let bounds: Vec<f64> = point.bounds().collect();
    let (min, max) = (point.min().unwrap_or(0.0), point.max().unwrap_or(0.0));
    let half = point.count() as f64 / 2.0;
    let mut below = 0.0;
    for (i, n) in point.bucket_counts().enumerate() {
        let n = n as f64;
        if n > 0.0 && below + n >= half {
            let low = if i == 0 { min } else { bounds[i - 1].max(min) };
            let high = bounds.get(i).map_or(max, |b| b.min(max));
            return low + (high - low) * ((half - below) / n);
        }
        below += n;
    }
    max
}

fn attribute(point: &HistogramDataPoint<f64>, key: &str) -> String {
    point
        .attributes()
        .find(|kv| kv.key.as_str() == key)
        .map_or_else(String::new, |kv| match &kv.value {
            Value::String(s) => s.as_str().to_owned(),
            other => other.to_string(),
        })
}

fn summarise(metrics: &ResourceMetrics) -> MetricsSummary {
    let mut summary = MetricsSummary::default();
    for metric in metrics.scope_metrics().flat_map(|s| s.metrics()) {
        let name = metric.name();
        match metric.data() {
            AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                let side = match name {
                    names::RPC_CLIENT_CALL_DURATION => "client",
                    names::RPC_SERVER_CALL_DURATION => "server",
                    names::CLIENT_CONNECTION_DURATION => {
                        summary.client_connections.closed =
                            h.data_points().map(|p| p.count()).sum();
                        continue;
                    }
                    names::SERVER_CONNECTION_DURATION => {
                        summary.server_connections.closed =
                            h.data_points().map(|p| p.count()).sum();
                        continue;
                    }
                    _ => continue,
                };
                summary.calls.extend(h.data_points().map(|p| CallSummary {
                    side,
                    method: attribute(p, "rpc.method"),
                    status: attribute(p, "rpc.response.status_code"),
                    calls: p.count(),
                    p50_seconds: median(p),
                }));
            }
            AggregatedMetrics::I64(MetricData::Sum(sum)) => {
                let open: i64 = sum.data_points().map(|p| p.value()).sum();
                match name {
                    names::CLIENT_CONNECTION_OPEN => summary.client_connections.open = open,
                    names::SERVER_CONNECTION_OPEN => summary.server_connections.open = open,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    summary
        .calls
        .sort_by(|a, b| (a.side, &a.method, &a.status).cmp(&(b.side, &b.method, &b.status)));
    summary
}

impl PushMetricExporter for MetricsCollector {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let summary = summarise(metrics);
        *self.summary.lock().unwrap_or_else(|e| e.into_inner()) = summary;
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}
