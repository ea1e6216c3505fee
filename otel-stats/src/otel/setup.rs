//! [`init_otlp`]: the one-call setup for the common case, OTLP/gRPC span and metric exporters
//! configured from the `OTEL_*` environment variables.

use std::fmt;

use opentelemetry::global;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry_otlp::{ExporterBuildError, MetricExporter, SpanExporter};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::SdkTracerProvider;

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
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
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
        shut_down: false,
    })
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
