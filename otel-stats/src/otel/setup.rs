//! [`init_otlp`]: the one-call setup for the common case, OTLP span and metric exporters
//! configured from the `OTEL_*` environment variables ([`OtlpConfig::from_env`]), and
//! [`init_otlp_with`] for a configuration built or adjusted in code.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use opentelemetry::global;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::{
    MetricExporter, SpanExporter as OtlpSpanExporter, WithExportConfig, WithHttpConfig,
    WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{
    BatchConfig, BatchSpanProcessor, SdkTracerProvider, SpanExporter, TracerProviderBuilder,
};

use super::accounting::{Counters, CountingExporter, CountingProcessor, ExportStats};
use crate::export::DirectExportHandle;
use crate::export::{
    BspLimits, Compression, ConfigError, DirectSpanExporter, DirectSpanProcessor, OtlpConfig,
    OtlpError, OtlpHttpClient, Propagator, Protocol, SignalConfig, SpanExporterKind, tonic_config,
};

/// Installs an OpenTelemetry pipeline that exports spans and metrics over OTLP as the
/// `OTEL_*` variables say, and returns a guard that flushes it: [`init_otlp_with`] with
/// [`OtlpConfig::from_env`].
///
/// - The exporters honour the standard variables (the table is on
///   [`OtlpConfig::from_lookup`]): OTLP/gRPC (the default, `http://localhost:4317`) or
///   OTLP/HTTP with protobuf (`OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`), `https`
///   endpoints (the webpki and system roots, or `OTEL_EXPORTER_OTLP_CERTIFICATE`; client
///   certificates), headers, timeouts, gzip. A variable this crate cannot honour is an error
///   here, at start.
/// - `OTEL_SDK_DISABLED=true` installs nothing and returns a guard that exports nothing;
///   `OTEL_TRACES_EXPORTER=none` / `OTEL_METRICS_EXPORTER=none` turn one signal off.
/// - Spans go through the SDK's batch processor (`OTEL_BSP_*`): ending a span only queues
///   it, and a full queue drops spans rather than wait, so exporting never blocks an RPC.
///   What is lost is counted ([`OtelGuard::export_stats`]) and reported as `tracing`
///   warnings (target `otel_stats::export`), never printed by the library.
/// - Each batch is encoded once, straight from the SDK's span data, and shipped by
///   [`DirectSpanExporter`](crate::export::DirectSpanExporter) from its own thread, with the
///   OTLP retry rules and a bound in bytes on what waits for the collector;
///   [`SpanExporterKind::Standard`](crate::export::SpanExporterKind::Standard) installs
///   opentelemetry-otlp's exporter instead, and
///   [`SpanExporterKind::DirectProcessor`](crate::export::SpanExporterKind::DirectProcessor)
///   encodes each span as it ends, in place of the batch processor.
/// - Metrics (from [`MetricsHandler`](crate::MetricsHandler)s) are aggregated in memory and
///   exported by the SDK's periodic reader every `OTEL_METRIC_EXPORT_INTERVAL` milliseconds
///   (60 000 by default), with cumulative temporality.
/// - The resource's `service.name` is `service_name`, unless `OTEL_SERVICE_NAME` is set;
///   `OTEL_RESOURCE_ATTRIBUTES` adds to it.
/// - The global tracer provider, meter provider and propagator (`OTEL_PROPAGATORS`: W3C
///   trace context and baggage by default; `none` propagates nothing) are set.
///
/// Call it inside a Tokio runtime (the exporters do their IO on it), before building the
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
pub fn init_otlp(service_name: &str) -> Result<OtelGuard, OtlpError> {
    init_otlp_with(service_name, OtlpConfig::from_env()?)
}

/// [`init_otlp`] with the export configuration `config` instead of the one the environment
/// gives: for settings made in code, or the environment's adjusted
/// (`OtlpConfig::from_env()?.with_...`). The resource and batch variables
/// (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`,
/// `OTEL_METRIC_EXPORT_INTERVAL`) are still read by the SDK.
///
/// Nothing is installed when an exporter cannot be built: the error comes first.
///
/// ```no_run
/// use otel_stats::export::{Compression, OtlpConfig, Protocol, TlsSettings};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = OtlpConfig::new(Protocol::HttpProtobuf, "https://collector.example:4318")?
///     .with_compression(Some(Compression::Gzip))
///     .with_tls(TlsSettings::new().with_ca_certificate("/etc/otel/ca.pem"));
/// let telemetry = otel_stats::init_otlp_with("echo-server", config)?;
/// # let _ = telemetry;
/// # Ok(()) }
/// ```
pub fn init_otlp_with(service_name: &str, config: OtlpConfig) -> Result<OtelGuard, OtlpError> {
    if config.sdk_disabled {
        return Ok(OtelGuard {
            provider: SdkTracerProvider::builder().build(),
            meter_provider: SdkMeterProvider::builder().build(),
            counters: Counters::new(0),
            shut_down: false,
        });
    }
    let resource = resource(service_name);
    let mut meters = SdkMeterProvider::builder().with_resource(resource.clone());
    if let Some(signal) = &config.metrics {
        warn_if_tls_unused("metrics", signal);
        meters = meters.with_periodic_exporter(metric_exporter(signal)?);
    }
    let (provider, counters) = tracer_provider(&config, resource)?;
    let meter_provider = meters.build();
    global::set_tracer_provider(provider.clone());
    global::set_meter_provider(meter_provider.clone());
    install_propagators(&config.propagators);
    Ok(OtelGuard {
        provider,
        meter_provider,
        counters,
        shut_down: false,
    })
}

fn resource(service_name: &str) -> Resource {
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none_or(|v| v.is_empty()) {
        resource = resource.with_service_name(service_name.to_owned());
    }
    resource.build()
}

/// The tracer provider: the span exporter `config` chooses, behind the SDK's batch
/// processor (or the direct processor), between counters of what ends and what the
/// collector takes. Without traces,
/// a provider that exports nothing (spans still carry ids, so propagation works).
fn tracer_provider(
    config: &OtlpConfig,
    resource: Resource,
) -> Result<(SdkTracerProvider, Arc<Counters>), OtlpError> {
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let Some(signal) = &config.traces else {
        return Ok((builder.build(), Counters::new(0)));
    };
    warn_if_tls_unused("traces", signal);
    match config.span_exporter {
        SpanExporterKind::Standard => {
            let counters = queue_counters();
            let exporter = CountingExporter {
                inner: standard_span_exporter(signal)?,
                counters: Arc::clone(&counters),
            };
            Ok(batched(builder, exporter, counters, None))
        }
        SpanExporterKind::Direct => {
            // It counts what it settles itself, as it settles after `export` returns.
            let counters = queue_counters();
            let exporter = DirectSpanExporter::new(signal)?.with_tally(counters.clone());
            // The batch processor's flush does not wait for the exporter's requests in
            // flight; the processor around it does, so a flush means "at the collector".
            let settle = (exporter.handle(), signal.timeout);
            Ok(batched(builder, exporter, counters, Some(settle)))
        }
        SpanExporterKind::DirectProcessor => {
            let counters = queue_counters();
            let processor = DirectSpanProcessor::builder(signal)
                .build()?
                .with_tally(counters.clone());
            // Its own flush waits for the collector's answers already; the handle is for the
            // requests in flight, which are no backlog.
            let settle = (processor.handle(), signal.timeout);
            let processor = CountingProcessor {
                inner: processor,
                counters: Arc::clone(&counters),
                settle: Some(settle),
            };
            Ok((builder.with_span_processor(processor).build(), counters))
        }
    }
}

/// The counters of a pipeline whose queue holds what `OTEL_BSP_*` says.
fn queue_counters() -> Arc<Counters> {
    // The same sizes the SDK reads for `BatchConfig::default()` (its fields are private).
    let bsp = BspLimits::from_env();
    Counters::new((bsp.max_queue_size + bsp.max_export_batch_size) as u64)
}

/// `exporter` behind the batch processor as `with_batch_exporter` makes it (`OTEL_BSP_*`
/// apply), with the accounting of [`ExportStats`] around it; `settle` makes a flush wait
/// for the requests the exporter still has in flight.
fn batched<E: SpanExporter + 'static>(
    builder: TracerProviderBuilder,
    exporter: E,
    counters: Arc<Counters>,
    settle: Option<(DirectExportHandle, Duration)>,
) -> (SdkTracerProvider, Arc<Counters>) {
    let processor = CountingProcessor {
        inner: BatchSpanProcessor::new(exporter, BatchConfig::default()),
        counters: Arc::clone(&counters),
        settle,
    };
    (builder.with_span_processor(processor).build(), counters)
}

/// `opentelemetry-otlp`'s span exporter for `signal`.
fn standard_span_exporter(signal: &SignalConfig) -> Result<OtlpSpanExporter, OtlpError> {
    let builder = OtlpSpanExporter::builder();
    Ok(match signal.protocol {
        Protocol::Grpc => over_grpc(builder.with_tonic(), signal)?.build()?,
        Protocol::HttpProtobuf => over_http(builder.with_http(), signal)?.build()?,
    })
}

/// `opentelemetry-otlp`'s metric exporter for `signal`.
fn metric_exporter(signal: &SignalConfig) -> Result<MetricExporter, OtlpError> {
    let builder = MetricExporter::builder();
    Ok(match signal.protocol {
        Protocol::Grpc => over_grpc(builder.with_tonic(), signal)?.build()?,
        Protocol::HttpProtobuf => over_http(builder.with_http(), signal)?.build()?,
    })
}

/// A tonic exporter builder configured from `signal`.
fn over_grpc<B: WithExportConfig + WithTonicConfig>(
    builder: B,
    signal: &SignalConfig,
) -> Result<B, OtlpError> {
    let mut builder = builder
        .with_endpoint(signal.endpoint.to_string())
        .with_timeout(signal.timeout)
        .with_metadata(MetadataMap::from_headers(signal.headers.clone()));
    if signal.is_https() {
        builder = builder.with_tls_config(tonic_config(&signal.tls)?);
    }
    if let Some(compression) = signal.compression {
        builder = builder.with_compression(otlp_compression(compression)?);
    }
    Ok(builder)
}

/// An HTTP/protobuf exporter builder configured from `signal`, sending through our client.
fn over_http<B: WithExportConfig + WithHttpConfig>(
    builder: B,
    signal: &SignalConfig,
) -> Result<B, OtlpError> {
    let mut builder = builder
        // Set, so that the builder does not read `OTEL_EXPORTER_OTLP_PROTOCOL` itself.
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(signal.endpoint.to_string())
        .with_timeout(signal.timeout)
        // It sends the signal's headers.
        .with_http_client(OtlpHttpClient::new(signal)?);
    if let Some(compression) = signal.compression {
        builder = builder.with_compression(otlp_compression(compression)?);
    }
    Ok(builder)
}

fn otlp_compression(
    compression: Compression,
) -> Result<opentelemetry_otlp::Compression, OtlpError> {
    match compression {
        Compression::Gzip => Ok(opentelemetry_otlp::Compression::Gzip),
        // zstd's C library would double the build of the `otlp` feature for a compression
        // the OTLP exporter specification does not require.
        Compression::Zstd => Err(ConfigError::new(
            "compression",
            "zstd",
            "zstd is not supported by this build: use gzip or none",
        )
        .into()),
    }
}

/// Certificates given for a plain `http://` endpoint are not used: say so, as the user
/// probably meant `https://`.
fn warn_if_tls_unused(signal: &str, config: &SignalConfig) {
    let tls = &config.tls;
    let given = tls.ca_certificate.is_some() || tls.client_certificate.is_some();
    if given && !config.is_https() {
        tracing::warn!(
            target: "otel_stats::export",
            signal,
            endpoint = %config.endpoint,
            "TLS certificates are set but the endpoint is plain http://; they are not used"
        );
    }
}

/// Sets the global propagator `propagators` describe.
fn install_propagators(propagators: &[Propagator]) {
    if propagators.is_empty() {
        global::set_text_map_propagator(NoPropagation);
        return;
    }
    let propagators: Vec<Box<dyn TextMapPropagator + Send + Sync>> = propagators
        .iter()
        .map(|p| -> Box<dyn TextMapPropagator + Send + Sync> {
            match p {
                Propagator::TraceContext => Box::new(TraceContextPropagator::new()),
                Propagator::Baggage => Box::new(BaggagePropagator::new()),
            }
        })
        .collect();
    global::set_text_map_propagator(TextMapCompositePropagator::new(propagators));
}

/// `OTEL_PROPAGATORS=none`: injects and extracts nothing.
///
/// It names one (unused) field because the handlers treat a propagator without fields as
/// "none configured" and fall back to W3C trace context, which `none` must not do.
#[derive(Debug)]
struct NoPropagation;

static NO_FIELDS: LazyLock<[String; 1]> =
    LazyLock::new(|| ["otel-stats-propagation-disabled".to_owned()]);

impl TextMapPropagator for NoPropagation {
    fn inject_context(&self, _cx: &opentelemetry::Context, _injector: &mut dyn Injector) {}

    fn extract_with_context(
        &self,
        cx: &opentelemetry::Context,
        _extractor: &dyn Extractor,
    ) -> opentelemetry::Context {
        cx.clone()
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&*NO_FIELDS)
    }
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
    /// that are lost are also reported as `tracing` warnings (target `otel_stats::export`),
    /// at most one every 10 seconds, and once more at shutdown; the program decides what to
    /// print. All zero when the SDK is disabled or traces are not exported.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_sdk_gives_a_guard_that_shuts_down_cleanly() {
        // No runtime needed, nothing installed: `main`'s `telemetry.shutdown()?` still works.
        let telemetry = init_otlp_with("disabled", OtlpConfig::disabled()).unwrap();
        assert_eq!(telemetry.export_stats(), ExportStats::default());
        telemetry.shutdown().unwrap();
    }
}
