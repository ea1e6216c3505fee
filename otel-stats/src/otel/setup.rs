//! [`init_otlp`]: the one-call setup for the common case, OTLP/gRPC span and metric exporters
//! configured from the `OTEL_*` environment variables.

use std::fmt;
use std::sync::Arc;

use opentelemetry::global;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry_otlp::{ExporterBuildError, MetricExporter, SpanExporter};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{BatchConfig, BatchSpanProcessor, SdkTracerProvider};

use super::accounting::{Counters, CountingExporter, CountingProcessor, ExportStats};

/// Installs an OpenTelemetry pipeline that exports spans and metrics over OTLP/gRPC, and
/// returns a guard that flushes it.
///
/// - The exporters read the standard variables: `OTEL_EXPORTER_OTLP_ENDPOINT` (default
///   `http://localhost:4317`), `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
///   `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, `..._HEADERS`, `..._TIMEOUT`, `..._COMPRESSION`.
/// - Spans go through the SDK's batch processor (`OTEL_BSP_*`): ending a span only queues
///   it, and a full queue drops spans rather than wait, so exporting never blocks an RPC.
/// - Metrics (from [`MetricsHandler`](crate::MetricsHandler)s) are aggregated in memory and
///   exported by the SDK's periodic reader every `OTEL_METRIC_EXPORT_INTERVAL` milliseconds
///   (60 000 by default), with cumulative temporality. `OTEL_METRICS_EXPORTER=none` turns
///   their export off.
/// - The resource's `service.name` is `service_name`, unless `OTEL_SERVICE_NAME` is set;
///   `OTEL_RESOURCE_ATTRIBUTES` adds to it.
/// - The global tracer provider is set, and the global propagator: W3C trace context, plus
///   W3C baggage when `OTEL_PROPAGATORS` lists `baggage` (`none` installs neither).
///
/// Call it inside a Tokio runtime (the gRPC client needs one), before building the
/// [`MetricsHandler`](crate::MetricsHandler)s and the [`OtelHandler`](crate::OtelHandler)s'
/// first spans, and keep the guard alive until the end: dropping it, or calling
/// [`OtelGuard::shutdown`], exports what is queued.
///
/// # Examples
///
/// ```no_run
/// use otel_stats::{MetricsHandler, OtelHandler, ServerStatsLayer, init_otlp};
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let telemetry = init_otlp("echo-server")?;
///     let stats = ServerStatsLayer::new((OtelHandler::new(), MetricsHandler::new()));
///     // ... serve with `stats` ...
///     # let _ = stats;
///     telemetry.shutdown()?;
///     Ok(())
/// }
/// ```
pub fn init_otlp(service_name: &str) -> Result<OtelGuard, ExporterBuildError> {
    let exporter = SpanExporter::builder().with_tonic().build()?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none_or(|v| v.is_empty()) {
        resource = resource.with_service_name(service_name.to_owned());
    }
    let resource = resource.build();
    let mut meters = SdkMeterProvider::builder().with_resource(resource.clone());
    if metrics_exported() {
        meters = meters.with_periodic_exporter(MetricExporter::builder().with_tonic().build()?);
    }
    let meter_provider = meters.build();
    // The batch processor as `with_batch_exporter` makes it (OTEL_BSP_* apply), between
    // counters of what ends and what the collector takes.
    let config = BatchConfig::default();
    // The same sizes the SDK read for `config` (its fields are private).
    let capacity =
        env_u64("OTEL_BSP_MAX_QUEUE_SIZE", 2048) + env_u64("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512);
    let counters = Counters::new(capacity);
    let exporter = CountingExporter {
        inner: exporter,
        counters: Arc::clone(&counters),
    };
    let processor = CountingProcessor {
        inner: BatchSpanProcessor::new(exporter, config),
        counters: Arc::clone(&counters),
    };
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .build();
    global::set_tracer_provider(provider.clone());
    global::set_meter_provider(meter_provider.clone());
    if let Some(propagator) = propagator_from_env() {
        global::set_text_map_propagator(propagator);
    }
    Ok(OtelGuard {
        provider,
        meter_provider,
        counters,
        shut_down: false,
    })
}

/// A number from the environment, or `default` when it is absent or not a number.
fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// `false` when `OTEL_METRICS_EXPORTER` is `none`.
fn metrics_exported() -> bool {
    std::env::var("OTEL_METRICS_EXPORTER").map_or(true, |v| v.trim() != "none")
}

/// The propagator `OTEL_PROPAGATORS` asks for, among those this crate knows.
fn propagator_from_env() -> Option<TextMapCompositePropagator> {
    let wanted = std::env::var("OTEL_PROPAGATORS").unwrap_or_default();
    let wanted: Vec<&str> = wanted
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if wanted.contains(&"none") {
        return None;
    }
    let mut propagators: Vec<Box<dyn TextMapPropagator + Send + Sync>> =
        vec![Box::new(TraceContextPropagator::new())];
    if wanted.contains(&"baggage") {
        propagators.push(Box::new(BaggagePropagator::new()));
    }
    Some(TextMapCompositePropagator::new(propagators))
}

/// Keeps the pipeline of [`init_otlp`]; dropping it flushes and shuts the pipeline down:
/// spans, then metrics.
///
/// Shutting down waits for the last exports (at most the OTLP timeout each). In a current-thread
/// Tokio runtime the export cannot progress while the runtime's thread waits, so there call
/// [`shutdown`](Self::shutdown) from `tokio::task::spawn_blocking`, or use a multi-thread
/// runtime (`#[tokio::main]`'s default).
#[must_use = "dropping the guard shuts the exporter down"]
pub struct OtelGuard {
    provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    counters: Arc<Counters>,
    shut_down: bool,
}

impl fmt::Debug for OtelGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtelGuard")
            .field("shut_down", &self.shut_down)
            .finish()
    }
}

impl OtelGuard {
    /// The tracer provider, to pass to
    /// [`OtelHandlerBuilder::tracer_provider`](crate::OtelHandlerBuilder::tracer_provider) or
    /// to flush with `force_flush`.
    ///
    /// ```no_run
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let telemetry = otel_stats::init_otlp("echo-server")?;
    /// let handler = otel_stats::OtelHandler::builder()
    ///     .tracer_provider(telemetry.tracer_provider().clone())
    ///     .build();
    /// # let _ = handler;
    /// # Ok(()) }
    /// ```
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// The meter provider (also the global one), to pass to
    /// [`MetricsHandlerBuilder::meter_provider`](crate::MetricsHandlerBuilder::meter_provider)
    /// or to flush with `force_flush`.
    ///
    /// ```no_run
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let telemetry = otel_stats::init_otlp("echo-server")?;
    /// let handler = otel_stats::MetricsHandler::builder()
    ///     .meter_provider(telemetry.meter_provider().clone())
    ///     .build();
    /// # let _ = handler;
    /// # Ok(()) }
    /// ```
    pub fn meter_provider(&self) -> &SdkMeterProvider {
        &self.meter_provider
    }

    /// What happened to the sampled spans so far: ended, exported, failed, dropped. Spans
    /// that are lost are also reported on stderr, at most one line every 10 seconds, and once
    /// more at shutdown.
    ///
    /// ```no_run
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let telemetry = otel_stats::init_otlp("echo-server")?;
    /// let _ = telemetry.tracer_provider().force_flush();
    /// let stats = telemetry.export_stats();
    /// println!("{stats}; {} lost", stats.failed + stats.dropped());
    /// # Ok(()) }
    /// ```
    pub fn export_stats(&self) -> ExportStats {
        self.counters.stats()
    }

    /// Exports what is queued and shuts the pipeline down: spans, then metrics (a last
    /// collection and export). Both are shut down; the first error is returned.
    ///
    /// ```no_run
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let telemetry = otel_stats::init_otlp("echo-server")?;
    /// // ...
    /// telemetry.shutdown()?;
    /// # Ok(()) }
    /// ```
    pub fn shutdown(mut self) -> OTelSdkResult {
        self.shut_down = true;
        self.shutdown_both()
    }

    fn shutdown_both(&self) -> OTelSdkResult {
        let spans = self.provider.shutdown();
        self.counters.final_report();
        let metrics = self.meter_provider.shutdown();
        spans.and(metrics)
    }
}

impl Drop for OtelGuard {
    fn drop(&mut self) {
        if !self.shut_down {
            let _ = self.shutdown_both();
        }
    }
}
